import { applyOf, Operation, Step } from "./step";
import { batchStepName } from "./order";
import { upgradeBatches } from "../upgrade/render";

/**
 * Every node's own steps (stage, bundle, secrets, os-prep, apply: a K3sNode, node/component.ts):
 * the first server initialises the cluster, each other server joins after the one before it, and
 * the agents after the last server, in their upgrade batch (after its drain step; pinned and
 * channel stacks alike, issue 26). A node step's apply answers to `<node>-apply` in other steps' `after`.
 */
export const join: Operation = {
  name: "join",
  description: "every node's own steps: servers one at a time, then the agents in upgrade batches",
  steps(config, plan) {
    const servers = plan.nodes.filter((n) => n.node.role === "server");
    const byName = new Map(plan.nodes.map((n) => [n.node.name, n]));
    const node = (name: string, after: string[], summary: string): Step => ({
      name,
      operation: "join",
      host: byName.get(name)!.node,
      parent: "cluster",
      runs: "node",
      restartsK3s: true,
      summary,
      after,
    });
    const steps = servers.map((s, i) =>
      node(s.node.name, i === 0 ? [] : [applyOf(servers[i - 1]!.node.name)], i === 0 ? "first server: stage, bundle, secrets, os-prep, apply (initialises the cluster)" : `server: stage, bundle, secrets, os-prep, apply after ${servers[i - 1]!.node.name}`),
    );
    for (const batch of upgradeBatches(config)) {
      const drain = batchStepName(batch, "drain");
      for (const agent of batch.agents) steps.push(node(agent, [drain], `agent: stage, bundle, secrets, os-prep, apply after ${drain}`));
    }
    return steps;
  },
};
