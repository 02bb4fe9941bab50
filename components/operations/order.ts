import type { ResolvedConfig } from "../config/schema";
import { agentBatchStepSuffix } from "../names";
import type { ClusterPlan } from "../plan/node";
import { AgentBatch, upgradeBatches } from "../upgrade/render";
import { applyOf } from "./step";

/**
 * The join order several operations refer to (join.ts declares it, upgrade-batches.ts chains its
 * batches through it, and every step that waits for "every node joined" lists it), pure.
 */

/** The name (without the stack prefix) of a batch step: `agent-batch-<i>-drain|uncordon`. */
export function batchStepName(batch: AgentBatch, step: "drain" | "uncordon"): string {
  return agentBatchStepSuffix(batch.index, step);
}

/** The batch index of a batch step name (`agent-batch-<i>-drain|uncordon`, agentBatchStepSuffix), else undefined. */
export function agentBatchOf(name: string): number | undefined {
  const m = /^agent-batch-(\d+)-(drain|uncordon)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Node names in the order their steps are declared: servers (first server first), then agents by
 * upgrade batch, pinned and channel stacks alike (issue 26: a channel stack's running agents
 * restart drained, in batches, as a pinned stack's do).
 */
export function joinOrder(config: ResolvedConfig, plan: ClusterPlan): string[] {
  const servers = plan.nodes.filter((n) => n.node.role === "server").map((n) => n.node.name);
  return [...servers, ...upgradeBatches(config).flatMap((b) => b.agents)];
}

/** Every node's apply in join order: what the label and inventory steps wait for. */
export function appliedRefs(config: ResolvedConfig, plan: ClusterPlan): string[] {
  return joinOrder(config, plan).map(applyOf);
}

/** Every node's apply, then every batch step: "every node joined", which day-2 restarts wait for (issue 21). */
export function joinedRefs(config: ResolvedConfig, plan: ClusterPlan): string[] {
  const batches = upgradeBatches(config);
  return [...appliedRefs(config, plan), ...batches.flatMap((b) => [batchStepName(b, "drain"), batchStepName(b, "uncordon")])];
}
