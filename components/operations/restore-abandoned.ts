import { renderRestoreAbandoned, restoreServers, QUORUM_WAIT_SECONDS, RESTORE_READY_SECONDS } from "../backup/restore";
import type { NodeConfig, ResolvedConfig } from "../config/schema";
import { STOP_TIMEOUT_SECONDS } from "../k3s/install";
import { NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../names";
import type { ClusterPlan } from "../plan/node";
import { stdinScriptCommand } from "../shell/root";
import { rotationDone } from "./certificates";
import { NO_OP_UPDATE } from "./once";
import { endsWithAny, Operation, sshUserOf, Step } from "./step";

/**
 * A restore removed from the config before it finished (docs/backup-and-restore.md, "A restore
 * that failed"): its steps leave the program and their deletes run nothing, so K3s would stay
 * stopped wherever its stop ran, and no later `up` would start it ("Nothing is half-applied
 * without converging on the next `up`"). While the config arms no restore (on an embedded-etcd
 * cluster: the only datastore a restore applies to), every server has a `restore-abandoned` step:
 * created in the `up` that removes `restore` (and once in the first `up` of a stack without one),
 * never updated by anything but its script, so a no-op `up` stays one. Each converges its own
 * host from the restore's markers (backup/restore.ts renderRestoreAbandoned): nothing on a host
 * the restore never stopped or where it finished; K3s started as it was before a cluster reset;
 * after the reset, the reset server started and each other server rejoined with its etcd data
 * moved aside, as the restore's own rejoin does. A chain, one server at a time, the first server
 * first (the one that holds a reset); its stdout says whether the reset ran there (the
 * `restoreAbandonedReset` fact the others read).
 */
export const restoreAbandoned: Operation = {
  name: "restore-abandoned",
  description: "while no restore is armed: on each server the stop of an unfinished restore left stopped, start K3s as it was (before the reset) or rejoin the reset server (after it); one server at a time; nothing on any other host",
  owns: endsWithAny(NODE_LIFECYCLE_CHILDREN.restoreAbandoned),
  steps(config, plan: ClusterPlan) {
    const chain = abandonedChain(config);
    const steps: Step[] = [];
    let previous = rotationDone(config, plan);
    chain.forEach(({ server, name }, i) => {
      const last = i === chain.length - 1;
      steps.push({
        name,
        operation: "restore-abandoned",
        host: server,
        parent: "cluster",
        runs: "once",
        // It starts K3s where a restore left it stopped, and a rejoin restarts it: ordered as a restart.
        restartsK3s: true,
        summary: `${server.name}: if an unfinished restore stopped K3s here, start it as it was or rejoin ${chain[0]!.server.name} after its reset; otherwise nothing`,
        after: previous,
        create: stdinScriptCommand(sshUserOf(config, server)),
        update: NO_OP_UPDATE,
        stdin: i === 0 ? renderRestoreAbandoned(server, last) : { needs: ["restoreAbandonedReset"], render: (facts) => renderRestoreAbandoned(server, last, facts.restoreAbandonedReset) },
        timeoutSeconds: STOP_TIMEOUT_SECONDS + 30 + RESTORE_READY_SECONDS + QUORUM_WAIT_SECONDS,
      });
      previous = [name];
    });
    return steps;
  },
};

/**
 * The chain, in run order: each server (the first server first, restoreServers) with its step's
 * name; empty while a restore is armed or the datastore is not embedded etcd. The steps, their
 * first (restoreAbandonedFirst) and their last (restoreAbandonedDone) are read from here.
 */
function abandonedChain(config: ResolvedConfig): Array<{ server: NodeConfig; name: string }> {
  if (config.restore || config.k3s.datastore.type !== "etcd") return [];
  const { first, others } = restoreServers(config);
  return [first, ...others].map((server) => ({ server, name: nodeLifecycleName(server.name, "restoreAbandoned") }));
}

/** The first server's restore-abandoned step: its stdout says where a reset ran (the `restoreAbandonedReset` fact). */
export function restoreAbandonedFirst(config: ResolvedConfig): string | undefined {
  return abandonedChain(config)[0]?.name;
}

/** The step that ends the chain (maintenance waits for it), or `fallback` when there is none. */
export function restoreAbandonedDone(config: ResolvedConfig, fallback: string[]): string[] {
  const last = abandonedChain(config).at(-1);
  return last ? [last.name] : fallback;
}
