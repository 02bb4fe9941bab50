import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResolvedConfig, StackInput } from "../../components/config/schema";
import { loadStackConfig } from "../../components/stack/load";
import { STAGING_DIR } from "../../components/k3s/install";
import { PATHS } from "../../components/k3s/paths";
import type { NodeSecrets } from "../../components/config/secrets";
import { ClusterPlan, planCluster } from "../../components/plan/node";
import { REPO } from "../helpers/samples";
import { renderBundle } from "../../components/node/bundle";
import { sha256 } from "../../components/plan/hash";
import { parse } from "yaml";
import { INPUTS_ANNOTATION, SECRET_INPUTS_ANNOTATION } from "../../components/upgrade/render";
import { applyCluster, batchStepOf, clusterEvents, clusterSteps, installRuns, restarts, SshTarget, TestHost } from "./ssh";

/**
 * End to end over real SSH: four test hosts (network namespaces with sshd, see hosts/), a cluster
 * of 2 servers and 2 agents, and the exact commands and files the K3sNode components send.
 * K3s itself is a stand-in that records its arguments (hosts/root-overlay): this checks our
 * orchestration and generated scripts on real hosts, not K3s.
 */

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");
const TOKEN = "e2e-cluster-token-5f1d0c3a9b";
const secrets: NodeSecrets = { token: TOKEN };

type Edit = (raw: StackInput) => void;

/** The e2e stack on the given hosts, with every edit applied so far (each test builds on the last). */
function stack(hosts: TestHost[], edits: Edit[]): ResolvedConfig {
  const roles = ["server", "server", "agent", "agent"] as const;
  const names = ["e2e-server-1", "e2e-server-2", "e2e-agent-1", "e2e-agent-2"];
  const raw: StackInput = {
    environment: "dev",
    k3s: { version: "v1.31.4+k3s1", hardening: "cis", airgap: { enabled: true }, firewall: { mode: "open" } },
    // Both agents in one batch until the upgrade tests narrow it to 1.
    upgrade: { maxUnavailable: 2 },
    ssh: { user: "deploy" },
    nodes: hosts.map((h, i) => ({
      name: names[i]!,
      host: h.address,
      nodeIp: h.address,
      role: roles[i]!,
      labels: (roles[i] === "agent" ? { "node-role.kubernetes.io/worker": "true" } : {}) as Record<string, string>,
      ssh: { hostKey: h.hostKey },
    })),
  };
  for (const edit of edits) edit(raw);
  return loadStackConfig(raw);
}

const read = (host: TestHost, path: string) => readFileSync(join(host.upper, path), "utf8");

