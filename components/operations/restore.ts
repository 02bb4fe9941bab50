import {
  renderRestoreAfterReset,
  renderRestoreAgentRestart,
  renderRestoreCheck,
  renderRestoreJoinedBeforeReset,
  renderRestoreRejoin,
  renderRestoreReset,
  renderRestoreStop,
  restoreCoveredPrint,
  restoreServers,
  CLUSTER_RESET_SECONDS,
  RESTORE_READY_SECONDS,
} from "../backup/restore";
import type { NodeConfig, ResolvedConfig } from "../config/schema";
import { STOP_TIMEOUT_SECONDS } from "../k3s/install";
import { NODE_LIFECYCLE_CHILDREN, NodeLifecycleChild, nodeLifecycleName } from "../names";
import type { ClusterPlan } from "../plan/node";
import { stdinScriptCommand } from "../shell/root";
import { rotationDone } from "./certificates";
import { isCovered, renderNotCovered } from "./covered";
import { NO_OP_UPDATE } from "./once";
import { restoreAbandonedDone } from "./restore-abandoned";
import { endsWithAny, isFromFacts, Operation, sshUserOf, Step, StepValue } from "./step";

/** The step word each restore script says (backup/restore.ts `script`'s STEP). */
type RestoreChild = Exclude<Extract<NodeLifecycleChild, `restore${string}`>, "restoreAbandoned">;
const RESTORE_SCRIPT_STEP: Record<RestoreChild, string> = {
  restoreCheck: "check",
  restoreStop: "stop",
  restoreReset: "reset",
  restoreRejoin: "rejoin",
  restoreRestart: "restart",
};

/**
 * `restore` (docs/backup-and-restore.md; scripts: backup/restore.ts), once per `restore.id`: on
 * the first server, check that the snapshot is there; stop K3s on every server (the one change
 * that takes all servers down at once, as the K3s procedure requires); reset the first server
 * from the snapshot and start it; then each other server rejoins, one after another, each Ready
 * before the next; then every agent restarts. Each script records the id it completed on its host
 * (backup/restore.ts, as once.ts guardOnce does). After every node joined and after the rotations, so
 * no other restart overlaps it. Each step's host records the id it completed (once.ts guardOnce):
 * a second `up`, or a retry after a failure, never repeats a step that finished.
 *
 * Unlike the rotations, a restore armed in the `up` that creates the cluster runs (no baseline):
 * that is how a snapshot is restored onto new hosts (with `restoreToken`, the old cluster's token).
 *
 * A restore covers exactly the nodes the config manages when its check runs (nodes added in that
 * same `up` included: they join before the restore, into the cluster it then resets). The check
 * records them on the first server and prints the record on every run (its update only prints
 * it); every other step reads it (the `restoreCovered` fact) and on a node outside it runs
 * nothing. So `restore` left in the config is inert: a later `up` that adds a server or an agent
 * stops nothing, moves no etcd data and restarts nothing, on the new node or any other.
 */

/** The step names of a restore, in run order. */
export function restoreStepNames(config: ResolvedConfig): string[] {
  if (!config.restore) return [];
  const { first, others, agents } = restoreServers(config);
  const servers = [...others, first];
  return [
    nodeLifecycleName(first.name, "restoreCheck"),
    ...servers.map((s) => nodeLifecycleName(s.name, "restoreStop")),
    nodeLifecycleName(first.name, "restoreReset"),
    ...others.map((s) => nodeLifecycleName(s.name, "restoreRejoin")),
    ...agents.map((a) => nodeLifecycleName(a.name, "restoreRestart")),
  ];
}

/** The steps that end a restore (none waits for them), or `fallback` when none is armed. */
export function restoreDone(config: ResolvedConfig, fallback: string[]): string[] {
  if (!config.restore) return fallback;
  const { first, others, agents } = restoreServers(config);
  if (agents.length) return agents.map((a) => nodeLifecycleName(a.name, "restoreRestart"));
  return [nodeLifecycleName((others.at(-1) ?? first).name, others.length ? "restoreRejoin" : "restoreReset")];
}

const STOP_BOUND = STOP_TIMEOUT_SECONDS + 30;

