#!/usr/bin/env bash
# Puts the Pulumi engine on PATH for this project. An installed `pulumi` is used when it is new
# enough and its plugins are present; otherwise what the Go module proxy serves is built into a
# cache outside the repository (reused on the next run):
#   - the CLI from github.com/pulumi/pulumi/pkg/v3 at the SDK's version (package.json);
#   - pulumi-resource-kubernetes from github.com/pulumi/pulumi-kubernetes/provider/v4 at the
#     version the proxy serves (KUBERNETES_PROVIDER_VERSION), wrapped in a small main package;
#   - the Node.js language host and the command/random providers only where the proxy serves them
#     (today it refuses all three: programs run as Automation API inline programs, which need no
#     language host, and `npm run test:engine` skips without the command/random plugins).
# The policy-pack analyzer launcher is committed: scripts/bin/pulumi-analyzer-policy-nodejs.
# Prints the bin directory to add to PATH on its last line (add scripts/bin too).
#
# Usage: scripts/install-pulumi.sh [--check]   (--check: only report what is available)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${K3S_PLATFORM_CACHE:-$HOME/.cache/k3s-platform}/pulumi"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

dep() { node -p "require('./package.json').dependencies['$1']"; }
SDK_VERSION="v$(dep @pulumi/pulumi)"
COMMAND_VERSION="v$(dep @pulumi/command)"
KUBERNETES_VERSION="v$(dep @pulumi/kubernetes)"
RANDOM_VERSION="v$(dep @pulumi/random)"
# The proxy serves the provider module only as this pseudo-version (code of 2026-01-15, commit
# f47bc2d6f199); it is reported as the plugin's version, not the npm SDK's 4.34.2.
KUBERNETES_PROVIDER_VERSION="${KUBERNETES_PROVIDER_VERSION:-v4.0.0-20260115033456-f47bc2d6f199}"

