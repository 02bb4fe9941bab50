import { stepBounds } from "../k3s/timeouts";
import { teardownCommands, teardownPlans } from "../decommission/render";
import { destroyPlan } from "../destroy/render";
import { CLUSTER_CHILDREN, NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../names";
import { endsWithAny, Operation } from "./step";

/**
 * Node removal in two explicit steps (decommission/render.ts): `decommission: true` arms the
 * teardown, deleting the entry runs it. Both commands keep their script in `delete` and carry no
 * triggers (a trigger change would replace them, running the old delete); the drain depends on
 * the uninstall, so the engine deletes (runs) the drain first.
 */
export const decommission: Operation = {
  name: "decommission",
  description: "decommission: true arms a teardown; deleting the entry runs it (drain and delete the Node on a server, then uninstall K3s)",
  runsOnDelete: true,
  owns: endsWithAny(NODE_LIFECYCLE_CHILDREN.drain, NODE_LIFECYCLE_CHILDREN.uninstall),
  steps(config) {
    // Each command's script as written (its delete runs it as root, as one argument), for render.
    const scripts = new Map(
      teardownPlans(config).flatMap((p) => [
        [nodeLifecycleName(p.node.name, "drain"), p.drainScript],
        [nodeLifecycleName(p.node.name, "uninstall"), p.uninstallScript],
      ]),
    );
    return teardownCommands(config).map((t) => {
      const drain = t.create !== undefined;
      return {
        name: t.name,
        operation: "decommission",
        host: t.on,
        parent: "cluster",
        runs: "on-delete",
        // The uninstall stops K3s on the removed node; the drain only asks the API.
        restartsK3s: !drain,
        summary: drain
          ? `on ${t.on.name}, when the entry is deleted: cordon, drain and delete the Node (a server leaves etcd first)`
          : `on the node itself, when the entry is deleted (after the drain): uninstall K3s and k3s-platform state`,
        // With uninstallOnDestroy, pulumi destroy runs every armed teardown before destroy-begin
        // (dependents are deleted first): no removal overlaps the destroy's one-at-a-time uninstalls.
        after: !drain && destroyPlan(config) ? [...t.dependsOn, CLUSTER_CHILDREN.destroyBegin] : t.dependsOn,
        ...(t.create !== undefined ? { create: t.create } : {}),
        ...(t.update !== undefined ? { update: t.update } : {}),
        delete: t.delete,
        script: scripts.get(t.name),
        timeoutSeconds: stepBounds().decommission,
      };
    });
  },
};
