import { NodeConfig, ResolvedConfig } from "../config/schema";
import { managedNodes } from "../decommission/nodes";
import { followsChannel, STATE_DIR } from "../k3s/install";
import { joinShell, raw, Shell, sh } from "../shell/sh";
import { REQUIRED_PATCHES } from "./paths";
import { agentBatches } from "./versions";
import { applyBoundSeconds, SNAPSHOT_TIMEOUT_SECONDS } from "../k3s/timeouts";

/**
 * Upgrades when `k3s.version` changes, as host-side shell (pure renderers, no Pulumi). The logic
 * runs on the hosts, in the apply path, so it holds whoever runs `up`:
 *
 *  - every node's apply.sh first reads the version it runs (upgradeGuard) and refuses a downgrade
 *    or a skipped minor, naming the node and both versions, before anything is placed;
 *  - a server being upgraded, before its install restarts K3s (serverPreInstall): the first server
 *    of the rollout takes an etcd snapshot (embedded etcd) or copies the sqlite datastore; then
 *    cordon and drain (skipped when no other node could take the pods);
 *  - after the install (serverPostInstall): wait until the node is Ready AND its kubelet reports
 *    the new version (bounded), uncordon what the upgrade cordoned, record the version;
 *  - agents have no admin kubeconfig: their cordon/drain and wait/uncordon run on the first server,
 *    in batches of at most `upgrade.maxUnavailable` (renderAgentBatchDrain / renderAgentBatchUncordon,
 *    one command each per batch, chained batch after batch by the cluster component). A channel
 *    stack has the same batches, at the release its k3s-release step recorded (issue 26): a
 *    running agent's restart is drained there too.
 *
 * The node annotation `k3s-platform.io/cordoned-for-upgrade` marks a node this code cordoned, so a
 * node an operator cordoned stays cordoned, and a rollout that failed half way uncordons on the next `up`.
 */

/** What apply.sh recorded as running after its last successful install of a pinned version. */
export const VERSION_RECORD = `${STATE_DIR}/k3s-version`;
/** Marks the nodes this code cordoned; value: the version being rolled out. */
export const CORDON_ANNOTATION = "k3s-platform.io/cordoned-for-upgrade";
// The pre-upgrade etcd snapshot's bound lives with the other bounds (k3s/timeouts.ts).
export { SNAPSHOT_TIMEOUT_SECONDS };
/** Where the sqlite datastore lives and its pre-upgrade copies go (K3s datastore docs). */
export const SQLITE_DB_DIR = "/var/lib/rancher/k3s/server/db";

/**
 * The required patch releases of paths.ts UPGRADE_RULES as shell: `check_required_patches NODE FROM
 * TO ETCD` refuses, on an embedded-etcd member (ETCD = etcd), leaving a line from a release older
 * than the rule's minimum.
 */
function requiredPatchesShell(): Shell {
  const checks = REQUIRED_PATCHES.map(
    (rule) => sh`  if [ "$etcd" = etcd ] && [ "$fmin" -eq ${rule.fromMinor} ] && [ "$tmin" -gt ${rule.fromMinor} ] && version_lt "$from" ${rule.minimum}; then
    echo "upgrade[$node]: refusing $from → $to on $node: upgrade to" ${rule.minimum} "(or a later" ${`v1.${rule.fromMinor}`} "release) first:" ${rule.why} >&2
    return 1
  fi`,
  );
  return sh`# check_required_patches NODE FROM TO ETCD: the required patch releases (components/upgrade/paths.ts UPGRADE_RULES).
check_required_patches() {
  local node="$1" from="$2" to="$3" etcd="$4" fmin tmin
  read -r fmin _ <<<"$(version_parts "$from")"
  read -r tmin _ <<<"$(version_parts "$to")"
${joinShell(checks)}
  return 0
}`;
}

