import type { NodeContext } from "../config/context";
import type { Contribution } from "../plan/contribution";
import { rejoinSnippet, sqliteGuard, sqliteHolderGuard } from "./rejoin";

/**
 * The node-lifecycle concern's share of a node's plan: the first server's rebuild guard (join a
 * running cluster instead of `cluster-init` when its data directory is empty, rejoin.ts), and
 * on the other servers the guard that keeps a sqlite server from joining (sqliteHolderGuard). The
 * managed-node list the teardown checks lives in one place, the cluster (nodes.ts
 * MANAGED_NODES_CONFIGMAP, written by the node-inventory step): a copy on every server made each
 * membership change re-run every server's apply (issue 26). The removal itself (teardown
 * commands) is not per-node plan material: operations/decommission.ts.
 */
export function contribute(ctx: NodeContext): Contribution {
  const { datastore } = ctx.config.k3s;
  // Another server holding sqlite data must be the first one (sqlite -> etcd: rejoin.ts).
  if (ctx.role === "server") return datastore.type === "etcd" ? { preflight: sqliteHolderGuard(ctx.topology.firstServer.name) } : {};
  if (ctx.role !== "first-server") return {};
  return { preflight: datastore.type === "sqlite" ? sqliteGuard() : rejoinSnippet(ctx.config) };
}
