import { CLUSTER_CHILDREN, childName, childSuffix, ENCRYPTION_PHASES, NODE_CHILDREN, NODE_LIFECYCLE_CHILDREN, NodeLifecycleChild, nodeLifecycleName, nodeLifecycleOf, nodeResourceName, parseUrn, TYPES } from "../components/names";
import { OPERATIONS, operationOf } from "../components/operations";
import type { PreviewStep } from "./preview-types";
import { parseRestoreResetDone, restoreServers, snapshotTime } from "../components/backup/restore";
import { CoveringOperation, notCoveredText, OPERATIONS_CONFIGMAP, parseCovered } from "../components/operations/covered";
import { MAINTENANCE_RECORD } from "../components/operations/maintenance";
import { restoreStepNames } from "../components/operations/restore";
import { maintenanceGroups } from "../components/maintenance/render";
import type { ResolvedConfig } from "../components/config/schema";

/**
 * Day-2 operations in a preview, one line per phase, in the words of docs/removing-and-replacing-nodes.md "Removing a node" /
 * "Rotating the token / certificates" (issue 13, "Visible and safe"). Pure: steps in, lines out.
 * Names are parsed with components/names.ts against the stack's K3sCluster name (the program
 * names it after the stack). Reads ops and K3sNode roles only, never values: the interesting
 * ones (token, connection) are secret in the digest anyway.
 */

const REPLACING = new Set(["replace", "create-replacement", "delete-replaced"]);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** How many servers and agents the stack's config declares (preview:md reads Pulumi.<stack>.yaml). */
export interface NodeRoles {
  servers: number;
  agents: number;
}

