import type { NodeContext } from "../config/context";
import type { Contribution } from "../plan/contribution";
import { STATE_DIR } from "../k3s/install";
import { managedNodes } from "./nodes";
import { rejoinSnippet } from "./rejoin";

/**
 * On every server: the names of the node entries the stack manages (not armed for removal), one
 * per line, sorted. An armed teardown's drain (render.ts) reads it on the server it runs on and
 * refuses to remove a node that is listed: deleting a `decommission: true` line instead of the
 * entry would otherwise drop the teardown resources, and the engine runs a dropped resource's
 * `delete`. The file changes with the managed set, so the servers' apply re-places it (no
 * restart) before the engine runs any delete (deletes come after every create and update).
 */
export const MANAGED_NODES_FILE = `${STATE_DIR}/managed-nodes`;

/**
 * The node-lifecycle concern's share of a node's plan: the first server's rebuild guard (join a
 * running cluster instead of `cluster-init` when its data directory is empty, rejoin.ts), and on
 * every server the managed-node list the teardown checks. The removal itself (teardown commands)
 * is not per-node plan material: decommission/component.ts.
 */
export function contribute(ctx: NodeContext): Contribution {
  if (ctx.node.role !== "server") return {};
  const names = managedNodes(ctx.config).map((n) => n.name).sort();
  const managed = { name: "managed-nodes", target: MANAGED_NODES_FILE, content: names.map((n) => `${n}\n`).join(""), mode: "0600", restart: false };
  return ctx.role === "first-server" ? { preflight: rejoinSnippet(ctx.config), files: [managed] } : { files: [managed] };
}
