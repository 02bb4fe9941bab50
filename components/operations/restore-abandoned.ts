import { renderRestoreAbandoned, renderRestoreAbandonedAgent, renderRestoreAbandonedArmed, restoreServers, RESTORE_READY_SECONDS } from "../backup/restore";
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
 * `restoreAbandonedReset` fact the others read). Only the servers an etcd quorum needs before
 * any can be Ready go on without waiting; from the one that makes the quorum on, each step ends
 * only once it and every server before it are Ready, or fails naming the one that is not
 * (renderRestoreAbandoned), so the next server never acts while one before it is not Ready.
 * Then every agent, in parallel: k3s-agent starts where the restore's agent restart stopped it
 * and did not finish (renderRestoreAbandonedAgent); elsewhere only files are read.
 */
export const restoreAbandoned: Operation = {
  name: "restore-abandoned",
  description: "while no restore is armed: on each server the stop of an unfinished restore left stopped, start K3s as it was (before the reset) or rejoin the reset server (after it), one server at a time; then on each agent its restart left stopped, start k3s-agent; nothing on any other host (while a restore is armed, the same steps only carry its id)",
  owns: endsWithAny(NODE_LIFECYCLE_CHILDREN.restoreAbandoned),
  steps(config, plan: ClusterPlan) {
    const chain = abandonedChain(config, true);
    const steps: Step[] = [];
    let previous = rotationDone(config, plan);
    const servers = chain.map(({ server }) => server.name);
    chain.forEach(({ server, name }, i) => {
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
        stdin: i === 0 ? renderRestoreAbandoned(server, servers) : { needs: ["restoreAbandonedReset"], render: (facts) => renderRestoreAbandoned(server, servers, facts.restoreAbandonedReset) },
        // A rejoin stops K3s, then waits for Ready; a start waits for Ready (backup/restore.ts).
        timeoutSeconds: STOP_TIMEOUT_SECONDS + 30 + RESTORE_READY_SECONDS,
      });
      previous = [name];
    });
    // Agents after every server (a restore restarts them last), in parallel as its restarts run.
    for (const { agent, name } of abandonedAgents(config, true)) {
      steps.push({
        name,
        operation: "restore-abandoned",
        host: agent,
        parent: "cluster",
        runs: "once",
        // It only starts a k3s-agent a restore's restart left stopped: it never stops or restarts a
        // running one (adding an agent creates this step on it, which only reads files there).
        restartsK3s: false,
        summary: `${agent.name}: if an unfinished restore's restart stopped k3s-agent here, start it; otherwise nothing`,
        after: previous,
        create: stdinScriptCommand(sshUserOf(config, agent)),
        update: NO_OP_UPDATE,
        stdin: renderRestoreAbandonedAgent(agent),
        timeoutSeconds: RESTORE_READY_SECONDS + 30,
      });
    }
    const armed = config.restore ? String(config.restore.id) : undefined;
    return armed === undefined ? steps : steps.map((step) => whileArmed(step, armed));
  },
};

/**
 * A step while restore `id` is armed: it carries the id as its trigger and only says so (the
 * restore's own steps act). The engine deletes resources a program no longer declares only at
 * the end of an `up` that succeeds, so if these steps were absent while a restore is armed, an
 * arming `up` that fails (the case this operation exists for) would leave them in state
 * unchanged, and the `up` that removes `restore` would find them the same and run nothing. With
 * the trigger, that `up` changes it (back to none): the engine replaces each step, and its
 * create runs the converging script.
 */
function whileArmed(step: Step, id: string): Step {
  return {
    ...step,
    restartsK3s: false,
    summary: `${step.host.name}: restore ${id} is armed (its own steps act): nothing; the up that removes restore runs this step's convergence`,
    stdin: renderRestoreAbandonedArmed(step.host, id),
    triggers: [`restore ${id} armed`],
    timeoutSeconds: 60,
  };
}

/**
 * The chain, in run order: each server (the first server first, restoreServers) with its step's
 * name; empty while a restore is armed or the datastore is not embedded etcd. The steps, their
 * first (restoreAbandonedFirst) and their last (restoreAbandonedDone) are read from here.
 */
function abandonedChain(config: ResolvedConfig, evenArmed = false): Array<{ server: NodeConfig; name: string }> {
  if ((config.restore && !evenArmed) || config.k3s.datastore.type !== "etcd") return [];
  const { first, others } = restoreServers(config);
  return [first, ...others].map((server) => ({ server, name: nodeLifecycleName(server.name, "restoreAbandoned") }));
}

/** The agents' steps (after the chain), with the same arming as the chain. */
function abandonedAgents(config: ResolvedConfig, evenArmed = false): Array<{ agent: NodeConfig; name: string }> {
  if (!abandonedChain(config, evenArmed).length) return [];
  return restoreServers(config).agents.map((agent) => ({ agent, name: nodeLifecycleName(agent.name, "restoreAbandoned") }));
}

/** The first server's restore-abandoned step: its stdout says where a reset ran (the `restoreAbandonedReset` fact). */
export function restoreAbandonedFirst(config: ResolvedConfig): string | undefined {
  return abandonedChain(config)[0]?.name;
}

/**
 * The steps that end restore-abandoned: the agents', else the chain's last; `fallback` when there
 * is none. Maintenance waits for them; an armed restore's first step too (whileArmed: the steps
 * take the restore's id as their trigger before any step of the restore can fail).
 */
export function restoreAbandonedDone(config: ResolvedConfig, fallback: string[]): string[] {
  const agents = abandonedAgents(config, true);
  if (agents.length) return agents.map((a) => a.name);
  const last = abandonedChain(config, true).at(-1);
  return last ? [last.name] : fallback;
}
