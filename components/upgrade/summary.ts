import { upgradeSchema } from "../config/schema";
import { agentBatches, intermediateStep, maxUnavailableCount, shortTransition, upgradeProblem } from "./versions";

/**
 * The one-line description of an upgrade for preview:md, pure: from the K3sCluster component's
 * config before and after (its registered input). The preview sees the version last deployed, not
 * what each host runs; the hosts check that (render.ts upgradeGuard), the line only warns early.
 */

/** The parts of the registered config this reads; a digest may carry less (then counts are left out). */
export interface ClusterConfigView {
  k3s?: { version?: string; channel?: string; datastore?: { type?: string } };
  nodes?: Array<{ name?: string; role?: string; decommission?: boolean }>;
  upgrade?: unknown;
}

export function upgradeSummary(before: ClusterConfigView | undefined, after: ClusterConfigView | undefined): string[] {
  const from = before?.k3s?.version;
  const to = after?.k3s?.version;
  // A channel never upgrades the cluster (one release, recorded once by the k3s-release step,
  // k3s/release.ts): the preview says so, and what a version-to-channel change keeps.
  const channel = after?.k3s?.channel;
  if (!to && channel && (before?.k3s?.channel !== channel || from)) {
    return [`K3s release: channel ${channel} is resolved once for the whole cluster (adopted from the first server when K3s runs there${from ? `: ${from}` : ""}); every node installs that release: set k3s.version to upgrade`];
  }
  if (!from || !to || from === to) return [];
  const datastore = after?.k3s?.datastore?.type ?? "etcd";
  const problem = upgradeProblem(from, to, datastore === "etcd");
  if (problem) {
    const step = intermediateStep(from, to, datastore === "etcd");
    return [`upgrade ${shortTransition(from, to)}: **refused on the hosts** (${problem})${step ? `; path: ${step}` : ""}`];
  }
  const backup = datastore === "etcd" ? "snapshot" : datastore === "sqlite" ? "copy of the sqlite datastore" : "no snapshot (external datastore: back it up first)";
  const phases = [backup];
  const nodes = after?.nodes?.filter((n) => n.decommission !== true);
  if (nodes) {
    const servers = nodes.filter((n) => n.role === "server").length;
    const agents = nodes.filter((n) => n.role === "agent").length;
    const parsed = upgradeSchema.safeParse(after?.upgrade ?? {});
    const maxUnavailable = parsed.success ? parsed.data.maxUnavailable : "10%";
    phases.push(servers === 1 ? "1 server" : `${servers} servers one at a time`);
    if (agents > 0) {
      const batches = agentBatches(new Array<number>(agents).fill(0), maxUnavailable).length;
      const size = maxUnavailableCount(maxUnavailable, agents);
      phases.push(`${agents} agent${agents === 1 ? "" : "s"} in ${batches} batch${batches === 1 ? "" : "es"}${batches > 1 ? ` of ${size}` : ""}`);
    }
  } else {
    phases.push("servers one at a time", "agents in batches");
  }
  return [`upgrade ${shortTransition(from, to)}: ${phases.join(", ")}`];
}
