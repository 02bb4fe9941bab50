import { rebuildTriggers } from "../decommission/rebuild";
import { CLUSTER_CHILDREN } from "../names";
import { rotationDone } from "./certificates";
import { applyOf, Operation } from "./step";

/**
 * The admin kubeconfig, read from the first server (its stdout secret, never logged): the stack
 * output `kubeconfig`, rewritten to the API endpoint by the cluster component.
 */
export const kubeconfig: Operation = {
  name: "kubeconfig",
  description: "the admin kubeconfig, read from the first server after its apply (and after a certificate rotation)",
  owns: (name) => name === CLUSTER_CHILDREN.kubeconfig,
  steps(config, plan) {
    const first = plan.nodes[0]!;
    const rotation = config.certificates?.rotation;
    return [
      {
        name: CLUSTER_CHILDREN.kubeconfig,
        operation: "kubeconfig",
        host: plan.topology.firstServer,
        parent: "cluster",
        runs: "on-change",
        restartsK3s: false,
        summary: `on ${first.node.name}: read the admin kubeconfig (secret, not logged)`,
        after: rotation === undefined ? [applyOf(first.node.name)] : [applyOf(first.node.name), ...rotationDone(config, plan)],
        create: plan.kubeconfigCommand,
        // Re-read whenever the first server was re-applied (its certificates may have rotated).
        // A rebuilt first server may have started a new cluster (the only server): re-read then too.
        triggers: [first.hashes.apply, ...(rotation === undefined ? [] : [String(rotation)]), ...rebuildTriggers(first.node)],
        logging: "none",
        secretOutputs: ["stdout", "stderr"],
      },
    ];
  },
};
