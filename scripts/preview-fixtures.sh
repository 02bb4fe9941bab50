#!/usr/bin/env bash
# Regenerates test/fixtures/preview/cluster-* from real engine runs: runs `npm run test:cluster`
# with UPDATE_PREVIEW_FIXTURES=1, which saves the real CLI's `pulumi preview --json --event-log`
# output for the in-cluster layer against a real API server (b: no change, one quota change;
# c: a tenant the policy pack refuses). Saved event logs leave out the Node SDK's debug
# diagnostics (they carry secrets' plaintext: tools/harness/preview-output.ts) and replace this
# machine's paths with $REPO and ~; the suite refuses to save anything with secret material.
# Needs what test:cluster needs (scripts/install-pulumi.sh, scripts/install-apiserver.sh, etcd).
# Review the diff before committing: timestamps and durations change on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-env.sh
source scripts/node-env.sh >/dev/null
UPDATE_PREVIEW_FIXTURES=1 npm run -s test:cluster
# The same scan the unit suite runs over every fixture (test/preview-md.test.ts).
npx mocha --grep "no fixture carries secret material" test/preview-md.test.ts
echo "preview-fixtures: wrote test/fixtures/preview/cluster-* (review the diff before committing)"
