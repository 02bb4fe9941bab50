import { renderInventoryScript } from "../decommission/render";
import { CLUSTER_CHILDREN } from "../names";
import { sha256 } from "../plan/hash";
import { stdinScriptCommand } from "../shell/root";
import { appliedRefs } from "./order";
import { Operation } from "./step";

/**
 * The node inventory on the first server (decommission/render.ts): writes the managed-node list
 * into the cluster (every armed drain reads it) and warns about registered nodes without an entry.
 * Re-runs whenever the list of entries changes, before the engine runs any delete.
 */
export const inventory: Operation = {
  name: "inventory",
  description: "the managed-node list written into the cluster, and a warning for registered nodes without an entry",
  owns: (name) => name === CLUSTER_CHILDREN.nodeInventory,
  steps(config, plan) {
    const script = renderInventoryScript(config);
    const first = plan.nodes[0]!;
    return [
      {
        name: CLUSTER_CHILDREN.nodeInventory,
        operation: "inventory",
        host: plan.topology.firstServer,
        parent: "cluster",
        runs: "on-change",
        restartsK3s: false,
        summary: `on ${first.node.name}: write the managed-node list into the cluster, warn about nodes without an entry`,
        after: appliedRefs(config, plan),
        create: stdinScriptCommand(first.sshUser),
        update: stdinScriptCommand(first.sshUser),
        stdin: script,
        triggers: [sha256(script)],
      },
    ];
  },
};
