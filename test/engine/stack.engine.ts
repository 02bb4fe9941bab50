import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { StackInput } from "../../components/config/schema";
import { K3S_IMAGES_DIR } from "../../components/k3s/install";
import { engineEnv, projectEngineMissing, projectStack } from "../../tools/harness/engine";
import { REPO } from "../helpers/samples";
import { clusterEvents, TestHost } from "../e2e/ssh";

/**
 * `npm run test:engine`: this repository's program as users run it: `pulumi preview` / `up` of
 * the project through the real CLI and the Node.js language host (which loads index.ts with
 * Pulumi.yaml's runtime options), the real command and random providers and the policy pack, over
 * SSH to the netns test hosts (test/e2e/hosts; K3s is their stand-in). The Go module proxy serves
 * neither the language host nor the command and random providers, so this suite runs only where
 * all three are on PATH (or in the engine cache) and otherwise says it skipped and why.
 *
 * What the hosts did is read on the hosts: sshd's log (one "Accepted publickey" per SSH login, the
 * command provider logs in once per remote command) and the stand-ins' calls.log.
 */

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");
const TOKEN = "engine-test-token-8c1e5a7f3d";
/** Host i's role; the last host joins as a new agent in a later up. */
const ROLES = ["server", "server", "server", "agent", "agent", "agent"] as const;
/** A release that has secrets-encryption-provider (v1.31.8+: k3s-io/k3s#12049, config/flags.ts). */
const VERSION = "v1.31.8+k3s1";
/** A non-default air-gap images directory: install-k3s.sh copies its tarballs to K3S_IMAGES_DIR. */
const IMAGES_DIR = "/opt/k3s/images";
const TARBALL = "k3s-airgap-images-amd64.tar.zst";

