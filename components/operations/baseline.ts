import { joinOnly } from "../decommission/rebuild";
import { NO_OP_UPDATE, oneShotValues, renderBaselineScript } from "./once";
import { CLUSTER_CHILDREN } from "../names";
import { stdinScriptCommand } from "../shell/root";
import { Operation } from "./step";

/**
 * The one-shot baseline (operations/once.ts): on the first server, before its first install, once
 * per stack. Every input is ignored after creation, so the engine never updates it (an Update
 * would replace its stdout) and never re-runs it: its stdout stays what it saw in the up that
 * created it (the `baseline` fact every one-shot step reads), and the values that up armed.
 */
export const baseline: Operation = {
  name: "baseline",
  description: "the one-shot values the cluster was created with, taken once before the first server's first install",
  owns: (name) => name === CLUSTER_CHILDREN.oneShotBaseline,
  steps(config, plan) {
    const first = plan.nodes[0]!;
    const joined = joinOnly(config);
    return [
      {
        name: CLUSTER_CHILDREN.oneShotBaseline,
        operation: "baseline",
        host: first.node,
        parent: "cluster",
        runs: "once-per-stack",
        restartsK3s: false,
        summary: `on ${first.node.name}: record whether this up creates the cluster, and the one-shot values it arms (they then run nothing)`,
        after: [],
        gates: [{ node: first.node.name, steps: "all" }],
        create: stdinScriptCommand(first.sshUser),
        update: NO_OP_UPDATE,
        // A first server rebuilt with other servers joins a running cluster (decommission/rejoin.ts): not new.
        stdin: renderBaselineScript(oneShotValues(config), joined),
        // The one input that re-takes the baseline: join-only is decided from the config, not the host,
        // so an up that failed with `rebuild` on a new stack's first server (its forget step finds no
        // cluster) must not leave "existing" behind once the user removes it (the host is checked then).
        triggers: [joined ? "first server joins" : "first server's own state"],
        ignoreChanges: ["connection", "create", "update", "stdin", "addPreviousOutputInEnv"],
      },
    ];
  },
};
