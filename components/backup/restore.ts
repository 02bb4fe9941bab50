import { posix } from "node:path";
import { stringify } from "yaml";
import type { NodeConfig, ResolvedConfig } from "../config/schema";
import { clusterTopology } from "../config/topology";
import { managedNodes } from "../decommission/nodes";
import { STOP_TIMEOUT_SECONDS } from "../k3s/install";
import { PATHS } from "../k3s/paths";
import { ONCE_DIR } from "../operations/once";
import { coveredRecordPath, coversLine, OPERATIONS_CONFIGMAP, parseCovered, printCovered, printCoveredCommand, readClusterRecord, writeClusterRecord, writeCovered } from "../operations/covered";
import { heredocBody, raw, Shell, sh } from "../shell/sh";
import { CURL_WHY, REQUIRE_CURL, TOKEN_ROTATE } from "../rotation/token-request";

/**
 * Restoring an embedded-etcd snapshot (`restore` in the stack config, docs/backup-and-restore.md),
 * pure: the scripts of each step, for `pulumi up` (operations/restore.ts) and for the by-hand
 * runbook (backup/runbook.ts), which embeds the same fragments.
 *
 * Procedure (docs.k3s.io/cli/etcd-snapshot, "Restoring Snapshots", tab "Multiple Servers"):
 *  1. stop K3s on all servers;
 *  2. on one server: `k3s server --cluster-reset --cluster-reset-restore-path=<snapshot>` (K3s
 *     restores, resets etcd membership to this member, prints "Managed etcd cluster membership has
 *     been reset, restart without --cluster-reset flag now" and exits), then start K3s. "If an
 *     etcd-s3 backup configuration is defined within the K3s config file, the k3s restore will
 *     attempt to pull the snapshot file from the configured S3 bucket ... To restore from a local
 *     snapshot file, where an etcd-s3 backup configuration is present, add the argument
 *     `--etcd-s3=false` and pass the full path". K3s leaves `db/reset-flag`, which refuses a second
 *     reset until K3s has started normally;
 *  3. on every other server: "delete the data directory, /var/lib/rancher/k3s/server/db/" and start
 *     K3s to join the restored cluster (here one at a time, each Ready before the next);
 *  4. agents restart ("Agents and control-plane servers can be started normally").
 * A snapshot taken with another token ("Restoring To New Hosts": "you must pass the server token
 * that was originally used when taking the snapshot"; "If there is a token set in the K3s config
 * file, make sure it is the same") needs that token: the secure key `restoreToken`.
 */

export const ETCD_DB_DIR = "/var/lib/rancher/k3s/server/db";
/** K3s' guard against a second reset (docs, see above): removed when K3s starts normally. */
export const RESET_FLAG = `${ETCD_DB_DIR}/reset-flag`;
export const DEFAULT_SNAPSHOT_DIR = `${ETCD_DB_DIR}/snapshots`;
/** Where the reset step records that its reset ran for a restore id (a retry never resets twice). */
export const RESTORE_STATE_DIR = "/var/lib/k3s-platform/restore";
/**
 * The restore id whose cluster reset ran on this server (RESTORE_STATE_DIR): written once K3s
 * said the membership was reset. K3s' reset-flag is removed when K3s starts normally, so after a
 * start whose wait for Ready failed only this record keeps the step's retry from resetting again
 * (which would throw away what was written since and reset the membership twice).
 */
export const RESET_RECORD = `${RESTORE_STATE_DIR}/reset-ran`;
/** The first server's record of the nodes a restore covered (operations/covered.ts; the check writes and prints it). */
export const RESTORE_COVERED = coveredRecordPath("restore");
/**
 * What a server's restore stop leaves in K3s' own data directory: the restore id that stopped
 * this K3s (written before the stop: one that failed or ran over its bound may have stopped it). Its rejoin moves etcd data aside only when it is there: a host whose K3s was installed
 * after the reset (the node removed and re-added under its name, so k3s-uninstall.sh removed
 * /var/lib/rancher/k3s, or a fresh host) has none, and rejoining it would add a second etcd member
 * for the host (K3s names members <hostname>-<random>: the one it joined with stays).
 */
export const RESTORE_STOPPED = "/var/lib/rancher/k3s/server/k3s-platform-restore-stopped";
/** An agent's restart writes its restore id here before it stops k3s-agent (a retry after the reset finds it). */
export const RESTORE_RESTARTING = "/var/lib/rancher/k3s/agent/k3s-platform-restore-restarting";
/**
 * A drop-in carrying `restoreToken` while the first server resets and starts: config.yaml.d files
 * are read in name order, the last value of a key wins (docs.k3s.io/installation/configuration,
 * "Multiple Config Files"), so it overrides the secrets drop-in (50-…). Written from the step's
 * secret stdin under umask 077, removed when the step ends.
 */
export const RESTORE_TOKEN_DROPIN = "/etc/rancher/k3s/config.yaml.d/90-k3s-platform-restore-token.yaml";

/**
 * The label K3s sets to "true" on every server's Node (k3s-io/k3s pkg/util ControlPlaneRoleLabelKey,
 * set by pkg/server setNodeLabelsAndAnnotations when the server starts; K3s' own secrets-encryption
 * code lists servers by it). Split-role servers are refused (config/flags.ts), so every server is
 * an etcd member and carries it.
 */
export const CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane";
/** The columns the restore check lists Nodes with (kubectl JSONPath: the label key's dots escaped). */
export const SERVER_NODE_COLUMNS = `custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,CONTROL_PLANE:.metadata.labels.${CONTROL_PLANE_LABEL.replace(/\./g, "\\.")}`;
/** How long the check retries listing Nodes before it goes on without that list (a broken API is what a restore repairs). */
export const NODE_LIST_SECONDS = 30;

