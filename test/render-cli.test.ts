import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { REPO, sampleRaw } from "./helpers/samples";

const TSX = join(REPO, "node_modules", ".bin", "tsx");

function render(args: string[]) {
  const r = spawnSync(TSX, [join(REPO, "scripts", "render.ts"), ...args], { cwd: REPO, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run render", () => {
  const out = mkdtempSync(join(tmpdir(), "k3s-platform-render-"));
  after(() => rmSync(out, { recursive: true, force: true }));

  it("--stack prod writes every node's files, the manifests and the encryption files", () => {
    const r = render(["--stack", "prod", "--out", join(out, "prod")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /for 8 nodes/);
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
});
