import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResolvedConfig, StackInput } from "../../components/config/schema";
import type { NodeSecrets } from "../../components/config/secrets";
import { parseRelease, renderReleaseScript } from "../../components/k3s/release";
import { PREFLIGHT_SCRIPT } from "../../components/k3s/agent-preflight";
import { applyWithRelease, ClusterPlan, planCluster, runWithRelease } from "../../components/plan/node";
import { stdinScriptCommand } from "../../components/shell/root";
import { loadStackConfig } from "../../components/stack/load";
import { REPO } from "../helpers/samples";
import { applyCluster, batchStepOf, clusterEvents, installRuns, restarts, SshTarget, TestHost } from "./ssh";

/**
 * A channel stack end to end over SSH (issue 28): the channel moves between two `up`s, and a node
 * added after the move installs the release the cluster recorded at its first `up`, not the
 * channel's new one. The k3s-release step runs as the cluster component declares it (once per
 * stack, its stdout kept); every apply runs with the command built from that stdout. Download
 * mode: install-k3s.sh fetches the install script stand-in and the channel resolves through the
 * hosts' curl stand-in (root-overlay/usr/local/bin/curl), both from /var/lib/k3sp-stub/channels.
 * Agents go through their upgrade batches as on a pinned stack (issue 26): the batch steps and
 * each agent's preflight run with the recorded release, as the cluster component renders them.
 */

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");
const secrets: NodeSecrets = { token: "e2e-channel-token-7c2e" };

