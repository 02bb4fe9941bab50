import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { REPO, sampleRaw } from "../helpers/samples";

const TSX = join(REPO, "node_modules", ".bin", "tsx");

function render(args: string[], cwd = REPO) {
  const r = spawnSync(TSX, [join(REPO, "tools", "render.ts"), ...args], { cwd, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run render", () => {
  const out = mkdtempSync(join(tmpdir(), "k3s-platform-render-"));
  after(() => rmSync(out, { recursive: true, force: true }));

  it("--stack prod writes every node's files, the manifests and the encryption files", () => {
    const r = render(["--stack", "prod", "--out", join(out, "prod")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /for 6 nodes/, "k8s/ and encryption/ are not nodes");
    for (const f of ["prod-server-1/config.yaml", "prod-server-3/psa.yaml", "prod-agent-3/os-prep.sh", "k8s/tenants.yaml", "k8s/dns.yaml", "encryption/encryption-config.yaml"]) {
      assert.ok(existsSync(join(out, "prod", f)), f);
    }
    assert.match(readFileSync(join(out, "prod", "encryption/encryption-config.yaml"), "utf8"), /<redacted: secret k3s-platform:encryptionKeys>/);
  });

  it("--config accepts a bare k3s-platform map", () => {
    const file = join(out, "bare.yaml");
    writeFileSync(file, stringify(Object.fromEntries(Object.entries(sampleRaw("dev")).map(([k, v]) => [`k3s-platform:${k}`, v]))));
    const r = render(["--config", file, "--out", join(out, "bare")]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, "bare", "dev-agent-1", "apply.sh")));
  });

  it("invalid config: exit 1, the path-named error, and nothing written", () => {
    const raw = sampleRaw("dev");
    const file = join(out, "bad.yaml");
    writeFileSync(file, stringify({ config: { "k3s-platform:environment": "dev", "k3s-platform:k3s": { ...raw.k3s, clusterDns: "10.42.0.10" }, "k3s-platform:nodes": raw.nodes } }));
    const r = render(["--config", file, "--out", join(out, "bad")]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /k3s-platform:k3s\.clusterDns: 10\.42\.0\.10 is outside serviceCidr 10\.43\.0\.0\/16/);
    assert.equal(existsSync(join(out, "bad")), false);
  });

  const stackFile = (dir: string, config: Record<string, unknown>) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "Pulumi.t.yaml"), stringify({ config }));
  };
  const prefixed = (raw: Record<string, unknown>) => Object.fromEntries(Object.entries(raw).map(([k, v]) => [`k3s-platform:${k}`, v]));

  it("a missing required secret fails render as it fails the program; a secure: value in the stack file counts as set", () => {
    const raw = sampleRaw("dev");
    const external = { ...raw, k3s: { ...raw.k3s, datastore: { type: "external" } } };
    const dir = join(out, "secret-stack");
    stackFile(dir, prefixed(external as Record<string, unknown>));
    const missing = render(["--stack", "t", "--out", join(dir, "out")], dir);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /k3s-platform:datastoreEndpoint: required \(as a secret/);
    stackFile(dir, { ...prefixed(external as Record<string, unknown>), "k3s-platform:datastoreEndpoint": { secure: "v1:AAAA" } });
    const present = render(["--stack", "t", "--out", join(dir, "out")], dir);
    assert.equal(present.status, 0, present.stderr);
    assert.match(readFileSync(join(dir, "out", "dev-server-1", "secrets", "secrets-dropin"), "utf8"), /datastore-endpoint: "<redacted: secret k3s-platform:datastoreEndpoint>"/);
  });

  it("refuses a plaintext value for a secure key, printing the pulumi config set --secret command (not the value)", () => {
    const dir = join(out, "plain-secret");
    stackFile(dir, { ...prefixed(sampleRaw("dev") as Record<string, unknown>), "k3s-platform:token": "hunter2-plain" });
    const r = render(["--stack", "t", "--out", join(dir, "out")], dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /k3s-platform:token: plaintext value for a secret key.*pulumi config set --secret k3s-platform:token <value>/);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2-plain/);
  });

  it("YAML syntax error: file, line and column, no stack trace; unknown stack: the list of stacks", () => {
    const file = join(out, "broken.yaml");
    writeFileSync(file, "config:\n  k3s-platform:environment: dev\n  k3s-platform:nodes: [\n    {name: a\n");
    const r = render(["--config", file, "--out", join(out, "broken")]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `));
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    const unknown = render(["--stack", "nope", "--out", join(out, "nope")]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no stack "nope".*stacks here: dev, prod, staging/);
    assert.doesNotMatch(unknown.stderr, /ENOENT|^\s+at /m);
  });

  it("a YAML alias bomb (billion laughs) is a one-line error naming the file, not a stack trace or a hang", () => {
    const file = join(out, "bomb.yaml");
    const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
    for (const name of "bcdefg") levels.push(`${name}: &${name} [${Array(9).fill(`*${String.fromCharCode(name.charCodeAt(0) - 1)}`).join(", ")}]`);
    writeFileSync(file, `config:\n  k3s-platform:environment: dev\n${levels.map((l) => `  ${l}`).join("\n")}\n`);
    const t = Date.now();
    const r = render(["--config", file, "--out", join(out, "bomb")]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^render: ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .*YAML aliases expand past 100 nodes`, "m"));
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.ok(Date.now() - t < 30_000, "the bomb was refused before it expanded");
  });

  it("error paths name the node and suggest the nearest key", () => {
    const raw = sampleRaw("dev") as Record<string, unknown>;
    const nodes = structuredClone(raw.nodes) as Array<Record<string, unknown>>;
    nodes[1]!.role = "worker";
    const { tenants, ...rest } = raw;
    const dir = join(out, "typo");
    stackFile(dir, prefixed({ ...rest, nodes, tenant: tenants }));
    const r = render(["--stack", "t", "--out", join(dir, "out")], dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /k3s-platform:tenant: unknown config key \(did you mean tenants\?\)/);
    assert.match(r.stderr, /k3s-platform:nodes\[1\] \(dev-agent-1\)\.role: /);
  });

  it("counts only nodes, and a reused --out loses only what the previous render wrote", () => {
    const dir = join(out, "reuse");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "NOTES.md"), "mine");
    assert.equal(render(["--stack", "prod", "--out", dir]).status, 0);
    const r = render(["--stack", "dev", "--out", dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /for 2 nodes/);
    assert.equal(existsSync(join(dir, "prod-server-1")), false, "the previous render's nodes are gone");
    assert.equal(existsSync(join(dir, "encryption")), false, "dev has no encryption files");
    assert.ok(existsSync(join(dir, "dev-agent-1", "apply.sh")));
    assert.equal(readFileSync(join(dir, "NOTES.md"), "utf8"), "mine", "files render did not write stay");
  });
});