export function lifecycleLines(steps: PreviewStep[], stack: string, roles?: NodeRoles): string[] {
  const lines: string[] = [];
  const named = steps.map((s) => ({ ...parseUrn(s.urn), op: REPLACING.has(s.op) ? "replace" : s.op, step: s }));

  // Nodes the program still declares (any op but delete), by role.
  const nodes = named.filter((s) => s.type === TYPES.node);
  const roleOf = (s: (typeof nodes)[number]) => String((s.step.newState?.inputs ?? s.step.oldState?.inputs)?.role ?? "");
  const kept = nodes.filter((s) => s.op !== "delete");
  // The digest lists only changed resources: with no K3sNode step in it, the config's roles count.
  const servers = roles && kept.length === 0 ? roles.servers : kept.filter((s) => roleOf(s) !== "agent").length;
  const agents = roles && kept.length === 0 ? roles.agents : kept.filter((s) => roleOf(s) === "agent").length;
  const rollout = () => `${plural(servers, "server")} one at a time${agents ? `, then ${plural(agents, "agent")}` : ""}`;
  const lifecycle = named.map((s) => ({ ...s, of: nodeLifecycleOf(s.name, stack) })).filter((s) => s.type === TYPES.command && s.of);

  // ---- removal
  const arming = new Set<string>();
  const running = new Set<string>();
  for (const s of lifecycle.filter((l) => l.of!.child === "drain")) {
    const node = s.of!.node;
    if (s.op === "delete") {
      running.add(node);
      // The entry is still there (its K3sNode is declared): the `decommission` line was deleted.
      // The drain refuses a node its server lists as managed, so this up fails there.
      if (kept.some((n) => n.name === nodeResourceName(stack, node))) {
        lines.push(`⚠️ ${node} stays in the config but its armed teardown is dropped: this up will fail at its drain (refused on the server; nothing is removed). Set \`decommission: false\` to cancel, or delete the whole entry to remove it (docs/removing-and-replacing-nodes.md)`);
      } else {
        lines.push(`decommission ${node}: drain, delete node, uninstall`);
      }
    } else if (s.op === "create") {
      arming.add(node);
      lines.push(`arm decommission ${node}: nothing changes on it now; deleting its entry drains, deletes the node and uninstalls K3s`);
    } else if (s.op === "update" && [...(s.step.diffReasons ?? []), ...Object.keys(s.step.detailedDiff ?? {})].includes("delete")) {
      lines.push(`decommission ${node}: teardown armed or disarmed (the \`delete\` it runs on removal changed)`);
    }
  }
  for (const s of nodes.filter((n) => n.op === "delete")) {
    const node = s.name.startsWith(`${stack}-`) ? s.name.slice(stack.length + 1) : s.name;
    if (s.name !== nodeResourceName(stack, node) || arming.has(node) || running.has(node)) continue;
    lines.push(`⚠️ remove ${node} without decommission: K3s stays installed and running on the host (docs/removing-and-replacing-nodes.md)`);
  }

  // A new cluster (its first server is created in this up): one-shot steps armed in the config are
  // recorded, not run (components/operations/once.ts, the one-shot baseline): nothing to rotate yet.
  const creating = kept.some((n) => roleOf(n) === "first-server" && n.op === "create");
  const armedAtCreation: string[] = [];

  // ---- rebuild (docs/rebuilding.md): the forget step runs, then every step of the node.
  const forgotten = new Set<string>();
  for (const s of lifecycle.filter((l) => l.of!.child === "forget" && (l.op === "create" || l.op === "replace"))) {
    const node = s.of!.node;
    forgotten.add(node);
    if (creating) {
      armedAtCreation.push(`rebuild ${node}`);
      continue;
    }
    const first = kept.find((n) => n.name === nodeResourceName(stack, node) && roleOf(n) === "first-server");
    lines.push(`rebuild ${node}: forget the old node, re-run every step${first ? " (join-only)" : ""}`);
  }
  // The only server has nobody to forget it: its stage is replaced with a rebuild value in its
  // triggers (the staging directory, then the value: node/component.ts).
  const rebuilt = (s: (typeof named)[number]) => s.op === "replace" && Array.isArray(s.step.newState?.inputs?.triggers) && (s.step.newState!.inputs!.triggers as unknown[]).length > 1;
  for (const n of kept.filter((k) => roleOf(k) === "first-server")) {
    const node = n.name.slice(stack.length + 1);
    const stage = childName(n.name, NODE_CHILDREN.stage);
    if (!forgotten.has(node) && named.some((s) => s.name === stage && rebuilt(s))) {
      lines.push(`⚠️ rebuild ${node}: re-run every step on the only server: a new, empty cluster unless a snapshot is restored first (docs/rebuilding.md)`);
    }
  }

  // ---- rotation
  if (named.some((s) => s.op === "replace" && s.name === childName(stack, CLUSTER_CHILDREN.tokenRotate))) lines.push(`rotate token: ${rollout()}`);
  if (lifecycle.some((s) => s.of!.child === "rotateCertificates" && (s.op === "create" || s.op === "replace"))) {
    if (creating) armedAtCreation.push("certificate rotation");
    else lines.push(`rotate certificates: stop, rotate, start; ${rollout()}`);
  }
  const encryption = childName(stack, CLUSTER_CHILDREN.encryption);
  const phases = named
    .filter((s) => s.parents.includes(TYPES.secretsEncryption) && (s.op === "create" || s.op === "replace"))
    .map((s) => (s.name.startsWith(`${encryption}-`) ? s.name.slice(encryption.length + 1) : ""))
    .filter((p) => (Object.values(ENCRYPTION_PHASES) as string[]).includes(p));
  if (phases.length && creating) armedAtCreation.push("encryption key rotation");
  else if (phases.length) lines.push(`rotate encryption keys (${phases.join(", ")}): after each phase ${plural(servers, "server")} restart one at a time`);
  lines.push(...datastoreLines(named));
  lines.push(...sameIdLines(named));
  lines.push(...restoreLines(lifecycle, named));
  lines.push(...restoreRemovedLines(lifecycle, named, stack));
  lines.push(...maintenanceLines(lifecycle, named, creating, stack));
  if (armedAtCreation.length) lines.push(`new cluster: ${armedAtCreation.join(", ")} recorded as done, nothing runs (nothing to rotate yet); a later value runs it`);

  // ---- destroy (docs/destroy.md): uninstallOnDestroy and protect
  const begin = named.find((s) => s.type === TYPES.command && s.name === childName(stack, CLUSTER_CHILDREN.destroyBegin));
  const uninstalls = lifecycle.filter((s) => s.of!.child === "destroyUninstall" && s.op === "create").length;
  if (begin?.op === "create") {
    lines.push(`arm uninstall on destroy: pulumi destroy will uninstall K3s${uninstalls ? ` from ${plural(uninstalls, "node")}` : ""}, agents first, servers last, one at a time; nothing changes on a host now`);
  } else if (begin?.op === "delete") {
    lines.push("uninstall on destroy turned off: its steps are dropped and uninstall nothing (they run only on nodes destroy-begin marked)");
  }
  const guard = named.find((s) => s.type === TYPES.destroyGuard);
  if (guard && guard.step.oldState?.protect === true && guard.step.newState?.protect === false) {
    lines.push("⚠️ protect: false: after this up, pulumi destroy deletes the stack (docs/destroy.md)");
  } else if (guard && guard.step.newState?.protect === true && guard.step.oldState?.protect !== true) {
    lines.push("protected: pulumi destroy deletes nothing until an up with protect: false (docs/destroy.md)");
  }
  return lines;
}


