#!/usr/bin/env bash
# Lints .github/workflows with actionlint (it runs shellcheck on every `run:` block too).
# actionlint is built from the Go module proxy into the cache when it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTIONLINT_VERSION=v1.7.10
bin="${K3S_PLATFORM_CACHE:-$HOME/.cache/k3s-platform}/bin"
if ! command -v actionlint >/dev/null 2>&1; then
  # The version is captured, then compared: no pipe into head/grep -q (SIGPIPE under pipefail).
  cached_version=""
  [ -x "$bin/actionlint" ] && cached_version="$("$bin/actionlint" -version)"
  if [ "${cached_version%%$'\n'*}" != "$ACTIONLINT_VERSION" ]; then
    command -v go >/dev/null || { echo "lint-workflows: needs actionlint or Go to build it" >&2; exit 1; }
    GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  fi
  export PATH="$bin:$PATH"
fi
actionlint -no-color
linted_version="$(actionlint -version)"
echo "lint-workflows: $(find .github/workflows -name '*.yml' | wc -l) workflow files clean (actionlint ${linted_version%%$'\n'*})"