/**
 * Shell: the one-line record at `path` under $ROOT (a restore id), empty when there is none. The
 * restore's markers (RESET_RECORD, RESTORE_STOPPED, RESTORE_RESTARTING, the stop's once-record)
 * are all read this way.
 */
function readRecord(path: string): Shell {
  return sh`"$(cat "$ROOT"${path} 2>/dev/null || true)"`;
}

/** Shell: writes this step's restore id (`$value`) as the one-line record at `path` under $ROOT. */
function writeRecord(path: string): Shell {
  return sh`mkdir -p "$ROOT"${posix.dirname(path)}
printf '%s' "$value" >"$ROOT"${path}`;
}

/** How long `k3s server --cluster-reset` may take (an S3 download and the restore). */
export const CLUSTER_RESET_SECONDS = 900;
/** How long a server or agent may take to be Ready after its restart in a restore. */
export const RESTORE_READY_SECONDS = 300;

export type RestoreConfig = NonNullable<ResolvedConfig["restore"]>;

/** The directory local snapshots land in (k3s.etcdSnapshots.dir, else K3s' default). */
export function snapshotDir(config: ResolvedConfig): string {
  return config.k3s.etcdSnapshots?.dir ?? DEFAULT_SNAPSHOT_DIR;
}

/** What K3s is given as `--cluster-reset-restore-path`: s3: the name; local: the path, or the name in the snapshot directory. */
export function restorePath(config: ResolvedConfig, restore: RestoreConfig): string {
  if (restore.source === "s3" || restore.snapshot.startsWith("/")) return restore.snapshot;
  return `${snapshotDir(config)}/${restore.snapshot}`;
}

/**
 * When a snapshot was taken, read from its name: K3s names snapshots `<name>-<node>-<unix time>`
 * (docs.k3s.io/cli/etcd-snapshot, "Creating Snapshots"), optionally `.zip` when compressed.
 * Undefined for a name without that suffix.
 */
export function snapshotTime(snapshot: string): Date | undefined {
  const m = /-(\d{10})(\.zip)?$/.exec(snapshot);
  return m ? new Date(Number(m[1]) * 1000) : undefined;
}

/** The servers in restore order: the first server (it resets), then the others (they rejoin). */
export function restoreServers(config: ResolvedConfig): { first: NodeConfig; others: NodeConfig[]; agents: NodeConfig[] } {
  const first = clusterTopology(config).firstServer;
  const managed = managedNodes(config);
  return {
    first,
    others: managed.filter((n) => n.role === "server" && n.name !== first.name),
    agents: managed.filter((n) => n.role === "agent"),
  };
}

/** The record line of the nodes restore `id` covers. */
export function restoreCoversLine(id: string, nodes: readonly string[]): string {
  return coversLine("restore", id, nodes);
}

/** The nodes restore `id` covered, from the check step's stdout (operations/covered.ts parseCovered). */
export function parseRestoreCovered(stdout: string | undefined, id: string): string[] {
  return parseCovered(stdout, "restore", id);
}

/** The line the reset appends to the record once the first server's reset for `id` is done (the check prints it). */
export function resetDoneLine(id: string): string {
  return `restore reset done: ${id}`;
}

/** Whether the first server's reset for `id` is done, from the check's stdout (resetDoneLine). */
export function parseRestoreResetDone(stdout: string | undefined, id: string): boolean {
  return (stdout ?? "").split("\n").includes(resetDoneLine(id));
}

/** The check's update: it only prints the record (operations/covered.ts). */
export function restoreCoveredPrint(user: string): string {
  return printCoveredCommand(user, "restore");
}

/** `wait_ready NODE TIMEOUT`: until the API on this server says NODE is Ready, bounded; false when the time runs out. */
export const WAIT_READY = raw(String.raw`# wait_ready NODE TIMEOUT: until this server's API reports NODE Ready (bounded); progress every 10 s.
wait_ready() {
  local node="$1" timeout="$2" ready started="$SECONDS" next=$((SECONDS + 10))
  while :; do
    ready="$(k3s kubectl get node "$node" --no-headers -o 'custom-columns=READY:.status.conditions[?(@.type=="Ready")].status' 2>/dev/null || true)"
    if [ "$ready" = True ]; then return 0; fi
    if [ $((SECONDS - started)) -ge "$timeout" ]; then return 1; fi
    if [ "$SECONDS" -ge "$next" ]; then echo "waiting for $node to be Ready ($((SECONDS - started))s)"; next=$((SECONDS + 10)); fi
    sleep 2
  done
}`);

/**
 * The reset, as both the step and the runbook run it, on the first server. Expects `NODE`,
 * `SNAPSHOT` (what --cluster-reset-restore-path gets), `FROM_S3` (1 or 0), `ROOT`, `say`, `fail`
 * and wait_ready. Skips the reset when K3s' reset-flag shows one already ran and K3s has not
 * started since (a retry after a failed start), or, with the step's restore `id` (not the
 * runbook), when RESET_RECORD holds it (a retry after K3s started but was not Ready in time), then
 * starts K3s and waits for Ready.
 */