/**
 * One line: the operations whose steps this preview runs (creates or replaces; deletes, for a
 * teardown), in the order
 * they run (components/operations OPERATIONS, the list the program declares them from), with how
 * many steps each. Steps are told apart by name against the stack's K3sCluster name (operationOf).
 */
export function runOrderLines(steps: PreviewStep[], stack: string): string[] {
  const counts = new Map<string, number>();
  for (const s of steps) {
    const { type, name } = parseUrn(s.urn);
    if (type !== TYPES.command) continue;
    const operation = operationOf(childSuffix(name, stack) ?? "");
    // Created or replaced (counted once) steps run; a deleted one only when it is a teardown.
    const runs = s.op === "create" || s.op === "replace" || (s.op === "delete" && operation?.runsOnDelete === true);
    if (operation && runs) counts.set(operation.name, (counts.get(operation.name) ?? 0) + 1);
  }
  const parts = OPERATIONS.filter((o) => counts.has(o.name)).map((o) => `${o.name} (${plural(counts.get(o.name)!, "step")})`);
  return parts.length ? [`day-2 steps in the order they run: ${parts.join(" → ")}`] : [];
}

type Named = ReturnType<typeof parseUrn> & { op: string; step: PreviewStep };

/**
 * The nodes an operation's recording step (the restore's check, `maintenance-record`) listed when
 * it ran before this up (operations/covered.ts); undefined when it runs in this up: every node.
 */
function coveredBefore(record: Named | undefined, operation: CoveringOperation, id: string): Set<string> | undefined {
  if (!record || record.op === "create" || record.op === "replace") return undefined;
  return new Set(parseCovered(String(record.step.oldState?.outputs?.stdout ?? ""), operation, id));
}

/** The line for steps created on nodes the operation did not cover when it ran (covered.ts notCoveredText): they run nothing. */
function inertLine(operation: CoveringOperation, id: string, nodes: readonly string[]): string[] {
  return nodes.length ? [`${notCoveredText(operation, id, nodes)} (docs/${operation === "restore" ? "backup-and-restore" : "maintenance"}.md)`] : [];
}
type Lifecycle = Named & { of?: ReturnType<typeof nodeLifecycleOf> };

/** The K3sCluster's registered config in this preview (its inputs carry the validated, secret-free config). */
function clusterConfig(named: Named[]): Partial<ResolvedConfig> | undefined {
  const { before, now } = clusterConfigs(named);
  return now ?? before;
}

/** The K3sCluster's registered config before this preview (state) and after it (the program). */
function clusterConfigs(named: Named[]): { before?: Partial<ResolvedConfig>; now?: Partial<ResolvedConfig> } {
  const cluster = named.find((s) => s.type === TYPES.cluster);
  return {
    before: cluster?.step.oldState?.inputs?.config as Partial<ResolvedConfig> | undefined,
    now: cluster?.step.newState?.inputs?.config as Partial<ResolvedConfig> | undefined,
  };
}

/**
 * sqlite -> embedded etcd (docs/removing-and-replacing-nodes.md "Topology changes"): K3s converts
 * the sqlite data only on the server restarted with `cluster-init`, the first server of `nodes`
 * ("the existing server must be the one with cluster-init", docs.k3s.io/datastore/ha-embedded).
 * The config alone cannot tell which server holds the data; the previous config can: its first
 * server. Listed below a new server, its data would not be converted (the new server joins it or
 * starts an empty cluster; its own apply then refuses: decommission/rejoin.ts sqliteHolderGuard).
 */
