import { Shell, sh } from "../shell/sh";

/**
 * Shell functions the drain (render.ts) and the forget (rebuild.ts) scripts share: reading a
 * Node's Ready status and deleting a Node. Both scripts define `say`, `fail` and `TIMEOUT`
 * (seconds) before these are used. Only constants of this module are interpolated.
 */

/** K3s' annotation naming a server's embedded-etcd member on its Node (k3s-io/k3s pkg/etcd). */
export const ETCD_MEMBER_ANNOTATION = "etcd.k3s.cattle.io/node-name";
/** K3s' pair marking a Node's member as already removed (pkg/etcd/member_controller.go). */
export const ETCD_REMOVE_ANNOTATION = "etcd.k3s.cattle.io/remove";
export const ETCD_REMOVED_ANNOTATION = "etcd.k3s.cattle.io/removed-node-name";

/** Seconds `delete_node` waits for a server on the same host to publish its etcd member. */
export const MEMBER_WAIT_SECONDS = 60;

const esc = (annotation: string) => annotation.replace(/\./g, "\\.");
/** The custom-columns of list_nodes (kubectl JSONPath: dots in an annotation key escaped). */
const NODE_COLUMNS = [
  "NAME:.metadata.name",
  'READY:.status.conditions[?(@.type=="Ready")].status',
  'ADDRESS:.status.addresses[?(@.type=="InternalIP")].address',
  `MEMBER:.metadata.annotations.${esc(ETCD_MEMBER_ANNOTATION)}`,
  `REMOVED:.metadata.annotations.${esc(ETCD_REMOVED_ANNOTATION)}`,
].join(",");

/**
 * `kread ARGS...` runs k3s kubectl with ARGS, its stdout in KOUT and its stderr in KERR, kept
 * apart: kubectl prints discovery errors on stderr even when it succeeds (an unavailable
 * metrics.k8s.io APIService: "couldn't get resource list for metrics.k8s.io/v1beta1"), and mixed
 * into a value they would be read as data (a Ready Node taken for a NotReady one).
 *
 * `node_ready NODE` prints the Node's Ready condition status (`True`, `False`, `Unknown`, or
 * `<none>` before the kubelet reported), or `absent` when no such Node exists; any other error or
 * value fails naming the Node. Call it as `ready="$(node_ready "$NODE")" || exit 1`.
 *
 * `list_nodes` sets NODES: a line per Node, `NAME READY ADDRESS MEMBER REMOVED` (custom-columns,
 * `<none>` when absent; ADDRESS is its InternalIP, both families comma-joined).
 *
 * `node_successor NODE` (after list_nodes) prints another Ready Node with NODE's InternalIP: the
 * host serves that Node now (a new entry on it, or a rename), so NODE's kubelet is gone and its
 * pods would never finish terminating; prints nothing otherwise.
 *
 * `delete_node NODE` deletes the Node with kubectl (waiting up to TIMEOUT seconds), first
 * keeping the Node's etcd member when a live Node carries it now. K3s names each server's member
 * in the Node annotation etcd.k3s.cattle.io/node-name (its etcd metadata controller, shortly after
 * the API server starts), and its etcd finalizer removes that member when the Node is deleted
 * (k3s-io/k3s pkg/etcd/member_controller.go, onRemove). A host that now serves another entry keeps
 * its data directory and with it its member name (db/etcd/name: pkg/etcd/etcd.go setName reads it
 * back), so the new Node carries the same member, and removing it would take that live server out
 * of etcd. The finalizer leaves alone a Node marked etcd.k3s.cattle.io/remove=true with
 * etcd.k3s.cattle.io/removed-node-name=<member> (K3s' own "already removed" marking; its sync
 * handler is a no-op while that name equals the Node's member), so the old Node is marked first.
 *  - Live carrier: another Node with the same member, Ready, and not itself marked (two stale
 *    Nodes deleted at once must not each keep the member for the other: a dead voter would stay).
 *  - A Ready Node on the same host without a member yet may be a server whose metadata controller
 *    has not run: wait up to MEMBER_WAIT_SECONDS for it (an agent never gets one: then deleted).
 *  - A mark left by an interrupted earlier attempt whose carrier is gone is cleared first (one
 *    patch), so K3s removes the dead member. Only our mark can hold both names: K3s' own removal
 *    deletes node-name.
 */
