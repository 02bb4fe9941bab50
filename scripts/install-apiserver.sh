#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl from the Go module proxy
# (k8s.io/kubernetes at the Kubernetes release matching the K3s minor the sample stacks pin) into
# a cache outside the repository, for `npm run test:cluster`. Reused when already built.
# Prints the bin directory on its last line.
#
# Why a wrapper module: as a dependency, k8s.io/kubernetes' `./staging` replace directives do not
# apply, so each staging module is replaced by its published v0.x.y twin (REFERENCE.md, "A real
# Kubernetes API server from served modules").
#
# Usage: scripts/install-apiserver.sh [KUBERNETES_VERSION]   (default: K8S_VERSION or v1.31.14)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${1:-${K8S_VERSION:-v1.31.14}}"
CACHE="${K3S_PLATFORM_CACHE:-$HOME/.cache/k3s-platform}/kubernetes/$VERSION"
BIN="$CACHE/bin"
export GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0

log() { printf 'install-apiserver: %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

TOOLS=(kube-apiserver kube-controller-manager kubectl)
built() { for t in "${TOOLS[@]}"; do [ -x "$BIN/$t" ] || return 1; done; }
if built && [ "$("$BIN/kubectl" version --client -o json | node -p 'JSON.parse(require("fs").readFileSync(0)).clientVersion.gitVersion')" = "$VERSION" ]; then
  log "using the cached $VERSION build in $BIN"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || fail "go is not installed"
mkdir -p "$BIN"
start=$SECONDS
minor="${VERSION#v1.}"
minor="${minor%%.*}"
staging_version="v0.${VERSION#v1.}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init k3s-platform.local/apiserver-build >/dev/null 2>&1
gomod="$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/.*"GoMod": "\([^"]*\)".*/\1/p')"
[ -n "$gomod" ] || fail "the Go module proxy does not serve k8s.io/kubernetes@$VERSION"

# Every `k8s.io/X => ./staging/src/k8s.io/X` becomes `k8s.io/X => k8s.io/X v0.<minor>.<patch>`;
# where the proxy refuses that patch, the newest v0.<minor>.* it serves is used instead.
while read -r module; do
  version="$staging_version"
  if ! go mod download "$module@$version" >/dev/null 2>&1; then
    version="$(go list -m -versions "$module" 2>/dev/null | tr ' ' '\n' | grep -E "^v0\.$minor\.[0-9]+$" | sort -V |
      while read -r v; do go mod download "$module@$v" >/dev/null 2>&1 && echo "$v"; done | tail -n1 || true)"
    if [ -z "$version" ]; then
      # e.g. k8s.io/sample-apiserver: none of the built commands imports it.
      log "$module: no served v0.$minor.x; not replaced (unused by the commands built here)"
      continue
    fi
    log "$module: $staging_version is refused by the proxy, using $version"
  fi
  go mod edit -replace "$module=$module@$version"
done < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod")

go get "k8s.io/kubernetes@$VERSION" >/dev/null
major_minor="${VERSION#v}"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=${major_minor%%.*} -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
for tool in "${TOOLS[@]}"; do
  t=$SECONDS
  go build -trimpath -ldflags "-s -w$ldflags" -o "$BIN/$tool" "k8s.io/kubernetes/cmd/$tool"
  log "built $tool $VERSION in $((SECONDS - t))s"
done
log "Kubernetes $VERSION ready in $((SECONDS - start))s"
echo "$BIN"
