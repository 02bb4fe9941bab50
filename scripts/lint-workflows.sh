#!/usr/bin/env bash
# Lints .github/workflows with actionlint (it runs shellcheck on every `run:` block too).
# actionlint is built from the Go module proxy into the cache when it is not on PATH.
set -euo pipefail
# Usage as the TypeScript CLIs answer it (tools/cli.ts): --help exits 0, anything else is one line plus the usage, exit 2.
usage="usage: npm run lint:workflows"
case "${1-}" in
  "") ;;
  -h|--help) printf '%s\n\nLints .github/workflows with actionlint (shellcheck on every run: block), building it\nfrom the Go module proxy when it is not on PATH.\n\noptions:\n  -h, --help  print this help and exit\n' "$usage"; exit 0 ;;
  *) printf 'lint:workflows: unexpected argument "%s": this command takes no arguments\n%s\n' "$1" "$usage" >&2; exit 2 ;;
esac
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
