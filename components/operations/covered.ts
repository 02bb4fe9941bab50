import { createHash } from "node:crypto";
import type { NodeConfig } from "../config/schema";
import { STATE_DIR } from "../k3s/install";
import { asRoot, DRAIN_STDIN } from "../shell/root";
import { raw, Shell, sh } from "../shell/sh";
import { ONCE_DIR } from "./once";

/**
 * Which nodes a one-shot operation covered (restore, maintenance), pure: recorded on the first
 * server when the operation first runs for an id, printed by its recording step on every run
 * (create, and update, which only prints it), read back by the program from that step's stdout
 * (the `restoreCovered` / `maintenanceCovered` facts). A node outside the record (it joined
 * after the operation ran) runs none of the operation's steps, so an id left in the config is
 * inert for nodes added later, whatever the batches or groups they shift.
 */

export type CoveringOperation = "restore" | "maintenance";

/** The record on the first server: one line, coversLine. */
export function coveredRecordPath(operation: CoveringOperation): string {
  return `${STATE_DIR}/${operation}/covered`;
}

/** The record line: `<operation> covers: {"id":…,"nodes":[…]}`. */
export function coversLine(operation: CoveringOperation, id: string, nodes: readonly string[]): string {
  return `${operation} covers: ${JSON.stringify({ id, nodes })}`;
}

/**
 * The nodes `operation` `id` covered, from its recording step's stdout; empty when no line of
 * that id is there (a record lost with its host, or an older id's): then no node without its own
 * record of the id runs anything, the side that never repeats a disruptive step.
 */
export function parseCovered(stdout: string | undefined, operation: CoveringOperation, id: string): string[] {
  const prefix = `${operation} covers: `;
  const lines = (stdout ?? "").split("\n");
  for (const line of [...lines].reverse()) {
    if (!line.startsWith(prefix)) continue;
    try {
      const parsed = JSON.parse(line.slice(prefix.length)) as { id?: unknown; nodes?: unknown };
      if (parsed.id === id && Array.isArray(parsed.nodes)) {
        const nodes = parsed.nodes.filter((n): n is string => typeof n === "string");
        const recorded = nodeUids(lines, NODE_UID_LINE(operation));
        if (!recorded.size) return nodes;
        // The same Node only: a node removed and re-added under its name since is a new Node
        // object (a new .metadata.uid, kubernetes.io/docs/concepts/overview/working-with-objects/names/#uids),
        // a fresh host the operation never ran on. No current UID (not registered, or not
        // printed) is not the same Node either: the side that never repeats a disruptive step.
        const now = nodeUids(lines, NODE_UID_NOW_LINE(operation));
        return nodes.filter((n) => !recorded.has(n) || (now.get(n) !== undefined && now.get(n) === recorded.get(n)));
      }
    } catch {
      // Unreadable: as if absent.
    }
  }
  return [];
}

/** `<operation> node: NAME UID`: a Node's UID when the operation recorded its nodes (maintenance). */
export const NODE_UID_LINE = (operation: CoveringOperation) => `${operation} node: `;
/** `<operation> node now: NAME UID`: a Node's UID when the recording step last ran. */
export const NODE_UID_NOW_LINE = (operation: CoveringOperation) => `${operation} node now: `;

function nodeUids(lines: readonly string[], prefix: string): Map<string, string> {
  const uids = new Map<string, string>();
  for (const line of lines) {
    if (!line.startsWith(prefix)) continue;
    const [name, uid] = line.slice(prefix.length).trim().split(/\s+/);
    if (name && uid && uid !== "<none>") uids.set(name, uid);
  }
  return uids;
}

/**
 * Shell that prints "<prefix>NAME UID" for every Node the API lists (expects k3s kubectl on a
 * server; fails the script, naming `step` (host and step) and what, when the API does not answer).
 */