/** The version rules as shell (versions.ts upgradeProblem, tested to agree): every node's guard. */
export const VERSION_RULES = joinShell([
  raw(String.raw`# --- version rules (components/upgrade/render.ts, from components/upgrade/paths.ts)
# version_parts V: "MINOR PATCH REVISION" of v1.MINOR.PATCH+k3sREVISION.
version_parts() {
  [[ "$1" =~ ^v1\.([0-9]+)\.([0-9]+)\+k3s([0-9]+)$ ]] || return 1
  echo "${"$"}{BASH_REMATCH[1]} ${"$"}{BASH_REMATCH[2]} ${"$"}{BASH_REMATCH[3]}"
}
# version_lt A B: A is an older release than B.
version_lt() {
  local a b amin apat arev bmin bpat brev
  a="$(version_parts "$1")" || return 1
  b="$(version_parts "$2")" || return 1
  read -r amin apat arev <<<"$a"
  read -r bmin bpat brev <<<"$b"
  [ "$amin" -lt "$bmin" ] || { [ "$amin" -eq "$bmin" ] && { [ "$apat" -lt "$bpat" ] || { [ "$apat" -eq "$bpat" ] && [ "$arev" -lt "$brev" ]; }; }; }
}`),
  requiredPatchesShell(),
  raw(String.raw`# check_transition NODE FROM TO [etcd]: refuses a downgrade, a skipped minor (Kubernetes version
# skew policy) and, on an embedded-etcd member (4th argument "etcd"), a skipped required patch release.
check_transition() {
  local node="$1" from="$2" to="$3" etcd="${"$"}{4:-}" fmin tmin parts
  parts="$(version_parts "$from")" || { echo "upgrade[$node]: cannot read the running version '$from'; downgrade and skipped-minor checks cannot run" >&2; return 1; }
  read -r fmin _ <<<"$parts"
  parts="$(version_parts "$to")" || return 1
  read -r tmin _ <<<"$parts"
  if version_lt "$to" "$from"; then
    echo "upgrade[$node]: refusing to downgrade $node from $from to $to: K3s does not support downgrades (restore an etcd snapshot instead: docs/backup-and-restore.md); set k3s.version back to $from or newer" >&2
    return 1
  fi
  if [ "$tmin" -gt $((fmin + 1)) ]; then
    echo "upgrade[$node]: refusing to skip a minor version on $node: it runs $from, k3s.version asks for $to; upgrade to v1.$((fmin + 1)).x first (Kubernetes version skew policy)" >&2
    return 1
  fi
  check_required_patches "$node" "$from" "$to" "$etcd"
}
# --- end of version rules`),
]);

