import { ResolvedConfig } from "../config/schema";
import { API_PORT, nodeAddress } from "../config/topology";
import { raw, Shell, sh } from "../shell/sh";
import { otherServers } from "./nodes";
import { joinOnly } from "./rebuild";

/**
 * Rebuilding the first server (docs/rebuilding.md), pure.
 *
 * The first server's config.yaml says `cluster-init: true`. On a re-imaged host (empty
 * `server/db`), or a new host put in the first slot, that would start a second cluster beside
 * the running one. So before anything is placed, the first server's apply.sh asks the other
 * configured servers whether they serve: K3s answers `GET /cacerts` on :6443 without credentials
 * (docs.k3s.io/cli/token, "TLS Bootstrapping": a joining node downloads the CA bundle there with
 * TLS verification disabled). When one does, a drop-in read after config.yaml (K3s reads
 * `config.yaml.d/*.yaml` after it, later values win) makes this server join through it:
 * `server: https://<other>:6443`, `cluster-init: false`. Only when no server answers is it a new
 * cluster, and `cluster-init` stands. A server with data keeps whatever it has: etcd starts from
 * its own member data and the drop-in is never rewritten.
 *
 * Join-only (`rebuild` set on the first server, with other servers configured): the program
 * knows the cluster existed, so "no server answers" is a partition or an outage, not a new
 * cluster. The guard then fails, naming the node and the servers it asked, instead of
 * `cluster-init`: initialising here would start a second cluster beside the running one.
 */

export const JOIN_DROPIN = "/etc/rancher/k3s/config.yaml.d/40-k3s-platform-join.yaml";
export const SERVER_DB_DIR = "/var/lib/rancher/k3s/server/db";
/** Seconds each server may take to answer the probe. */
export const PROBE_TIMEOUT_SECONDS = 5;

/** The URLs the first server probes, in config order: every other server still managed. */
export function peerServerUrls(config: ResolvedConfig): string[] {
  return peerServers(config).map((p) => p.url);
}

/** The other managed servers, in config order, with the URL the first server probes. */
export function peerServers(config: ResolvedConfig): Array<{ name: string; url: string }> {
  return otherServers(config).map((n) => {
    const address = nodeAddress(n);
    return { name: n.name, url: `https://${address.includes(":") ? `[${address}]` : address}:${API_PORT}` };
  });
}

/**
 * The single server's preflight with `datastore.type: sqlite`: a server with embedded etcd data
 * stays on etcd. K3s picks embedded etcd whenever its database files are on disk (docs.k3s.io
 * datastore: sqlite is used only "if no other datastore configuration is present and no embedded
 * etcd database files are present on disk") and converts only sqlite to etcd, never back (a
 * single server restarted with cluster-init: docs.k3s.io/datastore/ha-embedded, "Existing
 * single-node clusters"; k3s-io/k3s#4650). So sqlite configured on such a server would describe a
 * cluster that is not there: refused before anything changes.
 */
export function sqliteGuard(): Shell {
  return sh`
# Datastore guard: K3s converts sqlite to embedded etcd, never back (docs.k3s.io/datastore).
if [ -d "$ROOT"${`${SERVER_DB_DIR}/etcd`} ]; then
  fail ${`this server runs embedded etcd (${SERVER_DB_DIR}/etcd exists) and K3s does not convert etcd back to sqlite: keep k3s.datastore.type: etcd (docs/removing-and-replacing-nodes.md "Topology changes"); nothing was changed`}
fi
`;
}

/**
 * Every other server's preflight with `datastore.type: etcd`: a server holding sqlite data
 * (`db/state.db`, no `db/etcd`) must be the first server. K3s converts a single server's sqlite
 * data to embedded etcd only when that server restarts with `cluster-init` (docs.k3s.io
 * datastore/ha-embedded, "Existing single-node clusters": "the existing server must be the one
 * with cluster-init"); started with `server:` instead it joins the first server's etcd and its
 * sqlite data is never read again. Listing a new server above the sqlite one (a sqlite -> etcd
 * change) does that: refused in this server's apply before it places anything, naming the fix.
 * Not before any host changed: the first server's apply ran before this one, and this server's
 * secrets write and OS prep beside it (docs/removing-and-replacing-nodes.md says what catches what).
 */
