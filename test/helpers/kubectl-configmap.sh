#!/usr/bin/env bash
# Test stand-in for the ConfigMap calls of `k3s kubectl` that the operations' cluster records make
# (components/operations/covered.ts), modelled on kubectl's documented behaviour
# (kubernetes.io/docs/reference/kubectl/generated/kubectl_{get,create,patch}/):
#  - get configmap N -n NS -o jsonpath={.data.K}: the key's value ("" when absent);
#    a missing ConfigMap is `Error from server (NotFound): configmaps "N" not found`, exit 1;
#  - create configmap N -n NS: an empty one; `Error from server (AlreadyExists)`, exit 1, if there;
#  - patch configmap N -n NS --type merge -p '{"data":{"K":"V"}}': sets that key (a JSON merge
#    patch, RFC 7386: the other keys stay); NotFound as for get.
# State: $STUB_API/configmaps/<namespace>/<name>/<key> (an API server's view several hosts share).
# $STUB_API_DOWN set: every call fails as kubectl does when the API does not answer.
set -euo pipefail
api="${STUB_API:?STUB_API: the shared API state directory}"
if [ -n "${STUB_API_DOWN:-}" ]; then
  echo 'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?' >&2
  exit 1
fi
verb="$1" kind="$2" name="$3"
shift 3
[ "$kind" = configmap ] || { echo "kubectl-configmap stand-in: $verb $kind is not modelled" >&2; exit 2; }
ns=default out="" patch=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ns="$2"; shift 2 ;;
    -o) out="$2"; shift 2 ;;
    -p) patch="$2"; shift 2 ;;
    --type) shift 2 ;;
    *) echo "kubectl-configmap stand-in: argument $1 is not modelled" >&2; exit 2 ;;
  esac
done
dir="$api/configmaps/$ns/$name"
not_found() { echo "Error from server (NotFound): configmaps \"$name\" not found" >&2; exit 1; }
case "$verb" in
  get)
    [ -d "$dir" ] || not_found
    case "$out" in
      'jsonpath={.data.'*'}') key="${out#jsonpath=\{.data.}"; key="${key%\}}"; if [ -f "$dir/$key" ]; then cat "$dir/$key"; fi ;;
      *) echo "kubectl-configmap stand-in: -o $out is not modelled" >&2; exit 2 ;;
    esac ;;
  create)
    if [ -d "$dir" ]; then echo "Error from server (AlreadyExists): configmaps \"$name\" already exists" >&2; exit 1; fi
    mkdir -p "$dir"
    echo "configmap/$name created" ;;
  patch)
    [ -d "$dir" ] || not_found
    # Only the shape the records send: one key, a JSON string without escapes (base64).
    re='^\{"data":\{"([-._A-Za-z0-9]+)":"([A-Za-z0-9+/=]*)"\}\}$'
    [[ "$patch" =~ $re ]] || { echo "kubectl-configmap stand-in: patch $patch is not modelled" >&2; exit 2; }
    printf '%s' "${BASH_REMATCH[2]}" >"$dir/${BASH_REMATCH[1]}"
    echo "configmap/$name patched" ;;
  *) echo "kubectl-configmap stand-in: $verb is not modelled" >&2; exit 2 ;;
esac