/** Node queries and cordon/drain/wait/uncordon: servers and the first server's agent batch steps. */
export const NODE_OPERATIONS = raw(String.raw`# --- node operations (components/upgrade/render.ts)
# kubectl custom-columns print <none> for an absent field.
NODE_COLUMNS='custom-columns=VERSION:.status.nodeInfo.kubeletVersion,READY:.status.conditions[?(@.type=="Ready")].status,UNSCHEDULABLE:.spec.unschedulable,CORDONED_FOR:.metadata.annotations.k3s-platform\.io/cordoned-for-upgrade'
LIST_COLUMNS='custom-columns=NAME:.metadata.name,VERSION:.status.nodeInfo.kubeletVersion,READY:.status.conditions[?(@.type=="Ready")].status,UNSCHEDULABLE:.spec.unschedulable'
# node_info NODE: "<kubelet version> <Ready status> <unschedulable> <cordoned-for>"; fails when the API or node is absent.
node_info() {
  k3s kubectl get node "$1" --no-headers -o "$NODE_COLUMNS" 2>/dev/null
}
# schedulable_others NODE...: how many Ready, schedulable nodes are not in the list.
schedulable_others() {
  local list name version ready unschedulable count=0 skip n
  list="$(k3s kubectl get nodes --no-headers -o "$LIST_COLUMNS")" || return 1
  while read -r name version ready unschedulable; do
    [ -n "$name" ] || continue
    skip=0
    for n in "$@"; do if [ "$n" = "$name" ]; then skip=1; fi; done
    if [ "$skip" = 0 ] && [ "$ready" = True ] && [ "$unschedulable" != true ]; then count=$((count + 1)); fi
  done <<<"$list"
  echo "$count"
}
# cordon_for_upgrade NODE TARGET: annotate, then cordon, unless an operator cordoned it (then left as is).
cordon_for_upgrade() {
  local node="$1" target="$2" info version ready unschedulable cordoned_for
  info="$(node_info "$node")" || { echo "upgrade[$node]: cannot read node $node from the API" >&2; return 1; }
  read -r version ready unschedulable cordoned_for <<<"$info"
  if [ "$unschedulable" = true ] && { [ -z "$cordoned_for" ] || [ "$cordoned_for" = "<none>" ]; }; then
    echo "upgrade[$node]: already cordoned by someone else; it stays cordoned after the upgrade"
    return 0
  fi
  # Annotation first: a node cordoned without it would never be uncordoned by a later run.
  k3s kubectl annotate node "$node" --overwrite "k3s-platform.io/cordoned-for-upgrade=$target" >/dev/null
  k3s kubectl cordon "$node"
}
# drain_for_upgrade NODE TIMEOUT ARGS...: kubectl drain, skipped when no other node could take the pods.
# A drain that fails names the pods kubectl could not evict; the caller takes its cordons back (undo_cordons).
drain_for_upgrade() {
  local node="$1" timeout="$2" others out pods started="$SECONDS"
  shift 2
  others="$(schedulable_others "$node")" || { echo "upgrade[$node]: cannot list nodes from the API" >&2; return 1; }
  if [ "$others" -eq 0 ]; then
    echo "upgrade[$node]: drain skipped: no other Ready, schedulable node could take its pods"
    return 0
  fi
  echo "upgrade[$node]: draining (timeout ${"$"}{timeout}s)"
  if ! out="$(k3s kubectl drain "$node" --timeout="${"$"}{timeout}s" "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    # kubectl drain (k8s.io/kubectl/pkg/drain) names each pod it could not evict as pods/"NAME" -n "NAMESPACE" or pods/NAME -n NAMESPACE.
    pods="$(printf '%s\n' "$out" | { grep -oE 'pods/"?[A-Za-z0-9._-]+"? -n "?[A-Za-z0-9._-]+' || true; } | sed -E 's#pods/"?([A-Za-z0-9._-]+)"? -n "?([A-Za-z0-9._-]+)#\2/\1#' | sort -u | tr '\n' ' ')"
    echo "upgrade[$node]: drain of $node failed after $((SECONDS - started))s; pods not evicted: ${"$"}{pods:-see the kubectl output above }(a PodDisruptionBudget? kubectl get pdb -A). Nothing restarted: its cordon is taken back; the next up with this change cordons and drains it again" >&2
    return 1
  fi
  echo "upgrade[$node]: drained in $((SECONDS - started))s"
}
# wait_ready_version NODE TARGET TIMEOUT: until the node is Ready with kubelet TARGET; progress every 10 s.
wait_ready_version() {
  local node="$1" target="$2" timeout="$3" info version="?" ready="?" rest started="$SECONDS" next=$((SECONDS + 10))
  while :; do
    if info="$(node_info "$node")"; then
      read -r version ready rest <<<"$info"
      if [ "$version" = "$target" ] && [ "$ready" = True ]; then break; fi
    fi
    if [ $((SECONDS - started)) -ge "$timeout" ]; then
      echo "upgrade[$node]: $node is not Ready with kubelet $target after ${"$"}{timeout}s (last seen: kubelet $version, Ready $ready); it stays cordoned; the next up waits again" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$next" ]; then
      echo "upgrade[$node]: waiting for Ready with kubelet $target ($((SECONDS - started))s)"
      next=$((SECONDS + 10))
    fi
    sleep 1
  done
  echo "upgrade[$node]: Ready with kubelet $target after $((SECONDS - started))s"
}
# undo_cordons NODE...: after a failed cordon or drain, before anything restarted, uncordons the nodes the
# upgrade cordoned (issue 26; as kured does after a failed drain: kubereboot/kured cmd/kured/main.go,
# "a best-effort uncordon after failed cordon and drain"). The engine keeps a failed step's earlier
# inputs, so a change taken back runs nothing of it again: a cordon left behind would stay for good.
undo_cordons() {
  local node
  for node in "$@"; do
    uncordon_if_ours "$node" || echo "upgrade[$node]: could not take its cordon back: kubectl uncordon $node" >&2
  done
}
# uncordon_if_ours NODE: uncordons a node the upgrade cordoned (annotation present); others are left alone.
uncordon_if_ours() {
  local node="$1" info version ready unschedulable cordoned_for
  info="$(node_info "$node")" || { echo "upgrade[$node]: cannot read node $node from the API" >&2; return 1; }
  read -r version ready unschedulable cordoned_for <<<"$info"
  if [ -z "$cordoned_for" ] || [ "$cordoned_for" = "<none>" ]; then return 0; fi
  k3s kubectl uncordon "$node"
  k3s kubectl annotate node "$node" "k3s-platform.io/cordoned-for-upgrade-" >/dev/null
}
# --- end of node operations`);

/** Everything a server or a batch step needs. */
export const UPGRADE_LIBRARY = joinShell([VERSION_RULES, NODE_OPERATIONS]);

/** kubectl drain arguments from `upgrade.drain` (timeout is passed separately). */
export function drainArgs(config: ResolvedConfig): string[] {
  const d = config.upgrade.drain;
  return [
    ...(d.ignoreDaemonSets ? ["--ignore-daemonsets"] : []),
    ...(d.deleteEmptyDirData ? ["--delete-emptydir-data"] : []),
    ...(d.disableEviction ? ["--disable-eviction"] : []),
  ];
}

/**
 * apply.sh preflight (every node, with a pinned `k3s.version`): sets RUNNING_VERSION (empty on a
 * first install) and UPGRADING (1 when the node runs an older release), and refuses a downgrade or
 * a skipped minor before anything is placed. The running version comes from, in order: the API's
 * node object (servers; the kubelet that really runs), the version apply.sh recorded after its last
 * install, the installed binary's `k3s --version` (an air-gap binary pre-staged for the upgrade
 * already reports the new version, hence last).
 */
