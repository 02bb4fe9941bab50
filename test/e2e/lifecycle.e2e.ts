import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeConfig, ResolvedConfig, StackInput } from "../../components/config/schema";
import { loadStackConfig } from "../../components/stack/load";
import { renderInventoryScript, teardownCommands } from "../../components/decommission/render";
import { JOIN_DROPIN } from "../../components/decommission/rejoin";
import { forgetSteps, rebuildTriggers } from "../../components/decommission/rebuild";
import { STAGING_DIR } from "../../components/k3s/install";
import { PATHS } from "../../components/k3s/paths";
import { NodePlan, planCluster, renderSecretsDocument } from "../../components/plan/node";
import { sha256 } from "../../components/plan/hash";
import { stdinScriptCommand } from "../../components/shell/root";
import {
  CertificateExpiry,
  certificateRotationSteps,
  parseCertificateCheck,
  renderCertificateCheckScript,
  tokenFingerprint,
  tokenRotateStep,
} from "../../components/rotation/render";
import { destroy } from "../../components/operations/destroy";
import { CLUSTER_CHILDREN, NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../../components/names";
import { REPO } from "../helpers/samples";
import { CommandProviderModel, Declared, StepRecord, UpError } from "./provider";
import { applyCluster, ClusterRun, clusterEvents, installRuns, restarts, SshTarget, TestHost } from "./ssh";

/**
 * Day-2 lifecycle end to end over SSH (issue 13: removal, rebuild, rotation; issue 23: replacing
 * a server, shrinking the control plane): six test hosts,
 * the exact commands the components declare, run in the order `pulumi up` gives them
 * (provider.ts models the command provider and the engine: create / update / replace / delete).
 * K3s, kubectl, the uninstall scripts and :6443 are stand-ins (hosts/root-overlay) that record
 * what they were asked; order is asserted on their timestamps.
 */

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");
const TOKEN_1 = "e2e-lifecycle-token-one-7c1d";
const TOKEN_2 = "e2e-lifecycle-token-two-93ab";
/** The token-rotate trigger's salt (a random.RandomPassword in the program). */
const SALT = "e2e-salt";

type Edit = (raw: StackInput) => void;
type NodeInput = StackInput["nodes"][number];
/** An edit to one node entry, while the entry exists (entries come and go in these tests). */
const onNode = (name: string, edit: (node: NodeInput) => void): Edit => (raw) => {
  const node = raw.nodes.find((n) => n.name === name);
  if (node) edit(node);
};

interface Entry {
  name: string;
  host: number;
  role: "server" | "agent";
}

describe("e2e lifecycle over SSH: removal, rebuild, rotation", function () {
  this.timeout(900_000);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-e2e-life-"));
  let hosts: TestHost[];
  const model = new CommandProviderModel();
  const targets = new Map<string, SshTarget>();
  let entries: Entry[] = [
    { name: "e2e-server-1", host: 0, role: "server" },
    { name: "e2e-server-2", host: 1, role: "server" },
    { name: "e2e-agent-1", host: 2, role: "agent" },
    { name: "e2e-agent-2", host: 3, role: "agent" },
  ];
  const edits: Edit[] = [];
  let token = TOKEN_1;
  let lastRun: ClusterRun | undefined;
  let expiry: Record<string, CertificateExpiry> = {};

  const stack = (): ResolvedConfig => {
    const raw: StackInput = {
      environment: "dev",
      k3s: { version: "v1.31.4+k3s1", hardening: "cis", airgap: { enabled: true }, firewall: { mode: "open" } },
      ssh: { user: "deploy" },
      nodes: entries.map((e) => ({
        name: e.name,
        host: hosts[e.host]!.address,
        nodeIp: hosts[e.host]!.address,
        role: e.role,
        ssh: { hostKey: hosts[e.host]!.hostKey },
      })),
    };
    for (const edit of edits) edit(raw);
    return loadStackConfig(raw);
  };
  const hostOf = (node: NodeConfig) => hosts.find((h) => h.address === node.host)!;
  const target = (node: NodeConfig) => {
    const host = hostOf(node);
    if (!targets.has(host.address)) targets.set(host.address, new SshTarget(host, join(dir, "id_ed25519")));
    return targets.get(host.address)!;
  };
  /** What the command provider stores of `connection` (cluster/component.ts nodeConnection). */
  const connection = (config: ResolvedConfig, node: NodeConfig) =>
    JSON.stringify([node.host, node.ssh.port ?? config.ssh.port, node.ssh.user ?? config.ssh.user, config.ssh.perDialTimeout, config.ssh.dialErrorLimit]);

  /**
   * The inputs and `triggers` of a node's five K3sNode steps, as node/component.ts declares them
   * (the connection, each command, the bundle and secrets hashes, and `rebuild` only when set).
   */
  const nodeTriggers = (config: ResolvedConfig, n: NodePlan) => {
    const rebuild = rebuildTriggers(n.node);
    const secrets = sha256(renderSecretsDocument(n, { token }));
    return {
      connection: connection(config, n.node),
      stage: [n.commands.stage, STAGING_DIR, ...rebuild],
      bundle: [n.bundle.sha256, ...rebuild],
      secrets: [n.commands.secrets, secrets, ...rebuild],
      osPrep: [n.commands.osPrep, n.hashes.osPrep, ...rebuild],
      apply: [n.commands.apply, n.hashes.apply, secrets, ...rebuild],
    };
  };
  /** Per node, the step inputs its last successful run had (what the engine keeps in state). */
  const nodeState = new Map<string, string>();

  /** The program's resources for `config`, in declaration order (dependencies first). */
  const program = (config: ResolvedConfig, afterNodes?: () => void, beforeNodes?: () => Promise<unknown>): Declared[] => {
    const plan = planCluster(config);
    const first = plan.nodes[0]!;
    const rotate = tokenRotateStep(config, first, token);
    const declared: Declared[] = [
      { ...rotate, target: target(first.node), connection: connection(config, first.node), triggers: [tokenFingerprint(SALT, token)] },
    ];
    // Rebuild: the one-shot forget step of each node with `rebuild`, before that node's steps (the
    // program orders a non-first node's forget after the first server's apply; only the first
    // server is rebuilt here, whose forget runs on the second server before any node step).
    for (const f of forgetSteps(config)) {
      declared.push({ name: f.name, target: target(f.on), connection: connection(config, f.on), create: f.create, update: f.update, stdin: f.stdin, triggers: f.triggers });
    }
    declared.push({
      // The K3sNode steps (stage, bundle, secrets, os-prep, apply): each node's secrets wait for token-rotate.
      // As the engine does, a node's steps run only when their inputs or triggers changed since
      // its last successful run (a changed node re-runs all five here, idempotently; the engine
      // would run only the changed ones). An unchanged node, even a re-imaged one, gets nothing.
      name: "nodes",
      run: async () => {
        await beforeNodes?.(); // fault injection between the lifecycle steps before the nodes and the nodes
        const due = plan.nodes.filter((n) => nodeState.get(n.node.name) !== JSON.stringify(nodeTriggers(config, n)));
        lastRun = await applyCluster({ ...plan, nodes: due }, new Map(plan.nodes.map((n) => [n.node.name, target(n.node)])), { token });
        for (const n of due) if (lastRun.runs.has(n.node.name)) nodeState.set(n.node.name, JSON.stringify(nodeTriggers(config, n)));
        const failures = [...lastRun.failures.values()];
        if (failures.length) throw new Error(failures.join("\n"));
        // Fault injection between the node steps and the lifecycle steps.
        afterNodes?.();
      },
    });
    for (const t of teardownCommands(config)) {
      declared.push({ name: t.name, target: target(t.on), connection: connection(config, t.on), create: t.create, update: t.update, delete: t.delete, dependsOn: t.dependsOn });
    }
    // The node inventory on the first server (cluster/component.ts): warns, and writes the
    // managed-node list into the cluster that every drain reads.
    const inventory = renderInventoryScript(config);
    declared.push({
      name: CLUSTER_CHILDREN.nodeInventory,
      target: target(first.node),
      connection: connection(config, first.node),
      create: stdinScriptCommand(first.sshUser),
      update: stdinScriptCommand(first.sshUser),
      stdin: inventory,
      triggers: [sha256(inventory)],
    });
    // uninstallOnDestroy (operations/destroy.ts): commands that run only when deleted.
    for (const d of destroy.steps(config, plan)) {
      declared.push({ name: d.name, target: target(d.host), connection: connection(config, d.host), create: d.create, update: d.update, delete: d.delete, dependsOn: d.after });
    }
    const rotations = certificateRotationSteps(config, plan.nodes);
    for (const s of rotations) declared.push({ ...s, target: target(s.on), connection: connection(config, s.on) });
    const checkScript = renderCertificateCheckScript(config);
    const outputs: Array<[string, string]> = [];
    for (const server of plan.nodes.filter((n) => n.node.role === "server")) {
      const name = nodeLifecycleName(server.node.name, "certificateCheck");
      outputs.push([server.node.name, name]);
      declared.push({
        name,
        target: target(server.node),
        connection: connection(config, server.node),
        create: stdinScriptCommand(server.sshUser),
        update: stdinScriptCommand(server.sshUser),
        stdin: checkScript,
        triggers: [String(config.certificates?.rotation ?? ""), sha256(server.hashes.apply), ...rebuildTriggers(server.node)],
        dependsOn: rotations.length ? [rotations[rotations.length - 1]!.name] : [],
      });
    }
    declared.push({
      name: "outputs",
      run: async () => {
        // Stack output certificateExpiry: the check's stdout as the provider keeps it in state.
        expiry = {};
        for (const [node, resource] of outputs) {
          const r = model.state.get(resource)!;
          expiry[node] = parseCertificateCheck((await r.target.run(r.create!, r.stdin)).stdout);
        }
      },
    });
    return declared;
  };
  const up = async (afterNodes?: () => void, beforeNodes?: () => Promise<unknown>) => model.up(program(stack(), afterNodes, beforeNodes));
  const opsOf = (steps: StepRecord[], ...names: string[]) => names.map((n) => steps.find((s) => s.name === n)?.op ?? "absent");
  const hostByName = (name: string) => hosts[entries.find((e) => e.name === name)!.host]!;
  const calls = (host: TestHost) => (existsSync(join(host.upper, "var/log/k3sp/calls.log")) ? readFileSync(join(host.upper, "var/log/k3sp/calls.log"), "utf8") : "");
  /** Timestamps of the calls on `host` matching `pattern`. */
  const callTimes = (host: TestHost, pattern: RegExp) =>
    calls(host)
      .split("\n")
      .filter((l) => pattern.test(l))
      .map((l) => Number(l.split(" ")[0]));
  const ssh = (host: TestHost, command: string) => new SshTarget(host, join(dir, "id_ed25519")).run(command);

  /** Pre-stages the air-gap binary again on a host whose K3s was uninstalled (the uninstaller removes it). */
  const restage = async (host: TestHost) => {
    const copy = new SshTarget(host, join(dir, "id_ed25519")).copy(readFileSync(join(REPO, "test/e2e/hosts/root-overlay/usr/local/bin/k3s"), "utf8"), "/tmp/k3s");
    assert.equal(copy.status, 0, copy.stderr);
    const placed = await ssh(host, "sudo -n install -m 0755 /tmp/k3s /usr/local/bin/k3s");
    assert.equal(placed.status, 0, placed.stderr);
  };

  before(() => {
    execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" });
    // Six: four for the entries below, two free for the topology changes at the end (issue 23).
    execFileSync("bash", [HOSTS, "up", "6", dir], { stdio: "inherit" });
    hosts = JSON.parse(readFileSync(join(dir, "hosts.json"), "utf8")) as TestHost[];
  });
  after(() => execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" }));

  it("bootstrap: no other server answers, so the first server initialises the cluster; expiry per server; a second up is a no-op", async () => {
    const steps = await up();
    assert.deepEqual(opsOf(steps, CLUSTER_CHILDREN.tokenRotate, nodeLifecycleName("e2e-server-1", "certificateCheck"), nodeLifecycleName("e2e-server-2", "certificateCheck")), ["create", "create", "create"]);
    assert.match(steps[0]!.stdout, /K3s does not run here yet: nothing to rotate/);
    assert.match(lastRun!.runs.get("e2e-server-1")!.apply, /no other configured server answers on :6443: initialising a new cluster/);
    assert.ok(!existsSync(join(hostByName("e2e-server-1").upper, JOIN_DROPIN)), "no join drop-in on a new cluster");
    assert.match(readFileSync(join(hostByName("e2e-server-1").upper, PATHS.configYaml), "utf8"), /^cluster-init: true$/m);
    assert.deepEqual(Object.keys(expiry).sort(), ["e2e-server-1", "e2e-server-2"]);
    const days = (Date.parse(expiry["e2e-server-1"]!.earliest!.expires) - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days <= 365, `earliest certificate expires in ${days} days`);
    assert.equal(expiry["e2e-server-1"]!.certificates.length, 3);

    const before = hosts.map(calls);
    const again = await up();
    assert.deepEqual([...new Set(again.map((s) => s.op))], ["same"]);
    assert.equal(lastRun!.runs.size, 0, "no node step runs: nothing changed");
    // Every node step re-run anyway (as after `pulumi up --replace`) changes nothing: idempotent.
    nodeState.clear();
    await up();
    assert.equal(lastRun!.runs.size, 4);
    for (const [name, run] of lastRun!.runs) assert.match(run.apply, /K3s is up to date/, name);
    assert.deepEqual(hosts.map(calls), before, "nothing called on any host");
  });

  it("decommission: arming changes nothing on the node; no other change runs the teardown; removing the entry drains on a server, then uninstalls", async () => {
    const agent = hostByName("e2e-agent-2");
    const server = hostByName("e2e-server-1");
    const installs = installRuns(agent).length;
    edits.push(onNode("e2e-agent-2", (n) => (n.decommission = true)));
    const armed = await up();
    assert.deepEqual(opsOf(armed, nodeLifecycleName("e2e-agent-2", "uninstall"), nodeLifecycleName("e2e-agent-2", "drain")), ["create", "create"]);
    assert.match(armed.find((s) => s.name === nodeLifecycleName("e2e-agent-2", "drain"))!.stdout, /decommission\[e2e-agent-2\]: armed/);
    assert.ok(!lastRun!.runs.has("e2e-agent-2"), "nothing is installed or changed on a decommissioned node");
    assert.doesNotMatch(calls(server), /cordon|drain|delete node/);

    // Other changes: the node's own entry, its SSH settings, a cluster-wide change, a new token.
    const unchanged = (steps: StepRecord[]) => {
      for (const name of [nodeLifecycleName("e2e-agent-2", "uninstall"), nodeLifecycleName("e2e-agent-2", "drain")]) {
        assert.ok(["same", "update"].includes(steps.find((s) => s.name === name)!.op), `${name}: ${steps.find((s) => s.name === name)!.op}`);
      }
      // The server's own restart for the cluster-wide change is cordoned and drained (issue 26): not the agent's teardown.
      assert.doesNotMatch(calls(server), /(cordon|drain|delete node) e2e-agent-2/);
      assert.doesNotMatch(calls(agent), /uninstall/);
      assert.ok(existsSync(join(agent.upper, "var/lib/k3sp-stub/active/k3s-agent")), "K3s still runs on the node");
      assert.equal(installRuns(agent).length, installs);
    };
    edits.push(onNode("e2e-agent-2", (n) => (n.labels = { "example.com/disk": "ssd" })));
    edits.push((raw) => (raw.k3s!.kubelet = { maxPods: 150 }));
    unchanged(await up());
    edits.push((raw) => (raw.ssh!.perDialTimeout = 20));
    const sshChange = await up();
    assert.equal(sshChange.find((s) => s.name === nodeLifecycleName("e2e-agent-2", "drain"))!.op, "update", "an SSH change is an Update (the no-op `update`)");
    unchanged(sshChange);

    // The engine's rule the design avoids: a triggers change replaces, so the old `delete` runs.
    const probe = (trigger: string) => ({ name: "probe", target: target(stack().nodes[0]!), connection: "c", create: "true", delete: "echo replaced >/tmp/k3sp-probe", triggers: [trigger] });
    const contrast = new CommandProviderModel();
    await contrast.up([probe("1")]);
    assert.deepEqual((await contrast.up([probe("2")]))[0]!.ran, ["create", "delete"]);

    // A mistaken diff: the `decommission: true` line deleted instead of the entry. The engine
    // deletes the teardown resources the program no longer declares; the drain refuses on the
    // server (the cluster's managed-node list names the node again), so nothing is removed.
    const beforeMistake = hosts.map(calls);
    edits.push(onNode("e2e-agent-2", (n) => delete n.decommission));
    await assert.rejects(up(), (e: Error) => {
      assert.ok(e instanceof UpError, String(e));
      assert.equal(e.resource, nodeLifecycleName("e2e-agent-2", "drain"));
      assert.match(e.message, /e2e-agent-2 is still a node entry without decommission: true .*set decommission: false/);
      return true;
    });
    assert.ok(!existsSync(join(server.upper, "var/lib/k3s-platform/managed-nodes")), "the list lives in the cluster only (issue 26)");
    assert.doesNotMatch(calls(server).slice(beforeMistake[hosts.indexOf(server)]!.length), /cordon|drain|delete node/);
    assert.doesNotMatch(calls(agent), /uninstall/);
    assert.ok(existsSync(join(agent.upper, "var/lib/k3sp-stub/active/k3s-agent")), "K3s still runs on the node");
    assert.ok(model.state.has(nodeLifecycleName("e2e-agent-2", "drain")) && model.state.has(nodeLifecycleName("e2e-agent-2", "uninstall")), "both stay in state");
    // Converges: `decommission: false` declares them again (an Update: disarmed); then re-arm.
    edits.push(onNode("e2e-agent-2", (n) => (n.decommission = false)));
    const disarmed = await up();
    assert.deepEqual(opsOf(disarmed, nodeLifecycleName("e2e-agent-2", "uninstall"), nodeLifecycleName("e2e-agent-2", "drain")), ["update", "update"]);
    edits.push(onNode("e2e-agent-2", (n) => (n.decommission = true)));
    await up();
    assert.doesNotMatch(calls(agent), /uninstall/);

    entries = entries.filter((e) => e.name !== "e2e-agent-2");
    const removed = await up();
    const deletes = removed.filter((s) => s.op === "delete").map((s) => s.name);
    assert.deepEqual(deletes, [nodeLifecycleName("e2e-agent-2", "drain"), nodeLifecycleName("e2e-agent-2", "uninstall")]);
    const [cordon] = callTimes(server, /k3s kubectl cordon e2e-agent-2$/);
    const [drain] = callTimes(server, /k3s kubectl drain e2e-agent-2 --ignore-daemonsets --delete-emptydir-data --timeout=300s$/);
    const [deleted] = callTimes(server, /k3s kubectl delete node e2e-agent-2 --wait=true --timeout=300s$/);
    const [uninstalled] = callTimes(agent, /k3s-agent-uninstall\.sh$/);
    assert.ok(cordon! < drain! && drain! < deleted! && deleted! < uninstalled!, "cordon, drain, delete node on the server, then uninstall on the node");
    assert.match(removed.find((s) => s.name === nodeLifecycleName("e2e-agent-2", "drain"))!.stdout, /decommission\[e2e-agent-2\]: drain \(\d+s\)/);
    assert.ok(!existsSync(join(agent.upper, "var/lib/k3sp-stub/active/k3s-agent")), "k3s-agent stopped");
    assert.ok(!existsSync(join(agent.upper, "etc/rancher/k3s/config.yaml")) && !existsSync(join(agent.upper, "var/lib/k3s-platform")), "K3s and k3s-platform state removed");

    const before = hosts.map(calls);
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), [], "a second up is a no-op");
    assert.deepEqual(hosts.map(calls), before);
  });

  it("host unreachable mid-removal: the drain ran, the uninstall fails naming the node; the next up finishes only the uninstall", async () => {
    const agent = hostByName("e2e-agent-1");
    const server = hostByName("e2e-server-1");
    edits.push(onNode("e2e-agent-1", (n) => (n.decommission = true)));
    await up();
    entries = entries.filter((e) => e.name !== "e2e-agent-1");
    execFileSync("bash", [HOSTS, "stop", "3", dir]);
    await assert.rejects(up(), (e: Error) => {
      assert.ok(e instanceof UpError);
      assert.equal(e.resource, nodeLifecycleName("e2e-agent-1", "uninstall"));
      assert.match(e.message, /status 255: .*(refused|timed out|No route)/);
      return true;
    });
    assert.equal(callTimes(server, /k3s kubectl delete node e2e-agent-1 /).length, 1, "the drain finished before the failure");
    assert.ok(model.state.has(nodeLifecycleName("e2e-agent-1", "uninstall")) && !model.state.has(nodeLifecycleName("e2e-agent-1", "drain")));

    execFileSync("bash", [HOSTS, "start", "3", dir]);
    const healed = await up();
    assert.deepEqual(healed.filter((s) => s.op === "delete").map((s) => s.name), [nodeLifecycleName("e2e-agent-1", "uninstall")]);
    assert.equal(callTimes(server, /k3s kubectl (cordon|drain|delete node) e2e-agent-1/).length, 3, "not drained twice");
    assert.equal(callTimes(agent, /k3s-agent-uninstall\.sh$/).length, 1);
  });

  it("rebuild: a re-imaged first server gets nothing until `rebuild: 1`; then it is forgotten on the second server and joins through it (node password accepted); a second up runs nothing", async () => {
    const first = hostByName("e2e-server-1");
    const second = hostByName("e2e-server-2");
    // Re-imaged: K3s data, config, node password and k3s-platform state gone (the air-gap binary is pre-staged again).
    const wiped = await ssh(first, "sudo -n sh -c 'systemctl stop k3s && rm -rf /var/lib/rancher/k3s /etc/rancher/k3s /etc/rancher/node /var/lib/k3s-platform'");
    assert.equal(wiped.status, 0, wiped.stderr);
    // The real engine sees no change in the config: nothing runs (README used to say "run up").
    const idle = await up();
    assert.deepEqual(idle.filter((s) => s.op !== "same").map((s) => s.name), []);
    assert.equal(lastRun!.runs.size, 0, "no node step runs without a config change");
    assert.ok(!existsSync(join(first.upper, PATHS.configYaml)), "still nothing on the re-imaged host");

    edits.push(onNode("e2e-server-1", (n) => (n.rebuild = 1)));
    // The value is in the triggers of every step of that node (and of no other node).
    const plan = planCluster(stack());
    for (const n of plan.nodes) {
      const { connection: _, ...steps } = nodeTriggers(stack(), n);
      for (const [step, triggers] of Object.entries(steps)) assert.equal(triggers.at(-1) === "1", n.node.name === "e2e-server-1", `${n.node.name} ${step}`);
    }
    const installs = installRuns(second).length;
    const mark = Date.now() / 1000;
    const steps = await up();
    const forget = steps.find((s) => s.name === nodeLifecycleName("e2e-server-1", "forget"))!;
    assert.equal(forget.op, "create");
    assert.match(forget.stdout, /rebuild\[e2e-server-1\]: Node e2e-server-1 is not Ready \(Ready=Unknown\): deleting it/);
    assert.equal(callTimes(second, /k3s kubectl delete node e2e-server-1 --wait=true --timeout=300s$/).length, 1, "forgotten on the second server");
    assert.deepEqual([...lastRun!.runs.keys()], ["e2e-server-1"], "only the rebuilt node's steps run");
    assert.match(lastRun!.runs.get("e2e-server-1")!.apply, new RegExp(`the data directory is empty and https://${second.address.replace(/\./g, "\\.")}:6443 serves: joining the running cluster through it \\(never cluster-init\\)`));
    assert.equal(readFileSync(join(first.upper, JOIN_DROPIN), "utf8").split("\n").slice(1).join("\n"), `server: https://${second.address}:6443\ncluster-init: false\n`);
    assert.ok(existsSync(join(first.upper, "var/lib/rancher/k3s/server/db/etcd")), "joined: member data exists");
    // The cluster's records (hosts/root-overlay/usr/local/lib/k3sp-stub/join): the old Node, its
    // password and etcd member deleted first, then a new member and the new password accepted.
    const identity = /^(delete-node|delete-secret|etcd-|node-password-)/;
    const events = clusterEvents(dir).filter((e) => e.at >= mark && e.node === "e2e-server-1" && identity.test(e.event));
    assert.deepEqual(events.map((e) => e.event), ["etcd-member-removed", "delete-node", "etcd-member-add", "node-password-created"]);
    const password = readFileSync(join(first.upper, "etc/rancher/node/password"));
    assert.equal(readFileSync(join(dir, "cluster/node-passwords/e2e-server-1"), "utf8").trim(), createHash("sha256").update(password).digest("hex"));
    assert.equal(installRuns(second).length, installs, "the second server was not touched");

    const before = hosts.map(calls);
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), [], "a second up is a no-op");
    assert.equal(lastRun!.runs.size, 0);
    assert.deepEqual(hosts.map(calls), before);
  });

  it("rebuild in a partition: `rebuild: 2` while no other server answers refuses to cluster-init (join-only); with the server back the next up joins", async () => {
    const first = hostByName("e2e-server-1");
    const second = hostByName("e2e-server-2");
    const wiped = await ssh(first, "sudo -n sh -c 'systemctl stop k3s && rm -rf /var/lib/rancher/k3s /etc/rancher/k3s /etc/rancher/node /var/lib/k3s-platform'");
    assert.equal(wiped.status, 0, wiped.stderr);
    edits.push(onNode("e2e-server-1", (n) => (n.rebuild = 2)));
    const mark = Date.now() / 1000;
    // The partition begins after the forget step ran: K3s stops on the only other server.
    const stop = async () => {
      const r = await ssh(second, "sudo -n systemctl stop k3s");
      assert.equal(r.status, 0, r.stderr);
    };
    await assert.rejects(
      up(undefined, stop),
      (e: Error) => {
        assert.match(
          e.message,
          new RegExp(
            `apply\\[e2e-server-1\\]: the data directory is empty and no other server answers on :6443 \\(tried e2e-server-2 https://${second.address.replace(/\./g, "\\.")}:6443\\); this server is being rebuilt \\(nodes\\[\\]\\.rebuild\\), so the cluster exists: refusing to cluster-init a second cluster; bring a server back, or restore a snapshot: docs/backup-and-restore\\.md`,
          ),
        );
        return true;
      },
    );
    assert.equal(model.state.get(nodeLifecycleName("e2e-server-1", "forget"))!.triggers![0], "2", "the forget ran (value 2) before the partition");
    assert.equal(installRuns(first).filter((r) => r.start >= mark).length, 0, "no install ran on the first server");
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= mark && e.event === "etcd-new-cluster"), [], "no second cluster");
    assert.ok(!existsSync(join(first.upper, "var/lib/rancher/k3s/server/db/etcd")));

    const started = await ssh(second, "sudo -n systemctl start k3s");
    assert.equal(started.status, 0, started.stderr);
    const healed = await up();
    assert.equal(healed.find((s) => s.name === nodeLifecycleName("e2e-server-1", "forget"))!.op, "same", "forgotten once per value");
    assert.match(lastRun!.runs.get("e2e-server-1")!.apply, /serves: joining the running cluster through it/);
    // The forget (before the partition) removed the old member; the join added a new one.
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= mark && e.node === "e2e-server-1" && e.event.startsWith("etcd-")).map((e) => e.event), ["etcd-member-removed", "etcd-member-add"]);
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), []);
    assert.equal(lastRun!.runs.size, 0);
  });

  it("replacing the first server: a new name in the first slot joins the running cluster; servers never restart two at once", async () => {
    // A third server first (two servers cannot lose one: quorum), on a host whose K3s was uninstalled.
    await restage(hosts[3]!);
    entries.push({ name: "e2e-server-3", host: 3, role: "server" });
    await up();
    assert.match(readFileSync(join(hosts[3]!.upper, PATHS.configYaml), "utf8"), new RegExp(`^server: https://${hosts[0]!.address.replace(/\./g, "\\.")}:6443$`, "m"));

    edits.push(onNode("e2e-server-1", (n) => (n.decommission = true)));
    await up();
    // The next server holds the first slot now; its data exists, so it keeps its etcd member.
    assert.match(readFileSync(join(hosts[1]!.upper, PATHS.configYaml), "utf8"), /^cluster-init: true$/m);
    assert.ok(!existsSync(join(hosts[1]!.upper, JOIN_DROPIN)));

    await restage(hosts[2]!);
    const mark = Date.now() / 1000;
    entries = [{ name: "e2e-server-4", host: 2, role: "server" }, ...entries.filter((e) => e.name !== "e2e-server-1")];
    const steps = await up();
    assert.match(lastRun!.runs.get("e2e-server-4")!.apply, new RegExp(`https://${hosts[1]!.address.replace(/\./g, "\\.")}:6443 serves: joining the running cluster`));
    assert.deepEqual(steps.filter((s) => s.op === "delete").map((s) => s.name), [nodeLifecycleName("e2e-server-1", "drain"), nodeLifecycleName("e2e-server-1", "uninstall")]);
    // (Earlier deletes of e2e-server-1 there were the rebuilds' forget steps.)
    assert.equal(callTimes(hosts[1]!, /k3s kubectl delete node e2e-server-1 /).filter((t) => t >= mark).length, 1, "drained on the server holding the first slot when it was armed");
    assert.equal(callTimes(hosts[0]!, /k3s-uninstall\.sh$/).length, 1);
    // Server installs in this up: one after another, never overlapping.
    const runs = [hosts[2]!, hosts[1]!, hosts[3]!].flatMap((h) => installRuns(h).filter((r) => r.start >= mark));
    runs.sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) assert.ok(runs[i - 1]!.end <= runs[i]!.start, "never two servers at once");
    assert.ok(runs.length >= 2);
  });

  it("token rotation: rotated once on the first server before any restart, servers restart one at a time with the new token; a second up is a no-op", async () => {
    const servers = ["e2e-server-4", "e2e-server-2", "e2e-server-3"].map(hostByName);
    const mark = Date.now() / 1000;
    token = TOKEN_2;
    const steps = await up();
    assert.equal(steps.find((s) => s.name === CLUSTER_CHILDREN.tokenRotate)!.op, "replace");
    const want = createHash("sha256").update(TOKEN_2).digest("hex");
    // Rotated through K3s' token endpoint (the curl stand-in models it): no token in any argv.
    const rotated = callTimes(servers[0]!, new RegExp(`token endpoint: rotated new-token-sha256=${want}$`));
    assert.match(calls(servers[0]!), /^[0-9.]+ curl -K -$/m, "curl's only arguments: read the configuration from stdin");
    assert.equal(rotated.length, 1);
    const restartAt = servers.map((h) => restarts(h, "k3s").filter((t) => t >= mark));
    for (const r of restartAt) assert.equal(r.length, 1, "each server restarted once");
    assert.ok(rotated[0]! < restartAt[0]![0]! && restartAt[0]![0]! < restartAt[1]![0]! && restartAt[1]![0]! < restartAt[2]![0]!, "rotate, then servers one at a time");
    for (const h of servers) assert.match(readFileSync(join(h.upper, PATHS.secretDropIn), "utf8"), new RegExp(`token: ${TOKEN_2}`));
    assert.doesNotMatch(calls(servers[0]!), new RegExp(TOKEN_2), "the token itself is never recorded");

    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), []);
    assert.equal(callTimes(servers[0]!, /token endpoint: rotated/).length, 1);
  });

  it("certificate rotation: stop, rotate, start, servers one at a time; SSH setting changes never re-run it; host down mid-rotation converges", async () => {
    const servers = ["e2e-server-4", "e2e-server-2", "e2e-server-3"].map(hostByName);
    const before = expiry["e2e-server-4"]!.earliest!.expires;
    await new Promise((r) => setTimeout(r, 1100)); // a later issue date is visible in whole seconds
    edits.push((raw) => (raw.certificates = { rotation: 1 }));
    const third = String(hosts.indexOf(servers[2]!) + 1);
    await assert.rejects(up(() => execFileSync("bash", [HOSTS, "stop", third, dir])), (e: Error) => {
      assert.ok(e instanceof UpError, e.message);
      assert.equal(e.resource, nodeLifecycleName("e2e-server-3", "rotateCertificates"));
      assert.match(e.message, /status 255/);
      return true;
    });
    assert.equal(callTimes(servers[1]!, /k3s certificate rotate/).length, 1, "the servers before it rotated");
    execFileSync("bash", [HOSTS, "start", String(hosts.indexOf(servers[2]!) + 1), dir]);
    const healed = await up();
    assert.deepEqual(healed.filter((s) => s.name.endsWith(`-${NODE_LIFECYCLE_CHILDREN.rotateCertificates}`) && s.op !== "same").map((s) => s.name), [nodeLifecycleName("e2e-server-3", "rotateCertificates")]);
    const rotatedAt = servers.map((h) => callTimes(h, /k3s certificate rotate \(service stopped\)$/));
    for (const r of rotatedAt) assert.equal(r.length, 1, "each server rotated once, with K3s stopped");
    assert.ok(rotatedAt[0]![0]! < rotatedAt[1]![0]! && rotatedAt[1]![0]! < rotatedAt[2]![0]!);
    for (let i = 1; i < servers.length; i++) {
      const startedBefore = callTimes(servers[i - 1]!, /systemctl start --no-block k3s$/).at(-1)!;
      const stopped = callTimes(servers[i]!, /systemctl stop k3s$/).at(-1)!;
      assert.ok(startedBefore < stopped, "the previous server is back before the next stops");
    }
    assert.ok(expiry["e2e-server-4"]!.earliest!.expires > before, "the expiry output moved");

    edits.push((raw) => (raw.ssh!.dialErrorLimit = 12));
    const sshChange = await up();
    assert.deepEqual(sshChange.filter((s) => s.name.endsWith(`-${NODE_LIFECYCLE_CHILDREN.rotateCertificates}`)).map((s) => s.op), ["update", "update", "update"]);
    for (const h of servers) assert.equal(callTimes(h, /k3s certificate rotate/).length, 1, "an SSH change is the no-op update");
  });

  it("a decommission line deleted while the server its drain runs on is armed in the same up: the cluster's list refuses it (that server's own list is stale)", async () => {
    const drainHost = hostByName("e2e-server-4"); // the first server: every drain runs there
    const node = hostByName("e2e-server-3");
    edits.push(onNode("e2e-server-3", (n) => (n.decommission = true)));
    await up();
    assert.equal(model.state.get(nodeLifecycleName("e2e-server-3", "drain"))!.target, target(stack().nodes.find((n) => n.name === "e2e-server-4")!));
    // One up: the drain's server is armed (the first slot moves to e2e-server-2; nothing runs on
    // e2e-server-4 any more) and the e2e-server-3 line is deleted instead of its entry. The engine runs the stored drain's
    // delete on e2e-server-4.
    const mark = Date.now() / 1000;
    edits.push(onNode("e2e-server-4", (n) => (n.decommission = true)));
    edits.push(onNode("e2e-server-3", (n) => delete n.decommission));
    await assert.rejects(up(), (e: Error) => {
      assert.ok(e instanceof UpError, String(e));
      assert.equal(e.resource, nodeLifecycleName("e2e-server-3", "drain"));
      assert.match(e.message, /e2e-server-3 is still a node entry without decommission: true/);
      return true;
    });
    assert.ok(!existsSync(join(drainHost.upper, "var/lib/k3s-platform/managed-nodes")), "no server keeps a copy of the list (issue 26): the cluster's is the one");
    assert.deepEqual(callTimes(drainHost, /k3s kubectl (cordon|drain|delete node) e2e-server-3/).filter((t) => t >= mark), []);
    assert.deepEqual(callTimes(node, /uninstall\.sh$/).filter((t) => t >= mark), [], "not uninstalled (the host's log holds an earlier test's removal)");
    assert.ok(existsSync(join(node.upper, "var/lib/k3sp-stub/active/k3s")), "K3s still runs on e2e-server-3");
    assert.ok(model.state.has(nodeLifecycleName("e2e-server-3", "drain")) && model.state.has(nodeLifecycleName("e2e-server-3", "uninstall")));

    // Converges: disarm both; the teardowns stay declared (Updates), nothing is removed.
    edits.push(onNode("e2e-server-3", (n) => (n.decommission = false)));
    edits.push(onNode("e2e-server-4", (n) => (n.decommission = false)));
    await up();
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), []);
    assert.deepEqual(callTimes(node, /uninstall\.sh$/).filter((t) => t >= mark), []);
    assert.deepEqual(callTimes(drainHost, /k3s kubectl (cordon|drain|delete node) e2e-server-3/).filter((t) => t >= mark), []);
  });

  it("a host re-used by a new entry in the up that removes its old entry: the old Node goes, the etcd member the new Node carries stays, K3s stays", async () => {
    const host = hostByName("e2e-server-3");
    const drainHost = hostByName("e2e-server-4"); // the first server
    edits.push(onNode("e2e-server-3", (n) => (n.decommission = true)));
    await up();
    const member = readFileSync(join(host.upper, "var/lib/rancher/k3s/server/db/etcd/name"), "utf8").trim();
    assert.ok(existsSync(join(dir, "cluster/etcd-members", member)), `${member} is a member`);

    // One up: the armed entry is deleted and a new entry takes its host. Creates and updates run
    // before deletes, so the host runs K3s as e2e-server-5 (same data, same member) when the
    // old entry's teardown runs.
    const mark = Date.now() / 1000;
    entries = entries.map((e) => (e.name === "e2e-server-3" ? { ...e, name: "e2e-server-5" } : e));
    const steps = await up();
    assert.deepEqual(steps.filter((s) => s.op === "delete").map((s) => s.name), [nodeLifecycleName("e2e-server-3", "drain"), nodeLifecycleName("e2e-server-3", "uninstall")]);
    assert.match(readFileSync(join(host.upper, PATHS.configYaml), "utf8"), /^node-name: e2e-server-5$/m);
    assert.equal(readFileSync(join(dir, "cluster/nodes/e2e-server-5/annotations/etcd.k3s.cattle.io_node-name"), "utf8").trim(), member, "the new Node carries the old member");
    const drain = steps.find((s) => s.name === nodeLifecycleName("e2e-server-3", "drain"))!.stdout;
    // Its Ready is still True (the node monitor's grace period), but no kubelet runs for it: a drain
    // would wait on evictions until its timeout (the kubectl stand-in models that) and fail the up.
    assert.match(drain, /its host serves Node e2e-server-5 now, so no kubelet runs for e2e-server-3: skipping cordon and drain/);
    assert.deepEqual(callTimes(drainHost, /k3s kubectl (cordon|drain) e2e-server-3/).filter((t) => t >= mark), []);
    assert.match(drain, new RegExp(`etcd member ${member} belongs to Node e2e-server-5 now`));
    assert.equal(callTimes(drainHost, /k3s kubectl delete node e2e-server-3 /).filter((t) => t >= mark).length, 1, "the old Node is deleted");
    assert.ok(!existsSync(join(dir, "cluster/nodes/e2e-server-3")));
    assert.ok(existsSync(join(dir, "cluster/etcd-members", member)), "the member e2e-server-5 runs on stays in etcd");
    assert.deepEqual(
      clusterEvents(dir).filter((e) => e.at >= mark && e.event.startsWith("etcd-member-")).map((e) => `${e.event} ${e.node} ${e.detail}`),
      [`etcd-member-kept e2e-server-3 ${member}`],
    );
    assert.match(steps.find((s) => s.name === nodeLifecycleName("e2e-server-3", "uninstall"))!.stdout, /this host runs node e2e-server-5 now/);
    assert.deepEqual(callTimes(host, /uninstall\.sh$/).filter((t) => t >= mark), [], "K3s is e2e-server-5's: not uninstalled");
    assert.ok(existsSync(join(host.upper, "var/lib/k3sp-stub/active/k3s")), "K3s still runs on the host");
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), []);
  });

  it("rebuild of an agent: the re-imaged agent is forgotten on the first server (its node password goes with the Node), then registers with its new password; a second up runs nothing", async () => {
    const host = hosts[0]!; // free: e2e-server-1 was uninstalled from it
    await restage(host);
    entries.push({ name: "e2e-agent-3", host: 0, role: "agent" });
    await up();
    assert.ok(existsSync(join(dir, "cluster/node-passwords/e2e-agent-3")), "registered");
    const firstServer = hostByName("e2e-server-4");
    // Re-imaged: data, config, node password and k3s-platform state gone (the binary pre-staged again).
    const wiped = await ssh(host, "sudo -n sh -c 'systemctl stop k3s-agent && rm -rf /var/lib/rancher/k3s /etc/rancher/k3s /etc/rancher/node /var/lib/k3s-platform'");
    assert.equal(wiped.status, 0, wiped.stderr);
    const mark = Date.now() / 1000;
    edits.push(onNode("e2e-agent-3", (n) => (n.rebuild = 1)));
    const steps = await up();
    const forget = steps.find((s) => s.name === nodeLifecycleName("e2e-agent-3", "forget"))!;
    assert.equal(forget.op, "create");
    assert.match(forget.stdout, /rebuild\[e2e-agent-3\]: Node e2e-agent-3 is not Ready \(Ready=Unknown\): deleting it/);
    assert.equal(model.state.get(nodeLifecycleName("e2e-agent-3", "forget"))!.target, target(stack().nodes.find((n) => n.name === "e2e-server-4")!), "forgotten on the first server");
    assert.equal(callTimes(firstServer, /k3s kubectl delete node e2e-agent-3 --wait=true --timeout=300s$/).filter((t) => t >= mark).length, 1);
    assert.deepEqual([...lastRun!.runs.keys()], ["e2e-agent-3"], "only the rebuilt node's steps run");
    // The old Node and its password record went first; the new password was accepted, not rejected.
    const identity = /^(delete-node|delete-secret|etcd-|node-password-)/;
    assert.deepEqual(
      clusterEvents(dir).filter((e) => e.at >= mark && e.node === "e2e-agent-3" && identity.test(e.event)).map((e) => e.event),
      ["delete-node", "node-password-created"],
    );
    const password = readFileSync(join(host.upper, "etc/rancher/node/password"));
    assert.equal(readFileSync(join(dir, "cluster/node-passwords/e2e-agent-3"), "utf8").trim(), createHash("sha256").update(password).digest("hex"));
    assert.ok(existsSync(join(host.upper, "var/lib/k3sp-stub/active/k3s-agent")), "k3s-agent runs again");
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), []);
  });

  /** Members of the stand-in etcd (lib/k3sp-stub/join), and the count after each member event since `mark`. */
  const members = () => readdirSync(join(dir, "cluster/etcd-members"));
  const memberCounts = (start: number, mark: number) => {
    const counts = [start];
    for (const e of clusterEvents(dir).filter((e) => e.at >= mark)) {
      if (e.event === "etcd-member-add") counts.push(counts.at(-1)! + 1);
      if (e.event === "etcd-member-removed") counts.push(counts.at(-1)! - 1);
    }
    return counts;
  };
  const eventAt = (mark: number, event: string, node: string) => clusterEvents(dir).find((e) => e.at >= mark && e.event === event && e.node === node)?.at;

  it("replacing a server (the prod path, issue 23): arm the old one alone, then add the new one and delete the old entry in one up: it joins first, then the old one leaves; three members at every point; a second up is a no-op", async () => {
    // Servers now: e2e-server-4 (first), e2e-server-2, e2e-server-5. Host 4 is free.
    assert.deepEqual(stack().nodes.filter((n) => n.role === "server").map((n) => n.name), ["e2e-server-4", "e2e-server-2", "e2e-server-5"]);
    const old = hostByName("e2e-server-2");
    assert.equal(members().length, 3);
    edits.push(onNode("e2e-server-2", (n) => (n.decommission = true)));
    const mark = Date.now() / 1000;
    await up();
    assert.equal(members().length, 3, "arming stops nothing");
    assert.deepEqual(callTimes(old, /uninstall\.sh$/).filter((t) => t >= mark), []);

    entries = [...entries.filter((e) => e.name !== "e2e-server-2"), { name: "e2e-server-6", host: 4, role: "server" }];
    const swap = Date.now() / 1000;
    const steps = await up();
    assert.deepEqual(steps.filter((s) => s.op === "delete").map((s) => s.name), [nodeLifecycleName("e2e-server-2", "drain"), nodeLifecycleName("e2e-server-2", "uninstall")]);
    const joined = eventAt(swap, "etcd-member-add", "e2e-server-6");
    const left = eventAt(swap, "etcd-member-removed", "e2e-server-2");
    const [uninstalled] = callTimes(old, /k3s-uninstall\.sh$/).filter((t) => t >= swap);
    assert.ok(joined && left && uninstalled, `joined ${joined}, left ${left}, uninstalled ${uninstalled}`);
    assert.ok(joined < left && left < uninstalled!, "the new server joins, then the old one leaves etcd, then it is uninstalled");
    assert.deepEqual(memberCounts(3, swap), [3, 4, 3], "never fewer than three members");
    assert.match(steps.find((s) => s.name === nodeLifecycleName("e2e-server-2", "drain"))!.stdout, /etcd keeps quorum: 3 members left, 3 on Ready Nodes \(needs 2\)/);
    assert.equal(members().length, 3);
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), [], "a second up is a no-op");
  });

  it("shrinking the control plane 5 -> 3 (issue 23): two armed servers leave one at a time, each after etcd removed the one before; a removal that would cost quorum stops the up naming the step and the Nodes that are down; the next up finishes", async () => {
    // Grow to five: e2e-server-7 on host 1 (e2e-server-2's, uninstalled), e2e-server-8 on host 5.
    await restage(hosts[1]!);
    entries.push({ name: "e2e-server-7", host: 1, role: "server" }, { name: "e2e-server-8", host: 5, role: "server" });
    await up();
    assert.equal(members().length, 5);
    edits.push(onNode("e2e-server-4", (n) => (n.decommission = true)), onNode("e2e-server-5", (n) => (n.decommission = true)));
    await up();
    assert.equal(members().length, 5, "arming stops nothing");

    // Two of the three that stay go down after the node steps of the removing up (the node
    // controller marks a Node whose kubelet stopped posting Ready=Unknown): removing a member
    // then would leave 2 of 4 on Ready Nodes.
    const readyFile = (name: string) => join(dir, "cluster/nodes", name, "ready");
    const setReady = (status: string) => () => {
      for (const name of ["e2e-server-7", "e2e-server-8"]) writeFileSync(readyFile(name), `${status}\n`);
    };
    const host4 = hostByName("e2e-server-4");
    const failed = Date.now() / 1000;
    entries = entries.filter((e) => e.name !== "e2e-server-4" && e.name !== "e2e-server-5");
    await assert.rejects(up(setReady("Unknown")), (e: Error) => {
      assert.ok(e instanceof UpError, String(e));
      assert.equal(e.resource, nodeLifecycleName("e2e-server-4", "drain"));
      assert.match(e.message, /decommission\[e2e-server-4\] drain on e2e-server-\d+: after e2e-server-4 leaves, 2 of 4 etcd members are on Ready Nodes and etcd needs 3: bring back e2e-server-7 e2e-server-8 first; nothing was changed/);
      return true;
    });
    assert.equal(members().length, 5, "no member removed");
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= failed && /^(cordon|drain|delete-node|etcd-member)/.test(e.event)), [], "nothing removed, the second server untouched");
    assert.ok(model.state.has(nodeLifecycleName("e2e-server-4", "uninstall")) && model.state.has(nodeLifecycleName("e2e-server-5", "drain")));

    setReady("True")();
    const mark = Date.now() / 1000;
    const steps = await up();
    assert.deepEqual(steps.filter((s) => s.op === "delete").map((s) => s.name), [
      nodeLifecycleName("e2e-server-4", "drain"),
      nodeLifecycleName("e2e-server-4", "uninstall"),
      nodeLifecycleName("e2e-server-5", "drain"),
      nodeLifecycleName("e2e-server-5", "uninstall"),
    ]);
    const gone4 = eventAt(mark, "etcd-member-removed", "e2e-server-4")!;
    const [stopped4] = callTimes(host4, /k3s-uninstall\.sh$/).filter((t) => t >= mark);
    const cordon5 = eventAt(mark, "cordon", "e2e-server-5")!;
    const gone5 = eventAt(mark, "etcd-member-removed", "e2e-server-5")!;
    assert.ok(gone4 && stopped4 && cordon5 && gone5, JSON.stringify({ gone4, stopped4, cordon5, gone5 }));
    assert.ok(gone4 < stopped4! && stopped4! < cordon5 && cordon5 < gone5, "e2e-server-4 leaves etcd and is uninstalled before e2e-server-5 is touched");
    assert.deepEqual(memberCounts(5, mark), [5, 4, 3]);
    assert.deepEqual(members().length, 3);
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), [], "a second up is a no-op");
  });

  it("pulumi destroy with uninstallOnDestroy (issue 23): turning it off uninstalls nothing; destroy marks the nodes, then uninstalls the agent, the other servers (each leaving etcd first) and the first server, one at a time; a host down stops it naming the step; the next destroy finishes; a second is a no-op", async () => {
    // Now: e2e-agent-3 (host 0) and the servers e2e-server-6 (the first, host 4), -7 (host 1), -8 (host 5).
    const names = ["e2e-agent-3", "e2e-server-8", "e2e-server-7", "e2e-server-6"].map((n) => nodeLifecycleName(n, "destroyUninstall"));
    const nodeHosts = ["e2e-agent-3", "e2e-server-8", "e2e-server-7", "e2e-server-6"].map(hostByName);
    const uninstallCalls = (since: number) => nodeHosts.flatMap((h) => callTimes(h, /uninstall\.sh$/).filter((t) => t >= since));
    edits.push((raw) => (raw.uninstallOnDestroy = true));
    const armedAt = Date.now() / 1000;
    const armed = await up();
    assert.deepEqual(opsOf(armed, CLUSTER_CHILDREN.destroyBegin, ...names), ["create", "create", "create", "create", "create"]);
    assert.match(armed.find((s) => s.name === CLUSTER_CHILDREN.destroyBegin)!.stdout, /armed: pulumi destroy uninstalls K3s from every node/);

    // Turned off: the engine deletes the dropped commands, and each finds no mark.
    edits.push((raw) => (raw.uninstallOnDestroy = false));
    const off = await up();
    assert.deepEqual(off.filter((s) => s.op === "delete").map((s) => s.name).sort(), [CLUSTER_CHILDREN.destroyBegin, ...names].sort());
    assert.match(off.find((s) => s.name === CLUSTER_CHILDREN.destroyBegin)!.stdout, /not a destroy, nothing marked/);
    for (const n of names) assert.match(off.find((s) => s.name === n)!.stdout, /not marked by destroy-begin/, n);
    assert.deepEqual(uninstallCalls(armedAt), [], "nothing uninstalled");
    edits.push((raw) => (raw.uninstallOnDestroy = true));
    await up();
    assert.equal(members().length, 3);

    // pulumi destroy: the program declares nothing, the engine deletes everything in state.
    execFileSync("bash", [HOSTS, "stop", "1", dir]); // host 0: e2e-agent-3
    const mark = Date.now() / 1000;
    await assert.rejects(model.up([]), (e: Error) => {
      assert.ok(e instanceof UpError, String(e));
      assert.equal(e.resource, nodeLifecycleName("e2e-agent-3", "destroyUninstall"));
      assert.match(e.message, /status 255: .*(refused|timed out|No route)/);
      return true;
    });
    assert.ok(!model.state.has(CLUSTER_CHILDREN.destroyBegin) && names.every((n) => model.state.has(n)), "destroy-begin ran; every uninstall is still to do");
    assert.deepEqual(uninstallCalls(mark), [], "no server touched after the failure");
    assert.equal(members().length, 3);

    execFileSync("bash", [HOSTS, "start", "1", dir]);
    const destroyed = await model.up([]);
    assert.deepEqual(destroyed.filter((s) => names.includes(s.name)).map((s) => s.name), names, "agent, then the other servers (last first), then the first server");
    const [agentGone] = callTimes(nodeHosts[0]!, /k3s-agent-uninstall\.sh$/).filter((t) => t >= mark);
    const left8 = eventAt(mark, "etcd-member-removed", "e2e-server-8")!;
    const [gone8] = callTimes(nodeHosts[1]!, /k3s-uninstall\.sh$/).filter((t) => t >= mark);
    const left7 = eventAt(mark, "etcd-member-removed", "e2e-server-7")!;
    const [gone7] = callTimes(nodeHosts[2]!, /k3s-uninstall\.sh$/).filter((t) => t >= mark);
    const [gone6] = callTimes(nodeHosts[3]!, /k3s-uninstall\.sh$/).filter((t) => t >= mark);
    const order = [agentGone, left8, gone8, left7, gone7, gone6];
    assert.ok(order.every((t) => t !== undefined) && order.every((t, i) => i === 0 || order[i - 1]! < t!), `in order: ${JSON.stringify(order)}`);
    assert.deepEqual(memberCounts(3, mark), [3, 2, 1], "each server leaves etcd (through the first server) before it stops: the rest keep quorum");
    for (const h of nodeHosts) {
      for (const unit of ["k3s", "k3s-agent"]) assert.ok(!existsSync(join(h.upper, "var/lib/k3sp-stub/active", unit)), `${h.address}: ${unit} stopped`);
      assert.ok(!existsSync(join(h.upper, "var/lib/k3s-platform")), `${h.address}: k3s-platform state removed`);
    }
    assert.equal(model.state.size, 0, "nothing left in state");
    assert.deepEqual(await model.up([]), [], "a second destroy is a no-op");
  });

  it("a single sqlite server becomes HA embedded etcd (issue 23): in one up it restarts with cluster-init (K3s converts its data), then two servers join one at a time; a second up is a no-op; back to sqlite is refused on the host naming node and step", async () => {
    for (const h of [0, 1, 2]) await restage(hosts[h]!); // uninstalled by the tests above
    entries = [{ name: "e2e-sq-1", host: 0, role: "server" }];
    edits.push((raw) => {
      raw.k3s!.datastore = { type: "sqlite" };
      delete raw.uninstallOnDestroy;
    });
    await up();
    const db = (h: number, path: string) => existsSync(join(hosts[h]!.upper, "var/lib/rancher/k3s/server/db", path));
    assert.ok(db(0, "state.db") && !db(0, "etcd"), "a sqlite server");
    assert.doesNotMatch(readFileSync(join(hosts[0]!.upper, PATHS.configYaml), "utf8"), /cluster-init/);

    // The wrong order, the sqlite server running: the new first server's own apply asks it whether
    // it runs embedded etcd (/db/info answers 401 without etcd: the apiserver stand-in models K3s,
    // decommission/rejoin.ts names the sources) and refuses before K3s is installed or started
    // there, naming both nodes and the fix. The sqlite server keeps running, untouched.
    await restage(hosts[3]!);
    const refused = Date.now() / 1000;
    const sqliteConfig = readFileSync(join(hosts[0]!.upper, PATHS.configYaml), "utf8");
    edits.push((raw) => (raw.k3s!.datastore = { type: "etcd" }));
    entries = [{ name: "e2e-sq-0", host: 3, role: "server" }, ...entries];
    await assert.rejects(up(), /apply\[e2e-sq-0\]: e2e-sq-1 \(https:\/\/[^)]+:6443\) runs K3s without embedded etcd .*cannot join it .*list e2e-sq-1 first in nodes .*nothing was installed or started on e2e-sq-0/);
    assert.deepEqual(installRuns(hosts[3]!).filter((r) => r.start >= refused), [], "no K3s install on the new server");
    assert.deepEqual(callTimes(hosts[3]!, /systemctl (restart|start) k3s/).filter((t) => t >= refused), [], "K3s not started there");
    assert.ok(!existsSync(join(hosts[3]!.upper, "var/lib/rancher/k3s/server/db")) && !existsSync(join(hosts[3]!.upper, JOIN_DROPIN)), "no data, no join drop-in");
    assert.ok(db(0, "state.db") && !db(0, "etcd"), "the sqlite data stays");
    assert.equal(readFileSync(join(hosts[0]!.upper, PATHS.configYaml), "utf8"), sqliteConfig, "nothing placed on the sqlite server");
    assert.deepEqual(callTimes(hosts[0]!, /systemctl (restart|start|stop) k3s/).filter((t) => t >= refused), [], "the sqlite server's K3s not restarted");
    assert.ok(existsSync(join(hosts[0]!.upper, "var/lib/k3sp-stub/active/k3s")), "and still running");
    entries = entries.filter((e) => e.name !== "e2e-sq-0");
    edits.pop();

    // The same order with the sqlite server's K3s down: nobody answers the new server's probe, which
    // cannot tell that from no cluster, so it starts a cluster of its own; the sqlite server's apply
    // then refuses before anything is placed: its data stays as it was.
    assert.equal((await ssh(hosts[0]!, "sudo -n systemctl stop k3s")).status, 0);
    const wrong = Date.now() / 1000;
    edits.push((raw) => (raw.k3s!.datastore = { type: "etcd" }));
    entries = [{ name: "e2e-sq-0", host: 3, role: "server" }, ...entries];
    await assert.rejects(up(), /apply\[e2e-sq-1\]: this server holds the cluster's sqlite data .*but e2e-sq-0 is the first server \(cluster-init\): .*list this server first in nodes/);
    assert.ok(eventAt(wrong, "etcd-new-cluster", "e2e-sq-0"), "the new first server started a cluster of its own");
    assert.ok(db(0, "state.db") && !db(0, "etcd"), "the sqlite data stays: not converted, not joined");
    assert.equal(readFileSync(join(hosts[0]!.upper, PATHS.configYaml), "utf8"), sqliteConfig, "nothing placed on the sqlite server");
    assert.deepEqual(callTimes(hosts[0]!, /systemctl (restart|start) k3s/).filter((t) => t >= wrong), [], "not restarted");
    // Fixed: the new server goes (its cluster stopped), the sqlite server runs again, in the right order below.
    assert.equal((await ssh(hosts[3]!, "sudo -n systemctl stop k3s")).status, 0);
    entries = entries.filter((e) => e.name !== "e2e-sq-0");
    edits.pop();
    assert.equal((await ssh(hosts[0]!, "sudo -n systemctl start k3s")).status, 0);

    edits.push((raw) => (raw.k3s!.datastore = { type: "etcd" }));
    entries.push({ name: "e2e-sq-2", host: 1, role: "server" }, { name: "e2e-sq-3", host: 2, role: "server" });
    const mark = Date.now() / 1000;
    await up();
    assert.match(readFileSync(join(hosts[0]!.upper, PATHS.configYaml), "utf8"), /^cluster-init: true$/m);
    const converted = eventAt(mark, "etcd-sqlite-converted", "e2e-sq-1");
    const joined2 = eventAt(mark, "etcd-member-add", "e2e-sq-2");
    const joined3 = eventAt(mark, "etcd-member-add", "e2e-sq-3");
    assert.ok(converted && joined2 && joined3 && converted < joined2 && joined2 < joined3, `converted, then one join at a time: ${JSON.stringify({ converted, joined2, joined3 })}`);
    assert.equal(eventAt(mark, "etcd-new-cluster", "e2e-sq-1"), undefined, "the data is converted, not a new cluster");
    const runs = [0, 1, 2].flatMap((h) => installRuns(hosts[h]!).filter((r) => r.start >= mark)).sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) assert.ok(runs[i - 1]!.end <= runs[i]!.start, "never two servers at once");
    const again = await up();
    assert.deepEqual(again.filter((s) => s.op !== "same").map((s) => s.name), [], "a second up is a no-op");
    assert.equal(lastRun!.runs.size, 0);

    // K3s converts one way only: sqlite configured on a server with etcd data fails its apply first.
    const restarts = callTimes(hosts[0]!, /systemctl (restart|start) k3s/).length;
    edits.push((raw) => (raw.k3s!.datastore = { type: "sqlite" }));
    const three = entries;
    entries = entries.slice(0, 1);
    await assert.rejects(up(), /apply\[e2e-sq-1\]: this server runs embedded etcd .*K3s does not convert etcd back to sqlite/);
    assert.equal(callTimes(hosts[0]!, /systemctl (restart|start) k3s/).length, restarts, "nothing restarted");
    edits.pop();
    entries = three;
    const healed = await up();
    assert.deepEqual(healed.filter((s) => s.op !== "same" && s.op !== "update").map((s) => s.name), []);
  });
});