export function resetFragment(config: ResolvedConfig, id?: string): Shell {
  const s3Configured = config.k3s.etcdSnapshots?.s3 !== undefined;
  return sh`RESET_FLAG="$ROOT"${RESET_FLAG}
reset_args=(--cluster-reset "--cluster-reset-restore-path=$SNAPSHOT")
if [ "$FROM_S3" = 1 ]; then
  # K3s reads the bucket, folder and credentials from config.yaml and the secrets drop-in.
  reset_args+=(--etcd-s3)
${s3Configured ? raw(`else
  # A local file while S3 is configured: without this K3s looks for the name in the bucket.
  reset_args+=(--etcd-s3=false)
`) : raw("")}fi
if [ -e "$RESET_FLAG" ]; then
  say "the K3s reset-flag is present: a cluster reset already ran here and K3s has not started since; starting it (never resetting twice)"
${id === undefined ? raw("") : sh`elif [ ${readRecord(RESET_RECORD)} = ${id} ]; then
  say ${`the cluster reset of restore ${id} already ran here (K3s started since, a retry): starting it (never resetting twice)`}
`}else
${id === undefined ? raw("") : sh`  # The check's record here: gone when restore ${raw(id)} was removed before it finished and the up
  # that removed it started K3s again (renderRestoreAbandoned). If that up failed part-way, the
  # check and the stops that finished stay in state and never run again under this id: servers
  # they stopped may run K3s on the old etcd membership, which a cluster reset must not leave.
  [ ${readRecord(`${ONCE_DIR}/restore-check`)} = ${id} ] || fail ${`restore ${id} was removed before it finished and the up that removed it started K3s again on servers it had stopped (this host's record of its check, ${ONCE_DIR}/restore-check, is gone): its check and stops do not run again under this id, and a cluster reset with K3s running on another server would leave that server on the old etcd membership: set a new restore.id (its check and every stop run again) and run pulumi up; nothing was reset`}
`}  timeout ${STOP_TIMEOUT_SECONDS + 30} systemctl stop k3s || fail "systemctl stop k3s failed or ran over ${raw(String(STOP_TIMEOUT_SECONDS + 30))}s"
  say "k3s server \${reset_args[*]}"
  status=0
  out="$(timeout ${CLUSTER_RESET_SECONDS} k3s server "\${reset_args[@]}" </dev/null 2>&1)" || status=$?
  printf '%s\\n' "$out"
  case "$out" in
    *"cluster membership has been reset"*) ;;
    *) [ "$status" = 0 ] || fail "k3s server --cluster-reset from $SNAPSHOT failed (status $status); K3s stays stopped on every server and nothing was restored: fix the cause (the output above) and run pulumi up again" ;;
  esac
${id === undefined ? raw("") : sh`  mkdir -p "$ROOT"${RESTORE_STATE_DIR}
  printf '%s' ${id} >"$ROOT"${RESET_RECORD}
`}fi
say "start k3s"
# Not blocking: the unit is Type=notify with no start timeout; wait_ready bounds the wait.
systemctl start --no-block k3s
wait_ready "$NODE" ${RESTORE_READY_SECONDS} || fail "$NODE is not Ready ${raw(String(RESTORE_READY_SECONDS))}s after starting from the restored snapshot; see journalctl -u k3s"
say "restored from $SNAPSHOT, Ready"`;
}

/**
 * A rejoining server, as both the step and the runbook run it: stop K3s, move its etcd data aside
 * (kept, not deleted: a mistaken run can be undone; the docs' "Backup and delete"), start K3s and
 * wait until Ready: it joins the restored cluster through the first server (config.yaml `server:`).
 * Expects `NODE`, `ROOT`, `ASIDE` (the directory name suffix), `say`, `fail` and wait_ready.
 */
export function rejoinFragment(): Shell {
  return sh`DB_DIR="$ROOT"${ETCD_DB_DIR}
timeout ${STOP_TIMEOUT_SECONDS + 30} systemctl stop k3s || fail "systemctl stop k3s failed or ran over ${raw(String(STOP_TIMEOUT_SECONDS + 30))}s"
if [ -d "$DB_DIR" ]; then
  aside="$DB_DIR.before-restore-$ASIDE"
  if [ -e "$aside" ]; then aside="$aside-$(date +%s)"; fi
  mv "$DB_DIR" "$aside"
  say "moved its etcd data $DB_DIR to $aside"
fi
say "start k3s: it rejoins the restored cluster"
systemctl start --no-block k3s
wait_ready "$NODE" ${RESTORE_READY_SECONDS} || fail "$NODE is not Ready ${raw(String(RESTORE_READY_SECONDS))}s after rejoining; see journalctl -u k3s"
say "rejoined, Ready"`;
}

/**
 * A restore step's script: runs `body` at most once per restore id on this host, recorded under
 * ONCE_DIR/restore-<step> as operations/once.ts guardOnce records (same file, same format). Unlike
 * guardOnce the body runs in this shell, not as an argument of bash -c: the reset's body may carry
 * restoreToken, which must never be a process argument.
 */