function datastoreLines(named: Named[]): string[] {
  const { before, now } = clusterConfigs(named);
  if (before?.k3s?.datastore?.type !== "sqlite" || now?.k3s?.datastore?.type !== "etcd") return [];
  const firstOf = (c: Partial<ResolvedConfig>) => (c.nodes ?? []).find((n) => n.role === "server" && n.decommission !== true)?.name;
  const holder = firstOf(before);
  const first = firstOf(now);
  if (!holder || !first || holder === first) return [];
  const where = (now.nodes ?? []).some((n) => n.name === holder && n.role === "server")
    ? `list ${holder} first in nodes`
    : `keep ${holder} in nodes, listed first`;
  return [
    `⚠️ sqlite → embedded etcd: ${holder} holds the sqlite data, but ${first} is listed first (cluster-init): K3s converts the data only on the server started with cluster-init, so it would not be converted; ${where} (docs/removing-and-replacing-nodes.md)`,
  ];
}

/** Per one-shot operation: the settings a new id runs again (the id aside), and what to do instead. */
const ONE_SHOT_SETTINGS = {
  restore: {
    keys: ["snapshot", "source"],
    doc: "backup-and-restore",
    instead: (r: Record<string, unknown>) => `, so this restores nothing there; set a new restore.id to restore ${String(r.snapshot)}`,
  },
  maintenance: {
    keys: ["command", "reboot", "nodes"],
    doc: "maintenance",
    instead: () => ", and nodes it did not cover when it first ran are not added; set a new maintenance.id to run it",
  },
} as const;

/**
 * `restore` or `maintenance` changed under the same id: every step that finished for that id
 * skips it on its host (operations/once.ts guardOnce) and the covered nodes are recorded once per
 * id (operations/covered.ts), so the change alone runs nothing where the operation ran. The engine
 * shows only updates of its steps; this says it in words, naming the way that runs it.
 */
function sameIdLines(named: Named[]): string[] {
  const { before, now } = clusterConfigs(named);
  const lines: string[] = [];
  for (const operation of ["restore", "maintenance"] as const) {
    const was = before?.[operation] as Record<string, unknown> | undefined;
    const is = now?.[operation] as Record<string, unknown> | undefined;
    if (!was || !is || String(was.id) !== String(is.id)) continue;
    const { keys, doc, instead } = ONE_SHOT_SETTINGS[operation];
    const changed = keys.filter((k) => JSON.stringify(was[k] ?? null) !== JSON.stringify(is[k] ?? null));
    if (!changed.length) continue;
    const id = `${operation} ${String(is.id)}`;
    lines.push(`⚠️ ${id}: ${changed.map((k) => `${operation}.${k}`).join(", ")} changed under the same id: every step that already ran for ${id} is not run again${instead(is)} (docs/${doc}.md)`);
  }
  return lines;
}

/**
 * `restore` (operations/restore.ts): what is lost and which hosts restart, in words. The snapshot
 * and its time come from the cluster's config (K3s names snapshots `<name>-<node>-<unix time>`);
 * the hosts from the steps this up runs.
 */
