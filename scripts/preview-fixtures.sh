#!/usr/bin/env bash
# Regenerates test/fixtures/preview/cluster-* with the real engine: runs `npm run test:cluster`
# with UPDATE_PREVIEW_FIXTURES=1, which saves the real CLI's `pulumi preview --json --event-log`
# output for the in-cluster layer (b: no change, one quota change; c: a tenant the policy pack
# refuses). Needs what test:cluster needs (scripts/install-pulumi.sh, scripts/install-apiserver.sh).
# Review the diff before committing: paths and timestamps change on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_PREVIEW_FIXTURES=1 npm run -s test:cluster
echo "preview-fixtures: wrote test/fixtures/preview/cluster-* (review the diff before committing)"
