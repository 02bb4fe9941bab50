import type { NodeConfig, ResolvedConfig } from "../config/schema";
import { managedNodes } from "../decommission/nodes";
import { STATE_DIR } from "../k3s/install";
import { raw, Shell, sh } from "../shell/sh";
import { drainArgs } from "../upgrade/render";
import { agentBatches } from "../upgrade/versions";

/**
 * Rolling node maintenance (`maintenance` in the stack config, docs/maintenance.md), pure: the
 * groups and each step's script. Servers one at a time, then agents in batches of
 * `upgrade.maxUnavailable` (the budget an upgrade honours, components/upgrade); per group:
 *  - drain (on the group's watcher server: agents have no admin kubeconfig): record each node's
 *    boot ID (`.status.nodeInfo.bootID`, the kubelet reports the kernel's boot_id), cordon with
 *    the annotation CORDON_ANNOTATION (a node an operator cordoned stays cordoned), drain;
 *  - run (on each node): the command (argv, never a shell line), then the reboot when asked;
 *  - wait (watcher, reboot only): each node reports a new boot ID and Ready, bounded;
 *  - back (on each node, reboot only): the host answers SSH again and its K3s unit is active;
 *  - uncordon (watcher): each node Ready, uncordoned if this maintenance cordoned it.
 * The next group starts only after the last step of this one: never two servers down at once.
 * The watcher is the first server, or for a group holding it the next server (a rebooting server
 * cannot watch itself come back; validation refuses rebooting the only server).
 */

/** Marks the nodes a maintenance cordoned; value: the maintenance id. */
export const CORDON_ANNOTATION = "k3s-platform.io/cordoned-for-maintenance";
/**
 * Marks a node whose maintenance finished (set by its group's uncordon); value: the maintenance
 * id. The record is per node, not per group: when batches reshuffle (a node added or removed with
 * `maintenance` still set), a node already done for this id is skipped by whichever group holds it.
 */
export const MAINTAINED_ANNOTATION = "k3s-platform.io/maintained";
/** Where the watcher keeps the boot IDs it saw before a reboot. */
export const BOOT_ID_DIR = `${STATE_DIR}/maintenance`;
/** How long a rebooting node may take to report a new boot ID and Ready (on top of upgrade.readyTimeout). */
export const REBOOT_SECONDS = 600;
/** How long the command may run on a node. */
export const COMMAND_SECONDS = 3600;
/** Seconds between the run step's end and the reboot: the SSH session closes first. */
export const REBOOT_DELAY_SECONDS = 2;

export type MaintenanceConfig = NonNullable<ResolvedConfig["maintenance"]>;

export interface MaintenanceGroup {
  /** 1, 2, …: servers first (one per group), then agent batches. */
  index: number;
  nodes: NodeConfig[];
  /** The server whose API drains, watches and uncordons the group. */
  watcher: NodeConfig;
}

/** The nodes `maintenance.nodes` covers, in config order (managed nodes only). */
export function coveredNodes(config: ResolvedConfig, m: MaintenanceConfig): NodeConfig[] {
  const managed = managedNodes(config);
  return m.nodes === "all" ? managed : managed.filter((n) => (m.nodes as string[]).includes(n.name));
}

/** Servers one at a time, then agents in batches of upgrade.maxUnavailable (of the covered agents). */
export function maintenanceGroups(config: ResolvedConfig, m: MaintenanceConfig): MaintenanceGroup[] {
  const covered = coveredNodes(config, m);
  const servers = managedNodes(config).filter((n) => n.role === "server");
  const first = servers[0]!;
  const watcherOf = (nodes: NodeConfig[]) => (nodes.some((n) => n.name === first.name) ? (servers[1] ?? first) : first);
  const groups = [
    ...covered.filter((n) => n.role === "server").map((s) => [s]),
    ...agentBatches(
      covered.filter((n) => n.role === "agent"),
      config.upgrade.maxUnavailable,
    ),
  ];
  return groups.map((nodes, i) => ({ index: i + 1, nodes, watcher: watcherOf(nodes) }));
}