function restoreLines(lifecycle: Lifecycle[], named: Named[]): string[] {
  const created = lifecycle.filter((l) => l.of!.child.startsWith("restore") && l.of!.child !== "restoreAbandoned" && (l.op === "create" || l.op === "replace"));
  if (!created.length) return [];
  const r = clusterConfig(named)?.restore;
  const id = String(r?.id ?? "");
  const checks = lifecycle.filter((l) => l.of!.child === "restoreCheck");
  // A check this up does not create ran before: its record (stdout) lists the nodes the restore
  // covered; a step created on any other node runs nothing (a node that joined after it).
  const check = checks.find((l) => l.op !== "delete") ?? checks[0];
  const moved = firstSlotMovedLines(checks, check, r?.snapshot, id);
  if (moved) return moved;
  const covered = coveredBefore(check, "restore", String(r?.id ?? ""));
  // Its reset was done before this up: a node re-added under a covered name since stops nothing;
  // its rejoin or restart runs only where this restore stopped K3s (a retry), said apart below.
  const resetDone = covered !== undefined && parseRestoreResetDone(String(check?.step.oldState?.outputs?.stdout ?? ""), String(r?.id ?? ""));
  if (resetDone) {
    const nodes = [...new Set(created.map((l) => l.of!.node))];
    return [`restore ${r?.id ?? ""}'s reset was done before this up: on ${nodes.join(", ")} nothing stops; a rejoin or agent restart runs only where restore ${r?.id ?? ""} stopped K3s (a retry) (docs/backup-and-restore.md)`];
  }
  const running = created.filter((l) => !covered || covered.has(l.of!.node));
  // A server outside the record whose stop is created while the reset has not run yet (it is
  // created in this up too): it joined the cluster the reset replaces, and its stop refuses
  // (backup/restore.ts renderRestoreJoinedBeforeReset). An empty record stops nothing.
  const resetPending = lifecycle.some((l) => l.of!.child === "restoreReset" && (l.op === "create" || l.op === "replace"));
  const refused = resetPending && covered?.size ? [...new Set(created.filter((l) => l.of!.child === "restoreStop" && !covered.has(l.of!.node)).map((l) => l.of!.node))] : [];
  const refusedLines = refused.length
    ? [`⚠️ restore ${r?.id ?? ""}: ${refused.join(", ")} joined after its check ran and before its cluster reset, so the restore does not stop ${refused.length === 1 ? "it" : "them"} and ${refused.length === 1 ? "its" : "their"} stop fails before anything stops there (a server left running through the reset keeps the old etcd membership): remove restore from the config in this change, or set a new restore.id, whose check covers every server (docs/backup-and-restore.md)`]
    : [];
  const inert = [...new Set(created.filter((l) => !running.includes(l)).map((l) => l.of!.node))].filter((n) => !refused.includes(n));
  const note = [...refusedLines, ...inertLine("restore", String(r?.id ?? ""), inert)];
  if (!running.length) return note;
  const nodesOf = (child: string) => running.filter((l) => l.of!.child === child).map((l) => l.of!.node);
  const stops = nodesOf("restoreStop");
  const [reset] = nodesOf("restoreReset");
  const rejoins = nodesOf("restoreRejoin");
  const agents = nodesOf("restoreRestart");
  const taken = r ? snapshotTime(r.snapshot) : undefined;
  const what = r ? `snapshot ${r.snapshot} (${r.source ?? "local"})` : "the configured snapshot";
  const lost = taken ? `everything written to the cluster after ${taken.toISOString()} (when it was taken) is lost` : "everything written to the cluster after it was taken is lost";
  const parts = [
    stops.length ? `K3s stops on ${plural(stops.length, "server")} at once (${stops.join(", ")})` : "",
    reset ? `${reset} resets from it and starts` : "",
    rejoins.length ? `${rejoins.join(", ")} rejoin${rejoins.length === 1 ? "s" : ""} one at a time (etcd data moved aside)` : "",
    agents.length ? `${plural(agents.length, "agent")} restart` : "",
  ].filter(Boolean);
  return [`⚠️ restore ${what}: ${lost}; ${parts.join(", then ")} (docs/backup-and-restore.md)`, ...outsideServersLines(named, reset !== undefined), ...note];
}

/**
 * `restore` removed from the config before every step of it finished (a step failed, and the
 * user changed their mind): its steps are dropped and their deletes run nothing; the
 * restore-abandoned chain created in the same up (operations/restore-abandoned.ts) converges
 * what it left, from each host's markers. Said from the steps in state (a step that finished is
 * there, deleted now) against the steps the old config declared (operations/restore.ts
 * restoreStepNames): whether the cluster reset ran decides between "start as it was" and
 * "rejoin". Otherwise the chain's creation (a stack's first up with it) is one line: it only reads.
 */