function printNodeUids(prefix: string, step: string): Shell {
  return sh`if ! uids="$(k3s kubectl get nodes --no-headers -o custom-columns=NAME:.metadata.name,UID:.metadata.uid 2>&1)"; then
  printf '%s\\n' "$uids" >&2
  echo ${`${step}: cannot list the Nodes' UIDs (k3s kubectl get nodes): the record tells a re-added node from the one it covered by its UID`} >&2
  exit 1
fi
while read -r name uid; do
  if [ -n "$name" ]; then printf '%s%s %s\\n' ${prefix} "$name" "$uid"; fi
done <<<"$uids"
`;
}

/**
 * The recording step's update (restore's check): prints the record its create wrote, and nothing
 * else on the host; reads the stdin (its create's script) to the end first (shell/root.ts DRAIN_STDIN).
 */
export function printCoveredCommand(user: string, operation: CoveringOperation): string {
  return sh`${raw(DRAIN_STDIN)}; ${asRoot(user, sh`cat ${coveredRecordPath(operation)}`)} 2>/dev/null || true`.text;
}

/** Shell that writes the record of `nodes` (expects `ROOT`), replacing any older one atomically. */
export function writeCovered(operation: CoveringOperation, id: string, nodes: readonly string[]): Shell {
  return sh`COVERED="$ROOT"${coveredRecordPath(operation)}
mkdir -p "$(dirname "$COVERED")"
printf '%s\\n' ${coversLine(operation, id, nodes)} >"$COVERED.tmp"
mv "$COVERED.tmp" "$COVERED"`;
}

/** Shell that prints the record when there is one (expects `ROOT`). */
export function printCovered(operation: CoveringOperation): Shell {
  return sh`if [ -f "$ROOT"${coveredRecordPath(operation)} ]; then cat "$ROOT"${coveredRecordPath(operation)}; fi
`;
}

/** Whether `node` runs the operation's steps: every node where the covered nodes are not known (render), else the recorded ones. */
export function isCovered(covered: readonly string[] | undefined, node: string): boolean {
  return covered === undefined || covered.includes(node);
}

/**
 * A node outside the record, in words (the step scripts and preview:md). A restore covers every
 * node the config managed when it ran, so a node outside it joined since; a maintenance covers the
 * nodes maintenance.nodes chose then, so a node outside it joined since, or was in the config but
 * not chosen then (maintenance.nodes changed under the same id): a new id maintains it.
 */
export function notCoveredText(operation: CoveringOperation, id: string, nodes: readonly string[], covered?: readonly string[]): string {
  const them = nodes.length === 1 ? "it" : "them";
  const subject = nodes.length === 1 && nodes[0] === "this node" ? "this node" : nodes.join(", ");
  const list = covered ? `it covered ${covered.join(", ") || "no node on record"}` : "";
  if (operation === "restore") return `restore ${id} ran before ${subject} joined${list ? ` (${list})` : ""}: nothing ${covered ? "to do" : `of it runs on ${them}`}`;
  const why = `${subject === "this node" ? "it" : them} joined since, or maintenance.nodes did not choose ${them} then`;
  return `maintenance ${id} did not cover ${subject} when it ran (${list ? `${list}; ` : ""}${why}): nothing ${covered ? "to do" : `of it runs on ${them}`}; set a new maintenance.id to maintain ${them}`;
}

/** A step's script on a node the operation did not cover (notCoveredText): nothing runs; it only says so. */
export function renderNotCovered(operation: CoveringOperation, node: NodeConfig, what: string, id: string, covered: readonly string[]): string {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: ${operation} ${id}, ${what} on ${node.name}: not a node it covered.
set -euo pipefail
echo ${`${operation}[${node.name}] ${what}: ${notCoveredText(operation, id, ["this node"], covered)}`}
`.text;
}

/**
 * The recording step's script (maintenance: its own step on the first server; the restore's check
 * records inline): the record of `nodes` written once per id (ONCE_DIR/<operation>-record), then
 * printed on every run.
 */