export function sqliteHolderGuard(first: string): Shell {
  return sh`
# Datastore guard: sqlite data converts to etcd only on the server started with cluster-init (docs.k3s.io/datastore/ha-embedded).
if [ -f "$ROOT"${`${SERVER_DB_DIR}/state.db`} ] && [ ! -d "$ROOT"${`${SERVER_DB_DIR}/etcd`} ]; then
  fail ${`this server holds the cluster's sqlite data (${SERVER_DB_DIR}/state.db, no embedded etcd yet), but ${first} is the first server (cluster-init): K3s converts sqlite to embedded etcd only on the server started with cluster-init, and joining ${first} would leave this data unread; list this server first in nodes, and if ${first} started a new cluster of its own, remove K3s there (k3s-uninstall.sh) before the next up (docs/removing-and-replacing-nodes.md "Topology changes"); this apply changed nothing here: K3s keeps running on its sqlite data`}
fi
`;
}

/**
 * Whether a peer that answers `/cacerts` runs embedded etcd, asked without credentials (no token
 * on this host's command line, none needed). `GET /db/info` is the etcd member list a joining
 * server reads first (k3s-io/k3s pkg/etcd/etcd.go ClientURLs: `clientAccessInfo.Get("/db/info")`).
 * K3s routes it only on a server with a managed datastore, which is embedded etcd alone
 * (pkg/cluster/managed.go initClusterDB @0663681, registerDBHandlers in later versions:
 * `if c.managedDB == nil { return handler, nil }`; "Kine and other external etcd clusters are NOT
 * considered managed"). There it sits behind `auth.IsLocalOrHasRole("k3s:server")` (pkg/etcd/etcd.go
 * handler; anonymous from localhost since k3s-io/k3s#10001), whose doAuth answers an
 * unauthenticated remote request `403 forbidden` (pkg/server/auth/auth.go @3f5eec4: `!ok ||
 * !hasRole` -> StatusForbidden; 401 only when the authenticator errs or is not set up yet). A
 * sqlite server has no such route: the path falls through the supervisor's routers
 * (pkg/server/handlers/router.go @1be7bd2, NotFoundHandler chain ending in APIServer) to
 * kube-apiserver, which K3s starts with `--anonymous-auth=false` (pkg/daemons/control/server.go,
 * unless kube-apiserver-arg gives an authentication-config), so it answers `401 Unauthorized`;
 * that is the 401 a server joining a sqlite one fails with (k3s-io/k3s#2463).
 *
 * So 401 means the peer runs without embedded etcd: the first server refuses to join it. Anything
 * else (403; 200 from a local address; no answer; 5xx) joins as before. The one misreading: an
 * etcd server whose authenticator is not set up yet answers 401 too; that refusal names the fix
 * and the next `up` asks again.
 */
export const DB_INFO_WITHOUT_ETCD = 401;

/** The first server's preflight (embedded etcd only): join a running cluster rather than init one. */
export function rejoinSnippet(config: ResolvedConfig): Shell {
  if (config.k3s.datastore.type !== "etcd") return raw("");
  const peers = peerServers(config);
  const dropIn = sh`"$ROOT"${JOIN_DROPIN}`;
  const probe = peers.length
    ? sh`${raw(peers.length === 1 ? "# shellcheck disable=SC2043 # one other server: a list of one\n  " : "")}for candidate in ${peers.map((p) => `${p.name}=${p.url}`)}; do
    peer="\${candidate#*=}"
    # K3s serves its CA bundle at /cacerts to anyone (a joining node fetches it before trusting).
    if command -v curl >/dev/null 2>&1; then
      answer="$(curl -ksS --max-time ${PROBE_TIMEOUT_SECONDS} "$peer/cacerts" 2>/dev/null || true)"
    elif command -v wget >/dev/null 2>&1; then
      answer="$(wget -qO- --no-check-certificate -T ${PROBE_TIMEOUT_SECONDS} -t 1 "$peer/cacerts" 2>/dev/null || true)"
    else
      fail "the data directory is empty and neither curl nor wget is installed to ask the other servers whether a cluster runs; install one (never cluster-init blindly)"
    fi
    case "$answer" in
      *"BEGIN CERTIFICATE"*) join_url="$peer"; join_node="\${candidate%%=*}"; break ;;
      *) ;;
    esac
  done`
    : raw("# No other server is configured: nobody to join.");
  const port = raw(String(API_PORT));
  const noAnswer = joinOnly(config)
    ? sh`# Join-only (nodes[].rebuild on the first server): the cluster existed, so never cluster-init.
    fail ${`the data directory is empty and no other server answers on :${API_PORT} (tried ${peers.map((p) => `${p.name} ${p.url}`).join(", ")}); this server is being rebuilt (nodes[].rebuild), so the cluster exists: refusing to cluster-init a second cluster; bring a server back, or restore a snapshot: docs/backup-and-restore.md`}`
    : sh`rm -f ${dropIn}
    echo "apply[$NODE]: no other configured server answers on :${port}: initialising a new cluster (cluster-init)"`;
  return sh`
