import type { NodeContext } from "../config/context";
import type { Contribution } from "../plan/contribution";
import { rejoinSnippet, sqliteGuard } from "./rejoin";

/**
 * The node-lifecycle concern's share of a node's plan: the first server's rebuild guard (join a
 * running cluster instead of `cluster-init` when its data directory is empty, rejoin.ts). The
 * managed-node list the teardown checks lives in one place, the cluster (nodes.ts
 * MANAGED_NODES_CONFIGMAP, written by the node-inventory step): a copy on every server made each
 * membership change re-run every server's apply (issue 26). The removal itself (teardown
 * commands) is not per-node plan material: operations/decommission.ts.
 */
export function contribute(ctx: NodeContext): Contribution {
  if (ctx.role !== "first-server") return {};
  return { preflight: ctx.config.k3s.datastore.type === "sqlite" ? sqliteGuard() : rejoinSnippet(ctx.config) };
}