export function upgradeGuard(config: ResolvedConfig, node: NodeConfig): Shell {
  const version = config.k3s.version;
  if (!version) return raw("");
  const isServer = node.role === "server";
  // Only embedded-etcd members need the required etcd patch releases (paths.ts).
  const etcdMember = isServer && config.k3s.datastore.type === "etcd";
  return sh`
${isServer ? UPGRADE_LIBRARY : VERSION_RULES}
TARGET_VERSION=${version}
VERSION_RECORD="$ROOT"${VERSION_RECORD}
RUNNING_VERSION=""
UPGRADING=0
if [ -f "$ROOT"${`/etc/systemd/system/${node.role === "server" ? "k3s" : "k3s-agent"}.service`} ] || [ -f "$VERSION_RECORD" ]; then
  ${isServer ? raw(`if info="$(node_info "$NODE")"; then read -r RUNNING_VERSION _ <<<"$info"; fi
  if [ "$RUNNING_VERSION" = "<none>" ]; then RUNNING_VERSION=""; fi`) : raw(": # agents have no admin kubeconfig")}
  if [ -z "$RUNNING_VERSION" ] && [ -f "$VERSION_RECORD" ]; then RUNNING_VERSION="$(cat "$VERSION_RECORD")"; fi
  if [ -z "$RUNNING_VERSION" ] && [ -x "$ROOT$K3S_BINARY" ]; then
    RUNNING_VERSION="$("$ROOT$K3S_BINARY" --version 2>/dev/null || true)"
    RUNNING_VERSION="\${RUNNING_VERSION#k3s version }"
    RUNNING_VERSION="\${RUNNING_VERSION%% *}"
  fi
  if [ -z "$RUNNING_VERSION" ]; then
    echo "upgrade[$NODE]: warning: K3s is installed but its version could not be read; downgrade and skipped-minor checks skipped"
  elif [ "$RUNNING_VERSION" != "$TARGET_VERSION" ]; then
    check_transition "$NODE" "$RUNNING_VERSION" "$TARGET_VERSION" ${etcdMember ? "etcd" : ""} || exit 1
    UPGRADING=1
    echo "upgrade[$NODE]: upgrading from $RUNNING_VERSION to $TARGET_VERSION"
    # Another version runs than planned: UPGRADING makes apply install even if the staged files
    # look applied. The applied record stays until the install succeeds: a refusal below (the
    # release preflight) leaves the host as it was, and reverting k3s.version restarts nothing.
  fi
fi
`;
}

/**
 * apply.sh preInstall of a server being upgraded: the pre-upgrade backup (only the first server of
 * the rollout: no other server runs the new version yet), then cordon and drain. A failure stops
 * the rollout here: the install has not run, nothing restarted.
 */
export function serverPreInstall(config: ResolvedConfig, node: NodeConfig): Shell {
  if (node.role !== "server") return raw("");
  if (!config.k3s.version) return sh`
${NODE_OPERATIONS}
CORDON_FOR=""${serverRestartDrain(config)}
`;
  const servers = managedNodes(config).filter((n) => n.role === "server").map((n) => n.name);
  const ds = config.k3s.datastore.type;
  const backup =
    ds === "etcd"
      ? raw(`started=$SECONDS
  echo "upgrade[$NODE]: etcd snapshot $SNAPSHOT before the first server restarts"
  if ! out="$(timeout ${SNAPSHOT_TIMEOUT_SECONDS} k3s etcd-snapshot save --name "$SNAPSHOT" 2>&1)"; then
    printf '%s\\n' "$out" >&2
    fail "etcd snapshot $SNAPSHOT failed after $((SECONDS - started))s: the upgrade from $RUNNING_VERSION to $TARGET_VERSION stops here, nothing was restarted"
  fi
  printf '%s\\n' "$out"
  echo "upgrade[$NODE]: etcd snapshot $SNAPSHOT saved in $((SECONDS - started))s"`)
      : ds === "sqlite"
        ? raw(`echo "upgrade[$NODE]: the sqlite datastore is copied after the drain, with K3s stopped"`)
        : raw(`echo "upgrade[$NODE]: note: the datastore is external; back it up with its own tools before upgrading (no snapshot taken)"`);
  const sqliteCopy =
    ds === "sqlite"
      ? sh`
if [ "\${UPGRADING:-0}" = 1 ]; then
  # The sqlite file is consistent only with K3s stopped (WAL); the install restarts it right after.
  DB_DIR="$ROOT"${SQLITE_DB_DIR}
  started=$SECONDS
  systemctl stop "$SERVICE"
  if ! { mkdir -p "$DB_DIR/$SNAPSHOT" && for f in state.db state.db-wal state.db-shm; do if [ -f "$DB_DIR/$f" ]; then cp -p "$DB_DIR/$f" "$DB_DIR/$SNAPSHOT/$f"; fi; done && [ -f "$DB_DIR/$SNAPSHOT/state.db" ]; }; then
    systemctl start --no-block "$SERVICE"
    fail "copying the sqlite datastore $DB_DIR/state.db to $DB_DIR/$SNAPSHOT failed: the upgrade from $RUNNING_VERSION to $TARGET_VERSION stops here"
  fi
  echo "upgrade[$NODE]: datastore copied to $DB_DIR/$SNAPSHOT in $((SECONDS - started))s"
fi`
      : raw("");
  return sh`
CORDON_FOR=""
if [ "\${UPGRADING:-0}" = 1 ]; then
  SNAPSHOT="pre-upgrade-$RUNNING_VERSION-to-$TARGET_VERSION"
  SNAPSHOT="${raw("$")}{SNAPSHOT//+/-}"
  SERVERS=(${servers})
  first_to_restart=1
  if list="$(k3s kubectl get nodes --no-headers -o "$LIST_COLUMNS" 2>/dev/null)"; then
    while read -r name version _; do
      for s in "${raw("$")}{SERVERS[@]}"; do
        if [ "$s" = "$name" ] && [ "$s" != "$NODE" ] && [ "$version" = "$TARGET_VERSION" ]; then first_to_restart=0; fi
      done
    done <<<"$list"
  fi
  if [ "$first_to_restart" = 1 ]; then
  ${backup}
  else
    echo "upgrade[$NODE]: another server already runs $TARGET_VERSION: the rollout's pre-upgrade backup was taken before it restarted"
  fi
  CORDON_FOR="$TARGET_VERSION"
fi${serverRestartDrain(config)}${sqliteCopy}
`;
}

