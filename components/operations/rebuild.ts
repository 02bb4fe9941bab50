import { stepBounds } from "../k3s/timeouts";
import { forgetSteps } from "../decommission/rebuild";
import { NODE_LIFECYCLE_CHILDREN } from "../names";
import { applyOf, endsWithAny, Operation, Step } from "./step";

/**
 * `nodes[].rebuild` (docs/rebuilding.md): the one-shot "forget" step of each rebuilt node,
 * on a surviving server, before any step of that node (decommission/rebuild.ts renders it). One on
 * the first server waits for that server's apply (it may be rebuilt in the same up). The rebuild
 * value itself joins the node's own triggers (node/component.ts), not a step here.
 */
export const rebuild: Operation = {
  name: "rebuild",
  description: "nodes[].rebuild: forget the old Node on a surviving server, once per value, before the node's steps re-run",
  owns: endsWithAny(NODE_LIFECYCLE_CHILDREN.forget),
  steps(config, plan) {
    const first = plan.nodes[0]!.node.name;
    return forgetSteps(config).map(
      (f): Step => ({
        name: f.name,
        operation: "rebuild",
        host: f.on,
        parent: "cluster",
        runs: "once",
        restartsK3s: false,
        summary: `forget node ${f.node.name} on ${f.on.name}: delete its Node (and etcd member) unless Ready, once per rebuild value ${f.triggers[0]}`,
        after: f.afterFirstServer ? [applyOf(first)] : [],
        gates: [{ node: f.node.name, steps: "all" }],
        create: f.create,
        update: f.update,
        // The host guard records a value the cluster was created with (operations/once.ts).
        stdin: { needs: ["baseline"], render: (facts) => forgetSteps(config, facts.baseline).find((g) => g.name === f.name)!.stdin },
        triggers: f.triggers,
        timeoutSeconds: stepBounds().forget,
      }),
    );
  },
};