log() { printf 'install-pulumi: %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

# version_ge A B: true when version A >= B (both vX.Y.Z).
# sort's whole output is captured (no pipe into head, which can SIGPIPE sort under pipefail).
version_ge() {
  local lowest
  lowest="$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V)"
  [ "${lowest%%$'\n'*}" = "${2#v}" ]
}

installed_is_adequate() {
  command -v pulumi >/dev/null 2>&1 || return 1
  version_ge "$(pulumi version)" "$SDK_VERSION" || return 1
  command -v pulumi-language-nodejs >/dev/null 2>&1 || return 1
  local plugins
  plugins="$(pulumi plugin ls 2>/dev/null || true)"
  for p in "command ${COMMAND_VERSION#v}" "kubernetes ${KUBERNETES_VERSION#v}" "random ${RANDOM_VERSION#v}"; do
    grep -qE "^${p% *} +resource +${p#* } " <<<"$plugins" || command -v "pulumi-resource-${p% *}" >/dev/null 2>&1 || return 1
  done
}

# module_info MODULE VERSION: the proxy's .info for it, or nothing when the proxy refuses it.
module_info() { go list -m -json "$1@$2" 2>/dev/null; }

# module_available MODULE VERSION: the source itself can be fetched (this proxy serves .info and
# .mod for some versions whose source zip it refuses, e.g. pkg/v3 v3.260.0).
module_available() { go mod download -json "$1@$2" >/dev/null 2>&1; }

# commit_of MODULE VERSION: the git commit a tagged version was cut from.
commit_of() { module_info "$1" "$2" | sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p'; }

# build MODULE VERSION PACKAGE OUTPUT [LDFLAGS] [REPLACES...]: builds a main package of a module
# from a throw-away wrapper module (a dependency's own replace directives do not apply to us).
build() {
  local module="$1" version="$2" package="$3" output="$4" ldflags="${5:-}"
  shift 5 || shift $#
  local work
  work="$(mktemp -d)"
  (
    cd "$work"
    go mod init k3s-platform.local/engine-build >/dev/null 2>&1
    for replace in "$@"; do go mod edit -replace "$replace"; done
    # Ask for the module, not the package: this proxy answers 403 (not 404) for the package
    # path probed as a module, which stops `go get package@version`.
    go get "$module@$version" >/dev/null
    go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" -o "$output" "$package"
  )
  rm -rf "$work"
  log "built $(basename "$output") $version"
}

build_cli() {
  [ -x "$BIN/pulumi" ] && [ "$("$BIN/pulumi" version)" = "$SDK_VERSION" ] && return 0
  module_available github.com/pulumi/pulumi/pkg/v3 "$SDK_VERSION" \
    || fail "the Go module proxy does not serve the source of github.com/pulumi/pulumi/pkg/v3@$SDK_VERSION"
  build github.com/pulumi/pulumi/pkg/v3 "$SDK_VERSION" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$BIN/pulumi" \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$SDK_VERSION" \
    "github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e"
}

# The language host is its own, untagged module: use the pseudo-version of the CLI's commit. The
# proxy's .info carries that commit only when it recorded the module's origin (proxy.golang.org
# omits it for pkg/v3 today); without it, ask for whatever it serves as latest.
build_language_host() {
  [ -x "$BIN/pulumi-language-nodejs" ] && return 0
  local module=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 commit time pseudo=latest
  commit="$(commit_of github.com/pulumi/pulumi/pkg/v3 "$SDK_VERSION")"
  if [ -n "$commit" ]; then
    time="$(module_info github.com/pulumi/pulumi/pkg/v3 "$SDK_VERSION" | sed -n 's/.*"Time": "\([^"]*\)".*/\1/p' | tr -d ':TZ-')"
    pseudo="v3.0.0-${time}-${commit:0:12}"
  fi
  if ! module_available "$module" "$pseudo"; then
    log "not served: $module@$pseudo (the language host; inline programs do not need it)"
    return 0
  fi
  build "$module" "$pseudo" "$module" "$BIN/pulumi-language-nodejs" "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$SDK_VERSION"
}

build_provider() {
  local name="$1" module="$2" package="$3" version="$4" ldflag="$5"
  [ -x "$BIN/pulumi-resource-$name" ] && return 0
  if ! module_available "$module" "$version"; then
    log "not served: $module@$version (pulumi-resource-$name; npm run test:engine skips without it)"
    return 0
  fi
  build "$module" "$version" "$package" "$BIN/pulumi-resource-$name" "-X $ldflag=$version"
}

# pulumi-resource-kubernetes: the module's own main embeds schema-embed.json and
# terraform-mapping-embed.json, generated files it does not ship. They are schema.json (with
# .version set) and terraform-mapping.json, minified, as its generate.go writes them.
build_kubernetes_provider() {
  local module=github.com/pulumi/pulumi-kubernetes/provider/v4 version="$KUBERNETES_PROVIDER_VERSION" work dir
  local output="$BIN/pulumi-resource-kubernetes"
  [ -x "$output" ] && [ "$(cat "$output.version" 2>/dev/null)" = "$version" ] && return 0
  module_available "$module" "$version" || fail "the Go module proxy does not serve $module@$version (pulumi-resource-kubernetes)"
  work="$(mktemp -d)"
  (
    cd "$work"
    go mod init k3s-platform.local/kubernetes-provider >/dev/null 2>&1
    go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
    go get "$module@$version" >/dev/null
    dir="$(go list -m -json "$module" | sed -n 's/.*"Dir": "\([^"]*\)".*/\1/p')"
    VERSION="${version#v}" SRC="$dir/cmd/pulumi-resource-kubernetes" node -e '
      const fs = require("fs");
      const schema = JSON.parse(fs.readFileSync(process.env.SRC + "/schema.json", "utf8"));
      schema.version = process.env.VERSION;
      fs.writeFileSync("schema-embed.json", JSON.stringify(schema));
      fs.writeFileSync("terraform-mapping-embed.json", JSON.stringify(JSON.parse(fs.readFileSync(process.env.SRC + "/terraform-mapping.json", "utf8"))));'
    cat >main.go <<'GO'
// Generated by scripts/install-pulumi.sh: the provider's own main, with the generated files it embeds.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
GO
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${version#v}" -o "$output" .
  )
  rm -rf "$work"
  echo "$version" >"$output.version"
  log "built pulumi-resource-kubernetes $version"
}

if [ "${1:-}" = "--check" ]; then
  for pair in "github.com/pulumi/pulumi/pkg/v3 $SDK_VERSION" \
    "github.com/pulumi/pulumi-command/provider $COMMAND_VERSION" \
    "github.com/pulumi/pulumi-kubernetes/provider/v4 $KUBERNETES_PROVIDER_VERSION" \
    "github.com/pulumi/pulumi-random/provider/v4 $RANDOM_VERSION"; do
    if module_available "${pair% *}" "${pair#* }"; then log "available: $pair"; else log "refused:   $pair"; fi
  done
  exit 0
fi

if installed_is_adequate; then
  log "using the installed pulumi $(pulumi version) and its plugins"
  dirname "$(command -v pulumi)"
  exit 0
fi

start=$SECONDS
t=$SECONDS; build_cli; log "CLI: $((SECONDS - t))s"
t=$SECONDS; build_kubernetes_provider; log "kubernetes provider: $((SECONDS - t))s"
build_language_host
build_provider command github.com/pulumi/pulumi-command/provider \
  github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command "$COMMAND_VERSION" \
  github.com/pulumi/pulumi-command/provider/pkg/version.Version
build_provider random github.com/pulumi/pulumi-random/provider/v4 \
  github.com/pulumi/pulumi-random/provider/v4/cmd/pulumi-resource-random "$RANDOM_VERSION" \
  github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version
log "engine ready in $((SECONDS - start))s"
echo "$BIN"
