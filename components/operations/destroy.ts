import { asRootScript } from "../decommission/render";
import { destroyPlan, DESTROY_DELETE_TIMEOUT_SECONDS, renderDestroyArmScript, renderDestroyBeginScript, renderDestroyUninstallScript } from "../destroy/render";
import { STOP_TIMEOUT_SECONDS } from "../k3s/install";
import { CLUSTER_CHILDREN, NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../names";
import { NO_OP_UPDATE } from "./once";
import { applyOf, endsWithAny, Operation, sshUserOf } from "./step";

/**
 * `uninstallOnDestroy: true` (destroy/render.ts, docs/destroy.md): steps that run only when
 * deleted. Each node's uninstall depends on the next one's in the removal order, and destroy-begin
 * on the first of them, so the engine runs destroy-begin, then the agents, the other servers and
 * the first server, one at a time. Nothing runs on a host in an `up` but destroy-begin's create (a
 * message, clearing marks an interrupted destroy left).
 */
export const destroy: Operation = {
  name: "destroy",
  description: "uninstallOnDestroy: true: pulumi destroy marks the nodes, then uninstalls K3s one node at a time (agents first, the first server last) and removes the firewall rules os-prep opened",
  runsOnDelete: true,
  owns: (name) => name === CLUSTER_CHILDREN.destroyBegin || endsWithAny(NODE_LIFECYCLE_CHILDREN.destroyUninstall)(name),
  steps(config) {
    const plan = destroyPlan(config);
    if (!plan) return [];
    const names = plan.order.map((n) => nodeLifecycleName(n.name, "destroyUninstall"));
    const uninstalls = plan.order.map((node, i) => {
      const script = renderDestroyUninstallScript(config, node, plan.first);
      return {
        name: names[i]!,
        operation: "destroy",
        host: node,
        parent: "cluster" as const,
        runs: "on-delete" as const,
        restartsK3s: true,
        summary: `on pulumi destroy, when destroy-begin marked it: ${node.role === "server" && node !== plan.first ? "delete its Node through the first server (its etcd member goes), " : ""}remove the firewall rules os-prep opened, uninstall K3s and k3s-platform state (${i + 1} of ${plan.order.length})`,
        // Deleted before the next one: the engine deletes dependents first.
        after: i + 1 < names.length ? [names[i + 1]!] : [],
        delete: asRootScript(sshUserOf(config, node), script),
        script,
        timeoutSeconds: DESTROY_DELETE_TIMEOUT_SECONDS + STOP_TIMEOUT_SECONDS,
      };
    });
    const user = sshUserOf(config, plan.first);
    const begin = renderDestroyBeginScript(plan.first);
    return [
      ...uninstalls,
      {
        name: CLUSTER_CHILDREN.destroyBegin,
        operation: "destroy",
        host: plan.first,
        parent: "cluster",
        runs: "on-delete",
        restartsK3s: false,
        summary: `on ${plan.first.name}, on pulumi destroy (after the Kubernetes objects): mark every Node for its uninstall, when the cluster's list still says uninstallOnDestroy: true`,
        after: [names[0]!, applyOf(plan.first.name)],
        create: asRootScript(user, renderDestroyArmScript(plan.first)),
        update: NO_OP_UPDATE,
        delete: asRootScript(user, begin),
        script: begin,
      },
    ];
  },
};