/**
 * apply.sh preInstall of a server: the cordon and drain before the restart, for an upgrade
 * (CORDON_FOR: the target release) and for a restart that is not one (issue 26: K3s inputs changed
 * on a running server, as this hook runs only when apply.sh restarts K3s; CORDON_FOR: the release
 * it runs), which upgradePostInstall waits for (Ready) before it uncordons. Servers restart one at a time (their
 * applies are chained in join order). A server whose API does not answer is restarted without a
 * drain (a message says so): a broken server must stay fixable by a config change.
 */
function serverRestartDrain(config: ResolvedConfig): Shell {
  return sh`
if [ "\${UPGRADING:-0}" != 1 ] && systemctl is-active --quiet "$SERVICE"; then
  if info="$(node_info "$NODE")"; then
    read -r CORDON_FOR _ <<<"$info"
    echo "upgrade[$NODE]: K3s inputs changed: cordon and drain before the restart"
  else
    echo "upgrade[$NODE]: the API does not answer for $NODE: restarting without a drain"
  fi
fi
if [ -n "$CORDON_FOR" ]; then
  cordon_for_upgrade "$NODE" "$CORDON_FOR" || { undo_cordons "$NODE"; fail "cordoning $NODE failed"; }
  drain_for_upgrade "$NODE" ${config.upgrade.drain.timeout} ${drainArgs(config)} || { undo_cordons "$NODE"; exit 1; }
fi`;
}

/**
 * apply.sh postInstall: on a server, after an upgrade (or when an earlier run left the node
 * cordoned for one), wait until Ready with the new kubelet version, then uncordon. Every node
 * records the version it now runs.
 */
export function upgradePostInstall(config: ResolvedConfig, node: NodeConfig): Shell {
  const server =
    node.role === "server"
      ? sh`
cordoned_for="<none>"
if info="$(node_info "$NODE")"; then read -r _ _ _ cordoned_for <<<"$info"; fi
if [ "\${UPGRADING:-0}" = 1 ] || { [ -n "$cordoned_for" ] && [ "$cordoned_for" != "<none>" ]; }; then
  # The release to wait for: the rollout's target, or (a restart that is no upgrade) the one it ran.
  wait_ready_version "$NODE" "${config.k3s.version ? raw("$TARGET_VERSION") : raw("$cordoned_for")}" ${config.upgrade.readyTimeout} || exit 1
  uncordon_if_ours "$NODE" || fail "uncordoning $NODE failed"
fi`
      : raw("");
  if (!config.k3s.version) return server;
  return sh`${server}
if [ "\${UPGRADING:-0}" = 1 ]; then echo "upgrade[$NODE]: now runs $TARGET_VERSION (was $RUNNING_VERSION)"; fi
install -d -m 0755 "$(dirname "$VERSION_RECORD")"
printf '%s\\n' "$TARGET_VERSION" >"$VERSION_RECORD"
`;
}

/** The first server's view of one agent batch: names in config order. */
export interface AgentBatch {
  index: number;
  agents: string[];
}

export function upgradeBatches(config: ResolvedConfig): AgentBatch[] {
  // Entries armed for removal (decommission: true) are no longer managed: no batch step for them.
  const agents = managedNodes(config).filter((n) => n.role === "agent").map((n) => n.name);
  return agentBatches(agents, config.upgrade.maxUnavailable).map((a, i) => ({ index: i + 1, agents: a }));
}