function script(what: string, node: NodeConfig, id: string, body: Shell, always: Shell = raw("")): string {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: restore ${id}, ${what} on ${node.name}, once per restore id.
# Source: docs.k3s.io/cli/etcd-snapshot, "Restoring Snapshots" (components/backup/restore.ts).
set -euo pipefail
ROOT="\${K3S_PLATFORM_ROOT:-}"
NODE=${node.name}
STEP=${what}
ONCE="$ROOT"${`${ONCE_DIR}/restore-${what}`}
value=${id}
started=$SECONDS
say() { echo "restore[$NODE] $STEP: $* ($((SECONDS - started))s)"; }
fail() { echo "restore[$NODE] $STEP: $*" >&2; exit 1; }
if [ -f "$ONCE" ] && [ "$(cat "$ONCE")" = "$value" ]; then
  say "already done for restore id $value on this host, skipped"
${always}  exit 0
fi
${body}
${always}mkdir -p "$(dirname "$ONCE")"
printf '%s' "$value" >"$ONCE.tmp"
mv "$ONCE.tmp" "$ONCE"
`.text;
}

/**
 * Before anything stops, on the first server: the snapshot exists (local: the file; s3: `k3s
 * etcd-snapshot ls` lists it, read through the running server's S3 settings) and no earlier reset
 * is pending. Prints when the snapshot was taken: what is lost is everything written after it.
 * Records the nodes the restore covers (RESTORE_COVERED: the managed nodes now, those that joined
 * in this `up` included, as they joined before the restore) and prints the record on every run.
 * On a server this restore's stop already ran on, or in a cluster that holds this restore's record
 * (the reset writes it into the restored cluster: operations/covered.ts OPERATIONS_CONFIGMAP), the
 * first slot moved after the restore (the old first server armed for decommission, removed, or
 * reordered; the new one maybe joined after it): the restore is over: it records no node and the
 * reset as done, so no step of it runs again (no second cluster reset).
 */
export function renderRestoreCheck(config: ResolvedConfig, restore: RestoreConfig, id: string, restoreTokenSet = false): string {
  const { first, others, agents } = restoreServers(config);
  const path = restorePath(config, restore);
  const taken = snapshotTime(restore.snapshot);
  const when = taken ? `taken ${taken.toISOString()} (from its name)` : "its time is not in its name";
  const source =
    restore.source === "s3"
      ? sh`if ! list="$(k3s etcd-snapshot ls 2>&1)"; then
  printf '%s\\n' "$list" >&2
  fail "k3s etcd-snapshot ls failed: cannot see the S3 snapshots; nothing was stopped"
fi
found=0
while read -r name location _; do
  if [ "$name" = "$SNAPSHOT" ] && [ "\${location#s3://}" != "$location" ]; then found=1; fi
done <<<"$list"
[ "$found" = 1 ] || fail "no snapshot $SNAPSHOT in S3 (k3s etcd-snapshot ls lists them); nothing was stopped"`
      : sh`[ -f "$ROOT$SNAPSHOT" ] || fail "no snapshot file $SNAPSHOT on $NODE (k3s etcd-snapshot ls lists them); nothing was stopped"
say "snapshot file $SNAPSHOT, written $(date -u -r "$ROOT$SNAPSHOT" +%Y-%m-%dT%H:%M:%SZ)"`;
  return script(
    "check",
    first,
    id,
    sh`# This host holds the first slot now, but this restore ran with another first server (it was
# armed for decommission, removed, or listed after this one since): this restore's stop ran here,
# or the cluster's record of it (written into the restored cluster by its reset) says so. Its
# reset is done; running the check, then the reset here, would reset the running cluster.
${readClusterRecord("restore", id)}
already=""
if [ ${readRecord(`${ONCE_DIR}/restore-stop`)} = "$value" ]; then
  already=${`K3s on ${first.name} was stopped by it`}
elif [ -n "$cluster_record" ]; then
  already=${`the cluster's record says so: ConfigMap ${OPERATIONS_CONFIGMAP.namespace}/${OPERATIONS_CONFIGMAP.name}`}
fi
if [ -n "$already" ]; then
  say ${`restore ${id} already ran in this cluster (`}"$already"${`): nothing of it runs again; set a new restore.id to restore again`}
${writeCovered("restore", id, [])}
  printf '%s\\n' ${resetDoneLine(id)} >>"$COVERED"
else
SNAPSHOT=${path}
${restoreTokenSet ? sh`# restoreToken is set: the reset rotates the token back with curl (rotation/token-request.ts).
command -v curl >/dev/null 2>&1 || fail ${`curl is not installed on ${first.name}, which step reset needs (restoreToken is set): ${CURL_WHY}; install curl there and run pulumi up again; nothing was stopped`}
` : raw("")}[ ! -e "$ROOT"${RESET_FLAG} ] || fail ${`the K3s reset-flag ${RESET_FLAG} is present: a cluster reset ran and K3s has not started since; start k3s here (systemctl start k3s) first; nothing was stopped`}
${source}
${unstoppedServersFragment([...others, first].map((n) => n.name))}
say ${`restoring ${restore.source} snapshot ${restore.snapshot}, ${when}: everything written to the cluster after it is lost; K3s stops on every server next`}
${writeCovered("restore", id, [first, ...others, ...agents].map((n) => n.name))}
fi`,
    // Printed on every run, a skipped one too: the program reads the covered nodes from this stdout.
    printCovered("restore"),
  );
}

/**
 * The check's guard against a server this restore would not stop (expects `say` and `fail`): K3s'
 * cluster reset needs K3s stopped on every server, and every other server's etcd data removed
 * before it rejoins (docs.k3s.io/cli/etcd-snapshot, "Restoring Snapshots"); the restore stops and
 * rejoins only the servers the config manages. A server armed for decommission, or whose entry is
 * deleted in this `up` (the engine runs its teardown after every create and update, so after the
 * restore), or removed without decommission, keeps running K3s with the old etcd membership
 * through the reset. So every Ready Node labelled CONTROL_PLANE_LABEL must be one of `stops`, or
 * the check fails naming it, before anything stops. A server that is not Ready (its K3s down) is
 * named in a warning. When the API does not answer for NODE_LIST_SECONDS the check goes on with a
 * warning: a broken cluster is what a restore repairs.
 */
export function unstoppedServersFragment(stops: readonly string[]): Shell {
  return sh`# A cluster reset needs K3s stopped on every server (docs.k3s.io/cli/etcd-snapshot): a Ready
# server Node (K3s labels it ${raw(CONTROL_PLANE_LABEL)}=true) this restore does not stop refuses it.
STOPS=(${stops})
nodes="" listed=0
for ((try = 1; try <= ${NODE_LIST_SECONDS / 2}; try++)); do
  # stdout only: kubectl prints discovery warnings on stderr even when it succeeds.
  if nodes="$(k3s kubectl get nodes --no-headers -o ${SERVER_NODE_COLUMNS} 2>/dev/null)"; then listed=1; break; fi
  sleep 2
done
if [ "$listed" = 0 ]; then
  say ${`warning: the API did not list the Nodes for ${NODE_LIST_SECONDS}s (k3s kubectl get nodes): cannot check that no server outside the config runs K3s; a cluster reset needs K3s stopped on every server, and this restore stops only ${stops.join(", ")}`}
else
  unstopped=() down=()
  while read -r name ready control_plane; do
    [ "$control_plane" = true ] || continue
    ours=0
    for s in "\${STOPS[@]}"; do if [ "$s" = "$name" ]; then ours=1; fi; done
    [ "$ours" = 0 ] || continue
    if [ "$ready" = True ]; then unstopped+=("$name"); else down+=("$name"); fi
  done <<<"$nodes"
  if [ "\${#down[@]}" -gt 0 ]; then
    say "warning: server Node(s) \${down[*]} are not Ready and this restore does not stop them: if K3s starts there again, stop it, move /var/lib/rancher/k3s/server/db aside and let it rejoin (or decommission it), or it keeps the old etcd membership"
  fi
  if [ "\${#unstopped[@]}" -gt 0 ]; then
    fail "K3s runs as a server on \${unstopped[*]} (a Ready Node labelled ${raw(CONTROL_PLANE_LABEL)}=true), which this restore does not stop: not a server of the config (armed for decommission, or its entry deleted: its teardown runs only after the restore, or never without decommission); a cluster reset needs K3s stopped on every server (docs.k3s.io/cli/etcd-snapshot). Finish the removal first in an up without restore (decommission: true, then delete the entry), or keep it in the config as a server, or stop K3s there (systemctl stop k3s); then set restore and run pulumi up again; nothing was stopped"
  fi
fi`;
}

/** Stops K3s on one server (every server stops before the reset: the documented exception to one at a time). */
export function renderRestoreStop(node: NodeConfig, id: string): string {
  return script(
    "stop",
    node,
    id,
    // The marker first: a stop that fails or runs over its bound may stop K3s all the same
    // (killing systemctl does not cancel its job), and restore-abandoned starts K3s only where it is.
    sh`${writeRecord(RESTORE_STOPPED)}
timeout ${STOP_TIMEOUT_SECONDS + 30} systemctl stop k3s || fail "systemctl stop k3s failed or ran over ${raw(String(STOP_TIMEOUT_SECONDS + 30))}s"
say "k3s stopped"`,
  );
}

/**
 * A stop or an agent's restart on a node that joined after the first server's reset for `id` (a
 * node removed and re-added under its name since, with `restore` still set): the restore is over
 * for the cluster it joined, so nothing stops or restarts; it only says so.
 */
export function renderRestoreAfterReset(node: NodeConfig, what: string, id: string): string {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: restore ${id}, ${what} on ${node.name}: the reset ran before this node joined.
set -euo pipefail
echo ${`restore[${node.name}] ${what}: the reset of restore ${id} was done before this node joined the cluster: nothing to do`}
`.text;
}