export function renderCoveredRecord(operation: CoveringOperation, id: string, nodes: readonly string[], host: string): string {
  // Every line it says and its failure name host and step, as every day-2 step's do.
  const step = `${operation}[${host}] record`;
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: ${operation} ${id}: the nodes it covers, recorded once per id with
# their Nodes' UIDs, in the cluster (ConfigMap ${raw(OPERATIONS_CONFIGMAP.namespace)}/${raw(OPERATIONS_CONFIGMAP.name)}) and on this
# host, printed with the UIDs now on every run (components/operations/covered.ts).
set -euo pipefail
ROOT="\${K3S_PLATFORM_ROOT:-}"
say() { echo ${step}": $*"; }
ONCE="$ROOT"${`${ONCE_DIR}/${operation}-record`}
COVERED="$ROOT"${coveredRecordPath(operation)}
value=${id}
# The cluster's record first: another server recorded this id when it held the first slot.
${readClusterRecord(operation, id)}
publish=0
if [ -n "$cluster_record" ]; then
  mkdir -p "$(dirname "$COVERED")"
  printf '%s\\n' "$cluster_record" >"$COVERED.tmp"
  mv "$COVERED.tmp" "$COVERED"
elif [ ! -f "$ONCE" ] || [ "$(cat "$ONCE")" != "$value" ]; then
${writeCovered(operation, id, nodes)}
{
${printNodeUids(NODE_UID_LINE(operation), step)}} >>"$COVERED"
  publish=1
elif [ "$cluster_api" = 1 ]; then
  # Recorded on this host only (before the cluster kept records, or a restore rolled them back).
  publish=1
fi
if [ "$publish" = 1 ]; then
${writeClusterRecord(operation, id, raw(`"$COVERED"`))}
fi
mkdir -p "$(dirname "$ONCE")"
printf '%s' "$value" >"$ONCE.tmp"
mv "$ONCE.tmp" "$ONCE"
${printCovered(operation)}${printNodeUids(NODE_UID_NOW_LINE(operation), step)}`.text;
}

/**
 * The cluster-side copy of the records (issue 23, the first slot moving): a host record lives on
 * the first server, so a server that takes the first slot later (the old one armed for
 * decommission, removed, or listed after another) has none, and would record the operation
 * again against the nodes of that day, nodes that joined since included. The cluster's copy is
 * readable from every server: ConfigMap kube-system/k3s-platform-operations, one key per
 * operation and id (clusterRecordKey), the record base64-encoded (`base64 -w0`: the value is
 * then JSON- and shell-safe whatever the record holds). Written with a merge patch (each key on
 * its own, no read-modify-write of the others), read first by the recording steps.
 */
export const OPERATIONS_CONFIGMAP = { namespace: "kube-system", name: "k3s-platform-operations" } as const;

/** The ConfigMap key of `operation` `id`: `<operation>-<16 hex of sha256(id)>` (an id may hold `:`, which a key may not). */
export function clusterRecordKey(operation: CoveringOperation, id: string): string {
  return `${operation}-${createHash("sha256").update(id).digest("hex").slice(0, 16)}`;
}

/**
 * Shell (expects `say`): reads the cluster's record of `operation` `id` into `cluster_record`
 * (decoded; empty when there is none) and sets `cluster_api=1` when the API answered (the
 * ConfigMap or its absence); 0 when it did not: then only the host's records decide. The last line
 * kubectl writes is matched whole, by kind (k8s.io/kubectl pkg/cmd/util/helpers.go StandardErrorMessage):
 *  - `Error from server (NotFound): configmaps "<name>" not found`: no record (the API answered);
 *  - `The connection to the server <host> was refused - …` or `Unable to connect to the server: …`:
 *    the API did not answer (K3s starting or stopped): a warning, the host's records decide;
 *  - the API answered that it cannot serve: `Error from server (Timeout|ServerTimeout|
 *    ServiceUnavailable|InternalError|TooManyRequests): …`, or `Error from server: …` (no reason:
 *    etcd's own error, e.g. `etcdserver: request timed out`): what a cluster whose etcd lost its
 *    quorum answers (rancher/rke2#1140, k3s-io/k3s#3723), the cluster a restore repairs: a warning too;
 *  - anything else (`k3s: command not found`, Forbidden, another object's NotFound) fails the
 *    step with kubectl's words: read as "no record", it would record the operation again.
 */
export function readClusterRecord(operation: CoveringOperation, id: string): Shell {
  const what = `the cluster's record of ${operation} ${id} (ConfigMap ${OPERATIONS_CONFIGMAP.namespace}/${OPERATIONS_CONFIGMAP.name})`;
  return sh`cluster_record="" cluster_api=0
cm_err="$(mktemp)"
if cm_out="$(k3s kubectl get configmap ${OPERATIONS_CONFIGMAP.name} -n ${OPERATIONS_CONFIGMAP.namespace} -o ${`jsonpath={.data.${clusterRecordKey(operation, id)}}`} 2>"$cm_err")"; then
  cluster_api=1
  if [ -n "$cm_out" ]; then cluster_record="$(printf '%s' "$cm_out" | base64 -d 2>/dev/null)" || cluster_record=""; fi
else
  cm_status=$?
  cm_said="$(cat "$cm_err")"
  # Its last line: kubectl logs discovery errors (klog lines) above its message.
  case \${cm_said##*$'\\n'} in
    ${`Error from server (NotFound): configmaps "${OPERATIONS_CONFIGMAP.name}" not found`}) cluster_api=1 ;;
    "The connection to the server "*" was refused - did you specify the right host or port?" | "Unable to connect to the server: "* | \\
      "Error from server (Timeout): "* | "Error from server (ServerTimeout): "* | "Error from server (ServiceUnavailable): "* | \\
      "Error from server (InternalError): "* | "Error from server (TooManyRequests): "* | "Error from server: "*)
      say ${`warning: the API did not answer for ${what}: only this host's records decide`} ;;
    *)
      rm -f "$cm_err"
      printf '%s\\n' "$cm_said" >&2
      say ${`cannot read ${what}: k3s kubectl get configmap failed (status `}"$cm_status"${`) with the message above; fix it and run pulumi up again`} >&2
      exit 1 ;;
  esac