/**
 * What a batch step compares per agent (issue 26): `k3s` the restart digest of its placed files
 * (plan/restart.ts batchInputs); `secrets` the keyed digest of its secret files (the
 * `secretInputs` fact, plan/restart.ts secretInputsDigest), undefined where the engine is not
 * asked (render, churn: a placeholder per agent).
 */
export interface BatchInputs {
  k3s: ReadonlyMap<string, string>;
  secrets?: Readonly<Record<string, string>>;
  /** Whether each agent's apply will restart K3s (its preflight's dry run); undefined: no answer (render: none). */
  restarts?: Readonly<Record<string, boolean | undefined>>;
}

/** An agent's preflight answer as the drain's RESTARTS array spells it. */
function answerOf(answer: boolean | undefined): string {
  return answer === undefined ? "unknown" : answer ? "yes" : "no";
}

/** An agent's keyed secret digest, or render's placeholder. */
export function secretInputsOf(inputs: BatchInputs, agent: string): string {
  return inputs.secrets ? inputs.secrets[agent] ?? missingInputs(agent) : `<keyed digest of the secret files of ${agent}>`;
}

function batchHeader(config: ResolvedConfig, batch: AgentBatch, step: string, inputs: BatchInputs, clusterRelease: string | undefined): Shell {
  return sh`#!/usr/bin/env bash
# Generated by k3s-platform: ${step} of agent batch ${batch.index} (${batch.agents.join(", ")}), run on the first server.
set -euo pipefail
TARGET_VERSION=${config.k3s.version ?? clusterRelease ?? ""}
${channelReleaseGuard(config)}AGENTS=(${batch.agents})
# Per agent, the digest of what its K3s reads at start (plan/restart.ts restartDigest); its Node
# records the one it last restarted with (annotation ${raw(INPUTS_ANNOTATION)}).
INPUTS=(${batch.agents.map((a) => inputs.k3s.get(a) ?? missingInputs(a))})
# And the keyed digest of its secret files (plan/restart.ts secretInputsDigest: reveals nothing of
# them); its Node records the one it last restarted with (annotation ${raw(SECRET_INPUTS_ANNOTATION)}).
SECRET_INPUTS=(${batch.agents.map((a) => secretInputsOf(inputs, a))})
${UPGRADE_LIBRARY}
`;
}

/**
 * A channel stack's batch steps run at the cluster's release (issue 26): the one the
 * `<stack>-k3s-release` step recorded (k3s/release.ts; the `clusterRelease` fact), which every
 * node installs and never moves. Without it nothing is cordoned: the step fails naming it.
 */
function channelReleaseGuard(config: ResolvedConfig): Shell {
  if (!followsChannel(config)) return raw("");
  return sh`# Channel ${config.k3s.channel ?? "stable"}: the cluster's release, recorded once per stack (<stack>-k3s-release; components/k3s/release.ts).
if ! [[ "$TARGET_VERSION" =~ ^v1\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$ ]]; then
  echo "upgrade: no cluster release for channel "${config.k3s.channel ?? "stable"}" (the k3s-release step records it; got '$TARGET_VERSION'): nothing cordoned" >&2
  exit 1
fi
`;
}

/**
 * The Node annotation that records the restart digest an agent last joined or restarted with
 * (issue 26): the batch's uncordon step writes it once the agent is Ready, the batch's drain step
 * compares it with the planned one, and an agent whose K3s inputs changed is cordoned and drained
 * before its apply restarts it, as an upgraded one is.
 */
export const INPUTS_ANNOTATION = "k3s-platform.io/k3s-inputs";

/**
 * The Node annotation that records the keyed digest of the secret files an agent last joined or
 * restarted with (issue 26: a registryAuth password, vpnAuthKey or token changed restarts it as a
 * placed file does). Apart from INPUTS_ANNOTATION so that its absence (an agent recorded before
 * it existed) is adopted, recorded by the uncordon without a drain, while the other is compared:
 * the first up of this version drains nothing for it. The trade-off: a secret changed in that
 * same up restarts those agents undrained, as before.
 */
export const SECRET_INPUTS_ANNOTATION = "k3s-platform.io/k3s-secret-inputs";

function missingInputs(agent: string): never {
  throw new Error(`batch step: no restart digest for agent ${agent} (plan/restart.ts batchInputs, agentSecretInputs)`);
}

/** The longest apply of these agents (k3s/timeouts.ts applyBoundSeconds): they install in parallel. */
function agentApplyBound(config: ResolvedConfig, agents: string[]): number {
  return Math.max(0, ...config.nodes.filter((n) => agents.includes(n.name)).map((n) => applyBoundSeconds(config, n)));
}

/**
 * Seconds a batch's drain may wait for the batch before it (previousBatchWait): that batch's
 * installs (in parallel), then its uncordon's waits for Ready (one after another); 0 for the first.
 */