/**
 * The stop on a server outside the check's record (`covered`, not empty) while that record does
 * not say the reset is done: the server joined after the check ran and before the cluster reset
 * (an `up` failed in between, e.g. a stop on a dead host, and a server was added to replace it).
 * It joined the cluster the reset is about to replace, so left running it keeps the old etcd
 * membership through the reset, which K3s forbids (docs.k3s.io/cli/etcd-snapshot: K3s stopped on
 * every server, their etcd data removed before they rejoin). The check, the one step that could
 * refuse it while the API answers, ran before it joined. So the step fails before it stops
 * anything, naming both ways out: remove `restore` (what it stopped starts again as it was, or
 * rejoins the reset server), then a new `restore.id`, whose check covers every server.
 */
export function renderRestoreJoinedBeforeReset(node: NodeConfig, id: string, covered: readonly string[]): string {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: restore ${id}, stop on ${node.name}: joined after the check, before the reset.
set -euo pipefail
echo ${`restore[${node.name}] stop: ${node.name} joined the cluster after restore ${id}'s check ran (it covered ${covered.join(", ")}) and before its cluster reset: K3s' cluster reset needs K3s stopped on every server and each other server's etcd data removed before it rejoins (docs.k3s.io/cli/etcd-snapshot), and restore ${id} does not stop ${node.name}. Either remove restore from the config and run pulumi up (what it stopped starts again as it was, or rejoins the reset server: docs/backup-and-restore.md), or set a new restore.id (its check then covers ${node.name}) and run pulumi up; nothing was stopped`} >&2
exit 1
`.text;
}

/** The secrets the reset step may carry (its stdin is kept secret in state). */
export interface RestoreSecrets {
  /** The cluster token K3s runs with (the `token` config key or the generated one). */
  token: string;
  /** `restoreToken`: the token the snapshot was taken with, when it differs. */
  restoreToken?: string;
}

/**
 * The first server's reset: cluster-reset from the snapshot, start, Ready. With `restoreToken`,
 * K3s resets and starts with that token (a 0600 drop-in, removed on exit), then the token is
 * rotated back to the configured one (the request `k3s token rotate` makes, docs.k3s.io/cli/token,
 * sent with curl from its stdin: rotation/token-request.ts, no token on a command line) and K3s
 * restarts with it. A reset that ran is recorded per id, so a retry after a later failure never
 * resets again.
 */
export function renderRestoreReset(config: ResolvedConfig, restore: RestoreConfig, id: string, secrets?: RestoreSecrets): string {
  const { first } = restoreServers(config);
  const withToken = secrets?.restoreToken !== undefined;
  const dropIn = withToken ? heredocBody(stringify({ token: secrets.restoreToken }, { lineWidth: 0 })) : undefined;
  const tokenSetup = dropIn
    ? sh`${REQUIRE_CURL}${TOKEN_ROTATE}
restore_token=${secrets!.restoreToken!}
current_token=${secrets!.token}
DROPIN="$ROOT"${RESTORE_TOKEN_DROPIN}
current_password="$(token_password "$current_token")" || fail "the token config key is not a token K3s takes (K10<CA hash>::<user>:<password> or <password>); K3s stays stopped on every server and nothing was restored: correct it and run pulumi up again"
restore_password="$(token_password "$restore_token")" || fail "restoreToken is not a token K3s takes (K10<CA hash>::<user>:<password> or <password>); K3s stays stopped on every server and nothing was restored: correct it and run pulumi up again"
if [ "$restore_password" = "$current_password" ]; then
  say "restoreToken is the configured token: nothing to switch"
  restore_token=""
else
  # The check refused a host without curl before anything stopped; this is the step's own guard.
  require_curl reset
  trap 'rm -f "$DROPIN"' EXIT
  mkdir -p "$(dirname "$DROPIN")"
  (umask 077; cat >"$DROPIN" ${dropIn.open}
${dropIn.body}
)
  say "K3s resets and starts with restoreToken (the snapshot's token)"
fi
`
    : raw("");
  const rotateBack = dropIn
    ? sh`
if [ -n "$restore_token" ]; then
  say "rotate the token back to the configured one (PUT /v1-k3s/token, as k3s token rotate does)"
  # The request k3s token rotate makes, its configuration on curl's stdin: no token is a process
  # argument (rotation/token-request.ts); it fails naming what K3s answered.
  token_rotate "$restore_token" "$current_password"
  rm -f "$DROPIN"
  timeout ${STOP_TIMEOUT_SECONDS + 30} systemctl stop k3s || fail "systemctl stop k3s failed"
  systemctl start --no-block k3s
  wait_ready "$NODE" ${RESTORE_READY_SECONDS} || fail "$NODE is not Ready ${raw(String(RESTORE_READY_SECONDS))}s after restarting with the configured token; see journalctl -u k3s"
  say "runs with the configured token again"
fi`
    : raw("");
  return script(
    "reset",
    first,
    id,
    sh`SNAPSHOT=${restorePath(config, restore)}
FROM_S3=${restore.source === "s3" ? "1" : "0"}
${WAIT_READY}
${tokenSetup}${resetFragment(config, id)}
# The record the check prints on every run says the reset is done: a node that joins from now on
# (added, or removed and re-added under its name) stops and restarts nothing for this id.
mkdir -p "$ROOT"${posix.dirname(RESTORE_COVERED)}
printf '%s\\n' ${resetDoneLine(id)} >>"$ROOT"${RESTORE_COVERED}${rotateBack}
# The same record in the restored cluster, written only now: the reset rolled etcd back to the
# snapshot, so anything written before it is gone. A server that takes the first slot later
# (one that joined after this restore included) reads it in its check and runs nothing of it.
${writeClusterRecord("restore", id, sh`"$ROOT"${RESTORE_COVERED}`)}`,
  );
}

/** Another server rejoins the restored cluster (one at a time: each waits for the one before). */
export function renderRestoreRejoin(node: NodeConfig, id: string): string {
  return script(
    "rejoin",
    node,
    id,
    sh`ASIDE=${id}
${WAIT_READY}
if [ ${readRecord(RESTORE_STOPPED)} != "$value" ]; then
  say ${`K3s here was not stopped by restore ${id} (installed after its reset: the node was removed and re-added, or the host is new): it stays as it is, no etcd data moves`}
  exit 0
fi
${rejoinFragment()}`,
  );
}

/** Shell (expects `fail`): starts k3s-agent and waits, bounded, until its unit is active; `after` names what started it in the failure. */
function startAgentFragment(after: string): Shell {
  return sh`systemctl start --no-block k3s-agent
deadline=$((SECONDS + ${RESTORE_READY_SECONDS}))
until systemctl is-active --quiet k3s-agent; do
  if [ "$SECONDS" -ge "$deadline" ]; then fail "k3s-agent is not active ${raw(String(RESTORE_READY_SECONDS))}s after ${raw(after)}; see journalctl -u k3s-agent"; fi
  sleep 2
done`;
}

/**
 * An agent restarts after the servers (it reconnects to the restored cluster); bounded wait for
 * its unit. `resetDone`: the first server's reset was done before this `up` (the check's record):
 * then only a restart begun in an earlier `up` (RESTORE_RESTARTING) runs again; an agent whose
 * K3s was installed since (removed and re-added) restarts nothing.
 */
export function renderRestoreAgentRestart(node: NodeConfig, id: string, resetDone = false): string {
  return script(
    "restart",
    node,
    id,
    sh`${resetDone ? sh`if [ ${readRecord(RESTORE_RESTARTING)} != "$value" ]; then
  say ${`the reset of restore ${id} was done before this up and no restart of it began on this K3s: nothing to restart`}
  exit 0
fi
` : raw("")}${writeRecord(RESTORE_RESTARTING)}
timeout ${STOP_TIMEOUT_SECONDS + 30} systemctl stop k3s-agent || fail "systemctl stop k3s-agent failed"
${startAgentFragment("its restart")}
say "k3s-agent restarted"`,
  );
}

/** The config.yaml path the runbook reads the node name from. */
export const CONFIG_YAML = PATHS.configYaml;

/**
 * What the restore-abandoned step (operations/restore-abandoned.ts) on the server that ran a
 * restore's cluster reset prints, followed by the restore id: the other servers' steps read it
 * (parseAbandonedReset, the `restoreAbandonedReset` fact) to tell "rejoin the reset server" from
 * "start as it was".
 */
export const ABANDONED_RESET_LINE = "restore reset ran here: ";

/** The restore id whose reset ran on the server that printed `stdout` (ABANDONED_RESET_LINE); "" when none. */
export function parseAbandonedReset(stdout: string | undefined): string {
  const line = (stdout ?? "").split("\n").find((l) => l.startsWith(ABANDONED_RESET_LINE));
  return line ? line.slice(ABANDONED_RESET_LINE.length).trim() : "";
}

/** The restore-abandoned scripts' common head: source, strict mode, ROOT, NODE, STEP, say and fail. */
function abandonedPreamble(node: NodeConfig): Shell {
  return sh`# Source: docs.k3s.io/cli/etcd-snapshot, "Restoring Snapshots" (components/backup/restore.ts).
set -euo pipefail
ROOT="\${K3S_PLATFORM_ROOT:-}"
NODE=${node.name}
STEP=abandoned
started=$SECONDS
say() { echo "restore[$NODE] $STEP: $* ($((SECONDS - started))s)"; }
fail() { echo "restore[$NODE] $STEP: $*" >&2; exit 1; }`;
}

/**
 * How many of `members` etcd members must run for etcd to serve: a majority, (n/2)+1 (etcd.io
 * docs, FAQ "What is failure tolerance?"). A K3s server whose etcd member has no quorum is never
 * Ready: after every server stopped, one started alone waits for the others (k3s-io/k3s#2249,
 * "After a complete power off").
 */
export function etcdQuorum(members: number): number {
  return Math.floor(members / 2) + 1;
}

/**
 * A restore removed from the config before it finished (a step failed, then `restore` was
 * deleted): its steps are dropped and run nothing, so without this K3s stays stopped wherever its
 * stop ran. One script per server, in a chain (`chain`: the servers in run order, the first
 * server first, then the others in config order, one at a time), converging each host from its
 * own restore markers to where the K3s docs (docs.k3s.io/cli/etcd-snapshot, "Restoring
 * Snapshots"; docs.k3s.io/cli/cluster-reset) leave a cluster:
 *  - no RESTORE_STOPPED here, or the restore finished here (its reset or rejoin once-record holds
 *    the id): nothing is touched (a no-op `up` stays one);
 *  - the cluster reset ran here (RESET_RECORD, K3s' reset-flag, or the reset's once-record): this
 *    server holds the restored cluster: K3s starts ("restart without --cluster-reset flag now"),
 *    Ready; the reset is recorded as done (RESTORE_COVERED's resetDoneLine, its once-record), so
 *    the same id set again never resets twice; prints ABANDONED_RESET_LINE;
 *  - another server's reset ran for this id (`resetId`, the first server's step's line): its etcd
 *    data names the old membership, so it rejoins the reset server as the restore's own rejoin
 *    does ("Backup and delete ${datadir}/server/db on each peer etcd server and rejoin"):
 *    rejoinFragment (Ready, or the step fails), then the rejoin's once-record;
 *  - no reset ran: the data is intact: K3s starts as it was; the stop's records go (RESTORE_STOPPED,
 *    the stop's and the check's once-records), so the same id set again runs the whole restore.
 *    Every server the restore stopped may be down, and an etcd member is not Ready without a
 *    quorum (etcdQuorum of the chain's servers): a server the chain reaches before that many
 *    started cannot be Ready alone, so it does not wait and the next server starts (a restart of
 *    an existing member: no membership change). From the server that makes the quorum on, each
 *    waits RESTORE_READY_SECONDS until it and every server before it in the chain are Ready, or
 *    fails naming the one that is not, which stops the chain: the next server never acts while
 *    one before it is not Ready ("one at a time").
 * `resetId`: undefined for the chain's first step (it reads nothing) and in `npm run render`.
 */
export function renderRestoreAbandoned(node: NodeConfig, chain: readonly string[], resetId?: string): string {
  const once = (what: string) => `${ONCE_DIR}/restore-${what}`;
  const index = chain.indexOf(node.name);
  if (index < 0) throw new Error(`restore-abandoned: ${node.name} is not in the chain ${chain.join(", ")}`);
  const quorum = etcdQuorum(chain.length);
  // The servers up to this one: once they are a quorum, each must be Ready before the next acts.
  const upTo = chain.slice(0, index + 1);
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: restore-abandoned on ${node.name}: converges a restore removed from
# the config before it finished; touches nothing on a host its stop never stopped.
${abandonedPreamble(node)}
${WAIT_READY}
value=${readRecord(RESTORE_STOPPED)}
if [ -z "$value" ]; then
  # The first server: the check may have run here while its stop never did (a stop before it
  # failed). Its record goes, as below, so that the same id set again never resets on a cluster
  # whose other servers this up starts again (the reset requires it).
  checked=${readRecord(once("check"))}
  if [ -n "$checked" ] && [ ${readRecord(once("reset"))} != "$checked" ]; then
    rm -f "$ROOT"${once("check")}
    say "restore $checked checked this server and never stopped K3s here: nothing to start; its check's record is dropped (the same id set again runs the whole restore)"
    exit 0
  fi
  say "no restore stopped K3s here: nothing to do"
  exit 0
fi
if [ -e "$ROOT"${RESET_FLAG} ] || [ ${readRecord(RESET_RECORD)} = "$value" ] || [ ${readRecord(once("reset"))} = "$value" ]; then
  # The fact the other servers' steps read (parseAbandonedReset), printed on every run.
  printf '%s%s\\n' ${ABANDONED_RESET_LINE} "$value"
  if [ ${readRecord(once("reset"))} = "$value" ]; then
    say "restore $value finished its reset here: nothing to do"
    exit 0
  fi
  say "the cluster reset of restore $value ran here and restore was removed before it finished: start K3s on the restored data"
  systemctl start --no-block k3s
  wait_ready "$NODE" ${RESTORE_READY_SECONDS} || fail "$NODE is not Ready ${raw(String(RESTORE_READY_SECONDS))}s after starting on the restored data; see journalctl -u k3s"
  mkdir -p "$ROOT"${posix.dirname(RESTORE_COVERED)}
  printf '%s%s\\n' ${resetDoneLine("")} "$value" >>"$ROOT"${RESTORE_COVERED}
  ${writeRecord(once("reset"))}
  say "runs the restored cluster, Ready"
  exit 0
fi
if [ ${readRecord(once("rejoin"))} = "$value" ]; then
  say "restore $value finished here (rejoined): nothing to do"
  exit 0
fi
reset_id=${resetId ?? ""}
if [ -n "$reset_id" ] && [ "$reset_id" = "$value" ]; then
  say "restore $value reset the cluster on another server and was removed before this server rejoined: rejoin it"
  ASIDE="$value"
${rejoinFragment()}
  ${writeRecord(once("rejoin"))}
  exit 0
fi
say "restore $value stopped K3s here and was removed before any cluster reset: start K3s as it was (its etcd data untouched)"
systemctl start --no-block k3s
${index + 1 < quorum
  ? sh`rm -f "$ROOT"${RESTORE_STOPPED} "$ROOT"${once("stop")} "$ROOT"${once("check")}
say ${`K3s started; its etcd member cannot be Ready before ${quorum} of the ${chain.length} servers run (a quorum): the next server starts now; the step on ${chain[quorum - 1]!} waits until ${chain.slice(0, quorum).join(", ")} are Ready`}`
  : sh`# A quorum of the chain's servers runs from here on: this one and each before it must be Ready
# before the next server acts (a server that never became Ready stops the chain, named).
deadline=$((SECONDS + ${RESTORE_READY_SECONDS}))
for server in ${upTo}; do
  wait_ready "$server" $((deadline - SECONDS)) || fail "$server"${` is not Ready ${RESTORE_READY_SECONDS}s after K3s started again on ${upTo.join(", ")}${chain.length > 1 ? ` (etcd needs ${quorum} of the ${chain.length} servers running)` : ""}; the next server does not start until it is: see journalctl -u k3s on `}"$server"${`, then run pulumi up again`}
done
rm -f "$ROOT"${RESTORE_STOPPED} "$ROOT"${once("stop")} "$ROOT"${once("check")}
say ${`K3s runs again; ${upTo.join(", ")} Ready`}`}
`.text;
}

