import { NodeConfig, ResolvedConfig } from "../config/schema";
import { clusterTopology } from "../config/topology";
import { Baseline, guardOnce, NO_OP_UPDATE, ONE_SHOT_KEYS } from "../operations/once";
import { nodeLifecycleName } from "../names";
import type { HostCommand } from "../operations/host-command";
import { stdinScriptCommand } from "../shell/root";
import { sh } from "../shell/sh";
import { NODE_FUNCTIONS } from "./node-ops";
import { managedNodes, otherServers } from "./nodes";

/**
 * Rebuilding a re-imaged node (docs/rebuilding.md), pure: config in, triggers and the
 * "forget" script out.
 *
 * A command runs only when its inputs or `triggers` change (REFERENCE "The Pulumi engine here"),
 * so a re-imaged host — staged bundle, secrets drop-in, OS prep and K3s all gone — would get
 * nothing on the next `up`. `nodes[].rebuild` (a counter or a date) is therefore added to the
 * `triggers` of every step of that node: each new value replaces, so re-runs, all of them. Unset,
 * nothing is added (an unchanged config keeps byte-identical triggers).
 *
 * Before those steps, the cluster must forget the old node: K3s keeps a node-password secret
 * `<node>.node-password.k3s` in kube-system and refuses a node whose new
 * `/etc/rancher/node/password` differs ("Node password rejected, duplicate hostname or contents
 * of '/etc/rancher/node/password' may not match server node-passwd entry"; docs.k3s.io/architecture,
 * "How Agent Node Registration Works"), and a server's old etcd member makes the join fail with
 * "duplicate node name found, please use a unique name for this node" (k3s-io/k3s pkg/etcd
 * etcd.go, join). `kubectl delete node <name>` removes the Node, K3s' node controller removes its
 * password secret, and for a server K3s' etcd finalizer removes its member first. The "forget"
 * step does that on a surviving server, once per rebuild value (the one-shot model of
 * operations/once.ts: its only trigger is the value, any other change is NO_OP_UPDATE, the host
 * skips a value it already completed), and only when the Node is not Ready: a Ready Node means
 * the host still runs K3s, and a live node is never deleted.
 */

/** Seconds `kubectl delete` may take (a server's etcd finalizer runs first). */
export const FORGET_TIMEOUT_SECONDS = 300;

/** The extra `triggers` of every step of `node`: `[rebuild value]` when set, else none. */
export function rebuildTriggers(node: Pick<NodeConfig, "rebuild">): string[] {
  return node.rebuild === undefined ? [] : [String(node.rebuild)];
}

/** Whether `node` is the first server being rebuilt with other servers to join: its guard is join-only. */
export function joinOnly(config: ResolvedConfig): boolean {
  return clusterTopology(config).firstServer.rebuild !== undefined && otherServers(config).length > 0;
}

/**
 * The server that forgets `node`: for the first server the next managed server, for any other
 * node the first server. Undefined for the only server (nothing survives to ask; the rebuild
 * starts a new cluster, which validation warns about).
 */
export function forgetServer(config: ResolvedConfig, node: NodeConfig): NodeConfig | undefined {
  const first = clusterTopology(config).firstServer;
  return node.name !== first.name ? first : otherServers(config)[0];
}

/** A forget step: always a one-shot command sent on stdin, with the node it forgets. */
export interface ForgetStep extends Required<Pick<HostCommand, "name" | "on" | "create" | "update" | "stdin" | "triggers">> {
  /** The node being rebuilt (`on` is the surviving server it runs on; `name` is `<node>-rebuild-forget`). */
  node: NodeConfig;
  /** Runs on the first server, so it waits for that server's apply (it may be rebuilt in the same up). */
  afterFirstServer: boolean;
}

/**
 * One forget step per managed node with `rebuild` set and a server to run on. `baseline`: the
 * values the cluster was created with (operations/once.ts): a new cluster has no old node to forget.
 */
export function forgetSteps(config: ResolvedConfig, baseline: Baseline = {}): ForgetStep[] {
  const first = clusterTopology(config).firstServer;
  return managedNodes(config).flatMap((node) => {
    if (node.rebuild === undefined) return [];
    const on = forgetServer(config, node);
    if (!on) return [];
    const value = String(node.rebuild);
    return [
      {
        name: nodeLifecycleName(node.name, "forget"),
        node,
        on,
        create: stdinScriptCommand(on.ssh.user ?? config.ssh.user),
        update: NO_OP_UPDATE,
        stdin: guardOnce(`forget-${node.name}`, value, renderForgetScript(node, on), baseline[ONE_SHOT_KEYS.rebuild(node.name)]),
        triggers: [value],
        afterFirstServer: on.name === first.name,
      },
    ];
  });
}

/**
 * Runs on `on` as root: delete the Node `node` when it exists and is not Ready (its password
 * secret and, for a server, its etcd member go with it), then a left-over password secret.
 * Absent: nothing to delete. Ready: skipped with a message. The API not answering fails (nothing
 * changed; the step is retried on the next `up`).
 */
export function renderForgetScript(node: NodeConfig, on: NodeConfig): string {
  const secret = `${node.name}.node-password.k3s`;
  return sh`#!/usr/bin/env bash
# Forgetting node ${node.name} before its rebuild, on ${on.name}; generated by k3s-platform (docs/rebuilding.md).
set -euo pipefail
NODE=${node.name}
SERVER=${on.name}
SECRET=${secret}
TIMEOUT=${FORGET_TIMEOUT_SECONDS}
started=$SECONDS
say() { echo "rebuild[$NODE]: $* ($((SECONDS - started))s)"; }
fail() { echo "rebuild[$NODE]: $* ($((SECONDS - started))s)" >&2; exit 1; }
k3s kubectl get --raw=/readyz >/dev/null 2>&1 || fail "the API server on $SERVER does not answer, so the old Node cannot be forgotten; nothing was changed. Bring K3s back on $SERVER (or restore a snapshot: docs/backup-and-restore.md), then run pulumi up again"
${NODE_FUNCTIONS}
ready="$(node_ready "$NODE")" || exit 1
case "$ready" in
  absent) say "no Node $NODE is registered: nothing to delete" ;;
  True)
    say "Node $NODE is Ready: its host still runs K3s, so it is kept (a live node is never deleted); its steps re-run as they are"
    exit 0 ;;
  *)
    say "Node $NODE is not Ready (Ready=$ready): deleting it (its node-password secret goes with it; for a server, K3s removes its etcd member first)"
    delete_node "$NODE"
    say "Node $NODE deleted" ;;
esac
# K3s deletes the password secret with the Node; one left over (an interrupted delete, or a Node
# deleted by hand before the secret controller ran) would still refuse the new password.
if kread get secret -n kube-system "$SECRET" -o name; then
  say "deleting the left-over secret kube-system/$SECRET"
  k3s kubectl delete secret -n kube-system "$SECRET" --wait=true --timeout="\${TIMEOUT}s"
else
  case "$KERR" in
    *NotFound* | *"not found"*) ;;
    *) fail "cannot read secret kube-system/$SECRET: $KERR" ;;
  esac
fi
say "forgotten: $NODE can register again with a new node password"
`.text;
}