describe("test:engine — the project through the real CLI, language host and providers over SSH", function () {
  this.timeout(900_000);
  const missing = projectEngineMissing(["command", "random"]);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-engine-"));
  const hostsDir = join(dir, "hosts");
  let hosts: TestHost[] = [];
  /** How many hosts are the cluster's nodes (the rest wait to join). */
  let members = ROLES.length - 1;
  let stack: Stack;
  let events: EngineEvent[] = [];
  const onEvent = (e: EngineEvent) => events.push(e);
  /** Resources the engine reported with an operation other than `same`, as "op name". */
  const changed = (opts: { components?: boolean } = { components: true }) =>
    events
      // `read`: the cluster's StackReference to its own stack (the last up's outputs, for the pack's upgrade-path check) is read on every run and changes nothing.
      .filter((e) => e.resOutputsEvent && e.resOutputsEvent.metadata.op !== "same" && e.resOutputsEvent.metadata.op !== "read")
      // Our component resources (K3sCluster, K3sNode) run nothing: they show `update` when their inputs change.
      .filter((e) => opts.components || !e.resOutputsEvent!.metadata.type.startsWith("k3s-platform:"))
      .map((e) => `${e.resOutputsEvent!.metadata.op} ${e.resOutputsEvent!.metadata.urn.split("::").pop()}`);

  const logins = (i: number) => (readFileSync(join(hostsDir, `h${i + 1}`, "sshd.log"), "utf8").match(/Accepted publickey for deploy/g) ?? []).length;
  const allLogins = () => hosts.map((_, i) => logins(i));
  const calls = (host: TestHost) => {
    const log = join(host.upper, "var/log/k3sp/calls.log");
    return existsSync(log) ? readFileSync(log, "utf8") : "";
  };

  const raw = (edit: (r: StackInput) => void = () => {}): StackInput => {
    const r = {
      environment: "dev",
      k3s: { version: VERSION, hardening: "cis", airgap: { enabled: true, imagesDir: IMAGES_DIR }, firewall: { mode: "open" } },
      encryption: { enabled: true, provider: "secretbox", rotation: 1 },
      ssh: { user: "deploy" },
      nodes: hosts.slice(0, members).map((h, i) => ({ name: `eng-${ROLES[i]}-${i + 1}`, host: h.address, nodeIp: h.address, role: ROLES[i]!, ssh: { hostKey: h.hostKey } })),
    } as StackInput;
    edit(r);
    return r;
  };
  /** The stack's config as a user's Pulumi.dev.yaml holds it: values structured, token and key secret. */
  const withConfig = async (input: StackInput) =>
    (stack = await projectStack(
      join(dir, "engine"),
      "dev",
      Object.fromEntries(Object.entries(input).map(([k, v]) => [`k3s-platform:${k}`, v])),
      { "k3s-platform:token": TOKEN, "k3s-platform:sshPrivateKey": readFileSync(join(hostsDir, "id_ed25519"), "utf8") },
    ));

  before(function () {
    if (missing) {
      console.log(`    SKIPPED test:engine: ${missing}. Build them outside the repository from their public sources to run this suite.`);
      this.skip();
    }
    execFileSync("bash", [HOSTS, "up", String(ROLES.length), hostsDir], { stdio: "inherit" });
    hosts = JSON.parse(readFileSync(join(hostsDir, "hosts.json"), "utf8")) as TestHost[];
    for (const h of hosts) {
      // Pre-staged as an air-gapped host has them: the binary (its stand-in reports VERSION) and the images.
      writeFileSync(join(h.upper, "var/lib/k3sp-stub/binary-version"), `${VERSION}\n`);
      mkdirSync(join(h.upper, IMAGES_DIR), { recursive: true });
      writeFileSync(join(h.upper, IMAGES_DIR, TARBALL), "stand-in image tarball\n");
    }
  });
  after(() => {
    if (hosts.length) execFileSync("bash", [HOSTS, "down", hostsDir], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  });

  it("preview with the policy pack passes; up converges; air-gap images reach every host; nothing rotates on the first up", async () => {
    await withConfig(raw());
    const pre = await stack.preview({ policyPacks: [join(REPO, "policies")], policyPackConfigs: [join(REPO, "policies", "config", "dev.json")] });
    assert.ok((pre.changeSummary.create ?? 0) > ROLES.length * 5, JSON.stringify(pre.changeSummary));
    const up = await stack.up({ onEvent });
    assert.equal(up.summary.result, "succeeded");
    for (const [i, h] of hosts.slice(0, members).entries()) {
      assert.ok(logins(i) > 0, `host ${i + 1}: no SSH login`);
      // The CLI's compile path once sent K3S_IMAGES=undefined here (issue 21).
      assert.equal(readFileSync(join(h.upper, K3S_IMAGES_DIR, TARBALL), "utf8"), "stand-in image tarball\n", `host ${i + 1}: ${TARBALL} not copied to ${K3S_IMAGES_DIR}`);
      const staged = readdirSync(join(h.upper, "var/lib/k3s-platform/staging"));
      assert.ok(staged.includes("install-k3s.sh"), `host ${i + 1}: ${staged.join(" ")}`);
      assert.doesNotMatch(readFileSync(join(h.upper, "var/lib/k3s-platform/staging/install-k3s.sh"), "utf8"), /\bundefined\b/);
      // A new cluster has no keys to rotate: encryption.rotation set at creation is recorded, not run.
      assert.doesNotMatch(calls(h), /rotate-keys/, `host ${i + 1} rotated keys on the cluster's first up`);
    }
  });

  it("a second up changes nothing and logs in to no host", async () => {
    const before = allLogins();
    events = [];
    await withConfig(raw());
    await stack.up({ onEvent });
    assert.deepEqual(changed(), []);
    assert.deepEqual(allLogins(), before);
    assert.equal(logins(ROLES.length - 1), 0, "the host that is not a node yet was logged in to");
  });

  it("the pack reads the release the last up deployed: a skipped minor in preview is reported by upgrade-path-allowed (issue 24)", async () => {
    // The engine hands a stack policy each resource's outputs (K3sCluster registers its config as
    // one) and the StackReference's read of this stack's last outputs (k3sVersion: VERSION).
    // A release validation accepts (secretbox needs v1.31.8+, so no downgrade on this line), two minors up.
    await withConfig(raw((r) => (r.k3s = { ...r.k3s!, version: "v1.33.7+k3s3" })));
    const seen: EngineEvent[] = [];
    await stack.preview({ policyPacks: [join(REPO, "policies")], policyPackConfigs: [join(REPO, "policies", "config", "dev.json")], onEvent: (e) => seen.push(e) });
    const reported = seen.filter((e) => e.policyEvent?.policyName === "upgrade-path-allowed").map((e) => e.policyEvent!.message);
    assert.equal(reported.length, 1, JSON.stringify(reported));
    assert.match(reported[0]!, new RegExp(`the last up deployed ${VERSION.replace(/[.+]/g, "\\$&")}; .*skips 1 minor version\\(s\\); upgrade to v1\\.32 first`));
    await withConfig(raw());
  });

  it("one agent changed: only that agent's steps and its batch's drain and uncordon run (on the first server: it is drained before its K3s restarts, issue 26); no other host is logged in to", async () => {
    const before = allLogins();
    const since = Date.now() / 1000;
    await withConfig(raw((r) => (r.nodes![4]!.labels = { "example.com/ssd": "true" })));
    events = [];
    await stack.up({ onEvent });
    const ops = changed({ components: false });
    const batchSteps = ops.filter((c) => /agent-batch-\d+-(drain|uncordon)$/.test(c));
    // A trigger change replaces a command (create-replacement, replace, delete-replaced): one batch's two steps.
    assert.deepEqual([...new Set(batchSteps.map((c) => c.split("-agent-batch-")[1]))].sort(), ["2-drain", "2-uncordon"], ops.join("\n"));
    assert.ok(ops.length > 2 && ops.every((c) => c.includes("eng-agent-5") || batchSteps.includes(c)), ops.join("\n"));
    const after = allLogins();
    assert.ok(after[4]! > before[4]!, "the changed agent's host was not logged in to");
    assert.ok(after[0]! > before[0]!, "the first server (its batch steps) was not logged in to");
    assert.deepEqual([...after.slice(1, 4), after[5]], [...before.slice(1, 4), before[5]], "another host was logged in to");
    // The restart (its labels are a K3s input) came between the cordon and drain and the uncordon.
    const restartedAt = readFileSync(join(hosts[4]!.upper, "var/lib/k3sp-stub/restarts/k3s-agent"), "utf8").split("\n").filter(Boolean).map(Number).at(-1)!;
    assert.ok(restartedAt >= since, "eng-agent-5's K3s did not restart");
    const cluster = clusterEvents(hostsDir).filter((e) => e.at >= since && e.node === "eng-agent-5");
    const at = (event: string) => cluster.find((e) => e.event === event)?.at ?? NaN;
    assert.ok(at("drained") < restartedAt && at("uncordon") > restartedAt, JSON.stringify(cluster));
    assert.deepEqual(clusterEvents(hostsDir).filter((e) => e.at >= since && e.node !== "eng-agent-5" && /cordon|drain/.test(e.event)), [], "another node was cordoned");
  });

  it("an SSH setting changed: the steps update, none restarts K3s or rotates", async () => {
    const before = hosts.map(calls);
    await withConfig(raw((r) => {
      r.nodes![4]!.labels = { "example.com/ssd": "true" };
      r.ssh = { ...r.ssh, perDialTimeout: 20 };
    }));
    events = [];
    await stack.up({ onEvent });
    assert.ok(changed().some((c) => c.startsWith("update ")), `the connection change updated nothing:\n${changed().join("\n")}`);
    assert.deepEqual(changed().filter((c) => !c.startsWith("update ")), []);
    for (const [i, h] of hosts.entries()) {
      const added = calls(h).slice(before[i]!.length);
      assert.doesNotMatch(added, /rotate-keys|systemctl (re)?start|systemctl stop|k3s-install/, `host ${i + 1} re-ran a lifecycle step:\n${added}`);
    }
  });

  it("one host down, then back: the rest converge, then all", async () => {
    const callsBefore = hosts.map(calls);
    const added = (i: number) => calls(hosts[i]!).slice(callsBefore[i]!.length);
    execFileSync("bash", [HOSTS, "stop", "4", hostsDir]);
    try {
      const edited = raw((r) => {
        r.nodes![4]!.labels = { "example.com/ssd": "true" };
        r.ssh = { ...r.ssh, perDialTimeout: 20 };
        r.k3s = { ...r.k3s!, kubelet: { maxPods: 150 } };
      });
      await withConfig(edited);
      await assert.rejects(stack.up({ onEvent }));
      // The kubelet setting restarts every node: the servers went through (one at a time); the agents
      // go in batches of one (upgrade.maxUnavailable 10%), and the batch after the failed one waits.
      for (const i of [0, 1, 2]) assert.match(added(i), /systemctl start --no-block k3s\n/, `server ${i + 1} did not converge while host 4 was down`);
      assert.doesNotMatch(added(4), /systemctl start/, "the batch after the failed agent's did not wait");
    } finally {
      execFileSync("bash", [HOSTS, "start", "4", hostsDir]);
    }
    const up = await stack.up({ onEvent });
    assert.equal(up.summary.result, "succeeded");
    events = [];
    await stack.up({ onEvent });
    assert.deepEqual(changed(), [], "a third up still had work to do");
  });

  it("a new agent and a new rotation in one up: keys rotate, and no server restarts before the agent has joined", async () => {
    const restarts = (h: TestHost, unit: string) => {
      const f = join(h.upper, "var/lib/k3sp-stub/restarts", unit);
      return existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean).map(Number) : [];
    };
    const servers = hosts.slice(0, 3);
    const before = servers.map((h) => restarts(h, "k3s").length);
    const rotatedBefore = servers.map((h) => (calls(h).match(/rotate-keys/g) ?? []).length);
    members = ROLES.length;
    await withConfig(raw((r) => {
      r.nodes![4]!.labels = { "example.com/ssd": "true" };
      r.ssh = { ...r.ssh, perDialTimeout: 20 };
      r.k3s = { ...r.k3s!, kubelet: { maxPods: 150 } };
      r.encryption = { ...r.encryption!, rotation: 2 };
    }));
    events = [];
    const up = await stack.up({ onEvent });
    assert.equal(up.summary.result, "succeeded");
    const joined = restarts(hosts[ROLES.length - 1]!, "k3s-agent");
    assert.ok(joined.length > 0, "the new agent never started");
    assert.ok(servers.some((h, i) => (calls(h).match(/rotate-keys/g) ?? []).length > rotatedBefore[i]!), "no server rotated keys for the new value");
    const serverRestarts = servers.flatMap((h, i) => restarts(h, "k3s").slice(before[i]!));
    assert.ok(serverRestarts.length >= servers.length, `the rotation restarted ${serverRestarts.length} servers`);
    for (const t of serverRestarts) assert.ok(t > joined[0]!, `a server restarted at ${t}, before the new agent joined at ${joined[0]}`);
  });

  it("the state, exported as users export it, holds no secret in plaintext (IDs included)", async () => {
    const env = { ...process.env, ...engineEnv(join(dir, "engine")) };
    const cwd = stack.workspace.workDir;
    const maxBuffer = 256 * 1024 * 1024;
    const plain = execFileSync("pulumi", ["stack", "export", "--stack", "dev"], { cwd, env, encoding: "utf8", maxBuffer });
    // Every secret the state holds, decrypted: none may appear in the plain export.
    const decrypted = JSON.parse(execFileSync("pulumi", ["stack", "export", "--stack", "dev", "--show-secrets"], { cwd, env, encoding: "utf8", maxBuffer })) as unknown;
    const secrets = new Set<string>([TOKEN, readFileSync(join(hostsDir, "id_ed25519"), "utf8").split("\n")[1]!]);
    // Single-line secret values (generated passwords, keys, salts): multi-line secret documents
    // share lines with plain scripts, and what they hold comes from these values anyway.
    const collect = (v: unknown, inSecret: boolean): void => {
      if (typeof v === "string") {
        if (inSecret && v.length >= 12 && !v.includes("\n")) secrets.add(v);
      } else if (Array.isArray(v)) v.forEach((x) => collect(x, inSecret));
      else if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (o["4dabf18193072939515e22adb298388d"] === "1b47061264138c4ac30d75fd1eb44270" && typeof o.plaintext === "string") collect(JSON.parse(o.plaintext), true);
        else for (const x of Object.values(o)) collect(x, inSecret);
      }
    };
    collect(decrypted, false);
    // Values the stack file holds in plaintext on purpose (host keys, addresses) are not secrets,
    // even where a provider marks a whole input secret (@pulumi/command's connection).
    const plainConfig = new Set<string>();
    const strings = (v: unknown): void => (typeof v === "string" ? void plainConfig.add(v) : v && typeof v === "object" ? Object.values(v).forEach(strings) : undefined);
    strings(raw());
    for (const v of plainConfig) if (v !== TOKEN) secrets.delete(v);
    assert.ok(secrets.size > 2, "the decrypted export holds no secret beyond the two the test set");
    const leaked = [...secrets].filter((s) => plain.includes(s));
    assert.deepEqual(leaked.map((s) => `${s.slice(0, 6)}… (${s.length} chars)`), [], "secret values in the plain export");
  });

  it("protect (issue 23): pulumi destroy refuses and deletes nothing while protect is on; protect: false applied by an up, then destroy uninstalls every node (agents first, the first server last) and leaves nothing", async () => {
    const resources = async () => ((await stack.exportStack()).deployment as { resources?: unknown[] }).resources?.length ?? 0;
    const uninstalls = (i: number) =>
      calls(hosts[i]!)
        .split("\n")
        .filter((l) => /k3s(-agent)?-uninstall\.sh$/.test(l))
        .map((l) => Number(l.split(" ")[0]));
    // The previous test's config, plus the two settings: only the destroy steps are new.
    const config = (extra: Partial<StackInput>) =>
      raw((r) => {
        r.nodes![4]!.labels = { "example.com/ssd": "true" };
        r.ssh = { ...r.ssh, perDialTimeout: 20 };
        r.k3s = { ...r.k3s!, kubelet: { maxPods: 150 } };
        r.encryption = { ...r.encryption!, rotation: 2 };
        Object.assign(r, extra);
      });
    await withConfig(config({ protect: true, uninstallOnDestroy: true }));
    await stack.up({ onEvent });
    const before = await resources();
    const callsBefore = hosts.map(calls);
    await assert.rejects(stack.destroy(), /protected/);
    assert.equal(await resources(), before, "nothing was deleted");
    assert.deepEqual(hosts.map(calls), callsBefore, "nothing ran on a host");

    await withConfig(config({ protect: false, uninstallOnDestroy: true }));
    await stack.up({ onEvent });
    assert.equal((await stack.destroy()).summary.result, "succeeded");
    const nodes = hosts.slice(0, members).map((_, i) => ({ role: ROLES[i], at: uninstalls(i) }));
    for (const [i, n] of nodes.entries()) assert.equal(n.at.length, 1, `host ${i + 1} (${n.role}) uninstalled once`);
    const agents = nodes.filter((n) => n.role === "agent").map((n) => n.at[0]!);
    const servers = nodes.filter((n) => n.role === "server").map((n) => n.at[0]!);
    assert.ok(Math.max(...agents) < Math.min(...servers), "agents first");
    assert.equal(Math.max(...servers), nodes[0]!.at[0], "the first server last");
    for (const [i, h] of hosts.slice(0, members).entries()) {
      for (const unit of ["k3s", "k3s-agent"]) assert.ok(!existsSync(join(h.upper, "var/lib/k3sp-stub/active", unit)), `host ${i + 1}: ${unit} still active`);
    }
    assert.equal(await resources(), 0, "the stack is empty");
  });
});
