import type { NodeContext } from "../config/context";
import type { Contribution } from "../plan/contribution";
import { rejoinSnippet } from "./rejoin";

/**
 * The node-lifecycle concern's share of a node's plan: the first server's rebuild guard (join a
 * running cluster instead of `cluster-init` when its data directory is empty, rejoin.ts). The
 * removal itself (teardown commands) is not per-node plan material: decommission/component.ts.
 */
export function contribute(ctx: NodeContext): Contribution {
  return ctx.role === "first-server" ? { preflight: rejoinSnippet(ctx.config) } : {};
}
