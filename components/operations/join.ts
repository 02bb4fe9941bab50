import { applyOf, Operation, Step } from "./step";
import { agentJoinBatches, batchStepName } from "./order";

/**
 * Every node's own steps (stage, bundle, secrets, os-prep, apply: a K3sNode, node/component.ts):
 * the first server initialises the cluster, each other server joins after the one before it, and
 * the agents after the last server, in their upgrade batch (after its drain step) when the
 * version is pinned. A node step's apply answers to `<node>-apply` in other steps' `after`.
 */
export const join: Operation = {
  name: "join",
  description: "every node's own steps: servers one at a time, then the agents (in upgrade batches when the version is pinned)",
  steps(config, plan) {
    const servers = plan.nodes.filter((n) => n.node.role === "server");
    const byName = new Map(plan.nodes.map((n) => [n.node.name, n]));
    const lastServer = servers.slice(-1)[0]!.node.name;
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
    for (const batch of agentJoinBatches(config, plan)) {
      for (const agent of batch.agents) {
        const after = batch.index > 0 ? [batchStepName(batch, "drain")] : [applyOf(lastServer)];
        steps.push(node(agent, after, `agent: stage, bundle, secrets, os-prep, apply after ${after[0]}`));
      }
    }
    return steps;
  },
};
