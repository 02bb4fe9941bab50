import type { NodeContext } from "../config/context";
import { NodeConfig, ResolvedConfig, StackConfig } from "../config/schema";
import type { Contribution } from "../plan/contribution";

/**
 * ServiceLB node pools, the one definition validation, the node labels and the policy pack
 * (`loadbalancer-needs-pool`) read. K3s networking docs ("Controlling ServiceLB Node Selection",
 * seed 002): once any node carries `svccontroller.k3s.cattle.io/enablelb=true`, ServiceLB runs its
 * pods only on labelled nodes (allow-list mode); a node labelled `…/lbpool=<pool>` serves only
 * Services carrying the same `lbpool` label.
 */

export const LB_ENABLE_LABEL = "svccontroller.k3s.cattle.io/enablelb";
export const LB_POOL_LABEL = "svccontroller.k3s.cattle.io/lbpool";
export const SERVICELB_LABELS = [LB_ENABLE_LABEL, LB_POOL_LABEL] as const;

type WithPools = Pick<StackConfig, "k3s"> | Pick<ResolvedConfig, "k3s">;

/** The configured pool names (empty when no pools are configured). */
export function lbPools(config: WithPools): string[] {
  return Object.keys(config.k3s.serviceLb?.pools ?? {});
}

/** The pool a node belongs to, if any. */
export function poolOfNode(config: WithPools, nodeName: string): string | undefined {
  return Object.entries(config.k3s.serviceLb?.pools ?? {}).find(([, nodes]) => nodes.includes(nodeName))?.[0];
}

/** The ServiceLB labels a node gets (applied with kubectl after registration, so pools can change). */
export function serviceLbNodeLabels(config: WithPools, node: Pick<NodeConfig, "name">): Record<string, string> {
  const pool = poolOfNode(config, node.name);
  return pool === undefined ? {} : { [LB_ENABLE_LABEL]: "true", [LB_POOL_LABEL]: pool };
}

/** Nodes outside every pool lose the labels (a node taken out of a pool stops serving it). */
export function serviceLbLabelsToRemove(config: WithPools, node: Pick<NodeConfig, "name">): string[] {
  if (lbPools(config).length === 0 || poolOfNode(config, node.name) !== undefined) return [];
  return [...SERVICELB_LABELS];
}

/** servicelb concern: the node's pool labels, and the managed labels it must drop. */
export function contribute(ctx: NodeContext): Contribution {
  return { labels: serviceLbNodeLabels(ctx.config, ctx.node), removedLabels: serviceLbLabelsToRemove(ctx.config, ctx.node) };
}
