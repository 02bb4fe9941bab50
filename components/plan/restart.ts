import { INSTALL_SCRIPT } from "../k3s/install";
import type { AgentBatch } from "../upgrade/render";
import { sha256 } from "./hash";
import type { ClusterPlan, NodePlan } from "./node";

/**
 * sha256 of what apply.sh fingerprints before deciding to restart K3s (k3s/install.ts
 * renderApplyScript: every placed file K3s reads, the secret files' paths, install-k3s.sh): two
 * plans of a node with the same digest never restart its K3s.
 */
export function restartDigest(plan: NodePlan): string {
  const read = plan.files.filter((f) => (f.target !== undefined && f.restart !== false) || f.name === INSTALL_SCRIPT);
  return sha256([...read.map((f) => `${f.target ?? f.name}\0${f.content}`), ...plan.secretFiles.map((s) => s.target)].join("\0"));
}

/** Each agent of a batch → its restart digest (what the batch steps compare with the one its Node records). */
export function batchInputs(plan: ClusterPlan, batch: AgentBatch): Map<string, string> {
  const byName = new Map(plan.nodes.map((n) => [n.node.name, n]));
  return new Map(batch.agents.flatMap((a) => (byName.has(a) ? [[a, restartDigest(byName.get(a)!)] as [string, string]] : [])));
}
