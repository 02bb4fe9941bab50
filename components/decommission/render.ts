import { NodeConfig, ResolvedConfig } from "../config/schema";
import { binDir } from "../k3s/install";
import { PATHS } from "../k3s/paths";
import { clusterTopology } from "../config/topology";
import { NO_OP_UPDATE } from "../operations/once";
import { NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../names";
import type { HostCommand } from "../operations/host-command";
import { asRoot } from "../shell/root";
import { raw, Shell, sh } from "../shell/sh";
import { MANAGED_NODES_CONFIGMAP, managedNodes, managedNodesManifest } from "./nodes";
import { NODE_FUNCTIONS } from "./node-ops";

/**
 * Node removal in two explicit steps (docs/removing-and-replacing-nodes.md "Removing a node"), pure: config in, scripts out.
 *
 * `decommission: true` on a node entry *arms* the teardown; deleting the entry later *runs* it.
 * The teardown lives in the `delete` of two commands that are never replaced: their `triggers`
 * never change (none are set), so the engine only ever creates, updates (a no-op) or deletes them.
 * A `triggers` change would replace a command — create the new one, then run the old one's
 * `delete` (REFERENCE "The Pulumi engine here", measured) — and a teardown there would run on
 * every change. Arming and disarming change the `delete` text, which is an Update (the no-op
 * `update`); the engine runs the `delete` kept in state once the entry is gone.
 *
 *  - `drain` (on a server): cordon, drain, `kubectl delete node`. A server's Node carries K3s'
 *    etcd finalizer (`wrangler.cattle.io/managed-etcd-controller`, k3s-io/k3s#2669); `kubectl
 *    delete node` waits for it, so the etcd member is gone before the uninstall (k3s-io/k3s#9817:
 *    "If you just want it gone, use kubectl delete node").
 *  - `uninstall` (on the node): `k3s-uninstall.sh` / `k3s-agent-uninstall.sh`, which the install
 *    script writes next to the binary (REFERENCE "Uninstall"), then k3s-platform's own state.
 *
 * Deletion order: the engine deletes dependents before their dependencies, so `drain` depends on
 * `uninstall`: removing the entry drains first, uninstalls second.
 */

/** Suffixes after `<stack>-<node>-` (names.ts: siblings of the K3sNode, never its children). */
export const TEARDOWN_CHILDREN = { drain: NODE_LIFECYCLE_CHILDREN.drain, uninstall: NODE_LIFECYCLE_CHILDREN.uninstall } as const;

/** Seconds `kubectl drain` and `kubectl delete node` may take before the teardown fails. */
export const DRAIN_TIMEOUT_SECONDS = 300;

/**
 * Seconds a server's drain waits for the other managed servers to be registered etcd members
 * before it removes its own (a server added in the same `up` joins first: the engine deletes last,
 * and K3s publishes the member annotation shortly after start).
 */
export const JOIN_WAIT_SECONDS = 300;

/** The managed servers' names in config order: the peers an armed server's drain waits for. */
function managedServerNames(config: ResolvedConfig): string[] {
  return managedNodes(config).filter((n) => n.role === "server").map((n) => n.name);
}

export interface TeardownPlan {
  node: NodeConfig;
  armed: boolean;
  /** The server whose admin kubeconfig drains and deletes the Node (never the node itself). */
  drainServer: NodeConfig;
  /** Run on create: records the arming; changes nothing on the host. */
  armScript: string;
  drainScript: string;
  uninstallScript: string;
}

/**
 * One teardown per node entry that sets `decommission` (true: armed, false: disarmed — kept
 * declared so that cancelling is an Update, never a delete that would run the teardown).
 */
export function teardownPlans(config: ResolvedConfig): TeardownPlan[] {
  const topology = clusterTopology(config);
  return config.nodes
    .filter((n) => n.decommission !== undefined)
    .map((node) => {
      const armed = node.decommission === true;
      return {
        node,
        armed,
        drainServer: topology.firstServer,
        armScript: renderArmScript(node, armed),
        drainScript: armed ? renderDrainScript(node, node.role === "server" ? managedServerNames(config) : [], topology.firstServer) : renderDisarmedScript(node, "drain"),
        uninstallScript: armed ? renderUninstallScript(config, node) : renderDisarmedScript(node, "uninstall"),
      };
    });
}

export { managedNodes } from "./nodes";

/** A teardown command as the component declares it (names without the `<stack>-` prefix). */
/**
 * A teardown command: its script is its `delete`; `create`/`update` unset means the provider runs
 * nothing and opens no connection (pulumi-command: Create/Update skip a nil command).
 */
export type TeardownCommand = Pick<HostCommand, "name" | "on" | "create" | "update"> & Required<Pick<HostCommand, "delete" | "dependsOn">>;

/** Runs a generated script as root, given as one argument (`delete` has no stdin of its own). */
export function asRootScript(user: string, script: string): string {
  return asRoot(user, sh`bash -c ${script}`).text;
}

/** Both commands of every teardown, uninstall first (drain depends on it: deleted, so run, first). */
export function teardownCommands(config: ResolvedConfig): TeardownCommand[] {
  const plans = teardownPlans(config);
  // Armed servers leave one at a time, in config order: each server's uninstall depends on the
  // next one's drain, so the engine deletes (runs) drain A, uninstall A, drain B, uninstall B, and
  // B's etcd member is removed only after A's is gone and A stopped (a 5 -> 3 shrink passes 4).
  const servers = plans.filter((t) => t.armed && t.node.role === "server").map((t) => t.node.name);
  const nextServer = new Map(servers.slice(0, -1).map((name, i) => [name, servers[i + 1]!]));
  return plans.flatMap((t) => {
    const nodeUser = t.node.ssh.user ?? config.ssh.user;
    const serverUser = t.drainServer.ssh.user ?? config.ssh.user;
    const uninstall = nodeLifecycleName(t.node.name, "uninstall");
    return [
      // No create and no update: arming (or an SSH setting change) never connects to the node,
      // so a dead host can be decommissioned; only the removal's delete reaches it.
      {
        name: uninstall,
        on: t.node,
        delete: asRootScript(nodeUser, t.uninstallScript),
        dependsOn: nextServer.has(t.node.name) ? [nodeLifecycleName(nextServer.get(t.node.name)!, "drain")] : [],
      },
      {
        name: nodeLifecycleName(t.node.name, "drain"),
        on: t.drainServer,
        create: asRootScript(serverUser, t.armScript),
        update: NO_OP_UPDATE,
        delete: asRootScript(serverUser, t.drainScript),
        dependsOn: [uninstall],
      },
    ];
  });
}

/**
 * A teardown script. `on`: the host it runs on when that is not the node itself (the drain runs on
 * a server): its failures name both, the node and where its step ran.
 */
const SCRIPT = (what: string, node: NodeConfig, body: Shell, on?: NodeConfig) => sh`#!/usr/bin/env bash
# ${what} of node ${node.name}, generated by k3s-platform (docs/removing-and-replacing-nodes.md#removing-a-node).
set -euo pipefail
NODE=${node.name}
started=$SECONDS
say() { echo "decommission[$NODE]: $* ($((SECONDS - started))s)"; }
${on ? sh`ON=${on.name}
fail() { echo "decommission[$NODE] drain on $ON: $* ($((SECONDS - started))s)" >&2; exit 1; }` : raw(`fail() { echo "decommission[$NODE]: $* ($((SECONDS - started))s)" >&2; exit 1; }`)}
${body}
`.text;

function renderArmScript(node: NodeConfig, armed: boolean): string {
  return SCRIPT(
    "Arming the teardown",
    node,
    armed
      ? raw(`say "armed: deleting this node's entry runs: drain, delete node, uninstall; nothing changed on the host"`)
      : raw(`say "disarmed: deleting this node's entry leaves K3s installed"`),
  );
}

function renderDisarmedScript(node: NodeConfig, step: string): string {
  return SCRIPT(`Disarmed ${step}`, node, sh`say ${`${step} skipped: the teardown was disarmed (decommission: false); K3s stays installed`}`);
}

/**
 * Runs on a server as root: cordon, drain, delete the Node (for a server: its etcd member too).
 * `servers`: for a server, the managed servers when the removal was armed (the script is kept in
 * state from then); before anything, it waits for each that is still managed to be a registered
 * etcd member, and refuses when removing this member would leave etcd without a Ready majority.
 */
export function renderDrainScript(node: NodeConfig, servers: readonly string[] = [], on?: NodeConfig): string {
  const peers = servers.filter((s) => s !== node.name);
  return SCRIPT(
    "Drain and delete",
    node,
    sh`TIMEOUT=${DRAIN_TIMEOUT_SECONDS}
# The delete of a teardown the program no longer declares. When the entry is still managed (its
# \`decommission: true\` line was deleted, not the entry), refuse: the failed delete keeps both
# teardown resources, and the uninstall (deleted after this one) never runs.
still_managed() {
  fail "$NODE is still a node entry without decommission: true (was that line deleted instead of the entry?): not draining, deleting or uninstalling it; nothing was changed. To keep the node: set decommission: false and run up. To remove it: set decommission: true, run up, then delete the entry"
}
k3s kubectl get --raw=/readyz >/dev/null || fail "the API server on this server does not answer; nothing was changed, the next pulumi up retries"
${NODE_FUNCTIONS}
# The managed-node list, kept in the cluster only (decommission/nodes.ts): the node-inventory step
# rewrote it on the first managed server before the engine ran any delete.
CM=${MANAGED_NODES_CONFIGMAP.name}
CLUSTER_LIST=""
if kread get configmap "$CM" -n ${MANAGED_NODES_CONFIGMAP.namespace} -o ${`jsonpath={.data.${MANAGED_NODES_CONFIGMAP.key}}`}; then
  CLUSTER_LIST="$KOUT"
  case " $KOUT " in
    *" $NODE "*) still_managed ;;
  esac
else
  case "$KERR" in
    *NotFound* | *"not found"*) say "warning: no managed-node list in the cluster ($CM; the node-inventory step writes it): cannot check that $NODE is no longer managed" ;;
    *) fail "cannot read the managed-node list ($CM): $KERR; nothing was changed, the next pulumi up retries" ;;
  esac
fi
# The Ready condition's status: Unknown means the kubelet stopped reporting (the host is down or gone).
ready="$(node_ready "$NODE")" || exit 1
if [ "$ready" = absent ]; then
  say "not registered: nothing to drain or delete"
  exit 0
fi
# A host that serves another Node now (a new entry on it, or a rename) runs no kubelet for this
# one, though its Ready stays True for the node monitor's grace period (40 s by default).
list_nodes
successor="$(node_successor "$NODE")"
${node.role === "server" ? serverQuorumGuard(peers) : raw("")}if [ "$ready" = Unknown ] || [ -n "$successor" ]; then
  # Evicted pods of a dead kubelet never finish terminating: kubectl drain would wait on them until
  # the timeout and fail on every up. Deleting the Node lets the pod garbage collector remove them
  # (and, for a server, K3s removes its etcd member unless a live Node carries it: delete_node).
  if [ -n "$successor" ]; then
    say "its host serves Node $successor now, so no kubelet runs for $NODE: skipping cordon and drain"
  else
    say "Ready=Unknown (the kubelet does not report: host down?): skipping cordon and drain"
  fi
else
  say "cordon"
  k3s kubectl cordon "$NODE"
  say "drain"
  if ! out="$(k3s kubectl drain "$NODE" --ignore-daemonsets --delete-emptydir-data --timeout="\${TIMEOUT}s" 2>&1)"; then
    printf '%s\\n' "$out" >&2
    fail "drain did not finish (pods above: a PodDisruptionBudget or an unevictable pod); $NODE stays cordoned and installed, the next pulumi up retries"
  fi
fi
say "delete node (a server leaves etcd before its Node is gone)"
delete_node "$NODE"
say "drained and deleted"`,
    on,
  );
}

/**
 * A server's removal keeps etcd whole (docs/removing-and-replacing-nodes.md "Replacing a server"):
 *  1. Joined first: every peer still managed (the cluster's list, else this server's file) is a
 *     registered Node that, once Ready, names its etcd member (K3s' etcd metadata controller sets
 *     etcd.k3s.cattle.io/node-name shortly after start): waited for up to JOIN_WAIT_SECONDS, as a
 *     server added in this `up` may still be publishing it. A peer that is down (not Ready) is not
 *     waited for: the count below decides.
 *  2. Quorum: etcd needs a majority of its members (floor(n/2)+1, etcd docs "FAQ: What is
 *     failure tolerance?"). After this Node's member goes, the members left (distinct member names
 *     on Nodes not marked removed) must have a majority on Ready Nodes, or the removal is refused
 *     naming the Nodes that are down. A member a Ready Node on the same host carries now stays
 *     (delete_node keeps it), so nothing leaves etcd and nothing is counted.
 * Runs after list_nodes (NODES) and the managed-list read (CLUSTER_LIST: the cluster's copy, the only one since issue 26).
 */
function serverQuorumGuard(peers: readonly string[]): Shell {
  return sh`PEERS=(${peers})
JOIN_WAIT=${JOIN_WAIT_SECONDS}
still_listed() {
  if [ -n "$CLUSTER_LIST" ]; then
    case " $CLUSTER_LIST " in *" $1 "*) return 0 ;; *) return 1 ;; esac
  fi
  # No list in the cluster (not written yet): every peer counts as listed, so it is waited for.
  return 0
}
waited=0
while :; do
  joining=""
  for peer in "\${PEERS[@]}"; do
    still_listed "$peer" || continue
    state=absent
    while read -r name ready address member removed; do
      if [ "$name" = "$peer" ]; then state="$ready/$member"; fi
    done <<<"$NODES"
    case "$state" in
      absent | "<none>/"* | "True/<none>") joining="$joining $peer" ;;
    esac
  done
  if [ -z "$joining" ]; then break; fi
  if [ "$waited" -ge "$JOIN_WAIT" ]; then
    fail "server(s)$joining not registered as etcd members after \${JOIN_WAIT}s: removing $NODE before they joined could cost etcd its quorum; nothing was changed, the next pulumi up retries"
  fi
  if [ "$waited" = 0 ]; then say "waiting for server(s)$joining to join etcd before $NODE leaves (up to \${JOIN_WAIT}s)"; fi
  sleep 5
  waited=$((waited + 5))
  list_nodes
done
own="" carried=0 members=() up=0 down=""
while read -r name ready address member removed; do
  if [ "$name" = "$NODE" ]; then own="$member"; fi
done <<<"$NODES"
if [ -n "$own" ] && [ "$own" != "<none>" ]; then
  while read -r name ready address member removed; do
    if [ "$name" = "$NODE" ] || [ "$member" = "<none>" ] || [ "$removed" = "$member" ]; then continue; fi
    if [ "$member" = "$own" ]; then
      if [ "$ready" = True ]; then carried=1; fi
      continue
    fi
    case " \${members[*]} " in *" $member "*) continue ;; esac
    members+=("$member")
    if [ "$ready" = True ]; then up=$((up + 1)); else down="$down $name"; fi
  done <<<"$NODES"
  if [ "$carried" = 0 ]; then
    left=\${#members[@]}
    need=$((left / 2 + 1))
    if [ "$left" = 0 ]; then
      fail "$NODE carries the last etcd member: removing it would end the cluster; nothing was changed"
    fi
    if [ "$up" -lt "$need" ]; then
      fail "after $NODE leaves, $up of $left etcd members are on Ready Nodes and etcd needs $need: bring back$down first; nothing was changed, the next pulumi up retries"
    fi
    say "etcd keeps quorum: $left members left, $up on Ready Nodes (needs $need)"
  fi
fi
`;
}

/**
 * Runs on the node as root: the install script's uninstallers, then k3s-platform's state. Every
 * uninstaller present runs, the entry's role's first: the role in the config may not be what the
 * host runs (an entry edited while armed, a host re-used), and a host installed once per role has
 * both units and both uninstallers — the real one stops every k3s service, removes its own unit,
 * then, while another `k3s*.service` is left, prints "Additional k3s services installed, skipping
 * uninstall of k3s" and keeps the data and binary (install.sh create_uninstall); the second one
 * finishes the job. Removing only k3s-platform's state while K3s stays would report a clean
 * removal that did not happen.
 */
export function renderUninstallScript(config: ResolvedConfig, node: NodeConfig): string {
  return SCRIPT(
    "Uninstall",
    node,
    sh`ROOT="\${K3S_PLATFORM_ROOT:-}"
# The host may serve another entry by now (renamed while armed, or re-used by a new entry in the
# same up as this removal: creates and updates run before deletes, so it was installed under its
# new name first). Its K3s is that entry's: leave it.
${leaveAnotherEntrysK3s()}
${uninstallK3s(config, node)}`,
  );
}

/** Exits 0 (saying so) when the host's config.yaml names another node: its K3s is that entry's. Needs ROOT, NODE, say. */
export function leaveAnotherEntrysK3s(): Shell {
  return sh`CONFIG="$ROOT"${PATHS.configYaml}
if [ -f "$CONFIG" ]; then
  current="$(sed -n 's/^node-name: *//p' "$CONFIG" | tr -d '\\042\\047')" # strip YAML quoting
  if [ -n "$current" ] && [ "$current" != "$NODE" ]; then
    say "this host runs node $current now (another entry): K3s and k3s-platform state left in place"
    exit 0
  fi
fi`;
}

/**
 * Every K3s uninstaller present on the host (the entry's role's first), then k3s-platform's state
 * (see renderUninstallScript). Needs ROOT and say.
 */
export function uninstallK3s(config: ResolvedConfig, node: NodeConfig): Shell {
  // Where the install script wrote the uninstaller (its BIN_DIR): INSTALL_K3S_BIN_DIR when
  // air-gapped; otherwise /usr/local/bin, or /opt/bin when root cannot write /usr/local/bin and
  // /opt/bin exists (install.sh setup_env: the `k3s-ro-test` probe; read-only /usr on Flatcar and
  // similar). Looking only in /usr/local/bin would report "not installed" while K3s keeps running.
  const dirs = config.k3s.airgap.enabled ? [binDir(config.k3s.airgap.binaryPath)] : ["/usr/local/bin", "/opt/bin"];
  const scripts = node.role === "server" ? ["k3s-uninstall.sh", "k3s-agent-uninstall.sh"] : ["k3s-agent-uninstall.sh", "k3s-uninstall.sh"];
  const paths = scripts.flatMap((s) => dirs.map((d) => `${d === "/" ? "" : d}/${s}`));
  return sh`TRIED=${paths.join(" or ")}
uninstalled=0
for UNINSTALL in ${paths}; do
  if [ -x "$ROOT$UNINSTALL" ]; then
    say "uninstall: $UNINSTALL"
    "$ROOT$UNINSTALL"
    uninstalled=1
  fi
done
if [ "$uninstalled" = 1 ]; then
  say "K3s uninstalled"
else
  say "no $TRIED: K3s is not installed, nothing to uninstall"
fi
rm -rf "$ROOT"${"/var/lib/k3s-platform"}
say "k3s-platform state removed; the host can be re-used"`;
}

/**
 * Runs on the first server whenever the list of node entries changes: names every Node the cluster
 * has registered that no entry lists. Such a node was removed from the config without
 * `decommission: true` first, so K3s still runs there; this says so (a warning, not a failure).
 * It cannot tell that case from a decommissioned entry removed in this up: the engine runs the
 * teardown (a delete) after every create and update, so that Node is still registered here. The
 * warning names both cases rather than tell the operator to redo a removal that is under way.
 * It also writes the managed-node list into the cluster (decommission/nodes.ts); the list is part
 * of the script, so the step re-runs whenever an entry is armed, disarmed or its line deleted.
 */
export function renderInventoryScript(config: ResolvedConfig): string {
  const listed = config.nodes.map((n) => n.name);
  return sh`#!/usr/bin/env bash
# Node inventory, generated by k3s-platform (docs/removing-and-replacing-nodes.md#removing-a-node).
set -euo pipefail
listed=(${listed})
# The managed-node list in the cluster (decommission/nodes.ts), read by every armed teardown's
# drain: written here, on the first managed server, before the engine runs any delete.
k3s kubectl apply -f - >/dev/null <<<${managedNodesManifest(config)}
registered="$(k3s kubectl get nodes -o name)"
unlisted=0
while IFS= read -r entry; do
  name="\${entry#node/}"
  [ -n "$name" ] || continue
  known=0
  for n in "\${listed[@]}"; do
    if [ "$n" = "$name" ]; then known=1; fi
  done
  if [ "$known" = 0 ]; then
    unlisted=$((unlisted + 1))
    echo "warning: node $name is registered in the cluster but has no entry in the stack config. If the entry had decommission: true, its teardown runs after this step in this same up (the engine deletes last) and this warning is moot; otherwise it was removed without decommission: true, so K3s still runs on it: add it back with decommission: true, run pulumi up, then remove it (docs/removing-and-replacing-nodes.md#removing-a-node)." >&2
  fi
done <<<"$registered"
echo "inventory: \${#listed[@]} node entries, $unlisted registered node(s) without one"
`.text;
}
