import { raw, Shell, sh } from "../shell/sh";

/**
 * K3s' token rotation request, made by the step itself so that neither token is ever a process
 * argument (the project standard: no secret on a host's command line). `k3s token rotate
 * --new-token X` would put the new token in argv; the request below is the one that command makes
 * (k3s-io/k3s pkg/cli/token/token.go Rotate @0678ae9):
 *
 *  - `PUT /v1-k3s/token` on the local server (the CLI's default server URL,
 *    https://127.0.0.1:6443), body `{"newToken":"<new>"}` (server.TokenRotateRequest);
 *  - basic auth, user `server` (clientaccess.WithUser("server")), password = the old token's
 *    credentials part (pkg/clientaccess/token.go parseToken @0566d45: `K10<ca hash>::<user>:<password>`
 *    gives `<password>`; a short token is prefixed `K10:::` and so is the password itself);
 *  - the server certificate checked against the cluster's server CA (the CLI downloads /cacerts
 *    and checks it against the token's CA hash; on the server the CA file itself is at hand);
 *  - then one second's wait, as the CLI has ("wait for etcd db propagation delay").
 *
 * The handler (pkg/server/handlers/token.go @b462a5f, routed in handlers/router.go @e3bfcc4 under
 * auth.HasRole("k3s:server"), pkg/server/auth/auth.go @3f5eec4) answers 200 when rotated, 401 when
 * authentication fails with an error, 403 for a wrong password or role, 405 for another method,
 * 400 for a body it cannot read, 500 when the rotation fails (the body says why).
 *
 * Where it exists: the endpoint came with `k3s token rotate` in v1.28.3 (k3s-io/k3s#8392; the
 * v1.25-v1.27 backports: rancher/rke2#4869), and both stored versions of handlers/router.go read
 * (@e3bfcc4, @1be7bd2, the newest) route it, so every line of config/releases.ts SUPPORTED_LINES
 * (v1.35-v1.37) has it. The release tags themselves were not read: the K3s repository snapshot is
 * over the size this project can fetch (say so in docs/rotation.md until someone reads them).
 *
 * The whole curl configuration (URL, user, body, CA file) goes to `curl -K -` on its stdin,
 * written by bash builtins (printf, command substitution of shell functions: no exec), so no
 * process argument and no file ever holds a token. Expects `ROOT`, `say` and `fail`.
 */
export const K3S_LOCAL_SERVER = "https://127.0.0.1:6443";
export const TOKEN_ENDPOINT = "/v1-k3s/token";
export const SERVER_CA_FILE = "/var/lib/rancher/k3s/server/tls/server-ca.crt";

/** Why curl is needed, for the preflight's error. */
export const CURL_WHY = "K3s' token rotation request is sent with curl (PUT /v1-k3s/token, as k3s token rotate sends it) so that no token is ever on a command line";

/**
 * `require_curl STEP`: fails naming host (NODE) and step when curl is missing, before anything
 * changes.
 */
export const REQUIRE_CURL: Shell = sh`require_curl() {
  command -v curl >/dev/null 2>&1 || fail "curl is not installed on $NODE, which step $1 needs: ${raw(CURL_WHY)}; install curl there and run pulumi up again (nothing was changed)"
}
`;

/**
 * `token_password TOKEN`: prints the password K3s takes from TOKEN, as k3s-io/k3s
 * pkg/clientaccess/token.go parseToken @0566d45 (lines 183-230) reads it, via ParseUsernamePassword
 * and pkg/cluster/storage.go normalizeToken @0663681 (the password the server keys its bootstrap
 * data with and checks basic auth against). Status 1 and nothing printed when K3s refuses TOKEN
 * ("failed to normalize token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or
 * <PASSWORD>"): empty, a CA hash that is neither empty nor 64 bytes, no `<user>:<password>` with a
 * non-empty password, or a bootstrap token `<id>.<secret>` (k8s.io/cluster-bootstrap
 * BootstrapTokenPattern `[a-z0-9]{6}\.[a-z0-9]{16}`: it carries no password).
 *
 * parseToken, step by step: a token not starting with `K10` is a bootstrap token or gets `K10:::`
 * in front, so a bare token (`server:pw`, `a::b` too) is its own password; then `K10` is cut,
 * the rest split at the first `::` into CA hash and credentials (no `::`: all credentials), and
 * the credentials split at the first `:` into user and password. Byte lengths (LC_ALL=C), as Go's
 * len(). Only parameter expansion, `case` and `[[ =~ ]]`: TOKEN is never evaluated.
 * The one definition every generated script uses (token rotation, restore's reset): one spelling,
 * one test (test/components/rotation/token-password.test.ts).
 */