function restoreRemovedLines(lifecycle: Lifecycle[], named: Named[], stack: string): string[] {
  const configs = clusterConfigs(named);
  // The state's config is the validated one the program registered: whole, so the steps it declared can be named.
  const before = configs.before as ResolvedConfig | undefined;
  const now = configs.now;
  // Created (a stack's first up with them), or replaced (their trigger goes back to none as restore is removed).
  const chain = lifecycle.filter((l) => l.of!.child === "restoreAbandoned" && (l.op === "create" || l.op === "replace")).map((l) => l.of!.node);
  const unfinishedLines = (): string[] | undefined => {
    if (!before?.restore || !now || now.restore) return undefined;
    const finished = new Set(lifecycle.filter((l) => l.op === "delete" && l.of!.child.startsWith("restore")).map((l) => childSuffix(l.name, stack)));
    let expected: string[];
    try {
      expected = restoreStepNames(before);
    } catch {
      return undefined;
    }
    // Nothing ran past a check that never finished: nothing was stopped.
    if (!finished.has(expected[0]!)) return undefined;
    const unfinished = expected.filter((n) => !finished.has(n));
    if (!unfinished.length) return undefined;
    const id = String(before.restore.id);
    const { first } = restoreServers(before);
    const nodeOf = (name: string, child: NodeLifecycleChild) => (name.endsWith(`-${NODE_LIFECYCLE_CHILDREN[child]}`) ? name.slice(0, -NODE_LIFECYCLE_CHILDREN[child].length - 1) : undefined);
    const of = (names: string[], child: NodeLifecycleChild) => names.map((n) => nodeOf(n, child)).filter((n): n is string => n !== undefined);
    const resetRan = finished.has(nodeLifecycleName(first.name, "restoreReset"));
    const stopped = of(expected.filter((n) => finished.has(n)), "restoreStop");
    const rejoins = of(unfinished, "restoreRejoin");
    const what = resetRan
      ? `its cluster reset ran on ${first.name}: ${rejoins.length ? `${rejoins.join(", ")} rejoin${rejoins.length === 1 ? "s" : ""} it one at a time (etcd data moved aside)` : "every other server rejoined it"}${of(unfinished, "restoreRestart").length ? `; then k3s-agent starts again on ${of(unfinished, "restoreRestart").join(", ")} wherever the restore's restart stopped it (agents whose restart never began reconnect on their own)` : ""}`
      : `no cluster reset ran: K3s starts again as it was on ${stopped.join(", ")} (the servers its stop stopped), one at a time (each Ready before the next, once a quorum runs), etcd data untouched`;
    return [`⚠️ restore ${id} is removed before it finished (${unfinished.join(", ")} never completed): this up converges what it left: ${what}; servers it never stopped are not touched (docs/backup-and-restore.md)`];
  };
  const lines = unfinishedLines();
  if (lines) return lines;
  if (chain.length && before && !before.restore && !now?.restore) return [`restore-abandoned on ${chain.join(", ")}: checks each node for a restore left unfinished; nothing changes on a host without one (docs/backup-and-restore.md)`];
  return [];
}

/**
 * The first slot moved after restore `id` ran (the old first server armed, removed or listed
 * after another): the old first server's check goes (its record in state), a check is created on
 * the new one. A new first server the restore stopped records the restore as done and runs
 * nothing of it (backup/restore.ts renderRestoreCheck); one that joined after it reads the record
 * the reset wrote into the restored cluster (ConfigMap kube-system/k3s-platform-operations), and
 * only without it (an older restore, an API not answering) would restore again: a warning saying
 * both, with the way out.
 */
function firstSlotMovedLines(checks: Lifecycle[], check: Lifecycle | undefined, snapshot: string | undefined, id: string): string[] | undefined {
  if (!check || (check.op !== "create" && check.op !== "replace")) return undefined;
  const stdout = (l: Lifecycle) => String(l.step.oldState?.outputs?.stdout ?? "");
  const before = checks.find((l) => l.op === "delete" && (parseRestoreResetDone(stdout(l), id) || parseCovered(stdout(l), "restore", id).length > 0));
  if (!before) return undefined;
  const [was, now] = [before.of!.node, check.of!.node];
  if (parseCovered(stdout(before), "restore", id).includes(now)) {
    return [`restore ${id} ran with ${was} as the first server; ${now} holds the first slot now and was stopped by that restore: nothing of it runs again (docs/backup-and-restore.md)`];
  }
  // The reset wrote its record into the restored cluster (backup/restore.ts, ConfigMap
  // kube-system/k3s-platform-operations): the check reads it there. A restore run by a version
  // that did not write it, or an API that does not answer, leaves the check only its host.
  return [
    `⚠️ restore ${id} ran with ${was} as the first server; ${now} takes the first slot but joined after it: its check reads the record restore ${id} wrote into the cluster (ConfigMap ${OPERATIONS_CONFIGMAP.namespace}/${OPERATIONS_CONFIGMAP.name}) and then runs nothing of it; without that record (a restore run before the cluster kept it, or the API not answering) it would restore ${snapshot ?? "the snapshot"} again on the running cluster: to be sure, remove restore from the config in this change (docs/backup-and-restore.md)`,
  ];
}

