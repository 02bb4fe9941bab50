import { postRegistrationLabelCommand } from "../cluster/labels";
import { rebuildTriggers } from "../decommission/rebuild";
import { CLUSTER_CHILDREN } from "../names";
import { sha256 } from "../plan/hash";
import { Operation } from "./step";
import { appliedRefs } from "./order";

/**
 * `node-role.kubernetes.io/*` and similar labels K3s may not set at registration, applied with
 * kubectl from the first server after every node joined (and the labels to remove).
 */
export const nodeLabels: Operation = {
  name: "node-labels",
  description: "labels K3s may not set at registration (node-role.kubernetes.io/*), from the first server after every node joined",
  owns: (name) => name === CLUSTER_CHILDREN.nodeLabels,
  steps(config, plan) {
    const command = postRegistrationLabelCommand(plan);
    if (!command) return [];
    return [
      {
        name: CLUSTER_CHILDREN.nodeLabels,
        operation: "node-labels",
        host: plan.topology.firstServer,
        parent: "cluster",
        runs: "on-change",
        restartsK3s: false,
        summary: `on ${plan.topology.firstServer.name}: kubectl label the nodes (re-run when a label changes or a node is rebuilt)`,
        after: appliedRefs(config, plan),
        create: command,
        update: command,
        // A rebuilt node registers anew (its old Node was deleted): label it again. Only when set.
        triggers: [sha256(command), ...plan.nodes.flatMap((n) => rebuildTriggers(n.node).map((v) => `${n.node.name}=${v}`))],
        // Declared so from the start (the provider's default): changing it now is an Update everywhere.
        previousOutputInEnv: true,
      },
    ];
  },
};