/**
 * An agent of a restore removed from the config before it finished (operations/restore-abandoned.ts,
 * after the servers' chain): the restore's restart writes RESTORE_RESTARTING, stops k3s-agent and
 * starts it again; a restart that failed in between (its stop ran over its bound, its start never
 * became active) leaves k3s-agent stopped, and once `restore` is removed no step of it runs again.
 *  - no RESTORE_RESTARTING here, or the restart finished here (its once-record holds the id):
 *    nothing is touched (only files read: a no-op `up` stays one);
 *  - otherwise k3s-agent starts (unless it runs), active within RESTORE_READY_SECONDS or the step
 *    fails; the restart's once-record is written: the restart ran after the cluster reset (the
 *    restore restarts agents last), so the same id set again runs nothing of it here, as on the
 *    servers that rejoined.
 */
export function renderRestoreAbandonedAgent(node: NodeConfig): string {
  const restarted = `${ONCE_DIR}/restore-restart`;
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: restore-abandoned on agent ${node.name}: starts k3s-agent where an
# unfinished restore's restart stopped it; touches nothing on a host it never restarted.
${abandonedPreamble(node)}
value=${readRecord(RESTORE_RESTARTING)}
if [ -z "$value" ] || [ ${readRecord(restarted)} = "$value" ]; then
  say "no unfinished restore restart of k3s-agent here: nothing to do"
  exit 0
fi
if systemctl is-active --quiet k3s-agent; then
  say "restore $value was removed before its restart of k3s-agent finished here; k3s-agent runs: nothing to start"
  ${writeRecord(restarted)}
  exit 0
fi
say "restore $value stopped k3s-agent here and was removed before its restart finished: start k3s-agent"
${startAgentFragment("starting it again")}
say "k3s-agent runs again"
${writeRecord(restarted)}
`.text;
}

/**
 * A restore-abandoned step while restore `id` is armed (operations/restore-abandoned.ts
 * whileArmed): it touches nothing, not even a file; it exists so that the `up` that removes
 * `restore` changes its trigger and runs the converging script.
 */
export function renderRestoreAbandonedArmed(node: NodeConfig, id: string): string {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: restore-abandoned on ${node.name} while restore ${id} is armed: nothing.
echo ${`restore[${node.name}] abandoned: restore ${id} is armed: its own steps act; nothing to do`}
`.text;
}