/**
 * Servers the restore this up runs does not stop (docs/backup-and-restore.md): armed for
 * decommission, or their entry deleted in this change (the engine runs teardowns after every
 * create and update, so after the restore). They keep running K3s through the reset, so the
 * restore's check refuses them on the host before anything stops (backup/restore.ts
 * unstoppedServersFragment); this says it at preview. From the cluster's config before and after.
 */
function outsideServersLines(named: Named[], resetRuns: boolean): string[] {
  if (!resetRuns) return [];
  const configs = clusterConfigs(named);
  const before = configs.before?.nodes ?? [];
  const now = configs.now?.nodes ?? [];
  const armed = now.filter((n) => n.role === "server" && n.decommission === true).map((n) => n.name);
  const deleted = before.filter((n) => n.role === "server" && !now.some((m) => m.name === n.name)).map((n) => n.name);
  const outside = [...armed, ...deleted];
  if (!outside.length) return [];
  const why = [armed.length ? `${armed.join(", ")} armed for decommission` : "", deleted.length ? `${deleted.join(", ")} deleted from the config` : ""].filter(Boolean).join(", ");
  return [
    `⚠️ restore: ${why}: K3s keeps running there through this up (a teardown runs after the restore), so the restore check will refuse before any server stops; finish the removal in an up without restore first, then restore (docs/backup-and-restore.md)`,
  ];
}

/**
 * `maintenance` (operations/maintenance.ts): which nodes, in which groups, what runs on them, in
 * words. Groups come from the cluster's config (the program's own grouping); the nodes from the
 * run steps this up creates. A new cluster records it without running (the one-shot baseline).
 */
function maintenanceLines(lifecycle: Lifecycle[], named: Named[], creating: boolean, stack: string): string[] {
  const created = lifecycle.filter((l) => l.of!.child === "maintenanceRun" && (l.op === "create" || l.op === "replace")).map((l) => l.of!.node);
  if (!created.length) return [];
  const config = clusterConfig(named) as ResolvedConfig | undefined;
  const m = config?.maintenance;
  const covered = coveredBefore(named.find((s) => s.type === TYPES.command && s.name === `${stack}-${MAINTENANCE_RECORD}`), "maintenance", String(m?.id ?? ""));
  const nodes = new Set(created.filter((n) => !covered || covered.has(n)));
  const note = inertLine("maintenance", String(m?.id ?? ""), created.filter((n) => !nodes.has(n)));
  if (!nodes.size) return note;
  if (creating) return [`new cluster: maintenance ${m?.id ?? ""} recorded as done, nothing runs (nothing to patch yet); a later id runs it`];
  if (!config || !m) return [`maintenance on ${plural(nodes.size, "node")}: cordon, drain, run, uncordon, one group at a time`];
  const what = [m.command ? `run \`${m.command.join(" ")}\` as root` : "", m.reboot ? "reboot and wait for the new boot" : ""].filter(Boolean).join(", ");
  const groups = maintenanceGroups(config, m).filter((g) => g.nodes.some((n) => nodes.has(n.name)));
  const servers = groups.filter((g) => g.nodes[0]!.role === "server").map((g) => g.nodes[0]!.name);
  const agents = groups.filter((g) => g.nodes[0]!.role !== "server").map((g) => `(${g.nodes.map((n) => n.name).join(", ")})`);
  const order = [servers.length ? `servers one at a time (${servers.join(", ")})` : "", agents.length ? `agents in ${agents.length} batch${agents.length === 1 ? "" : "es"} of up to ${Math.max(...groups.filter((g) => g.nodes[0]!.role !== "server").map((g) => g.nodes.length))} ${agents.join(" ")}` : ""].filter(Boolean).join(", then ");
  return [`maintenance ${m.id}: cordon, drain, ${what}, uncordon; ${order} (docs/maintenance.md)`, ...note];
}
