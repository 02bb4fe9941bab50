import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { STAGING_DIR } from "../../components/k3s/install";
import { postRegistrationLabelCommand } from "../../components/cluster/component";
import { ResolvedConfig } from "../../components/config/schema";
import { EncryptionStatus, parseEncryptionStatus, renderRestartScript, renderVerifyScript, rotationPhases } from "../../components/encryption/render";
import type { NodeSecrets } from "../../components/config/secrets";
import { rewriteKubeconfig } from "../../components/node/kubeconfig";
import { ClusterPlan, NodePlan, renderSecretsDocument } from "../../components/plan/node";
import { stdinScriptCommand } from "../../components/shell/root";
import { agentSecretInputs } from "../../components/plan/restart";
import { upgradeBatches } from "../../components/upgrade/render";
import { parseRestartVerdict } from "../../components/k3s/agent-preflight";
import { OPERATIONS } from "../../components/operations";
import { batchStepName } from "../../components/operations/order";
import { Facts, isFromFacts, preflightOf, Step } from "../../components/operations/step";
import { preflightTriggers } from "../../components/node/component";

/** The stack's token salt, as the cluster component's RandomPassword keeps it: the key of the agents' secret digests. */
export const E2E_TOKEN_SALT = "e2e-token-salt-0123456789abcdefghij";

/**
 * Runs a node's generated steps over real SSH, as the K3sNode component's resources do: stage,
 * copy the bundle (SFTP), write every secret file from one stdin document, OS prep, apply (each
 * unpacks the bundle first). Host keys are pinned.
 */

export interface TestHost {
  index: number;
  address: string;
  user: string;
  /** The host's overlay upper layer: every file the host wrote, readable from here. */
  upper: string;
  hostKey: string;
}

export interface StepResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class SshTarget {
  private readonly knownHosts: string;

  constructor(readonly host: TestHost, private readonly keyFile: string, hostKey = host.hostKey) {
    // Beside the run's key, so `hosts.sh down` removes it with the run directory.
    const dir = mkdtempSync(join(dirname(keyFile), "kh-"));
    this.knownHosts = join(dir, "known_hosts");
    writeFileSync(this.knownHosts, `${host.address} ${hostKey}\n`);
  }

  private options(): string[] {
    return [
      "-i", this.keyFile,
      "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${this.knownHosts}`,
      "-o", "ConnectTimeout=5",
      "-o", "LogLevel=ERROR",
    ];
  }