describe("e2e over SSH on test hosts", function () {
  this.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-e2e-"));
  let hosts: TestHost[];
  let targets: Map<string, SshTarget>;
  let plan: ClusterPlan;
  const edits: Edit[] = [];
  /** The config each plan was made from: applyCluster models the agent batches from it. */
  const configs = new WeakMap<ClusterPlan, ResolvedConfig>();
  const planOf = (config: ResolvedConfig) => {
    const p = planCluster(config);
    configs.set(p, config);
    return p;
  };
  /** Applies one more config change and returns the new plan. */
  const change = (edit: Edit) => {
    edits.push(edit);
    return planOf(stack(hosts, edits));
  };
  const applyAll = (p: ClusterPlan) => applyCluster(p, targets, secrets, configs.get(p) ?? configs.get(plan));
  /** The name of the upgrade-batches step (OPERATIONS) that drains or uncordons `agent`'s batch in plan `p`. */
  const batchStep = (p: ClusterPlan, agent: string, which: "drain" | "uncordon") => batchStepOf(configs.get(p)!, agent, which);
  const byName = (name: string) => hosts.find((h) => h.address === plan.nodes.find((n) => n.node.name === name)!.node.host)!;
  /** The plan of `config` as an earlier k3s-platform rendered its NO_PROXY line (`export NO_PROXY=…` → `edit` of it). */
  const legacyNoProxy = (config: ResolvedConfig, edit: (line: string) => string): ClusterPlan => {
    const planned = planOf(config);
    const legacy: ClusterPlan = {
      ...planned,
      nodes: planned.nodes.map((n) => {
        const files = n.files.map((f) => (f.name === "install-k3s.sh" ? { ...f, content: f.content.replace(/^export NO_PROXY=.*$/m, edit) } : f));
        assert.notDeepEqual(files, n.files, "the legacy NO_PROXY is rendered");
        const content = renderBundle(`node ${n.node.name} (${n.role})`, files);
        return { ...n, files, bundle: { ...n.bundle, content, sha256: sha256(content) } };
      }),
    };
    configs.set(legacy, config);
    return legacy;
  };

  before(() => {
    execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" });
    execFileSync("bash", [HOSTS, "up", "4", dir], { stdio: "inherit" });
    hosts = JSON.parse(readFileSync(join(dir, "hosts.json"), "utf8")) as TestHost[];
    plan = planOf(stack(hosts, edits));
    targets = new Map(plan.nodes.map((n) => [n.node.name, new SshTarget(hosts.find((h) => h.address === n.node.host)!, join(dir, "id_ed25519"))]));
  });
  after(() => execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" }));

  it("first run: files and OS prep land on every host; servers install one at a time, then agents", async () => {
    const result = await applyAll(plan);
    assert.deepEqual([...result.failures], []);
    for (const node of plan.nodes) {
      const host = byName(node.node.name);
      const config = node.files.find((f) => f.name === "config.yaml")!.content;
      assert.equal(read(host, PATHS.configYaml), config, `${node.node.name} config.yaml`);
      const st = statSync(join(host.upper, PATHS.configYaml));
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.uid, 0, "installed by root through sudo");
      const dropIn = statSync(join(host.upper, PATHS.secretDropIn));
      assert.equal(dropIn.mode & 0o777, 0o600);
      assert.match(read(host, PATHS.secretDropIn), new RegExp(`token: ${TOKEN}`));
      assert.ok(!existsSync(join(host.upper, `${PATHS.secretDropIn}.tmp`)), "the secrets write leaves no temporary file");
      assert.equal(read(host, `${STAGING_DIR}/${node.bundle.name}`), node.bundle.content, "one bundle per node");
      for (const f of node.files) assert.equal(read(host, `${STAGING_DIR}/${f.name}`), f.content, `unpacked ${f.name}`);
      const staging = statSync(join(host.upper, STAGING_DIR));
      assert.equal(staging.uid, 2000, "staging belongs to the SSH user so SFTP can write");
      assert.equal(read(host, "etc/modules-load.d/k3s-platform.conf"), "br_netfilter\noverlay\nvxlan\n");
      assert.equal(read(host, "var/lib/k3sp-stub/sysctl/vm.overcommit_memory").trim(), "1", "CIS sysctl applied");
      assert.match(result.runs.get(node.node.name)!.osPrep, /done, [1-9]\d* change\(s\)/);

      const runs = installRuns(host);
      assert.equal(runs.length, 1, `${node.node.name} installed once`);
      assert.equal(runs[0]!.env.INSTALL_K3S_EXEC, node.node.role);
      assert.equal(runs[0]!.env.INSTALL_K3S_VERSION, "v1.31.4+k3s1");
      assert.equal(runs[0]!.env.INSTALL_K3S_SKIP_DOWNLOAD, "true");
      assert.equal(runs[0]!.env.INSTALL_K3S_BIN_DIR, "/usr/local/bin");
      // apply starts K3s itself: the script's own start, which rewrites iptables first, never runs (issue 28).
      assert.equal(runs[0]!.startedK3s, false, `${node.node.name}: the install script did not start K3s`);
      const unit = node.node.role === "server" ? "k3s" : "k3s-agent";
      assert.equal(restarts(host, unit).length, 1, `${node.node.name}: ${unit} started once`);
      assert.ok(existsSync(join(host.upper, `etc/systemd/system/${unit}.service.env`)), "the install script wrote the unit's env file");
      // The bundle runs with umask 077; the install script writes the unit with tee under the
      // caller's umask: apply runs it under 022 (issue 28), and the env file is chmod 0600 by the script.
      assert.equal(statSync(join(host.upper, `etc/systemd/system/${unit}.service`)).mode & 0o777, 0o644, `${unit}.service mode`);
      assert.equal(statSync(join(host.upper, `etc/systemd/system/${unit}.service.env`)).mode & 0o777, 0o600, `${unit}.service.env mode`);
    }
    const [s1, s2, a1, a2] = ["e2e-server-1", "e2e-server-2", "e2e-agent-1", "e2e-agent-2"].map((n) => installRuns(byName(n))[0]!);
    assert.ok(s1!.end <= s2!.start, "the second server installs after the first finished");
    for (const agent of [a1!, a2!]) assert.ok(s2!.end <= agent.start, "agents install after every server");
    // Parallel means the agents' whole step sequences overlap (neither waits for the other); the
    // installs themselves last ~0.3 s, too short to overlap reliably on a loaded machine.
    const [r1, r2] = ["e2e-agent-1", "e2e-agent-2"].map((n) => result.runs.get(n)!);
    assert.ok(r1!.started < r2!.finished && r2!.started < r1!.finished, "agents apply in parallel");
    assert.ok(existsSync(join(byName("e2e-server-1").upper, "var/lib/rancher/k3s/server/psa.yaml")), "CIS files on servers");
  });

  it("staged files never hold the token", () => {
    for (const host of hosts) {
      const staged = join(host.upper, STAGING_DIR);
      for (const f of readdirSync(staged)) assert.ok(!readFileSync(join(staged, f), "utf8").includes(TOKEN), `${host.address}:${f}`);
    }
  });

  it("a second run changes nothing: OS prep reports 0 changes and no install runs", async () => {
    const calls = hosts.map((h) => read(h, "var/log/k3sp/calls.log"));
    const result = await applyAll(plan);
    assert.deepEqual([...result.failures], []);
    for (const [name, run] of result.runs) {
      assert.match(run.osPrep, /done, 0 change\(s\)/, name);
      assert.match(run.apply, /K3s is up to date/, name);
      assert.equal(installRuns(byName(name)).length, 1, name);
    }
    assert.deepEqual(hosts.map((h) => read(h, "var/log/k3sp/calls.log")), calls, "no modprobe/sysctl/systemctl call the second time");
  });

  it("a change to one agent re-installs that agent only, cordoned and drained before its restart, uncordoned once Ready (issue 26)", async () => {
    const since = Date.now() / 1000;
    const changed = change((raw) => (raw.nodes[3]!.labels = { ...raw.nodes[3]!.labels, "example.com/disk": "ssd" }));
    const result = await applyAll(changed);
    assert.deepEqual([...result.failures], []);
    assert.deepEqual(
      plan.nodes.map((n) => installRuns(byName(n.node.name)).length),
      [1, 1, 1, 2],
    );
    assert.match(read(byName("e2e-agent-2"), PATHS.configYaml), /example\.com\/disk=ssd/);
    // The batch (both agents) ran its steps: the agent whose K3s inputs changed is drained, the other is not.
    const events = clusterEvents(dir).filter((e) => e.at >= since);
    const at = (event: string, node: string) => events.find((e) => e.event === event && e.node === node)?.at;
    const restarted = restarts(byName("e2e-agent-2"), "k3s-agent").at(-1)!;
    assert.ok(restarted >= since, "e2e-agent-2 restarted");
    assert.ok(at("cordon", "e2e-agent-2")! < restarted, `cordoned before the restart: ${JSON.stringify(events)}`);
    assert.ok(at("drained", "e2e-agent-2")! < restarted, "drained before the restart");
    assert.ok(at("uncordon", "e2e-agent-2")! > restarted, "uncordoned after it");
    assert.deepEqual(events.filter((e) => e.node === "e2e-agent-1" && /cordon|drain/.test(e.event)), [], "the unchanged agent of the batch is left alone");
    assert.equal(restarts(byName("e2e-agent-1"), "k3s-agent").length, 1);
    plan = changed;
  });

  it("a server-wide change re-installs the servers one at a time, agents untouched", async () => {
    const changed = change((raw) => (raw.k3s!.etcdSnapshots = { retention: 9 }));
    const result = await applyAll(changed);
    assert.deepEqual([...result.failures], []);
    const s1 = installRuns(byName("e2e-server-1"));
    const s2 = installRuns(byName("e2e-server-2"));
    assert.equal(s1.length, 2);
    assert.equal(s2.length, 2);
    assert.ok(s1[1]!.end <= s2[1]!.start, "never two servers at once");
    assert.deepEqual([installRuns(byName("e2e-agent-1")).length, installRuns(byName("e2e-agent-2")).length], [1, 2]);
    plan = changed;
  });

  it("a registries.yaml change restarts exactly that node's service; the install script alone would skip it", async () => {
    const agent = byName("e2e-agent-1");
    const before = new Map(hosts.map((h) => [h.address, [restarts(h, "k3s").length, restarts(h, "k3s-agent").length]]));
    // Only e2e-agent-1 gets the new registries.yaml (the other nodes keep their current plan).
    const mirrored = planCluster(stack(hosts, [...edits, (raw) => (raw.k3s!.registries = { mirrors: { "docker.io": { endpoint: ["https://mirror.example.com:5000"] } } })]));
    const onlyAgent: ClusterPlan = { ...plan, nodes: plan.nodes.map((n) => (n.node.name === "e2e-agent-1" ? mirrored.nodes.find((m) => m.node.name === n.node.name)! : n)) };
    const result = await applyAll(onlyAgent);
    assert.deepEqual([...result.failures], []);
    assert.match(read(agent, PATHS.registriesYaml), /mirror\.example\.com:5000/);
    const last = installRuns(agent).at(-1)!;
    assert.equal(last.env.INSTALL_K3S_SKIP_START, "true", "the install only writes the unit: apply restarts it, without blocking (Type=notify)");
    assert.match(read(agent, "var/log/k3sp/calls.log"), /systemctl stop k3s-agent\n[^\n]* systemctl start --no-block k3s-agent\n(?![\s\S]*systemctl (re)?start k3s-agent\n)/, "the restart is apply's: stop, then a start that does not block");
    for (const h of hosts) {
      const [k3s, k3sAgent] = before.get(h.address)!;
      const expectAgent = h === agent ? k3sAgent! + 1 : k3sAgent!;
      assert.deepEqual([restarts(h, "k3s").length, restarts(h, "k3s-agent").length], [k3s, expectAgent], `${h.address} restarts`);
    }
    assert.match(result.runs.get("e2e-server-1")!.apply, /up to date/);

    // The stand-in models the real script: unchanged binary, unit and env file and no
    // INSTALL_K3S_FORCE_RESTART means "No change detected so skipping service start".
    const direct = await targets.get("e2e-agent-1")!.run("sudo -n env INSTALL_K3S_EXEC=agent INSTALL_K3S_SKIP_DOWNLOAD=true sh /usr/local/bin/k3s-install.sh");
    assert.equal(direct.status, 0, direct.stderr);
    assert.match(direct.stdout, /No change detected so skipping service start/);
    assert.equal(restarts(agent, "k3s-agent").length, before.get(agent.address)![1]! + 1, "no restart without INSTALL_K3S_FORCE_RESTART");
    plan = onlyAgent;
  });

  it("a hand edit of a unit or its env file is corrected by the next run, on that node only (issue 28)", async () => {
    const agent = byName("e2e-agent-2");
    const unit = "etc/systemd/system/k3s-agent.service";
    const written = read(agent, unit);
    const edit = await targets.get("e2e-agent-2")!.run(`sudo -n sh -c 'echo Environment=HAND=edit >>/${unit}'`);
    assert.equal(edit.status, 0, edit.stderr);
    const installs = NAMES.map((n) => installRuns(byName(n)).length);
    const result = await applyAll(plan);
    assert.deepEqual([...result.failures], []);
    assert.match(result.runs.get("e2e-agent-2")!.apply, /changed outside k3s-platform: re-installing/);
    assert.equal(read(agent, unit), written, "the install script rewrote the unit");
    assert.deepEqual(NAMES.map((n) => installRuns(byName(n)).length), installs.map((c, i) => (NAMES[i] === "e2e-agent-2" ? c + 1 : c)));
    const again = await applyAll(plan);
    assert.match(again.runs.get("e2e-agent-2")!.apply, /K3s is up to date/);
  });

  it("an OpenRC host is refused in preflight, naming the host; nothing placed, nothing installed (issue 28)", async () => {
    const agent = byName("e2e-agent-1");
    const t = targets.get("e2e-agent-1")!;
    // The install script takes its OpenRC path whenever /sbin/openrc-run is executable (install.sh setup_env).
    assert.equal((await t.run("sudo -n sh -c 'printf \"#!/bin/sh\\n\" >/sbin/openrc-run && chmod 0755 /sbin/openrc-run'")).status, 0);
    try {
      const changed = planOf(stack(hosts, [...edits, (raw) => (raw.nodes[2]!.labels = { ...raw.nodes[2]!.labels, "example.com/zone": "b" })]));
      const configBefore = read(agent, PATHS.configYaml);
      const installs = installRuns(agent).length;
      const result = await applyAll(changed);
      assert.deepEqual([...result.failures.keys()], ["e2e-agent-1"]);
      assert.ok(result.failures.get("e2e-agent-1")!.includes(`preflight on host ${agent.address}: the host has OpenRC`), result.failures.get("e2e-agent-1"));
      assert.equal(read(agent, PATHS.configYaml), configBefore, "nothing placed");
      assert.equal(installRuns(agent).length, installs, "no install ran");
      assert.ok(!existsSync(join(agent.upper, "etc/init.d/k3s-agent")), "the install script's OpenRC path never ran");
    } finally {
      await t.run("sudo -n rm -f /sbin/openrc-run");
    }
  });

  it("cluster steps: role labels, the kubeconfig, encryption verified, a rotation restarts servers one at a time", async () => {
    const config = stack(hosts, [...edits, (raw) => (raw.encryption = { rotation: 1 })]);
    const callsBefore = new Map(hosts.map((h) => [h.address, read(h, "var/log/k3sp/calls.log")]));
    const restartsBefore = new Map(hosts.map((h) => [h.address, restarts(h, "k3s").length]));
    const steps = await clusterSteps(config, planCluster(config), targets, "e2e");
    const server1 = byName("e2e-server-1");
    const calls = read(server1, "var/log/k3sp/calls.log").slice(callsBefore.get(server1.address)!.length);
    for (const agent of ["e2e-agent-1", "e2e-agent-2"]) {
      assert.match(calls, new RegExp(`k3s kubectl label node ${agent} --overwrite node-role\\.kubernetes\\.io/worker=true\n`));
    }
    const kubeconfig = parse(steps.kubeconfig) as { clusters: Array<{ name: string; cluster: { server: string } }> };
    assert.deepEqual(kubeconfig.clusters.map((c) => [c.name, c.cluster.server]), [["e2e", `https://${server1.address}:6443`]]);
    assert.deepEqual(steps.encryptionStatus, { mode: "k3s", enabled: true, stage: "reencrypt_finished", activeKey: "aescbckey-e2e", hashesMatch: true });
    assert.match(calls, /k3s secrets-encrypt rotate-keys/);
    const restartAt = (host: TestHost) => restarts(host, "k3s").slice(restartsBefore.get(host.address)!)[0]!;
    assert.ok(restartAt(server1) < restartAt(byName("e2e-server-2")), "servers restart one after another");
    const agent1 = byName("e2e-agent-1");
    assert.ok(!/systemctl (re)?start|systemctl stop/.test(read(agent1, "var/log/k3sp/calls.log").slice(callsBefore.get(agent1.address)!.length)), "agents do not restart");
  });

  it("a host whose key does not match the pinned one is refused", async () => {
    const impostor = new SshTarget(hosts[0]!, join(dir, "id_ed25519"), hosts[1]!.hostKey);
    const r = await impostor.run("true");
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /host key|HOST IDENTIFICATION/i);
  });

  it("sshd down on one host: that node fails, naming it; the servers converge, its agent batch waits (nothing cordoned: issue 26); after a restart all converge", async () => {
    execFileSync("bash", [HOSTS, "stop", "4", dir]);
    const changed = change((raw) => (raw.k3s!.kubelet = { maxPods: 150 }));
    const broken = await applyAll(changed);
    assert.deepEqual([...broken.failures.keys()], ["e2e-agent-2"]);
    const address = byName("e2e-agent-2").address.replace(/\./g, "\\.");
    assert.match(broken.failures.get("e2e-agent-2")!, new RegExp(`^e2e-agent-2 \\(${address}\\): stage failed with status 255: .*(refused|timed out|No route)`));
    for (const server of ["e2e-server-1", "e2e-server-2"]) assert.match(read(byName(server), PATHS.configYaml), /max-pods=150/, server);
    // The kubelet change restarts both agents, one batch (maxUnavailable 2): the unreachable agent's
    // preflight fails before the batch's drain, so its batch-mate is neither cordoned nor restarted.
    assert.doesNotMatch(read(byName("e2e-agent-1"), PATHS.configYaml), /max-pods=150/, "the batch waited for the unreachable agent");
    assert.doesNotMatch(read(byName("e2e-agent-2"), PATHS.configYaml), /max-pods=150/, "the unreachable host kept its state");

    execFileSync("bash", [HOSTS, "start", "4", dir]);
    const healed = await applyAll(changed);
    assert.deepEqual([...healed.failures], []);
    assert.match(read(byName("e2e-agent-2"), PATHS.configYaml), /max-pods=150/);
    assert.match(read(byName("e2e-agent-1"), PATHS.configYaml), /max-pods=150/);
    assert.match(healed.runs.get("e2e-server-1")!.apply, /up to date/);
  });

  it("a second run on this machine gets its own names and network, and its `down` leaves this run alone", async () => {
    const other = mkdtempSync(join(tmpdir(), "k3sp-e2e-other-"));
    try {
      execFileSync("bash", [HOSTS, "up", "1", other], { stdio: "ignore" });
      const run = (d: string) => readFileSync(join(d, "run.env"), "utf8");
      assert.notEqual(run(other), run(dir));
      const [theirs] = JSON.parse(readFileSync(join(other, "hosts.json"), "utf8")) as TestHost[];
      assert.notEqual(theirs!.address.split(".").slice(0, 3).join("."), hosts[0]!.address.split(".").slice(0, 3).join("."), "separate /24s");
      assert.equal((await new SshTarget(theirs!, join(other, "id_ed25519")).run("hostname")).status, 0);
    } finally {
      execFileSync("bash", [HOSTS, "down", other], { stdio: "ignore" });
    }
    assert.ok(!existsSync(other), "down removes its directory");
    const thisRun = /RUN=(\w+)/.exec(readFileSync(join(dir, "run.env"), "utf8"))![1]!;
    const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.equal(namespaces.split("\n").filter((l) => l.startsWith(`k3sp-${thisRun}-h`)).length, hosts.length, "this run's hosts are all still there");
    for (const host of hosts) assert.equal((await targets.get(plan.nodes.find((n) => n.node.host === host.address)!.node.name)!.run("true")).status, 0, `${host.address} still answers`);
  });

  it("an existing cluster moves to node networks in one run that restarts nothing: NO_PROXY listed every node's host name and address, now the network covering them (issue 26)", async () => {
    const subnet = `${hosts[0]!.address.split(".").slice(0, 3).join(".")}.0/24`;
    const proxy = (raw: StackInput) => (raw.k3s!.proxy = { httpProxy: "http://proxy.example.com:3128", noProxy: [subnet] });
    // As an earlier k3s-platform rendered it: every node's host then its node IP listed before the
    // user's entries, the firewall scoped to each node (no k3s.nodeNetworks). The hosts stand for
    // DNS names here (`<node>.nodes.corp.internal`, as a cluster whose hosts are names had them
    // listed; SSH reaches the test hosts by address), which no planned entry covers: only their
    // node IP does.
    const legacyConfig = stack(hosts, [...edits, proxy]);
    const addresses = legacyConfig.nodes.flatMap((n) => [`${n.name}.nodes.corp.internal`, ...(n.nodeIp ?? [])]).filter((a, i, all) => all.indexOf(a) === i);
    const legacy = legacyNoProxy(legacyConfig, (line) => line.replace(`,${subnet}`, `,${addresses.join(",")},${subnet}`));
    const first = await applyAll(legacy);
    assert.deepEqual([...first.failures], []);
    for (const h of hosts) assert.match(read(h, `etc/systemd/system/${h === byName("e2e-server-1") || h === byName("e2e-server-2") ? "k3s" : "k3s-agent"}.service.env`), new RegExp(`NO_PROXY=.*\\.nodes\\.corp\\.internal,${h.address.replace(/\./g, "\\.")}`));
    const installs = hosts.map((h) => installRuns(h).length);
    const restarted = hosts.map((h) => [restarts(h, "k3s").length, restarts(h, "k3s-agent").length]);

    // The new model: k3s.nodeNetworks declared, NO_PROXY without node addresses.
    const moved = change((raw) => {
      proxy(raw);
      raw.k3s!.nodeNetworks = [subnet];
    });
    const since = Date.now() / 1000;
    const result = await applyAll(moved);
    assert.deepEqual([...result.failures], []);
    // Every agent's K3s inputs changed (its NO_PROXY line), so its batch's drain ran: the agent's
    // preflight said its apply keeps K3s running (apply.sh's own dry run), so nothing was cordoned.
    for (const agent of moved.nodes.filter((n) => n.node.role === "agent")) {
      assert.match(result.batchSteps.get(batchStep(moved, agent.node.name, "drain")) ?? "", new RegExp(`upgrade\\[${agent.node.name}\\]: its K3s inputs changed, but its apply keeps K3s running`), agent.node.name);
    }
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= since && /cordon|drain/.test(e.event)), [], "no cordon or drain");
    for (const [name, run] of result.runs) {
      assert.match(run.apply, /NO_PROXY here lists entries the planned value covers/, name);
      assert.match(run.apply, /K3s is up to date/, name);
      assert.match(run.osPrep, /done, \d+ change\(s\)/, name);
    }
    assert.deepEqual(hosts.map((h) => installRuns(h).length), installs, "no install ran");
    assert.deepEqual(hosts.map((h) => [restarts(h, "k3s").length, restarts(h, "k3s-agent").length]), restarted, "nothing restarted");
    assert.ok(!existsSync(join(byName("e2e-server-1").upper, "var/lib/k3s-platform/managed-nodes")), "no server keeps the managed-node list");
    plan = moved;
  });

  it("the first up of this version on a proxy stack whose NO_PROXY gains the node network: every node restarts once, servers one at a time, agents cordoned and drained batch by batch although their Nodes record nothing yet; the next up is a no-op (issue 26)", async () => {
    const subnet = `${hosts[0]!.address.split(".").slice(0, 3).join(".")}.0/24`;
    // Batches of one agent, so "batch by batch" is visible.
    const narrowedConfig = stack(hosts, [...edits, (raw) => (raw.upgrade = { maxUnavailable: 1 })]);
    const narrowed = planOf(narrowedConfig);
    // As an earlier k3s-platform rendered it where `noProxy` covered no node: every node address
    // listed, no network covering them (validation now requires one: k3s.nodeNetworks).
    const addresses = narrowedConfig.nodes.flatMap((n) => n.nodeIp ?? []);
    const legacy = legacyNoProxy(narrowedConfig, (line) => [...line.split(",").filter((e) => e !== subnet), ...addresses].join(","));
    const first = await applyAll(legacy);
    assert.deepEqual([...first.failures], []);
    for (const h of hosts) assert.doesNotMatch(read(h, `etc/systemd/system/${NAMES.slice(0, 2).some((n) => byName(n) === h) ? "k3s" : "k3s-agent"}.service.env`), new RegExp(subnet.replace(/[./]/g, "\\$&")));
    // The version before kept no record on the Nodes: remove the ones that up wrote.
    for (const agent of ["e2e-agent-1", "e2e-agent-2"]) {
      for (const annotation of [INPUTS_ANNOTATION, SECRET_INPUTS_ANNOTATION]) rmSync(join(dir, "cluster", "nodes", agent, "annotations", annotation.replace(/\//g, "_")), { force: true });
    }
    const restartCount = () => hosts.map((h) => restarts(h, "k3s").length + restarts(h, "k3s-agent").length);
    const before = restartCount();
    const since = Date.now() / 1000;
    const result = await applyAll(narrowed);
    assert.deepEqual([...result.failures], []);
    assert.deepEqual(restartCount().map((n, i) => n - before[i]!), [1, 1, 1, 1], "every node restarted once (its NO_PROXY gained the network)");
    const moved = clusterEvents(dir).filter((e) => e.at >= since);
    const at = (event: string, node: string) => moved.find((e) => e.event === event && e.node === node)?.at ?? NaN;
    const restartOf = (name: string) => restarts(byName(name), name.includes("server") ? "k3s" : "k3s-agent").at(-1)!;
    for (const n of NAMES) {
      const order = [at("cordon", n), at("drained", n), restartOf(n), at("uncordon", n)];
      assert.ok(order.every(Number.isFinite), `${n}: cordoned, drained, restarted, uncordoned ${JSON.stringify(moved)}`);
      for (let i = 1; i < order.length; i++) assert.ok(order[i - 1]! <= order[i]!, `${n}: cordon → drained → restart → uncordon ${JSON.stringify(order)}`);
    }
    assert.ok(at("uncordon", "e2e-server-1") <= at("cordon", "e2e-server-2"), "servers one at a time");
    assert.ok(at("uncordon", "e2e-agent-1") <= at("cordon", "e2e-agent-2"), "agents batch by batch");
    for (const agent of ["e2e-agent-1", "e2e-agent-2"]) {
      assert.match(result.batchSteps.get(batchStep(narrowed, agent, "drain")) ?? "", new RegExp(`upgrade\\[${agent}\\]: no record of its K3s inputs yet, and its apply will restart K3s`), agent);
    }
    // The records are written: the next up runs nothing.
    const now = Date.now() / 1000;
    const again = await applyAll(narrowed);
    assert.deepEqual([...again.failures], []);
    assert.deepEqual([...again.batchSteps.keys()], [], "no batch step runs");
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= now), [], "no cordon, drain or restart");
    assert.deepEqual(restartCount().map((n, i) => n - before[i]!), [1, 1, 1, 1], "nothing restarted again");
    plan = narrowed;
    edits.push((raw) => (raw.upgrade = { maxUnavailable: 1 }));
  });

  it("a failed drain takes its cordon back: the change taken back, the next up finds every node schedulable and restarts nothing; the up after is a no-op (issue 26)", async () => {
    const blocked = join(dir, "cluster", "drain-blocked");
    mkdirSync(blocked, { recursive: true });
    writeFileSync(join(blocked, "e2e-agent-2"), "default/web-0\n");
    const restartCount = () => hosts.map((h) => restarts(h, "k3s").length + restarts(h, "k3s-agent").length);
    const before = restartCount();
    const since = Date.now() / 1000;
    const changedConfig = stack(hosts, [...edits, (raw) => (raw.nodes[3]!.labels = { ...raw.nodes[3]!.labels, "example.com/rack": "r2" })]);
    const changed = planOf(changedConfig);
    const drain = batchStep(changed, "e2e-agent-2", "drain");
    const failed = await applyAll(changed);
    assert.deepEqual([...failed.failures.keys()], [drain]);
    assert.match(failed.failures.get(drain)!, /drain of e2e-agent-2 failed after \d+s; pods not evicted: default\/web-0 .*Nothing restarted: its cordon is taken back/);
    const cordoned = (n: string) => existsSync(join(dir, "cluster", "nodes", n, "unschedulable")) || existsSync(join(dir, "cluster", "nodes", n, "annotations", "k3s-platform.io_cordoned-for-upgrade"));
    const seen = clusterEvents(dir).filter((e) => e.at >= since && e.node === "e2e-agent-2").map((e) => e.event);
    assert.deepEqual(seen.filter((e) => /cordon|drain/.test(e)), ["cordon", "drain-start", "drain-failed", "uncordon"], "cordoned, the drain failed, uncordoned");
    assert.ok(!cordoned("e2e-agent-2"), "schedulable again, no mark left");
    assert.deepEqual(restartCount(), before, "nothing restarted");
    rmSync(join(blocked, "e2e-agent-2"));

    // The change taken back: the engine kept the failed drain's earlier inputs, so nothing of that batch runs.
    const back = await applyAll(plan);
    assert.deepEqual([...back.failures], []);
    assert.deepEqual([...back.batchSteps.keys()], [], "no batch step runs");
    for (const n of hosts.map((h) => plan.nodes.find((p) => p.node.host === h.address)!.node.name)) assert.ok(!cordoned(n), `${n} schedulable`);
    assert.deepEqual(restartCount(), before, "nothing restarted");
    const now = Date.now() / 1000;
    const again = await applyAll(plan);
    assert.deepEqual([...again.failures], []);
    assert.deepEqual([...again.batchSteps.keys()], []);
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= now), [], "a no-op");
    assert.deepEqual(restartCount(), before);
  });

  // ---------------------------------------------------------------- upgrades (components/upgrade)

  /** "Pre-stages" a K3s release on every host, as an air-gap upgrade does: the binary now reports it. */
  const stageBinary = async (version: string) => {
    for (const t of targets.values()) {
      const r = await t.run(`sudo -n sh -c 'echo ${version} >/var/lib/k3sp-stub/binary-version'`);
      assert.equal(r.status, 0, r.stderr);
    }
  };
  const events = () => clusterEvents(dir);
  const nodeObject = (name: string) => {
    const base = join(dir, "cluster", "nodes", name);
    return {
      version: readFileSync(join(base, "version"), "utf8").trim(),
      cordoned: existsSync(join(base, "unschedulable")),
      annotated: existsSync(join(base, "annotations", "k3s-platform.io_cordoned-for-upgrade")),
    };
  };
  const NAMES = ["e2e-server-1", "e2e-server-2", "e2e-agent-1", "e2e-agent-2"];
  /** Per node, the upgrade's steps in time: cordon, drain, install, kubelet up at `version`, uncordon. */
  const timeline = (since: number, name: string, version: string) => {
    const mine = events().slice(since).filter((e) => e.node === name);
    const at = (event: string, detail?: string) => mine.find((e) => e.event === event && (detail === undefined || e.detail === detail))?.at ?? NaN;
    const install = installRuns(byName(name)).at(-1)!;
    return { cordon: at("cordon"), drainStart: at("drain-start"), drained: at("drained"), installStart: install.start, installEnd: install.end, ready: at("kubelet-start", version), uncordon: at("uncordon") };
  };
  /** The most windows [from, to] open at one instant. */
  const maxConcurrent = (windows: Array<[number, number]>) =>
    Math.max(...windows.map(([t]) => windows.filter(([a, b]) => a <= t && t < b).length));
  let upgradeRun: { seconds: number; maxAgents: number } | undefined;

  it("upgrade v1.31.4 → v1.31.5: snapshot first, servers one at a time (cordon → drain → install → Ready at v1.31.5 → uncordon), agents at most maxUnavailable at once", async () => {
    await stageBinary("v1.31.5+k3s1");
    const since = events().length;
    const installsBefore = NAMES.map((n) => installRuns(byName(n)).length);
    const upgraded = change((raw) => {
      raw.k3s!.version = "v1.31.5+k3s1";
      raw.upgrade = { maxUnavailable: 1 };
    });
    const started = Date.now();
    const result = await applyAll(upgraded);
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual([...result.failures], []);
    assert.deepEqual(NAMES.map((n) => installRuns(byName(n)).length - installsBefore[NAMES.indexOf(n)]!), [1, 1, 1, 1], "each node installed once");

    const snapshots = events().slice(since).filter((e) => e.event === "etcd-snapshot");
    assert.deepEqual(snapshots.map((e) => [e.node, e.detail]), [["e2e-server-1", "pre-upgrade-v1.31.4-k3s1-to-v1.31.5-k3s1"]], "one snapshot, on the first server");
    const t = Object.fromEntries(NAMES.map((n) => [n, timeline(since, n, "v1.31.5+k3s1")]));
    assert.ok(snapshots[0]!.at < t["e2e-server-1"]!.installStart, "the snapshot precedes the first server's install");
    for (const n of NAMES) {
      const s = t[n]!;
      // The install restarts K3s, whose kubelet then reports the new version: Ready falls inside the install.
      const order = [s.cordon, s.drainStart, s.drained, s.installStart, s.ready, s.uncordon];
      assert.ok([...order, s.installEnd].every((x) => Number.isFinite(x)), `${n}: every step happened ${JSON.stringify(s)}`);
      for (let i = 1; i < order.length; i++) assert.ok(order[i - 1]! <= order[i]!, `${n}: cordon → drain → install → Ready at v1.31.5 → uncordon ${JSON.stringify(s)}`);
      assert.ok(s.installEnd <= s.uncordon, `${n}: uncordoned after the install finished`);
    }
    const window = (n: string): [number, number] => [t[n]!.cordon, t[n]!.uncordon];
    assert.ok(window("e2e-server-1")[1] <= window("e2e-server-2")[0], "servers strictly one at a time");
    for (const a of ["e2e-agent-1", "e2e-agent-2"]) assert.ok(window("e2e-server-2")[1] <= window(a)[0], `${a} after every server`);
    const maxAgents = maxConcurrent([window("e2e-agent-1"), window("e2e-agent-2")]);
    assert.ok(maxAgents <= 1, `at most upgrade.maxUnavailable (1) agents down at once, saw ${maxAgents}`);
    upgradeRun = { seconds, maxAgents };

    for (const n of NAMES) {
      assert.deepEqual(nodeObject(n), { version: "v1.31.5+k3s1", cordoned: false, annotated: false }, n);
      assert.equal(read(byName(n), "var/lib/k3s-platform/k3s-version").trim(), "v1.31.5+k3s1");
    }
    const s1 = result.runs.get("e2e-server-1")!.apply;
    assert.match(s1, /upgrade\[e2e-server-1\]: upgrading from v1\.31\.4\+k3s1 to v1\.31\.5\+k3s1/);
    assert.match(s1, /upgrade\[e2e-server-1\]: etcd snapshot pre-upgrade-v1\.31\.4-k3s1-to-v1\.31\.5-k3s1 saved in \d+s/);
    assert.match(s1, /upgrade\[e2e-server-1\]: drained in \d+s/);
    assert.match(s1, /upgrade\[e2e-server-1\]: Ready with kubelet v1\.31\.5\+k3s1 after \d+s/);
    assert.match(result.runs.get("e2e-server-2")!.apply, /another server already runs v1\.31\.5\+k3s1/);
    assert.match(result.batchSteps.get(batchStep(upgraded, "e2e-agent-2", "drain"))!, /upgrade\[e2e-agent-2\]: drained in \d+s/);
    assert.match(result.batchSteps.get(batchStep(upgraded, "e2e-agent-2", "uncordon"))!, /upgrade\[e2e-agent-2\]: Ready with kubelet v1\.31\.5\+k3s1 after \d+s/);
    console.log(`      upgrade of 2 servers + 2 agents: ${seconds.toFixed(1)} s; most agents down at once: ${maxAgents}`);
    plan = upgraded;
  });

  it("a second apply after the upgrade is a no-op", async () => {
    const since = events().length;
    const installs = NAMES.map((n) => installRuns(byName(n)).length);
    const result = await applyAll(plan);
    assert.deepEqual([...result.failures], []);
    for (const [name, run] of result.runs) assert.match(run.apply, /K3s is up to date/, name);
    assert.deepEqual(NAMES.map((n) => installRuns(byName(n)).length), installs);
    assert.deepEqual(events().slice(since), [], "no cordon, drain, snapshot or restart");
    assert.deepEqual([...result.batchSteps.keys()], [], "the batch steps' trigger did not change");
  });

  it("a downgrade and a skipped minor are refused on the host, naming the node and both versions; nothing is placed", async () => {
    const since = events().length;
    const configBefore = read(byName("e2e-server-1"), PATHS.configYaml);
    for (const [version, message] of [
      ["v1.31.4+k3s1", /refusing to downgrade e2e-server-1 from v1\.31\.5\+k3s1 to v1\.31\.4\+k3s1/],
      ["v1.33.0+k3s1", /refusing to skip a minor version on e2e-server-1: it runs v1\.31\.5\+k3s1, k3s\.version asks for v1\.33\.0\+k3s1; upgrade to v1\.32\.x first/],
    ] as const) {
      const refused = planOf(stack(hosts, [...edits, (raw) => (raw.k3s!.version = version)]));
      const result = await applyAll(refused);
      assert.deepEqual([...result.failures.keys()], ["e2e-server-1"], version);
      assert.match(result.failures.get("e2e-server-1")!, message);
    }
    // The agents refuse too, from the first server's batch step (agents run it before draining).
    assert.equal(read(byName("e2e-server-1"), PATHS.configYaml), configBefore, "nothing placed");
    assert.deepEqual(events().slice(since), [], "nothing cordoned, drained or restarted");
  });

  it("an air-gap upgrade whose release is not staged fails in preflight, naming the host and the path; nothing placed, nothing cordoned (issue 28)", async () => {
    const since = events().length;
    const configBefore = read(byName("e2e-server-1"), PATHS.configYaml);
    const installs = NAMES.map((n) => installRuns(byName(n)).length);
    const unstaged = planOf(stack(hosts, [...edits, (raw) => (raw.k3s!.version = "v1.31.7+k3s1")]));
    const result = await applyAll(unstaged);
    assert.deepEqual([...result.failures.keys()], ["e2e-server-1"]);
    const host = byName("e2e-server-1").address;
    assert.ok(result.failures.get("e2e-server-1")!.includes(`preflight on host ${host}: the air-gap binary for v1.31.7+k3s1 is missing`), result.failures.get("e2e-server-1"));
    assert.ok(result.failures.get("e2e-server-1")!.includes("/usr/local/bin/k3s-v1.31.7+k3s1 is absent"));
    assert.equal(read(byName("e2e-server-1"), PATHS.configYaml), configBefore, "nothing placed");
    assert.deepEqual(NAMES.map((n) => installRuns(byName(n)).length), installs, "no install ran");
    assert.deepEqual(events().slice(since), [], "nothing snapshotted, cordoned or restarted");
  });

  it("a failed snapshot stops the rollout before anything restarts; the next up converges", async () => {
    await stageBinary("v1.31.6+k3s1");
    const fail = await targets.get("e2e-server-1")!.run("sudo -n touch /var/lib/k3sp-stub/etcd-snapshot-fail");
    assert.equal(fail.status, 0);
    const since = events().length;
    const installs = NAMES.map((n) => installRuns(byName(n)).length);
    const next = planOf(stack(hosts, [...edits, (raw) => (raw.k3s!.version = "v1.31.6+k3s1")]));
    const result = await applyAll(next);
    assert.deepEqual([...result.failures.keys()], ["e2e-server-1"]);
    assert.match(result.failures.get("e2e-server-1")!, /etcd snapshot pre-upgrade-v1\.31\.5-k3s1-to-v1\.31\.6-k3s1 failed after \d+s: the upgrade from v1\.31\.5\+k3s1 to v1\.31\.6\+k3s1 stops here, nothing was restarted/);
    assert.deepEqual(NAMES.map((n) => installRuns(byName(n)).length), installs, "no install ran");
    assert.deepEqual(events().slice(since), [], "nothing cordoned or restarted");
    assert.equal(nodeObject("e2e-server-1").cordoned, false);
    await targets.get("e2e-server-1")!.run("sudo -n rm -f /var/lib/k3sp-stub/etcd-snapshot-fail");
  });

  it("a drain blocked by a PodDisruptionBudget stops the rollout naming the pods; its cordon is taken back (issue 26); the next up converges", async () => {
    const blocked = join(dir, "cluster", "drain-blocked");
    mkdirSync(blocked, { recursive: true });
    writeFileSync(join(blocked, "e2e-server-2"), "default/web-0\ndefault/web-1\n");
    const since = events().length;
    const installs = NAMES.map((n) => installRuns(byName(n)).length);
    const next = change((raw) => (raw.k3s!.version = "v1.31.6+k3s1"));
    const stopped = await applyAll(next);
    assert.deepEqual([...stopped.failures.keys()], ["e2e-server-2"]);
    assert.match(stopped.failures.get("e2e-server-2")!, /drain of e2e-server-2 failed after \d+s; pods not evicted: default\/web-0 default\/web-1 .*Nothing restarted: its cordon is taken back; the next up with this change cordons and drains it again/);
    assert.deepEqual(NAMES.map((n) => installRuns(byName(n)).length - installs[NAMES.indexOf(n)]!), [1, 0, 0, 0], "server 1 upgraded; server 2 and the agents untouched");
    assert.deepEqual(nodeObject("e2e-server-2"), { version: "v1.31.5+k3s1", cordoned: false, annotated: false });
    assert.ok(events().slice(since).some((e) => e.event === "cordon" && e.node === "e2e-server-2"), "it was cordoned, then uncordoned");
    assert.equal(events().slice(since).filter((e) => e.event === "etcd-snapshot").length, 1);

    rmSync(join(blocked, "e2e-server-2"));
    const healed = await applyAll(next);
    assert.deepEqual([...healed.failures], []);
    assert.match(healed.runs.get("e2e-server-1")!.apply, /up to date/);
    assert.equal(events().slice(since).filter((e) => e.event === "etcd-snapshot").length, 1, "no second snapshot: the rollout had started");
    for (const n of NAMES) assert.deepEqual(nodeObject(n), { version: "v1.31.6+k3s1", cordoned: false, annotated: false }, n);
    const t2 = timeline(since, "e2e-server-2", "v1.31.6+k3s1");
    for (const a of ["e2e-agent-1", "e2e-agent-2"]) assert.ok(t2.uncordon <= timeline(since, a, "v1.31.6+k3s1").cordon, `${a} after server 2`);
    plan = next;
  });

  it("an agent unreachable mid-upgrade fails its own step, naming it; the batches after it wait; the next up converges", async () => {
    await stageBinary("v1.31.7+k3s1");
    execFileSync("bash", [HOSTS, "stop", "4", dir]);
    const next = change((raw) => (raw.k3s!.version = "v1.31.7+k3s1"));
    let broken;
    try {
      broken = await applyAll(next);
    } finally {
      execFileSync("bash", [HOSTS, "start", "4", dir]);
    }
    assert.deepEqual([...broken.failures.keys()], ["e2e-agent-2"]);
    assert.match(broken.failures.get("e2e-agent-2")!, /^e2e-agent-2 \([\d.]+\): stage failed with status 255/);
    assert.deepEqual(nodeObject("e2e-agent-1"), { version: "v1.31.7+k3s1", cordoned: false, annotated: false });
    // Its preflight step (issue 28) could not reach it, and the batch's drain waits for that step:
    // an unreachable agent is never cordoned.
    assert.deepEqual(nodeObject("e2e-agent-2"), { version: "v1.31.6+k3s1", cordoned: false, annotated: false }, "never cordoned");
    assert.ok(!broken.batchSteps.has(batchStep(next, "e2e-agent-2", "drain")), "the batch's drain waits for its agents' preflight");
    assert.ok(!broken.batchSteps.has(batchStep(next, "e2e-agent-2", "uncordon")), "the batch's uncordon waits for its agents");

    const healed = await applyAll(next);
    assert.deepEqual([...healed.failures], []);
    assert.ok(healed.batchSteps.has(batchStep(next, "e2e-agent-2", "drain")), "the drain runs once its agent's preflight passed");
    assert.match(healed.batchSteps.get(batchStep(next, "e2e-agent-2", "uncordon"))!, /upgrade\[e2e-agent-2\]: Ready with kubelet v1\.31\.7\+k3s1/);
    for (const n of NAMES) assert.deepEqual(nodeObject(n), { version: "v1.31.7+k3s1", cordoned: false, annotated: false }, n);
    plan = next;
  });

  it("an agent whose host lacks the staged release fails its preflight; its batch is never drained, the agent stays schedulable (issue 28)", async () => {
    for (const name of ["e2e-server-1", "e2e-server-2"]) {
      const r = await targets.get(name)!.run("sudo -n sh -c 'echo v1.31.8+k3s1 >/var/lib/k3sp-stub/binary-version'");
      assert.equal(r.status, 0, r.stderr);
    }
    const next = change((raw) => (raw.k3s!.version = "v1.31.8+k3s1"));
    const result = await applyAll(next);
    assert.deepEqual([...result.failures.keys()], ["e2e-agent-1"]);
    const host = byName("e2e-agent-1").address;
    assert.ok(result.failures.get("e2e-agent-1")!.includes(`preflight on host ${host}: the air-gap binary for v1.31.8+k3s1 is missing`), result.failures.get("e2e-agent-1"));
    assert.ok(!result.batchSteps.has(batchStep(next, "e2e-agent-1", "drain")), "the drain waits for the preflight");
    for (const n of ["e2e-agent-1", "e2e-agent-2"]) assert.deepEqual(nodeObject(n), { version: "v1.31.7+k3s1", cordoned: false, annotated: false }, n);

    await stageBinary("v1.31.8+k3s1");
    const healed = await applyAll(next);
    assert.deepEqual([...healed.failures], []);
    for (const n of NAMES) assert.deepEqual(nodeObject(n), { version: "v1.31.8+k3s1", cordoned: false, annotated: false }, n);
    plan = next;
  });

  after(() => {
    if (upgradeRun) console.log(`      e2e upgrade: ${upgradeRun.seconds.toFixed(1)} s, max concurrent agents ${upgradeRun.maxAgents}`);
  });
});
