import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, KeyObject, sign } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A minimal OIDC issuer for `npm run test:cluster`: an https server (its own CA, made here with
 * openssl) in a child process, serving the discovery document and the JWKS the API server's JWT
 * authenticator fetches (OpenID Connect Discovery 1.0: `<issuer>/.well-known/openid-configuration`
 * with `issuer` and `jwks_uri`), and ES256 ID tokens signed in this process (RFC 7515 compact
 * form; ES256 signatures are r||s, RFC 7518 §3.4). A child process, so a blocking spawnSync in
 * the test never stalls the server.
 */

const SERVER = String.raw`
const https = require("node:https");
const fs = require("node:fs");
const [key, cert, discovery, jwks] = process.argv.slice(1);
const bodies = { "/.well-known/openid-configuration": fs.readFileSync(discovery), "/jwks": fs.readFileSync(jwks) };
const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
  const body = bodies[req.url];
  res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
  res.end(body ?? "{}");
});
process.stdin.once("data", () => server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening")));
`;

export interface Issuer {
  url: string;
  /** PEM of the CA that signed the issuer's serving certificate. */
  ca: string;
  /** A signed ID token with these claims (iss, iat, nbf and exp filled in). */
  token(claims: Record<string, unknown>): string;
  stop(): void;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

export async function startIssuer(dir: string, port: number): Promise<Issuer> {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "issuer-ca.key", "-out", "issuer-ca.crt", "-days", "2", "-subj", "/CN=k3s-platform-test-oidc-ca");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "issuer.key", "-out", "issuer.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "issuer.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  openssl("x509", "-req", "-in", "issuer.csr", "-CA", "issuer-ca.crt", "-CAkey", "issuer-ca.key", "-CAcreateserial", "-out", "issuer.crt", "-days", "2", "-extfile", "issuer.ext");

  const url = `https://127.0.0.1:${port}`;
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = "test-key-1";
  writeFileSync(join(dir, "discovery.json"), JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ["ES256"], response_types_supported: ["id_token"], subject_types_supported: ["public"] }));
  writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }] }));

  const child: ChildProcess = spawn(process.execPath, ["-e", SERVER, join(dir, "issuer.key"), join(dir, "issuer.crt"), join(dir, "discovery.json"), join(dir, "jwks.json")], {
    env: { ...process.env, PORT: String(port) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the OIDC issuer stand-in exited (${code})`)));
    child.stdout!.once("data", () => resolve());
    child.stdin!.write("go\n");
  });
  const key: KeyObject = createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" }));
  return {
    url,
    ca: readFileSync(join(dir, "issuer-ca.crt"), "utf8"),
    token(claims) {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: "ES256", kid, typ: "JWT" }));
      const payload = b64url(JSON.stringify({ iss: url, iat: now, nbf: now - 5, exp: now + 600, ...claims }));
      const signature = sign("sha256", Buffer.from(`${header}.${payload}`), { key, dsaEncoding: "ieee-p1363" });
      return `${header}.${payload}.${b64url(signature)}`;
    },
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