export const restore: Operation = {
  name: "restore",
  description: "restore: stop K3s on every server, k3s server --cluster-reset from the snapshot on the first server, other servers rejoin one at a time, agents restart; once per restore.id",
  owns: endsWithAny(
    NODE_LIFECYCLE_CHILDREN.restoreCheck,
    NODE_LIFECYCLE_CHILDREN.restoreStop,
    NODE_LIFECYCLE_CHILDREN.restoreReset,
    NODE_LIFECYCLE_CHILDREN.restoreRejoin,
    NODE_LIFECYCLE_CHILDREN.restoreRestart,
  ),
  steps(config, plan: ClusterPlan) {
    const r = config.restore;
    if (!r) return [];
    const id = String(r.id);
    const { first, others, agents } = restoreServers(config);
    const steps: Step[] = [];
    // After restore-abandoned's steps (armed: they only take the id as their trigger), so an up
    // that fails in the restore has replaced them: the up that removes restore runs them.
    let previous = restoreAbandonedDone(config, rotationDone(config, plan));
    const check = nodeLifecycleName(first.name, "restoreCheck");
    const step = (
      node: NodeConfig,
      child: RestoreChild,
      summary: string,
      script: StepValue<string>,
      restartsK3s: boolean,
      timeoutSeconds: number,
      after = previous,
    ): Step => {
      const name = nodeLifecycleName(node.name, child);
      const ownNeeds = isFromFacts(script) ? script.needs : [];
      // Every step but the check runs its body only on a node the restore covered (the check's
      // record): a node that joined after the restore ran, with `restore` still set, runs nothing.
      // A stop, once the first server's reset is done (the record says so), runs nothing either:
      // the node it would stop joined the restored cluster after the reset (re-added under its
      // name); its rejoin and restart check the host's own marker (backup/restore.ts). A server
      // outside the record before the reset joined the cluster the reset replaces: its stop
      // refuses (renderRestoreJoinedBeforeReset). An empty record (none of this id) stops nothing.
      const stdin: StepValue<string> =
        name === check
          ? script
          : {
              needs: [...ownNeeds, "restoreCovered", "restoreResetDone"],
              render: (facts) =>
                !isCovered(facts.restoreCovered, node.name)
                  ? child === "restoreStop" && node.role === "server" && facts.restoreCovered!.length > 0 && !facts.restoreResetDone
                    ? renderRestoreJoinedBeforeReset(node, id, facts.restoreCovered!)
                    : renderNotCovered("restore", node, RESTORE_SCRIPT_STEP[child], id, facts.restoreCovered ?? [])
                  : child === "restoreStop" && facts.restoreResetDone
                    ? renderRestoreAfterReset(node, RESTORE_SCRIPT_STEP[child], id)
                    : isFromFacts(script) ? script.render(facts) : script,
            };
      const s: Step = {
        name,
        operation: "restore",
        host: node,
        parent: "cluster",
        runs: "once",
        restartsK3s,
        summary,
        after,
        create: stdinScriptCommand(sshUserOf(config, node)),
        // The check's update prints its record again (the others read it from its stdout).
        update: name === check ? restoreCoveredPrint(sshUserOf(config, node)) : NO_OP_UPDATE,
        stdin,
        triggers: [id],
        timeoutSeconds,
      };
      steps.push(s);
      return s;
    };
    const lost = `everything written to the cluster after snapshot ${r.snapshot} was taken is lost`;
    previous = [step(first, "restoreCheck", `${first.name}: the ${r.source} snapshot ${r.snapshot} exists; nothing stops yet (${lost})`, { needs: ["restoreTokenSet"], render: (facts) => renderRestoreCheck(config, r, id, facts.restoreTokenSet === true) }, false, 120).name];
    // Every server stops (the other servers first, the first server last): the documented exception.
    for (const server of [...others, first]) {
      previous = [step(server, "restoreStop", `${server.name}: stop K3s (every server stops before the reset)`, renderRestoreStop(server, id), true, STOP_BOUND).name];
    }
    const reset = step(
      first,
      "restoreReset",
      `${first.name}: k3s server --cluster-reset --cluster-reset-restore-path (${r.source} ${r.snapshot}), start, wait Ready`,
      // The stdin carries restoreToken and the token when restoreToken is set: kept secret in state.
      { needs: ["token", "restoreToken"], render: (facts) => renderRestoreReset(config, r, id, facts.restoreToken ? { token: facts.token, restoreToken: facts.restoreToken } : undefined) },
      true,
      STOP_BOUND * 2 + CLUSTER_RESET_SECONDS + RESTORE_READY_SECONDS * 2,
    );
    reset.secretInputs = ["stdin"];
    previous = [reset.name];
    for (const server of others) {
      previous = [step(server, "restoreRejoin", `${server.name}: move its etcd data aside, start K3s, wait Ready (rejoins ${first.name}; one server at a time)`, renderRestoreRejoin(server, id), true, STOP_BOUND + RESTORE_READY_SECONDS).name];
    }
    const lastServer = previous;
    for (const agent of agents) {
      step(agent, "restoreRestart", `${agent.name}: restart k3s-agent after the servers`, { needs: ["restoreResetDone"], render: (facts) => renderRestoreAgentRestart(agent, id, facts.restoreResetDone === true) }, true, STOP_BOUND + RESTORE_READY_SECONDS, lastServer);
    }
    return steps;
  },
};