export function previousBatchWaitSeconds(config: ResolvedConfig, batch: AgentBatch): number {
  const previous = upgradeBatches(config).find((b) => b.index === batch.index - 1);
  return previous ? agentApplyBound(config, previous.agents) + previous.agents.length * config.upgrade.readyTimeout : 0;
}

/**
 * The rolling order, kept on the host (issue 26): the drain of batch k follows the drain of batch
 * k-1 in the engine's graph, not its agents' installs, so agents that join for the first time
 * (nothing to drain) join in one wave. Before it cordons anything, it waits until no agent of the
 * batches before carries the upgrade's cordon annotation: those are uncordoned by their batch's
 * uncordon step, after their installs, once Ready. Every earlier batch, not only k-1: when only
 * some batches' K3s inputs changed (their steps run, the others' are unchanged), batch k-1's
 * drain did nothing and batch k would otherwise cordon while an earlier batch is still down.
 * An agent an operator cordoned (no annotation) is not waited for. One `kubectl get nodes` per
 * poll, bounded.
 */
function previousBatchWait(config: ResolvedConfig, batch: AgentBatch): Shell {
  const earlier = upgradeBatches(config).filter((b) => b.index < batch.index);
  const previous = earlier[earlier.length - 1];
  if (!previous) return raw("");
  return sh`PREVIOUS=(${earlier.flatMap((b) => b.agents)})
PREVIOUS_BATCH=${previous.index}
THIS_BATCH=${batch.index}
PREVIOUS_WAIT="\${K3S_PLATFORM_PREVIOUS_BATCH_WAIT:-${raw(String(previousBatchWaitSeconds(config, batch)))}}"
CORDON_COLUMNS='custom-columns=NAME:.metadata.name,CORDONED_FOR:.metadata.annotations.k3s-platform\\.io/cordoned-for-upgrade'
started=$SECONDS
next=$((SECONDS + 10))
while :; do
  list="$(k3s kubectl get nodes --no-headers -o "$CORDON_COLUMNS")" || fail "cannot list nodes from the API"
  pending=""
  while read -r name cordoned_for; do
    for agent in "${raw("$")}{PREVIOUS[@]}"; do
      if [ "$agent" = "$name" ] && [ -n "$cordoned_for" ] && [ "$cordoned_for" != "<none>" ]; then pending="$pending $name"; fi
    done
  done <<<"$list"
  [ -n "$pending" ] || break
  if [ $((SECONDS - started)) -ge "$PREVIOUS_WAIT" ]; then
    fail "batch $PREVIOUS_BATCH is not done after ${raw("$")}{PREVIOUS_WAIT}s: still cordoned for the upgrade:$pending (its uncordon step uncordons them once Ready); nothing in batch $THIS_BATCH was cordoned"
  fi
  if [ "$SECONDS" -ge "$next" ]; then
    echo "upgrade: batch $THIS_BATCH waits for batch $PREVIOUS_BATCH:$pending ($((SECONDS - started))s)"
    next=$((SECONDS + 10))
  fi
  sleep 2
done
`;
}

/**
 * Before the agents of a batch install: once the batches before are done (previousBatchWait),
 * each agent that runs an older release is checked (downgrade, skipped minor), cordoned and
 * drained; so is one at the target whose K3s inputs changed since its Node's record
 * (INPUTS_ANNOTATION, or the secret files' SECRET_INPUTS_ANNOTATION; issue 26: its apply restarts
 * K3s), unless its preflight's dry run says its apply keeps K3s running; and one without a record
 * yet (joined before the record) whose preflight says its apply restarts K3s. Agents not
 * registered yet (first join), at the target with the planned inputs, or without a record and a
 * restart (adopted: the uncordon step records them) are skipped. Runs
 * on the first server (agents have no admin kubeconfig). `inputs`: agent → restart digest
 * (plan/restart.ts batchInputs) and keyed digest of its secret files.
 * `clusterRelease`: on a channel stack, the release its k3s-release step recorded (the target;
 * a pinned stack's is `k3s.version`).
 */