const NODE_STATE = raw(String.raw`# node_state NODE: "<Ready> <unschedulable> <cordoned-for-maintenance> <bootID> <maintained>" from the API (<none> when absent).
MAINT_COLUMNS='custom-columns=READY:.status.conditions[?(@.type=="Ready")].status,UNSCHEDULABLE:.spec.unschedulable,CORDONED_FOR:.metadata.annotations.k3s-platform\.io/cordoned-for-maintenance,BOOT:.status.nodeInfo.bootID,MAINTAINED:.metadata.annotations.k3s-platform\.io/maintained'
node_state() {
  k3s kubectl get node "$1" --no-headers -o "$MAINT_COLUMNS" 2>/dev/null
}
# maintained NODE: whether NODE finished this maintenance id (its MAINTAINED annotation, set by its uncordon).
maintained() {
  local info done_for
  info="$(node_state "$1")" || return 1
  read -r _ _ _ _ done_for <<<"$info"
  [ "$done_for" = "$ID" ]
}`);

/** Drops from NODES every node already maintained for this id (whichever group did it). */
const SKIP_MAINTAINED = raw(`todo=()
for node in "\${NODES[@]}"; do
  if maintained "$node"; then say "$node" "already maintained for id $ID (annotation ${MAINTAINED_ANNOTATION}): skipped"; else todo+=("$node"); fi
done
NODES=("\${todo[@]}")`);