export const TOKEN_PASSWORD: Shell = raw(`# token_password TOKEN: the password K3s takes from TOKEN, status 1 for a token K3s refuses
# (k3s-io/k3s pkg/clientaccess/token.go parseToken, rotation/token-request.ts).
token_password() {
  local LC_ALL=C t="$1" hash bootstrap='^[a-z0-9]{6}[.][a-z0-9]{16}$'
  [ -n "$t" ] || return 1
  # A bare password or bootstrap token becomes a K10 token with an empty CA hash.
  case "$t" in
    K10*) ;;
    *) if [[ $t =~ $bootstrap ]]; then t="K10::$t"; else t="K10:::$t"; fi ;;
  esac
  t="\${t#K10}"
  case "$t" in
    *::*)
      hash="\${t%%::*}"
      t="\${t#*::}"
      [ -z "$hash" ] || [ "\${#hash}" -eq 64 ] || return 1
      ;;
  esac
  # Credentials: a bootstrap token (no password), else <user>:<password>, the password not empty.
  if [[ $t =~ $bootstrap ]]; then return 1; fi
  case "$t" in *:*) t="\${t#*:}" ;; *) return 1 ;; esac
  [ -n "$t" ] || return 1
  printf '%s' "$t"
}
`);

/**
 * `token_rotate OLD NEW`: rotates K3s' server token from OLD (any form K3s takes) to the password
 * NEW. Carries TOKEN_PASSWORD, so a script that includes it has `token_password` too.
 */
export const TOKEN_ROTATE: Shell = raw(`${TOKEN_PASSWORD.text}# quoted S: S as a double-quoted value of curl's config syntax and of JSON alike: backslash and
# double quote escaped (no control characters: token_rotate refuses them).
quoted() { local s="$1"; s="\${s//\\\\/\\\\\\\\}"; s="\${s//\\"/\\\\\\"}"; printf '"%s"' "$s"; }
# token_rotate OLD NEW (rotation/token-request.ts): PUT ${K3S_LOCAL_SERVER}${TOKEN_ENDPOINT} as k3s token rotate does.
token_rotate() {
  local old="$1" new="$2" password out status=0 code body
  case "$old$new" in *[[:cntrl:]]*) fail "a token holds a control character, which K3s' token cannot carry; nothing was rotated" ;; esac
  password="$(token_password "$old")" || fail "the token to rotate from is not one K3s takes (K10<CA hash>::<user>:<password> or <password>); nothing was rotated"
  out="$(printf '%s\\n' \\
    "url = $(quoted "${K3S_LOCAL_SERVER}${TOKEN_ENDPOINT}")" \\
    'request = "PUT"' \\
    "user = $(quoted "server:$password")" \\
    "data-binary = $(quoted "{\\"newToken\\":$(quoted "$new")}")" \\
    'header = "Content-Type: application/json"' \\
    "cacert = $(quoted "$ROOT${SERVER_CA_FILE}")" \\
    'noproxy = "*"' \\
    'max-time = 30' \\
    'silent' \\
    'show-error' \\
    'write-out = "\\n%{http_code}"' | curl -K - 2>&1)" || status=$?
  code="\${out##*$'\\n'}"
  body="\${out%$'\\n'*}"
  [ "$status" = 0 ] || fail "the token rotation request to K3s (PUT ${K3S_LOCAL_SERVER}${TOKEN_ENDPOINT}) failed: curl status $status: $out; nothing was rotated"
  case "$code" in
    200) ;;
    401 | 403) fail "K3s refused the token rotation (HTTP $code): the old token is not the one this server runs with; nothing was rotated" ;;
    *) fail "K3s did not rotate the token (HTTP $code): $body" ;;
  esac
  # As k3s token rotate does: "wait for etcd db propagation delay".
  sleep 1
}
`);