export function renderAgentBatchDrain(config: ResolvedConfig, batch: AgentBatch, inputs: BatchInputs, clusterRelease?: string): string {
  const d = config.upgrade.drain;
  const column = (annotation: string) => annotation.replace(/\./g, "\\.");
  return sh`${batchHeader(config, batch, "cordon and drain", inputs, clusterRelease)}
fail() { echo "upgrade: $*" >&2; exit 1; }
# Per agent, whether its apply will restart K3s: its preflight ran its apply.sh as a dry run (issue 26);
# "unknown": no answer (its preflight has not run since k3s-platform asks it).
RESTARTS=(${batch.agents.map((a) => answerOf(inputs.restarts?.[a]))})
INPUTS_COLUMNS='custom-columns=INPUTS:.metadata.annotations.${raw(column(INPUTS_ANNOTATION))},SECRET_INPUTS:.metadata.annotations.${raw(column(SECRET_INPUTS_ANNOTATION))}'
${previousBatchWait(config, batch)}upgrading=()
for i in "${raw("$")}{!AGENTS[@]}"; do
  agent="${raw("$")}{AGENTS[$i]}"
  if ! info="$(node_info "$agent")"; then
    echo "upgrade[$agent]: not registered yet (first join): nothing to drain"
    continue
  fi
  read -r version _ <<<"$info"
  if [ "$version" = "$TARGET_VERSION" ]; then
    recorded="$(k3s kubectl get node "$agent" --no-headers -o "$INPUTS_COLUMNS" 2>/dev/null)" || recorded="<none> <none>"
    read -r applied applied_secrets <<<"$recorded"
    applied_secrets="${raw("$")}{applied_secrets:-<none>}"
    restarts="${raw("$")}{RESTARTS[$i]}"
    # Its Node's record says which of the batch's agents this change reaches: an agent whose record
    # matches keeps the answer its preflight gave for an earlier change (the preflight runs only
    # when its K3s inputs change), so the answer is read where the record differs or is missing.
    changed=""
    if [ "$applied" != "<none>" ] && [ "$applied" != "${raw("$")}{INPUTS[$i]}" ]; then
      changed="its K3s inputs changed"
    elif [ "$applied_secrets" != "<none>" ] && [ "$applied_secrets" != "${raw("$")}{SECRET_INPUTS[$i]}" ]; then
      changed="its secret files changed"
    fi
    if [ -n "$changed" ] && [ "$restarts" = no ]; then
      echo "upgrade[$agent]: $changed, but its apply keeps K3s running (its preflight's dry run, e.g. an equivalent NO_PROXY kept): not drained"
      uncordon_if_ours "$agent"
      continue
    fi
    if [ -n "$changed" ]; then
      echo "upgrade[$agent]: $changed: cordon and drain before its apply restarts it"
      upgrading+=("$agent")
      continue
    fi
    # No record yet (an agent joined before k3s-platform recorded one: the first up of this
    # version): its preflight's answer alone decides. No answer means its preflight has not run
    # since it answers, so its K3s inputs have not changed since: adopted, recorded by the uncordon.
    if { [ "$applied" = "<none>" ] || [ "$applied_secrets" = "<none>" ]; } && [ "$restarts" = yes ]; then
      echo "upgrade[$agent]: no record of its K3s inputs yet, and its apply will restart K3s (its preflight's dry run): cordon and drain before it does"
      upgrading+=("$agent")
      continue
    fi
    echo "upgrade[$agent]: already runs $TARGET_VERSION"
    uncordon_if_ours "$agent"
    continue
  fi
  check_transition "$agent" "$version" "$TARGET_VERSION" || exit 1
  upgrading+=("$agent")
done
[ "${raw("$")}{#upgrading[@]}" -gt 0 ] || exit 0
BATCH=${batch.index}
echo "upgrade: batch $BATCH: ${raw("$")}{upgrading[*]} (restarting at $TARGET_VERSION)"
# A failed cordon or drain takes back the batch's cordons (undo_cordons): nothing has restarted yet.
for agent in "${raw("$")}{upgrading[@]}"; do
  cordon_for_upgrade "$agent" "$TARGET_VERSION" || { undo_cordons "${raw("$")}{upgrading[@]}"; exit 1; }
done
for agent in "${raw("$")}{upgrading[@]}"; do
  # The rest of the batch is cordoned already, so its pods do not move onto another batch member.
  drain_for_upgrade "$agent" ${d.timeout} ${drainArgs(config)} || { undo_cordons "${raw("$")}{upgrading[@]}"; exit 1; }
done
`.text;
}

/**
 * After the agents of a batch installed: wait until each is Ready with the new kubelet version
 * (bounded), record the K3s inputs it now runs with (INPUTS_ANNOTATION, SECRET_INPUTS_ANNOTATION), then uncordon the ones
 * the upgrade or a restart cordoned. The next batch starts only after this.
 */
export function renderAgentBatchUncordon(config: ResolvedConfig, batch: AgentBatch, inputs: BatchInputs, clusterRelease?: string): string {
  return sh`${batchHeader(config, batch, "wait for Ready and uncordon", inputs, clusterRelease)}
for i in "${raw("$")}{!AGENTS[@]}"; do
  agent="${raw("$")}{AGENTS[$i]}"
  wait_ready_version "$agent" "$TARGET_VERSION" ${config.upgrade.readyTimeout}
  k3s kubectl annotate node "$agent" --overwrite "${raw(INPUTS_ANNOTATION)}=${raw("$")}{INPUTS[$i]}" "${raw(SECRET_INPUTS_ANNOTATION)}=${raw("$")}{SECRET_INPUTS[$i]}" >/dev/null
  uncordon_if_ours "$agent"
done
`.text;
}
