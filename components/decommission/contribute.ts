import type { NodeContext } from "../config/context";
import type { Contribution } from "../plan/contribution";
import { MANAGED_NODES_FILE, managedNodeNames } from "./nodes";
import { rejoinSnippet, sqliteGuard } from "./rejoin";

/**
 * The node-lifecycle concern's share of a node's plan: the first server's rebuild guard (join a
 * running cluster instead of `cluster-init` when its data directory is empty, rejoin.ts), and on
 * every server the managed-node list the teardown checks (nodes.ts MANAGED_NODES_FILE). The
 * removal itself (teardown commands) is not per-node plan material: operations/decommission.ts.
 */
export function contribute(ctx: NodeContext): Contribution {
  if (ctx.node.role !== "server") return {};
  const content = managedNodeNames(ctx.config).map((n) => `${n}\n`).join("");
  const managed = { name: "managed-nodes", target: MANAGED_NODES_FILE, content, mode: "0600", restart: false };
  if (ctx.role !== "first-server") return { files: [managed] };
  return { preflight: ctx.config.k3s.datastore.type === "sqlite" ? sqliteGuard() : rejoinSnippet(ctx.config), files: [managed] };
}
