import type { ResolvedConfig } from "../config/schema";
import { clusterSteps } from "../operations";
import { isFromFacts, type Facts, type Step, type StepValue } from "../operations/step";
import { keyedProvidersInUse } from "../encryption/render";
import { ClusterPlan, NodePlan, planCluster } from "./node";
import { restartDigest } from "./restart";
import { INSTALL_SCRIPT } from "../k3s/install";

export { restartDigest };

/**
 * What a change costs on the hosts (issue 26), from the plans of two configs alone: which existing
 * nodes re-run their os-prep step, their apply step, and restart K3s; which day-2 steps run; and
 * so which hosts the change logs in to. Pure, as `npm run bench`'s churn table and its unit test
 * read it.
 *
 * The engine's rules it follows (node/component.ts, operations/run.ts): a node step runs when its
 * trigger changes (os-prep: `hashes.osPrep`; apply: `hashes.apply`; the bundle copy: its sha256);
 * apply.sh restarts K3s only when what K3s reads at start changed (k3s/install.ts
 * renderApplyScript's fingerprint: every placed file K3s reads, secret files, and install-k3s.sh);
 * a day-2 command step runs on create, on an Update of an `on-change` step, and on a trigger
 * change (a replace) of any other. Secret values are the same on both sides (placeholders).
 */

export interface Churn {
  /** Nodes only `after` has (they run everything: their first install). */
  added: string[];
  /** Nodes only `before` has (armed or deleted entries: their teardown, not counted here). */
  removed: string[];
  /** Nodes on both sides whose steps re-run, and whose K3s restarts. */
  bundle: string[];
  osPrep: string[];
  apply: string[];
  restart: string[];
  /**
   * The nodes of `restart` whose K3s inputs differ only in install-k3s.sh's NO_PROXY or
   * CONTAINERD_NO_PROXY line. apply.sh keeps the host's value when it is equivalent to the planned
   * one (k3s/install.ts renderNoProxyCarryOver: e.g. the planned value only drops entries another
   * of its entries covers) and then restarts nothing; which it does, only the host's env file
   * tells, so from the plans these are "restarts unless the host's value is equivalent". Their
   * agents' batch steps run, and drain only the agents whose preflight's dry run says restart.
   */
  noProxyOnly: string[];
  /** Day-2 command steps that run (created, updated or replaced), by name. */
  steps: string[];
  /** Day-2 steps among `steps` that stop or restart K3s on their host. */
  restartingSteps: string[];
  /** Hosts of existing nodes the change logs in to (a node step or a day-2 step on them). */
  hosts: string[];
}

/** The same stand-in facts on both sides: secrets and keys are not what a config change changes. */
function facts(config: ResolvedConfig): Facts {
  const keys = Object.fromEntries(keyedProvidersInUse(config.encryption).map((type) => [type, [{ name: `${type}-key-1`, secret: `<${type} key>` }]]));
  return { baseline: {}, token: "<token>", tokenSalt: "<salt>", encryptionKeys: keys, restoreToken: "" };
}

function resolved<T>(value: StepValue<T> | undefined, f: Facts): T | undefined {
  return isFromFacts(value) ? value.render(f) : value;
}

/** The inputs the provider diffs for a command step (connection: the host). */
function stepInputs(s: Step, f: Facts): { update: string; triggers: string } {
  return {
    update: JSON.stringify([s.host.name, s.host.host, s.create, s.update, s.delete, resolved(s.stdin, f)]),
    triggers: JSON.stringify(resolved(s.triggers, f) ?? []),
  };
}

/** Whether the engine runs a command on the host for this step, given its previous inputs. */
function stepRuns(s: Step, before: Step | undefined, fa: Facts, fb: Facts): boolean {
  if (s.runs === "node") return false;
  // Created: a command step runs its create (a teardown has none: it runs only when deleted).
  if (!before) return s.create !== undefined;
  if (s.runs === "once-per-stack") return false;
  const a = stepInputs(before, fa);
  const b = stepInputs(s, fb);
  if (a.triggers !== b.triggers) return s.create !== undefined; // replaced: create runs
  // Update: runs `update` (a one-shot's NO_OP_UPDATE still logs in), only if the step has one.
  return a.update !== b.update && s.update !== undefined;
}

/** `plans`: the two configs' plans when the caller has them (planCluster of each, else computed here). */
export function churn(before: ResolvedConfig, after: ResolvedConfig, plans?: { before: ClusterPlan; after: ClusterPlan }): Churn {
  const pa = plans?.before ?? planCluster(before);
  const pb = plans?.after ?? planCluster(after);
  const old = new Map(pa.nodes.map((n) => [n.node.name, n]));
  const now = new Map(pb.nodes.map((n) => [n.node.name, n]));
  const both = pb.nodes.filter((n) => old.has(n.node.name));
  const changed = (pick: (n: NodePlan) => string) => both.filter((n) => pick(n) !== pick(old.get(n.node.name)!)).map((n) => n.node.name);
  const stepsBefore = new Map(clusterSteps(before, pa).map((s) => [s.name, s]));
  const [fa, fb] = [facts(before), facts(after)];
  const running = clusterSteps(after, pb).filter((s) => stepRuns(s, stepsBefore.get(s.name), fa, fb));
  const nodeSteps = new Set([...changed((n) => n.bundle.sha256), ...changed((n) => n.hashes.osPrep), ...changed((n) => n.hashes.apply)]);
  const hosts = new Set([...nodeSteps, ...running.map((s) => s.host.name).filter((h) => old.has(h))]);
  return {
    added: [...now.keys()].filter((n) => !old.has(n)),
    removed: [...old.keys()].filter((n) => !now.has(n)),
    bundle: changed((n) => n.bundle.sha256),
    osPrep: changed((n) => n.hashes.osPrep),
    apply: changed((n) => n.hashes.apply),
    restart: changed(restartDigest),
    noProxyOnly: changed(restartDigest).filter((name) => restartDigestBesideNoProxy(old.get(name)!) === restartDigestBesideNoProxy(now.get(name)!)),
    steps: running.map((s) => s.name),
    restartingSteps: running.filter((s) => s.restartsK3s).map((s) => s.name),
    hosts: [...hosts],
  };
}

/** An install-k3s.sh line apply.sh may keep as the host has it (renderNoProxyCarryOver's NO_PROXY_VARIABLES). */
const NO_PROXY_LINE = /^export (CONTAINERD_)?NO_PROXY=.*$/gm;

/**
 * restartDigest with install-k3s.sh's NO_PROXY lines left out: equal on both sides when those
 * lines are all that changed. For the churn count only: whether apply.sh restarts for them is
 * decided on the host (renderNoProxyCarryOver), never from this.
 */
function restartDigestBesideNoProxy(plan: NodePlan): string {
  return restartDigest({ ...plan, files: plan.files.map((f) => (f.name === INSTALL_SCRIPT ? { ...f, content: f.content.replace(NO_PROXY_LINE, "") } : f)) });
}