describe("e2e over SSH: a channel stack runs one release (issue 28)", function () {
  this.timeout(300_000);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-e2e-channel-"));
  let hosts: TestHost[];
  let targets: Map<string, SshTarget>;
  /** The k3s-release step's stdout, as the engine keeps it: taken once, in the first up. */
  let recorded: string | undefined;
  /** Node name → its host (one map for the whole run: the harness keeps the batch steps' provider state per map). */
  let byName: Map<string, SshTarget>;

  const stack = (agents: number, edit: (raw: StackInput) => void = () => {}): ResolvedConfig => {
    const raw: StackInput = {
      environment: "dev",
      k3s: { channel: "stable", firewall: { mode: "open" } },
      ssh: { user: "deploy" },
      nodes: hosts.slice(0, 1 + agents).map((h, i) => ({ name: i === 0 ? "ch-server-1" : `ch-agent-${i}`, host: h.address, nodeIp: h.address, role: i === 0 ? "server" : "agent", ssh: { hostKey: h.hostKey } })),
    };
    edit(raw);
    return loadStackConfig(raw);
  };
  const setChannel = async (release: string) => {
    for (const t of targets.values()) assert.equal((await t.run(`sudo -n sh -c 'mkdir -p /var/lib/k3sp-stub/channels && echo ${release} >/var/lib/k3sp-stub/channels/stable'`)).status, 0);
  };
  /** One `up`: the k3s-release step when the stack has none yet, then every node with the apply command from its stdout. */
  const up = async (config: ResolvedConfig) => {
    const plan: ClusterPlan = planCluster(config);
    if (recorded === undefined) {
      const first = plan.nodes[0]!;
      const r = await targets.get(first.node.host)!.run(stdinScriptCommand(first.sshUser), renderReleaseScript(config, first.node));
      assert.equal(r.status, 0, r.stderr);
      recorded = r.stdout;
    }
    const withRelease = {
      ...plan,
      nodes: plan.nodes.map((n) => ({
        ...n,
        commands: { ...n.commands, apply: applyWithRelease(n, recorded), ...(n.commands.preflight ? { preflight: runWithRelease(n, PREFLIGHT_SCRIPT, recorded) } : {}) },
      })),
    };
    for (const n of plan.nodes) byName.set(n.node.name, targets.get(n.node.host)!);
    return applyCluster(withRelease, byName, secrets, config, parseRelease(recorded));
  };
  const host = (i: number) => hosts[i]!;
  const binaryVersion = (h: TestHost) => readFileSync(join(h.upper, "var/lib/k3sp-stub/binary-version"), "utf8").trim();

  before(() => {
    execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" });
    execFileSync("bash", [HOSTS, "up", "4", dir], { stdio: "inherit" });
    hosts = JSON.parse(readFileSync(join(dir, "hosts.json"), "utf8")) as TestHost[];
    targets = new Map(hosts.map((h) => [h.address, new SshTarget(h, join(dir, "id_ed25519"))]));
    byName = new Map();
  });
  after(() => execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" }));

  it("first up: the channel resolves once on the first server; it installs exactly that release", async () => {
    await setChannel("v1.31.4+k3s1");
    const run = await up(stack(0));
    assert.deepEqual([...run.failures], []);
    assert.equal(parseRelease(recorded), "v1.31.4+k3s1");
    const [install] = installRuns(host(0));
    assert.equal(install!.env.INSTALL_K3S_VERSION, "v1.31.4+k3s1", "pinned to the recorded release, not left to the channel");
    // apply runs the install under env -i: its own K3S_PLATFORM_* variables never reach the script (nor the unit's env file).
    assert.deepEqual(Object.keys(install!.env).filter((k) => k.startsWith("K3S_PLATFORM")), []);
    assert.equal(binaryVersion(host(0)), "v1.31.4+k3s1");
  });

  it("the channel moves on; a config change and an agent added after the move: both on the recorded release, not the channel's", async () => {
    await setChannel("v1.32.1+k3s1");
    const run = await up(stack(1, (raw) => (raw.k3s!.clusterDomain = "other.local")));
    assert.deepEqual([...run.failures], []);
    assert.equal(binaryVersion(host(0)), "v1.31.4+k3s1", "the server stayed");
    assert.equal(installRuns(host(0)).length, 2, "the server re-installed for the config change");
    const [agent] = installRuns(host(1));
    assert.equal(agent!.env.INSTALL_K3S_VERSION, "v1.31.4+k3s1");
    assert.equal(binaryVersion(host(1)), "v1.31.4+k3s1", "the new agent runs the cluster's release, not v1.32.1");
    assert.match(run.runs.get("ch-agent-1")!.apply, /K3s v1\.31\.4\+k3s1 is running \(channel stable: the cluster's release\)/);
  });

  it("an agent-wide change restarts the running agents in batches of maxUnavailable, each cordoned and drained before its restart, as on a pinned stack (issue 26)", async () => {
    const agents = ["ch-agent-1", "ch-agent-2", "ch-agent-3"];
    const edit = (labels: boolean) => (raw: StackInput) => {
      raw.k3s!.clusterDomain = "other.local";
      raw.upgrade = { maxUnavailable: 1 };
      if (labels) for (const n of raw.nodes.filter((n) => n.role === "agent")) n.labels = { ...n.labels, "example.com/tier": "batch" };
    };
    // Two agents join (nothing to drain), one per batch.
    const joinedConfig = stack(3, edit(false));
    const joined = await up(joinedConfig);
    assert.deepEqual([...joined.failures], []);
    assert.match(joined.batchSteps.get(batchStepOf(joinedConfig, "ch-agent-2", "drain"))!, /upgrade\[ch-agent-2\]: not registered yet \(first join\): nothing to drain/);
    const since = Date.now() / 1000;
    const before = hosts.slice(0, 4).map((h) => installRuns(h).length);
    const changed = stack(3, edit(true));
    const run = await up(changed);
    assert.deepEqual([...run.failures], []);
    assert.deepEqual(hosts.slice(0, 4).map((h, i) => installRuns(h).length - before[i]!), [0, 1, 1, 1], "every agent re-installed once; the server not");
    const events = clusterEvents(dir).filter((e) => e.at >= since);
    const at = (event: string, node: string) => events.find((e) => e.event === event && e.node === node)?.at;
    const windows = agents.map((a, i): [number, number] => {
      const restarted = restarts(host(i + 1), "k3s-agent").at(-1)!;
      const [cordon, drained, uncordon] = [at("cordon", a), at("drained", a), at("uncordon", a)];
      assert.ok(restarted >= since, `${a} restarted`);
      assert.ok(cordon! <= drained! && drained! < restarted && restarted < uncordon!, `${a}: cordon → drained → restart → uncordon ${JSON.stringify({ cordon, drained, restarted, uncordon })}`);
      assert.match(run.batchSteps.get(batchStepOf(changed, a, "drain"))!, new RegExp(`upgrade\\[${a}\\]: its K3s inputs changed: cordon and drain`));
      assert.match(run.batchSteps.get(batchStepOf(changed, a, "uncordon"))!, new RegExp(`upgrade\\[${a}\\]: Ready with kubelet v1\\.31\\.4\\+k3s1`));
      return [cordon!, uncordon!];
    });
    for (let i = 1; i < windows.length; i++) assert.ok(windows[i - 1]![1] <= windows[i]![0], `batch ${i + 1} starts after batch ${i} is uncordoned: ${JSON.stringify(windows)}`);
    assert.equal(restarts(host(0), "k3s").filter((t) => t >= since).length, 0, "the server did not restart");
  });

  it("a node that runs another release is refused in preflight, naming the host and both releases; its batch cordons nothing", async () => {
    const t = targets.get(host(1).address)!;
    assert.equal((await t.run("sudo -n sh -c 'echo v1.32.1+k3s1 >/var/lib/k3sp-stub/binary-version'")).status, 0);
    const since = Date.now() / 1000;
    const installs = installRuns(host(1)).length;
    const run = await up(stack(1, (raw) => (raw.k3s!.clusterDomain = "third.local")));
    assert.ok(run.failures.get("ch-agent-1")?.includes(`preflight on host ${host(1).address}: it runs K3s 'v1.32.1+k3s1', the cluster's release (channel stable, recorded at the first up) is v1.31.4+k3s1`), run.failures.get("ch-agent-1"));
    assert.equal(installRuns(host(1)).length, installs, "no install ran");
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= since && e.node === "ch-agent-1" && /cordon|drain/.test(e.event)), [], "never cordoned");
  });
});