export const NODE_FUNCTIONS: Shell = sh`# kread ARGS...: k3s kubectl ARGS; stdout in KOUT, stderr in KERR (apart: discovery errors go to stderr even on success).
kread() {
  local err status=0
  err="$(mktemp)"
  KOUT="$(k3s kubectl "$@" 2>"$err")" || status=$?
  KERR="$(cat "$err")"
  rm -f "$err"
  return "$status"
}
# node_ready NODE: the Ready condition's status, or "absent".
node_ready() {
  if ! kread get node "$1" --no-headers -o 'custom-columns=READY:.status.conditions[?(@.type=="Ready")].status'; then
    case "$KERR" in
      *NotFound* | *"not found"*) echo absent; return 0 ;;
      *) fail "cannot read Node $1: $KERR" ;;
    esac
  fi
  case "$KOUT" in
    True | False | Unknown | "<none>") echo "$KOUT" ;;
    *) fail "cannot read Node $1: unexpected Ready status: $KOUT" ;;
  esac
}
# list_nodes: NODES, a line per Node: NAME READY ADDRESS MEMBER REMOVED.
list_nodes() {
  kread get nodes --no-headers -o ${`custom-columns=${NODE_COLUMNS}`} || fail "cannot list Nodes: $KERR"
  NODES="$KOUT"
}
# node_successor NODE: another Ready Node on NODE's InternalIP, or nothing.
node_successor() {
  local name ready address member removed own=""
  while read -r name ready address member removed; do
    if [ "$name" = "$1" ]; then own="$address"; fi
  done <<<"$NODES"
  if [ -z "$own" ] || [ "$own" = "<none>" ]; then return 0; fi
  while read -r name ready address member removed; do
    if [ "$name" != "$1" ] && [ "$address" = "$own" ] && [ "$ready" = True ]; then
      echo "$name"
      return 0
    fi
  done <<<"$NODES"
}
# delete_node NODE: delete the Node; an etcd member a live Node carries now is marked removed on this one first.
delete_node() {
  local node="$1" name ready address member removed own="" mark="" host="" user="" pending waited=0 wait_max=${MEMBER_WAIT_SECONDS}
  while :; do
    list_nodes
    own="" mark="" host="" user="" pending=""
    while read -r name ready address member removed; do
      if [ "$name" = "$node" ]; then own="$member" mark="$removed" host="$address"; fi
    done <<<"$NODES"
    if [ -z "$own" ] || [ "$own" = "<none>" ]; then break; fi
    while read -r name ready address member removed; do
      if [ "$name" = "$node" ] || [ "$ready" != True ]; then continue; fi
      if [ "$member" = "$own" ] && [ "$removed" = "<none>" ]; then user="$name"; fi
      if [ "$member" = "<none>" ] && [ "$address" = "$host" ]; then pending="$name"; fi
    done <<<"$NODES"
    if [ -n "$user" ] || [ -z "$pending" ] || [ "$waited" -ge "$wait_max" ]; then break; fi
    if [ "$waited" = 0 ]; then say "Node $pending on the same host has no etcd member name yet (K3s publishes it shortly after start; an agent never has one): waiting up to \${wait_max}s"; fi
    sleep 5
    waited=$((waited + 5))
  done
  if [ -n "$user" ]; then
    say "etcd member $own belongs to Node $user now (the same host under another name): marking it removed on Node $node, so deleting $node keeps it in etcd"
    k3s kubectl annotate node "$node" --overwrite ${ETCD_REMOVE_ANNOTATION}=true ${ETCD_REMOVED_ANNOTATION}"=$own"
  elif [ -n "$own" ] && [ "$own" != "<none>" ] && [ "$mark" = "$own" ]; then
    say "Node $node carries a mark keeping etcd member $own from an earlier attempt, but no live Node uses that member now: clearing it, so K3s removes the member with the Node"
    k3s kubectl annotate node "$node" ${ETCD_REMOVE_ANNOTATION}- ${ETCD_REMOVED_ANNOTATION}-
  fi
  k3s kubectl delete node "$node" --wait=true --timeout="\${TIMEOUT}s"
}`;
