import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { loadStackConfig } from "../../../components/stack/load";
import { renderRestoreReset } from "../../../components/backup/restore";
import { renderTokenRotateScript } from "../../../components/rotation/render";
import { TOKEN_PASSWORD, TOKEN_ROTATE } from "../../../components/rotation/token-request";
import { REPO, variant } from "../../helpers/samples";

/**
 * token_password (rotation/token-request.ts), the one spelling of "the password K3s takes from a
 * token" in generated shell, against K3s' own parsing: k3s-io/k3s pkg/clientaccess/token.go
 * parseToken @0566d45 (via ParseUsernamePassword, as pkg/cluster/storage.go normalizeToken
 * @0663681 uses it).
 */

/** The e2e hosts' model of the same (their stand-ins write and compare tokens with it). */
const STAND_IN = join(REPO, "test/e2e/hosts/root-overlay/usr/local/lib/k3sp/token-password");

/** Every token through one bash run: `<status>\0<stdout>\0` per token, NUL-separated (no token holds NUL). */
function hostPasswords(tokens: readonly string[], cwd?: string, fn = "token_password", definition = TOKEN_PASSWORD.text): Array<string | undefined> {
  const script = `${definition}
while IFS= read -r -d '' t; do
  ${fn} "$t" && s=0 || s=$?
  printf '\\0%s\\0' "$s"
done`;
  // A UTF-8 locale: the function's byte lengths must not depend on the host's locale.
  const r = spawnSync("bash", ["--norc", "-c", script], { input: tokens.map((t) => `${t}\0`).join(""), encoding: "utf8", cwd, env: { ...process.env, LC_ALL: "C.UTF-8" } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  const parts = r.stdout.split("\0");
  const out: Array<string | undefined> = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push(parts[i + 1] === "0" ? parts[i]! : (assert.equal(parts[i], "", "nothing printed for a refused token"), undefined));
  assert.equal(out.length, tokens.length);
  return out;
}

/**
 * parseToken @0566d45, transcribed for the property below (not the function under test):
 * `undefined` where ParseUsernamePassword answers !ok. Go's len() counts bytes.
 */
const BOOTSTRAP = /^[a-z0-9]{6}\.[a-z0-9]{16}$/; // k8s.io/cluster-bootstrap token/api BootstrapTokenPattern
function k3sPassword(token: string): string | undefined {
  if (token.length === 0) return undefined; // "token must not be empty"
  if (!token.startsWith("K10")) token = BOOTSTRAP.test(token) ? `K10::${token}` : `K10:::${token}`;
  token = token.slice(3);
  const at = token.indexOf("::"); // strings.SplitN(token, "::", 2)
  if (at >= 0) {
    const hashLen = Buffer.byteLength(token.slice(0, at));
    if (hashLen > 0 && hashLen !== 64) return undefined; // "invalid token CA hash length"
    token = token.slice(at + 2);
  }
  if (BOOTSTRAP.test(token)) return undefined; // a bootstrap token: no username/password
  const colon = token.indexOf(":"); // strings.SplitN(token, ":", 2)
  if (colon < 0 || colon === token.length - 1) return undefined; // "invalid token format"
  return token.slice(colon + 1);
}

const HASH = "8d5a0c3f".repeat(8); // 64 hex digits, as K3s writes sha256 of its CA

describe("token_password: the password K3s takes from a token (one shell function, every script)", () => {
  // [token, the password parseToken gives (undefined: K3s refuses it), why]
  const table: Array<[string, string | undefined, string]> = [
    [`K10${HASH}::server:s3cret`, "s3cret", "secure token, as K3s writes server/token"],
    [`K10${HASH}::node:s3cret`, "s3cret", "secure agent token: any user, the part after it"],
    [`K10::server:s3cret`, "s3cret", "secure token with an empty CA hash"],
    [`K10:::s3cret`, "s3cret", "what parseToken turns a bare password into"],
    ["s3cret", "s3cret", "bare password"],
    ["server:pw", "server:pw", "bare `server:pw`: K10::: in front, so the whole token is the password"],
    ["node:pw", "node:pw", "bare `node:pw`, likewise"],
    ["a::b", "a::b", "bare token with `::`: the CA hash is empty, `:a::b` the credentials"],
    [`K10${HASH}::server:pa:ss`, "pa:ss", "':' inside the password: split at the first ':' only"],
    [`K10${HASH}::server:pa::ss`, "pa::ss", "'::' inside the password: the hash ends at the first '::'"],
    [`K10${HASH}::server::`, ":", "the password ':'"],
    [`K10${HASH}::server:$(touch pwned)`, "$(touch pwned)", "'$(...)' in the password, verbatim"],
    ["$HOME`id`${IFS}", "$HOME`id`${IFS}", "'$', backquotes, braces, verbatim"],
    [`it's "quoted" \\ back`, `it's "quoted" \\ back`, "quotes and backslash"],
    ["K10user:pw", "pw", "K10 prefix without '::': all of it is credentials"],
    ["ABCDEF.0123456789abcdef", "ABCDEF.0123456789abcdef", "upper case: not a bootstrap token, a bare password"],
    [`K10${"é".repeat(32)}::server:pw`, "pw", "a 64-byte CA hash of 32 characters: Go counts bytes"],
    [`K10${"é".repeat(64)}::server:pw`, undefined, "64 characters but 128 bytes: invalid CA hash length"],
    ["K10abc::server:pw", undefined, "CA hash neither empty nor 64 long"],
    [`K10${HASH}::server:`, undefined, "empty password"],
    [`K10${HASH}::s3cret`, undefined, "credentials without ':'"],
    ["K10s3cret", undefined, "K10 prefix, no ':' at all"],
    [`K10${HASH}::abcdef.0123456789abcdef`, undefined, "bootstrap token credentials: no password"],
    ["abcdef.0123456789abcdef", undefined, "bare bootstrap token: no password"],
    ["", undefined, "empty"],
  ];

  it("gives what K3s' parseToken gives for every token shape, and refuses what K3s refuses", () => {
    const got = hostPasswords(table.map(([t]) => t));
    table.forEach(([token, want, why], i) => assert.equal(got[i], want, `${why}: ${JSON.stringify(token)}`));
    // The transcription the property relies on agrees with the table read off the source.
    table.forEach(([token, want, why]) => assert.equal(k3sPassword(token), want, `model: ${why}`));
  });

  it("the e2e stand-ins' model of K3s (hosts/root-overlay/.../token-password) agrees on every token K3s takes", () => {
    const taken = table.filter(([, want]) => want !== undefined);
    const got = hostPasswords(taken.map(([t]) => t), undefined, "k3s_password", readFileSync(STAND_IN, "utf8"));
    taken.forEach(([token, want, why], i) => assert.equal(got[i], want, `stand-in: ${why}: ${JSON.stringify(token)}`));
  });

  it("property: any token gives K3s' password, and nothing in it is ever evaluated", function () {
    this.timeout(120_000);
    const dir = mkdtempSync(join(tmpdir(), "token-password-"));
    try {
      const piece = fc.oneof(
        fc.constantFrom("K10", "::", ":", "server", "node", HASH, "abcdef.0123456789abcdef", "é", "$(touch pwned)", "`touch pwned`", "${x:=pwned}", "$((1+1))", "'", '"', "\\", "*", "?", "[a]", "~", "!", "\n", " ", "\t"),
        fc.string({ unit: "binary", maxLength: 8 }),
      );
      const token = fc.array(piece, { maxLength: 8 }).map((p) => p.join("").replace(/\0/g, ""));
      fc.assert(
        fc.property(fc.array(token, { minLength: 1, maxLength: 60 }), (tokens) => {
          const got = hostPasswords(tokens, dir);
          tokens.forEach((t, i) => assert.equal(got[i], k3sPassword(t), JSON.stringify(t)));
          assert.deepEqual(readdirSync(dir), [], "no token ran a command");
        }),
        { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 40) },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is defined once, and the token-rotate and restore-reset scripts read tokens only through it", () => {
    const config = loadStackConfig(variant("prod", (r) => (r.restore = { id: 1, snapshot: "on-demand-prod-server-1-1764547200" })));
    const scripts = {
      "token-rotate": renderTokenRotateScript(config, config.nodes[0]!, "new"),
      reset: renderRestoreReset(config, config.restore!, "r1", { token: "current", restoreToken: "old" }),
    };
    assert.equal(TOKEN_ROTATE.text.split("token_password() {").length, 2, "token_rotate carries the one definition");
    for (const [name, text] of Object.entries(scripts)) {
      assert.equal(text.split("token_password() {").length, 2, `${name}: one definition`);
      assert.ok(text.includes(TOKEN_PASSWORD.text), `${name}: the definition of token-request.ts`);
      // No other parser of K3s tokens: no K10 prefix stripped by hand.
      assert.doesNotMatch(text.replace(TOKEN_PASSWORD.text, ""), /#K10|password_of/, name);
    }
  });
});