function header(what: string, id: string, on: NodeConfig, nodes: string[]): Shell {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: maintenance ${id}, ${what} of ${nodes.join(", ")}, on ${on.name} (docs/maintenance.md).
set -euo pipefail
ROOT="\${K3S_PLATFORM_ROOT:-}"
ON=${on.name}
STEP=${what}
NODES=(${nodes})
ID=${id}
started=$SECONDS
say() { echo "maintenance[$1] $STEP (on $ON): \${*:2} ($((SECONDS - started))s)"; }
fail() { echo "maintenance[$1] $STEP (on $ON): \${*:2}" >&2; exit 1; }
`;
}

/**
 * The group's drain, on its watcher: each node's boot ID recorded (reboot), cordoned (annotated
 * first), then drained with upgrade.drain's options; skipped when no other Ready, schedulable node
 * could take the pods. A failed drain names the node; it stays cordoned and the next up retries.
 */
export function renderMaintenanceDrain(config: ResolvedConfig, m: MaintenanceConfig, group: MaintenanceGroup): string {
  const d = config.upgrade.drain;
  const names = group.nodes.map((n) => n.name);
  return sh`${header("drain", String(m.id), group.watcher, names)}BOOT_DIR="$ROOT"${BOOT_ID_DIR}
${NODE_STATE}
${SKIP_MAINTAINED}
list="$(k3s kubectl get nodes --no-headers -o 'custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,UNSCHEDULABLE:.spec.unschedulable')" || fail "$ON" "cannot list nodes from the API"
others=0
while read -r name ready unschedulable; do
  [ -n "$name" ] || continue
  mine=0
  for n in "\${NODES[@]}"; do if [ "$n" = "$name" ]; then mine=1; fi; done
  if [ "$mine" = 0 ] && [ "$ready" = True ] && [ "$unschedulable" != true ]; then others=$((others + 1)); fi
done <<<"$list"
mkdir -p "$BOOT_DIR"
for node in "\${NODES[@]}"; do
  info="$(node_state "$node")" || fail "$node" "cannot read node $node from the API"
  read -r _ unschedulable cordoned_for boot _ <<<"$info"
  printf '%s\\n' "$boot" >"$BOOT_DIR/$node.boot-id"
  if [ "$unschedulable" = true ] && { [ -z "$cordoned_for" ] || [ "$cordoned_for" = "<none>" ]; }; then
    say "$node" "already cordoned by someone else: it stays cordoned after the maintenance"
  else
    # Annotation first: a node cordoned without it would never be uncordoned by a later run.
    k3s kubectl annotate node "$node" --overwrite ${`${CORDON_ANNOTATION}=`}"$ID" >/dev/null
    k3s kubectl cordon "$node" >/dev/null
    say "$node" "cordoned"
  fi
done
for node in "\${NODES[@]}"; do
  if [ "$others" -eq 0 ]; then
    say "$node" "drain skipped: no other Ready, schedulable node could take its pods"
    continue
  fi
  if ! out="$(k3s kubectl drain "$node" --timeout=${`${d.timeout}s`} ${drainArgs(config)} 2>&1)"; then
    printf '%s\\n' "$out" >&2
    fail "$node" "drain of $node failed (a PodDisruptionBudget? kubectl get pdb -A); $node stays cordoned, nothing ran on it; the next up retries"
  fi
  say "$node" "drained"
done
`.text;
}

/** On the node: the command (argv, as root, bounded), then the reboot when asked (after the session ends). */
export function renderMaintenanceRun(m: MaintenanceConfig, node: NodeConfig): string {
  const command = m.command
    ? sh`say "$NODE" "run:" ${m.command.join(" ")}
status=0
# No terminal and no stdin (the script itself arrives on stdin): package managers must not prompt.
timeout ${COMMAND_SECONDS} env DEBIAN_FRONTEND=noninteractive ${m.command} </dev/null || status=$?
[ "$status" = 0 ] || fail "$NODE" "the command failed (status $status): $NODE stays cordoned and the maintenance stops here; fix it and run pulumi up again"
say "$NODE" "command done"`
    : raw("");
  const reboot = m.reboot
    ? sh`
say "$NODE" "reboot in ${raw(String(REBOOT_DELAY_SECONDS))}s (after this session ends)"
# Detached, output closed: the SSH session ends before the host goes down.
nohup bash -c ${`sleep ${REBOOT_DELAY_SECONDS}; systemctl reboot`} </dev/null >/dev/null 2>&1 &`
    : raw("");
  return sh`${header("run", String(m.id), node, [node.name])}NODE=${node.name}
${command}${reboot}
`.text;
}

/**
 * On the watcher, after a reboot: each node reports a boot ID other than the one recorded before
 * it rebooted, and Ready, bounded (upgrade.readyTimeout + REBOOT_SECONDS); a node that does not
 * come back fails the step naming it, and stays cordoned.
 */
export function renderMaintenanceWait(config: ResolvedConfig, m: MaintenanceConfig, group: MaintenanceGroup): string {
  const bound = config.upgrade.readyTimeout + REBOOT_SECONDS;
  return sh`${header("wait", String(m.id), group.watcher, group.nodes.map((n) => n.name))}BOOT_DIR="$ROOT"${BOOT_ID_DIR}
${NODE_STATE}
${SKIP_MAINTAINED}
for node in "\${NODES[@]}"; do
  before="$(cat "$BOOT_DIR/$node.boot-id" 2>/dev/null || true)"
  deadline=$((SECONDS + ${bound}))
  next=$((SECONDS + 10))
  ready="?" boot="?"
  while :; do
    if info="$(node_state "$node")"; then read -r ready _ _ boot _ <<<"$info"; fi
    if [ "$boot" != "$before" ] && [ "$boot" != "<none>" ] && [ "$ready" = True ]; then break; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "$node" "$node did not come back ${raw(String(bound))}s after its reboot (boot ID before $before, now $boot; Ready $ready); it stays cordoned; the next up waits again"
    fi
    if [ "$SECONDS" -ge "$next" ]; then say "$node" "waiting for a new boot ID and Ready"; next=$((SECONDS + 10)); fi
    sleep 2
  done
  say "$node" "rebooted (boot ID $boot) and Ready"
done
`.text;
}

/** On the node after its reboot: the host answers SSH (this step runs) and its K3s unit is active, bounded. */
export function renderMaintenanceBack(m: MaintenanceConfig, node: NodeConfig): string {
  const unit = node.role === "server" ? "k3s" : "k3s-agent";
  return sh`${header("back", String(m.id), node, [node.name])}NODE=${node.name}
deadline=$((SECONDS + 300))
until systemctl is-active --quiet ${unit}; do
  [ "$SECONDS" -lt "$deadline" ] || fail "$NODE" ${`the host answers SSH but ${unit} is not active 300s after the reboot; see journalctl -u ${unit}`}
  sleep 2
done
say "$NODE" ${`back: answers SSH, ${unit} active`}
`.text;
}

/** On the watcher: each node Ready (bounded by upgrade.readyTimeout), then uncordoned when this maintenance cordoned it. */
export function renderMaintenanceUncordon(config: ResolvedConfig, m: MaintenanceConfig, group: MaintenanceGroup): string {
  const bound = config.upgrade.readyTimeout;
  return sh`${header("uncordon", String(m.id), group.watcher, group.nodes.map((n) => n.name))}${NODE_STATE}
${SKIP_MAINTAINED}
for node in "\${NODES[@]}"; do
  deadline=$((SECONDS + ${bound}))
  ready="?" cordoned_for="<none>"
  while :; do
    if info="$(node_state "$node")"; then read -r ready _ cordoned_for _ <<<"$info"; fi
    if [ "$ready" = True ]; then break; fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$node" "$node is not Ready ${raw(String(bound))}s after its maintenance (Ready $ready); it stays cordoned; the next up waits again"
    sleep 2
  done
  if [ -n "$cordoned_for" ] && [ "$cordoned_for" != "<none>" ]; then
    k3s kubectl uncordon "$node" >/dev/null
    k3s kubectl annotate node "$node" ${`${CORDON_ANNOTATION}-`} >/dev/null
    say "$node" "uncordoned"
  else
    say "$node" "left as it was (not cordoned by this maintenance)"
  fi
  k3s kubectl annotate node "$node" --overwrite ${`${MAINTAINED_ANNOTATION}=`}"$ID" >/dev/null
done
`.text;
}

/**
 * The maintenance record's delete (operations/maintenance.ts), on the first server: run when the
 * maintenance leaves the config (removed, or replaced by a new id). A node this id cordoned and
 * never uncordoned (a run that failed, then was abandoned) is uncordoned, so no node stays out of
 * scheduling for an operation the config no longer asks for; an operator's cordon (no annotation)
 * and another id's are left alone. Never fails: an API that does not answer (a destroy, a lost
 * server) uncordons nothing and says so.
 */
export function renderMaintenanceRelease(id: string): string {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: maintenance ${id} left the config: uncordon the nodes it cordoned and never uncordoned (docs/maintenance.md).
set -uo pipefail
ID=${id}
if ! list="$(k3s kubectl get nodes --no-headers -o ${String.raw`custom-columns=NAME:.metadata.name,CORDONED_FOR:.metadata.annotations.k3s-platform\.io/cordoned-for-maintenance`} 2>&1)"; then
  echo "maintenance $ID: the API does not answer, nothing uncordoned: $list"
  exit 0
fi
while read -r node cordoned_for; do
  if [ -z "$node" ] || [ "$cordoned_for" != "$ID" ]; then continue; fi
  if k3s kubectl uncordon "$node" >/dev/null && k3s kubectl annotate node "$node" ${`${CORDON_ANNOTATION}-`} >/dev/null; then
    echo "maintenance[$node] $ID left the config before it uncordoned $node: uncordoned"
  else
    echo "maintenance[$node] $ID left the config: uncordoning $node failed; k3s kubectl uncordon $node"
  fi
done <<<"$list"
`.text;
}
