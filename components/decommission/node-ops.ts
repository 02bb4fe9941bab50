import { raw, Shell } from "../shell/sh";

/**
 * Shell functions the drain (render.ts) and the forget (rebuild.ts) scripts share: reading a
 * Node's Ready status and deleting a Node. Both scripts define `say`, `fail` and `TIMEOUT`
 * (seconds) before these are used. Pure text, no values interpolated.
 */

/** K3s' annotation naming a server's embedded-etcd member on its Node (k3s-io/k3s pkg/etcd). */
export const ETCD_MEMBER_ANNOTATION = "etcd.k3s.cattle.io/node-name";

/**
 * `node_ready NODE` prints the Node's Ready condition status (`True`, `False`, `Unknown`, or
 * `<none>` before the kubelet reported), or `absent` when no such Node exists; any other error
 * fails naming the Node. Call it as `ready="$(node_ready "$NODE")" || exit 1`.
 *
 * `delete_node NODE` runs `kubectl delete node NODE` (waiting up to TIMEOUT seconds), first
 * keeping the Node's etcd member when another Node now carries it. K3s names each server's member
 * in the Node annotation etcd.k3s.cattle.io/node-name, and its etcd finalizer removes that member
 * when the Node is deleted (k3s-io/k3s pkg/etcd/member_controller.go, onRemove). A host that now
 * serves another entry (renamed, or re-used by a new entry in the same up) keeps its data
 * directory and with it its member name (db/etcd/name: pkg/etcd/etcd.go setName reads it back),
 * so the new Node carries the same member, and removing it would take that live server out of
 * etcd. The finalizer leaves alone a Node marked etcd.k3s.cattle.io/remove=true with
 * etcd.k3s.cattle.io/removed-node-name=<member> (K3s' own "already removed" marking; its sync
 * handler is a no-op while that name equals the Node's member), so the old Node is marked first.
 */
export const NODE_FUNCTIONS: Shell = raw(`# node_ready NODE: the Ready condition's status, or "absent" (custom-columns: one line, captured, never piped).
node_ready() {
  local out
  if out="$(k3s kubectl get node "$1" --no-headers -o 'custom-columns=READY:.status.conditions[?(@.type=="Ready")].status' 2>&1)"; then
    echo "$out"
    return 0
  fi
  case "$out" in
    *NotFound* | *"not found"*) echo absent ;;
    *) fail "cannot read Node $1: $out" ;;
  esac
}
# delete_node NODE: delete the Node; an etcd member another Node carries now (the same host under
# another name) is marked removed on this one first, so K3s' etcd finalizer keeps it.
delete_node() {
  local node="$1" nodes name member own="" user=""
  nodes="$(k3s kubectl get nodes --no-headers -o 'custom-columns=NAME:.metadata.name,MEMBER:.metadata.annotations.${ETCD_MEMBER_ANNOTATION.replace(/\./g, "\\.")}' 2>&1)" || fail "cannot list Nodes: $nodes"
  while read -r name member; do
    if [ "$name" = "$node" ]; then own="$member"; fi
  done <<<"$nodes"
  if [ -n "$own" ] && [ "$own" != "<none>" ]; then
    while read -r name member; do
      if [ "$name" != "$node" ] && [ "$member" = "$own" ]; then user="$name"; fi
    done <<<"$nodes"
  fi
  if [ -n "$user" ]; then
    say "etcd member $own belongs to Node $user now (the same host under another name): marking it removed on Node $node, so deleting $node keeps it in etcd"
    k3s kubectl annotate node "$node" --overwrite etcd.k3s.cattle.io/remove=true "etcd.k3s.cattle.io/removed-node-name=$own"
  fi
  k3s kubectl delete node "$node" --wait=true --timeout="\${TIMEOUT}s"
}`);
