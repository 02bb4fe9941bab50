import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { clusterConfigFindings } from "../../tools/pack-check";
import { collectGraph, evaluatePack } from "../helpers/policy-harness";
import { REPO, sampleRaw } from "../helpers/samples";
import { loadStackConfig } from "../../components/stack/load";
import { readStackFile } from "../../components/config/stack-file";
import { TYPES } from "../../components/names";

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

  describe("usage (one parser: tools/cli.ts)", () => {
    it("--help and -h print the usage and every option, exit 0, and write nothing", () => {
      for (const flag of ["--help", "-h"]) {
        const r = render([flag, "--out", join(out, "help")]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^usage: npm run render -- /);
        for (const option of ["--stack <env>", "--config <file>", "--out <dir>", "-h, --help"]) assert.ok(r.stdout.includes(option), `${flag}: ${option}`);
        assert.equal(r.stderr, "");
        assert.equal(existsSync(join(out, "help")), false);
      }
    });

    const file = join(REPO, "Pulumi.dev.yaml");
    const misuses: Array<[string, string[], RegExp]> = [
      ["a positional argument", ["prod", "--out", "x"], /unexpected argument "prod": this command takes only options/],
      ["an unknown option, with the nearest one", ["--stak", "prod", "--out", "x"], /unknown option --stak \(did you mean --stack\?\)/],
      ["an option without its value", ["--out", "x", "--stack"], /--stack needs a value/],
      ["an option given twice", ["--stack", "dev", "--stack", "prod", "--out", "x"], /--stack is given more than once/],
      ["--stack together with --config", ["--stack", "prod", "--config", file, "--out", "x"], /give --stack or --config, not both/],
      ["neither --stack nor --config", ["--out", "x"], /give --stack <env> or --config <file>/],
      ["no --out", ["--stack", "dev"], /--out <dir> is required/],
      ["--config <dir>", ["--config", join(REPO, "tools"), "--out", "x"], /--config .*tools is a directory; give a file/],
      ["--config that does not exist", ["--config", join(out, "missing.yaml"), "--out", "x"], /--config .*missing\.yaml does not exist/],
      ["--out <file>", ["--stack", "dev", "--out", join(REPO, "package.json")], /--out .*package\.json is a file; give a directory/],
    ];
    for (const [what, args, message] of misuses) {
      it(`${what}: one line and the usage on stderr, exit 2, no stack trace`, () => {
        const r = render(args, out);
        assert.equal(r.status, 2, r.stderr);
        const lines = r.stderr.trimEnd().split("\n");
        assert.match(lines[0]!, new RegExp(`^render: ${message.source}$`));
        assert.match(lines[1]!, /^usage: npm run render -- /);
        assert.ok(lines.slice(1).every((l) => /^(usage: | {7}npm run render|\(--help)/.test(l)), r.stderr);
        assert.doesNotMatch(r.stderr, /^\s+at /m);
        assert.equal(r.stdout, "");
        assert.equal(existsSync(join(out, "x")), false);
      });
    }
  });

  describe("what render does not check", () => {
    // The prod sample with its third server made an agent: valid config, two servers.
    const twoServers = join(out, "prod-2-servers.yaml");
    before(() => {
      const doc = parse(readFileSync(join(REPO, "Pulumi.prod.yaml"), "utf8")) as { config: Record<string, Array<{ role: string }>> };
      const servers = doc.config["k3s-platform:nodes"]!.filter((n) => n.role === "server");
      servers[servers.length - 1]!.role = "agent";
      writeFileSync(twoServers, stringify(doc));
    });

    it("a 2-server prod config renders (exit 0) and warns with the pack's prod-server-quorum rule as mandatory", () => {
      const r = render(["--config", twoServers, "--out", join(out, "prod-2")]);
      assert.equal(r.status, 0, r.stderr);
      const quorum = r.stderr.split("\n").filter((l) => l.startsWith("warning: policy prod-server-quorum (preview with the policy pack refuses this): "));
      assert.equal(quorum.length, 2, r.stderr); // fewer than minServers (3), and an even count
      assert.ok(quorum.some((l) => l.includes("2 server")), r.stderr);
      assert.match(r.stderr, /^warning: policy odd-server-count \(advisory: preview reports it\): /m, "prod.json keeps odd-server-count advisory");
    });

    it("the unchanged prod sample gets no policy warning; every render names what preview checks", () => {
      const r = render(["--stack", "prod", "--out", join(out, "prod-ok")]);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /warning: policy /);
      const line = r.stdout.split("\n").find((l) => l.startsWith("not checked by render: "));
      assert.ok(line, r.stdout);
      assert.match(line, /policy pack/);
      assert.match(line, /day-2 operations/);
      assert.match(line, /pulumi preview --stack prod --policy-pack policies --policy-pack-config policies\/config\/prod\.json/);
    });

    it("its warnings are the pack's own verdict on the K3sCluster the program registers (same policies, messages and levels)", async () => {
      const config = loadStackConfig(readStackFile(twoServers).raw);
      const graph = await collectGraph(config, "prod");
      const cluster = graph.find((g) => g.type === TYPES.cluster)!;
      const pack = (await evaluatePack(graph, "prod")).filter((v) => v.urn === cluster.urn).map(({ policy, level, message }) => ({ policy, level, message }));
      assert.ok(pack.some((v) => v.policy === "prod-server-quorum"), "the pack refuses two prod servers");
      assert.deepEqual(await clusterConfigFindings(config), pack);
    });
  });

  describe("config errors in one round", () => {
    it("a schema error and a missing secret are reported together (exit 1)", () => {
      const raw = sampleRaw("dev") as Record<string, unknown> & { k3s: Record<string, unknown>; nodes: Array<Record<string, unknown>> };
      const nodes = structuredClone(raw.nodes);
      nodes[1]!.role = "worker";
      const dir = join(out, "one-round");
      stackFile(dir, prefixed({ ...raw, nodes, k3s: { ...raw.k3s, datastore: { type: "external" } } }));
      const r = render(["--stack", "t", "--out", join(dir, "out")], dir);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /k3s-platform:nodes\[1\] \(dev-agent-1\)\.role: /);
      assert.match(r.stderr, /k3s-platform:datastoreEndpoint: required \(as a secret/);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
    });
  });
});