  run(command: string, stdin?: string): Promise<StepResult> {
    return new Promise((resolve) => {
      const child = spawn("ssh", [...this.options(), `${this.host.user}@${this.host.address}`, command], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      // ssh may exit before it reads its stdin (a host down: connection refused); the write then
      // fails with EPIPE, which must not surface as an uncaught error: the exit status says it.
      child.stdin.on("error", () => {});
      child.stdin.end(stdin ?? "");
      child.on("close", (code) => resolve({ status: code ?? 1, stdout, stderr }));
    });
  }

  copy(content: string, remotePath: string): StepResult {
    const dir = mkdtempSync(join(tmpdir(), "k3sp-copy-"));
    try {
      const local = join(dir, "file");
      writeFileSync(local, content);
      const r = spawnSync("scp", ["-q", ...this.options(), local, `${this.host.user}@${this.host.address}:${remotePath}`], { encoding: "utf8" });
      return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export class StepError extends Error {}

async function must(node: NodePlan, target: SshTarget, step: string, result: Promise<StepResult> | StepResult): Promise<StepResult> {
  const r = await result;
  if (r.status !== 0) {
    throw new StepError(`${node.node.name} (${target.host.address}): ${step} failed with status ${r.status}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r;
}

export interface NodeRun {
  osPrep: string;
  apply: string;
  /** When this node's steps started and finished (ms, orchestrator clock). */
  started: number;
  finished: number;
}

/** One node's steps, in the order the component's dependsOn gives them. */
export async function applyNode(node: NodePlan, target: SshTarget, secrets: NodeSecrets): Promise<NodeRun> {
  const started = Date.now();
  await must(node, target, "stage", target.run(node.commands.stage));
  await must(node, target, "bundle", target.copy(node.bundle.content, `${STAGING_DIR}/${node.bundle.name}`));
  await must(node, target, "secrets", target.run(node.commands.secrets, renderSecretsDocument(node, secrets)));
  const osPrep = await must(node, target, "os-prep", target.run(node.commands.osPrep));
  const apply = await must(node, target, "apply", target.run(node.commands.apply));
  return { osPrep: osPrep.stdout, apply: apply.stdout, started, finished: Date.now() };
}

export interface ClusterRun {
  runs: Map<string, NodeRun>;
  failures: Map<string, string>;
  /** Output of the agent batch steps that ran, by step name (operations/order.ts batchStepName). */
  batchSteps: Map<string, string>;
}

/** The upgrade-batches operation of OPERATIONS: its steps are the batch steps the cluster component declares. */
const UPGRADE_BATCHES = OPERATIONS.find((o) => o.name === "upgrade-batches")!;

/**
 * The name of the upgrade-batches step that drains or uncordons `agent`'s batch, from the
 * operation itself (its steps, named by operations/order.ts batchStepName).
 */
export function batchStepOf(config: ResolvedConfig, agent: string, which: "drain" | "uncordon"): string {
  const batch = upgradeBatches(config).find((b) => b.agents.includes(agent));
  if (!batch) throw new Error(`${agent} is in no upgrade batch`);
  const name = batchStepName(batch, which);
  if (!UPGRADE_BATCHES.owns?.(name)) throw new Error(`${name} is not a step of the upgrade-batches operation`);
  return name;
}

/**
 * The command provider's memory of triggered one-shot commands, per test cluster: resource name →
 * the triggers it was last created with. A command runs its `create` when it is new or its
 * triggers changed (a replacement); otherwise nothing runs on the host (`update` is NO_OP_UPDATE).
 * A failed create leaves the old value, so the next run creates it again.
 */
const providerState = new WeakMap<Map<string, SshTarget>, Map<string, string>>();

/**
 * The K3sCluster graph, as the engine walks it: servers one after another; then agents in upgrade
 * batches (components/upgrade; pinned and channel stacks alike, issue 26): the batch's drain step
 * on the first server, its agents in parallel, its uncordon step, then the next batch; without a
 * config, agents in parallel. The batch steps are those the upgrade-batches operation of
 * OPERATIONS declares (name, stdin, triggers), as the cluster component runs them.
 * `clusterRelease`: a channel stack's recorded release (the batch steps' `clusterRelease` fact). A failed step stops what depends on it (later servers, the rest of the batches); a
 * failed node does not stop its siblings in the same batch (as the engine continues with
 * independent resources).
 */
export async function applyCluster(plan: ClusterPlan, targets: Map<string, SshTarget>, secrets: NodeSecrets, config?: ResolvedConfig, clusterRelease?: string): Promise<ClusterRun> {
  const runs = new Map<string, NodeRun>();
  const failures = new Map<string, string>();
  const batchSteps = new Map<string, string>();
  const attempt = async (node: NodePlan) => {
    try {
      runs.set(node.node.name, await applyNode(node, targets.get(node.node.name)!, secrets));
    } catch (e) {
      failures.set(node.node.name, (e as Error).message);
    }
  };
  for (const server of plan.nodes.filter((n) => n.node.role === "server")) {
    await attempt(server);
    if (failures.size) return { runs, failures, batchSteps }; // agents need every server
  }
  const agents = plan.nodes.filter((n) => n.node.role === "agent");
  if (!config) {
    await Promise.all(agents.map(attempt));
    return { runs, failures, batchSteps };
  }
  if (!providerState.has(targets)) providerState.set(targets, new Map());
  const state = providerState.get(targets)!;
  const first = plan.nodes[0]!;
  const firstTarget = targets.get(first.node.name)!;
  // The `secretInputs` fact (cluster/component.ts): each agent's keyed digest of its secret files.
  const secretInputs = agentSecretInputs(plan, secrets, E2E_TOKEN_SALT);
  // The batch steps as the upgrade-batches operation declares them: name, stdin, triggers (the
  // version, its agents' K3s inputs and secret digests). A channel stack's scripts read the recorded release.
  const declared = new Map(UPGRADE_BATCHES.steps(config, plan).map((s) => [s.name, s]));
  // The `restartVerdicts` fact: each agent's preflight stdout (its apply.sh's dry run), as the
  // provider keeps it (the last run's, when the preflight did not run again).
  const verdicts: Record<string, boolean | undefined> = {};
  const facts = { clusterRelease, secretInputs, restartVerdicts: verdicts } as Facts; // the only facts the batch steps read
  const value = <T>(v: Step["stdin"] | Step["triggers"]) => (isFromFacts(v) ? v.render(facts) : v) as T;
  const triggered = async (name: string): Promise<boolean> => {
    const step = declared.get(name);
    if (!step) throw new Error(`the upgrade-batches operation declares no step ${name}`);
    const triggers = JSON.stringify(value<string[]>(step.triggers));
    const script = value<string>(step.stdin);
    if (state.get(name) === triggers) return true;
    const r = await firstTarget.run(stdinScriptCommand(first.sshUser), script);
    batchSteps.set(name, r.stdout + r.stderr);
    if (r.status !== 0) {
      failures.set(name, `${name} (on ${first.node.name}) failed with status ${r.status}: ${r.stderr.trim() || r.stdout.trim()}`);
      return false;
    }
    state.set(name, triggers);
    return true;
  };
  /**
   * An agent's preflight step (bundle first): the batch's drain waits for it, as the cluster
   * component's does; like the drain, it runs when the version or its K3s inputs (its triggers) changed.
   */
  const preflight = async (node: NodePlan) => {
    const target = targets.get(node.node.name)!;
    const key = preflightOf(node.node.name);
    const triggers = JSON.stringify(preflightTriggers(node, secretInputs[node.node.name]!));
    const keep = () => (verdicts[node.node.name] = parseRestartVerdict(state.get(`${key}:stdout`) ?? ""));
    if (!node.commands.preflight || state.get(key) === triggers) {
      keep();
      return true;
    }
    try {
      await must(node, target, "stage", target.run(node.commands.stage));
      await must(node, target, "bundle", target.copy(node.bundle.content, `${STAGING_DIR}/${node.bundle.name}`));
      // After the secrets write (node/component.ts): its dry run fingerprints the secret files.
      await must(node, target, "secrets", target.run(node.commands.secrets, renderSecretsDocument(node, secrets)));
      const r = await must(node, target, "preflight", target.run(node.commands.preflight));
      state.set(key, triggers);
      state.set(`${key}:stdout`, r.stdout);
      keep();
      return true;
    } catch (e) {
      failures.set(node.node.name, (e as Error).message);
      return false;
    }
  };
  for (const batch of upgradeBatches(config)) {
    const ready = await Promise.all(batch.agents.map((a) => preflight(agents.find((n) => n.node.name === a)!)));
    if (ready.includes(false)) break;
    if (!(await triggered(batchStepName(batch, "drain")))) break;
    await Promise.all(batch.agents.map((a) => attempt(agents.find((n) => n.node.name === a)!)));
    if (batch.agents.some((a) => failures.has(a))) break;
    if (!(await triggered(batchStepName(batch, "uncordon")))) break;
  }
  return { runs, failures, batchSteps };
}

/** The install stand-in's records on a host: one entry per run, with its environment. */
export function installRuns(host: TestHost): Array<{ start: number; end: number; env: Record<string, string>; config: string; startedK3s: boolean }> {
  let text = "";
  try {
    text = readFileSync(join(host.upper, "var/log/k3sp/install.log"), "utf8");
  } catch {
    return [];
  }
  return text
    .split(/^run /m)
    .filter((chunk) => chunk.trim())
    .map((chunk) => {
      const lines = chunk.trim().split("\n");
      const env: Record<string, string> = {};
      let config = "";
      let end = NaN;
      let startedK3s = false;
      for (const line of lines.slice(1)) {
        if (line.startsWith("config.yaml ")) config = line.slice(12);
        else if (line.startsWith("start ")) startedK3s = true;
        else if (line.startsWith("done ")) end = Number(line.slice(5));
        else if (line.includes("=")) env[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
      }
      return { start: Number(lines[0]), end, env, config, startedK3s };
    });
}

/** The shared node-object events (kubelet, kubectl and etcd-snapshot stand-ins), oldest first. */
export function clusterEvents(runDir: string): Array<{ at: number; event: string; node: string; detail: string }> {
  let text = "";
  try {
    text = readFileSync(join(runDir, "cluster", "events.log"), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [at, event, node, ...rest] = line.split(" ");
      return { at: Number(at), event: event!, node: node!, detail: rest.join(" ") };
    });
}

/** When the systemctl stand-in started or restarted `unit` on a host (seconds, in order). */
export function restarts(host: TestHost, unit: string): number[] {
  try {
    return readFileSync(join(host.upper, "var/lib/k3sp-stub/restarts", unit), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export interface ClusterSteps {
  kubeconfig: string;
  encryptionStatus?: EncryptionStatus;
}

/**
 * The K3sCluster/SecretsEncryption steps after the nodes: role labels, the kubeconfig, rotation
 * phases (each followed by restarting the servers one at a time), then verification.
 */
export async function clusterSteps(config: ResolvedConfig, plan: ClusterPlan, targets: Map<string, SshTarget>, stack: string): Promise<ClusterSteps> {
  const first = plan.nodes[0]!;
  const firstTarget = targets.get(first.node.name)!;
  const labels = postRegistrationLabelCommand(plan);
  if (labels) await must(first, firstTarget, "node labels", firstTarget.run(labels));
  const kubeconfig = await must(first, firstTarget, "kubeconfig", firstTarget.run(plan.kubeconfigCommand));
  if (!config.encryption.enabled) return { kubeconfig: rewriteKubeconfig(kubeconfig.stdout, plan.topology.apiEndpoint, stack) };

  const servers = plan.nodes.filter((n) => n.node.role === "server");
  for (const phase of rotationPhases(config)) {
    await must(first, firstTarget, `encryption ${phase.name}`, firstTarget.run(stdinScriptCommand(first.sshUser), phase.script));
    for (const server of servers) {
      const target = targets.get(server.node.name)!;
      await must(server, target, `restart after ${phase.name}`, target.run(stdinScriptCommand(server.sshUser), renderRestartScript(server.node.name)));
    }
  }
  const verify = await must(first, firstTarget, "encryption verify", firstTarget.run(stdinScriptCommand(first.sshUser), renderVerifyScript(config)));
  return {
    kubeconfig: rewriteKubeconfig(kubeconfig.stdout, plan.topology.apiEndpoint, stack),
    encryptionStatus: parseEncryptionStatus(verify.stdout, config.encryption.mode),
  };
}
