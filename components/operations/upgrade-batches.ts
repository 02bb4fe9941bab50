import { NO_OP_UPDATE } from "./once";
import { stdinScriptCommand } from "../shell/root";
import { AgentBatch, BatchInputs, previousBatchWaitSeconds, secretInputsOf, renderAgentBatchDrain, renderAgentBatchUncordon, upgradeBatches as batchesOf } from "../upgrade/render";
import { batchStepName } from "./order";
import { batchBoundSeconds } from "../k3s/timeouts";
import { followsChannel } from "../k3s/release";
import type { ResolvedConfig } from "../config/schema";
import { sha256 } from "../plan/hash";
import { batchInputs } from "../plan/restart";
import { applyOf, FactName, Facts, Operation, preflightOf, Step, StepValue } from "./step";

/**
 * Agents in upgrade batches of at most `upgrade.maxUnavailable` (components/upgrade): the first
 * server cordons and drains a batch, its agents install in parallel, the first server waits for
 * them Ready at the new version and uncordons them, then the next batch starts. Both batch steps
 * run only when the version changes (their trigger); any other input change is a no-op Update.
 * A channel stack has the same batches (issue 26): their target is the cluster's release, the one
 * its k3s-release step recorded (the `clusterRelease` fact, operations/release.ts), which never
 * moves; so there they run for restarts only.
 *
 * An agent's restart that is not an upgrade goes through its batch too (issue 26): both steps'
 * triggers carry the digest of the batch's K3s inputs (plan/restart.ts), so a change that restarts
 * an agent (its labels, taints, kubelet args, a cluster-wide agent flag) runs its batch's drain,
 * which cordons and drains the agents whose inputs differ from their Node's record, and its
 * uncordon, which records them once Ready. Batches whose agents' inputs did not change run nothing.
 * The same for a change of an agent's secret files (a registryAuth password, vpnAuthKey, token
 * changed outside the rotation; apply.sh fingerprints their content): the triggers and scripts
 * carry each agent's keyed digest of them (the `secretInputs` fact, plan/restart.ts
 * secretInputsDigest), so such a change drains exactly the agents that read the changed file,
 * batch by batch, instead of restarting every agent at once undrained.
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
    for (const batch of batchesOf(config)) {
      const inputs = batchInputs(plan, batch);
      const withPreflight = batch.agents.filter((a) => preflights.has(a));
      const triggers: StepValue<string[]> = { needs: ["secretInputs"], render: (facts) => batchTriggers(config, batch, { k3s: inputs, secrets: facts.secretInputs }) };
      const step = (which: "drain" | "uncordon", after: string[], summary: string): Step => ({
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
        stdin: which === "drain" ? batchScript(config, batch, renderAgentBatchDrain, inputs, withPreflight) : batchScript(config, batch, renderAgentBatchUncordon, inputs),
        triggers,
        timeoutSeconds: batchBoundSeconds(config, batch.agents.length, which) + (which === "drain" ? previousBatchWaitSeconds(config, batch) : 0),
        // The drain waits for its agents' preflight checks (k3s/preflight.ts): an agent whose host
        // lacks what its install needs is never cordoned.
        ...(which === "drain" ? { awaits: withPreflight.map(preflightOf) } : {}),
      });
      steps.push(
        step("drain", [applyOf(lastServer), ...(previous ? [previous] : [])], `batch ${batch.index} (${batch.agents.join(", ")}): cordon and drain the agents that run an older release or whose K3s inputs changed, on ${first.node.name}`),
        step("uncordon", batch.agents.map(applyOf), `batch ${batch.index}: wait until each agent is Ready at ${config.k3s.version ?? "the cluster's release"}, record their K3s inputs, uncordon what the upgrade or a restart cordoned`),
      );
      previous = batchStepName(batch, "drain");
    }
    return steps;
  },
};

/**
 * A batch step's triggers: the version, the digest of its agents' restart digests, and (issue 26)
 * of their keyed secret digests. The last one is new: on the first up of this version every
 * batch's two steps run once (the drain cordons nothing for it: no Node records it yet; the
 * uncordon records it). Render and churn (no `secretInputs`) see the placeholders.
 */
function batchTriggers(config: ResolvedConfig, batch: AgentBatch, inputs: BatchInputs): string[] {
  const secrets = batch.agents.map((a) => secretInputsOf(inputs, a));
  return [config.k3s.version ?? "", sha256([...inputs.k3s.values()].join("\n")), sha256(secrets.join("\n"))];
}

/**
 * A batch step's script, with its agents' keyed secret digests (the `secretInputs` fact): at
 * `k3s.version`, or on a channel stack at the release its k3s-release step recorded, known once
 * the engine ran it (the `clusterRelease` fact).
 */
function batchScript(
  config: ResolvedConfig,
  batch: AgentBatch,
  render: (config: ResolvedConfig, batch: AgentBatch, inputs: BatchInputs, clusterRelease?: string) => string,
  inputs: ReadonlyMap<string, string>,
  verdictsOf?: readonly string[],
): StepValue<string> {
  const of = (facts: Facts): BatchInputs => ({ k3s: inputs, secrets: facts.secretInputs, ...(verdictsOf ? { restarts: facts.restartVerdicts } : {}) });
  // The drain also reads its agents' preflight answers (issue 26): will the apply restart K3s?
  // Its own agents' only (`agents`): another batch's change leaves this script as it was.
  const needs: FactName[] = ["secretInputs", ...(verdictsOf ? (["restartVerdicts"] as const) : [])];
  const scope = verdictsOf ? { agents: verdictsOf } : {};
  if (!followsChannel(config)) return { needs, ...scope, render: (facts) => render(config, batch, of(facts)) };
  return { needs: ["clusterRelease", ...needs], ...scope, render: (facts) => render(config, batch, of(facts), facts.clusterRelease) };
}
