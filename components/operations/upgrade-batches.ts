import { NO_OP_UPDATE } from "./once";
import { stdinScriptCommand } from "../shell/root";
import { previousBatchWaitSeconds, renderAgentBatchDrain, renderAgentBatchUncordon } from "../upgrade/render";
import { agentJoinBatches, batchStepName } from "./order";
import { batchBoundSeconds } from "../k3s/timeouts";
import { applyOf, Operation, preflightOf, Step } from "./step";

/**
 * Agents in upgrade batches of at most `upgrade.maxUnavailable` (components/upgrade): the first
 * server cordons and drains a batch, its agents install in parallel, the first server waits for
 * them Ready at the new version and uncordons them, then the next batch starts. Both batch steps
 * run only when the version changes (their trigger); any other input change is a no-op Update.
 * Without a pinned version there are no batches: agents join in parallel.
 *
 * The order between batches is kept on the host, not by the graph (issue 26): batch k's drain
 * follows batch k-1's drain, and waits there until batch k-1's agents are uncordoned (its uncordon
 * step runs after their installs). Agents that have never joined have nothing to drain, so the
 * drains pass at once and a new cluster's agents join in one wave; with the graph chained through
 * each batch's installs, they joined one batch at a time.
 */

export const upgradeBatches: Operation = {
  name: "upgrade-batches",
  description: "agents in batches of upgrade.maxUnavailable: drain a batch on the first server, install it, wait Ready and uncordon it",
  // names.ts agentBatchStepSuffix: agent-batch-<i>-drain|uncordon.
  owns: (name) => /^agent-batch-[0-9]+-(drain|uncordon)$/.test(name),
  steps(config, plan) {
    const first = plan.nodes[0]!;
    const lastServer = plan.nodes.filter((n) => n.node.role === "server").slice(-1)[0]!.node.name;
    const steps: Step[] = [];
    let previous: string | undefined;
    const preflights = new Set(plan.nodes.filter((n) => n.commands.preflight).map((n) => n.node.name));
    for (const batch of agentJoinBatches(config, plan).filter((b) => b.index > 0)) {
      const step = (which: "drain" | "uncordon", stdin: string, after: string[], summary: string): Step => ({
        name: batchStepName(batch, which),
        operation: "upgrade-batches",
        host: first.node,
        parent: "cluster",
        runs: "once",
        restartsK3s: false,
        summary,
        after,
        create: stdinScriptCommand(first.sshUser),
        update: NO_OP_UPDATE,
        stdin,
        triggers: [config.k3s.version ?? ""],
        timeoutSeconds: batchBoundSeconds(config, batch.agents.length, which) + (which === "drain" ? previousBatchWaitSeconds(config, batch) : 0),
        // The drain waits for its agents' preflight checks (k3s/preflight.ts): an agent whose host
        // lacks what its install needs is never cordoned.
        ...(which === "drain" ? { awaits: batch.agents.filter((a) => preflights.has(a)).map(preflightOf) } : {}),
      });
      steps.push(
        step("drain", renderAgentBatchDrain(config, batch), [applyOf(lastServer), ...(previous ? [previous] : [])], `batch ${batch.index} (${batch.agents.join(", ")}): cordon and drain the agents that run an older release, on ${first.node.name}`),
        step("uncordon", renderAgentBatchUncordon(config, batch), batch.agents.map(applyOf), `batch ${batch.index}: wait until each agent is Ready at ${config.k3s.version ?? ""}, uncordon what the upgrade cordoned`),
      );
      previous = batchStepName(batch, "drain");
    }
    return steps;
  },
};
