#!/usr/bin/env bash
# Regenerates test/fixtures/preview/* with the real engine: a prod stack on a local backend,
# previewed once as committed (no changes expected after an up) and once with an upgrade.
# Needs the engine on PATH (scripts/install-pulumi.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v pulumi >/dev/null || { echo "preview-fixtures: pulumi is not on PATH (scripts/install-pulumi.sh)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PULUMI_BACKEND_URL="file://$work/state" PULUMI_CONFIG_PASSPHRASE=fixtures PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$work/state"
out=test/fixtures/preview
pulumi stack select prod --create --non-interactive >/dev/null
pulumi preview --stack prod --json --event-log "$out/prod-upgrade.events.jsonl" \
  --policy-pack policies --policy-pack-config policies/config/prod.json >"$out/prod-upgrade.json" || true
echo "preview-fixtures: wrote $out (review the diff before committing)"