fi
rm -f "$cm_err"`;
}

/**
 * Shell (expects `say`): writes the record file `file` (a shell word, e.g. "$COVERED") as the
 * cluster's record of `operation` `id` (a merge patch of its key; the ConfigMap created first when
 * absent). A failure is a warning: the host's record stays the fallback.
 */
export function writeClusterRecord(operation: CoveringOperation, id: string, file: Shell): Shell {
  const key = clusterRecordKey(operation, id);
  return sh`b64="$(base64 -w0 <${file})"
k3s kubectl create configmap ${OPERATIONS_CONFIGMAP.name} -n ${OPERATIONS_CONFIGMAP.namespace} >/dev/null 2>&1 || true
if k3s kubectl patch configmap ${OPERATIONS_CONFIGMAP.name} -n ${OPERATIONS_CONFIGMAP.namespace} --type merge -p "{\\"data\\":{\\"${raw(key)}\\":\\"$b64\\"}}" >/dev/null; then
  say ${`recorded in the cluster (ConfigMap ${OPERATIONS_CONFIGMAP.namespace}/${OPERATIONS_CONFIGMAP.name}, key ${key}): a server that takes the first slot later reads it`}
else
  say ${`warning: could not record it in the cluster (ConfigMap ${OPERATIONS_CONFIGMAP.namespace}/${OPERATIONS_CONFIGMAP.name}): only this host keeps the record`}
fi`;
}