# Rebuild guard (docs/rebuilding.md): an empty data directory joins a running cluster.
DB_DIR="$ROOT"${SERVER_DB_DIR}
if [ -z "$(ls -A "$DB_DIR" 2>/dev/null || true)" ]; then
  join_url=""
  join_node=""
  ${probe}
  if [ -n "$join_url" ]; then
    # Only an embedded-etcd server can be joined: one answering /db/info as a sqlite server does
    # (decommission/rejoin.ts DB_INFO_WITHOUT_ETCD) is refused before K3s is installed or started here.
    if command -v curl >/dev/null 2>&1; then
      db_info="$(curl -ksS -o /dev/null -w '%{http_code}' --max-time ${PROBE_TIMEOUT_SECONDS} "$join_url/db/info" 2>/dev/null || true)"
    else
      db_info="$(wget -S -O /dev/null --no-check-certificate -T ${PROBE_TIMEOUT_SECONDS} -t 1 "$join_url/db/info" 2>&1 || true)"
      db_info="$(printf '%s' "$db_info" | awk 'index($1, "HTTP/") == 1 { code = $2 } END { print code }')"
    fi
    if [ "$db_info" = ${raw(String(DB_INFO_WITHOUT_ETCD))} ]; then
      fail "$join_node ($join_url) runs K3s without embedded etcd (it answers /db/info with ${raw(String(DB_INFO_WITHOUT_ETCD))}, as a sqlite server does: K3s routes /db/info only with embedded etcd), so $NODE, listed first in nodes with an empty data directory, cannot join it (K3s refuses a server joining a sqlite one: k3s-io/k3s#2463) and must not start a second cluster beside it. K3s converts sqlite data to embedded etcd only on the server that holds it, restarted with cluster-init: list $join_node first in nodes (docs/removing-and-replacing-nodes.md, From one sqlite server to HA embedded etcd); nothing was installed or started on $NODE"
    fi
    install -d -m 0700 "$(dirname ${dropIn})"
    printf '# Written by k3s-platform: this server had no data and joined the running cluster.\\nserver: %s\\ncluster-init: false\\n' "$join_url" >${dropIn}
    chmod 0600 ${dropIn}
    echo "apply[$NODE]: the data directory is empty and $join_url serves: joining the running cluster through it (never cluster-init)"
  else
    ${noAnswer}
  fi
fi
`;
}
