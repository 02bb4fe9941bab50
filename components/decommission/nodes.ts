import { NodeConfig, ResolvedConfig } from "../config/schema";
import { clusterTopology } from "../config/topology";
import { STATE_DIR } from "../k3s/install";

/** Nodes the cluster still manages: every entry not armed for removal (`decommission: true`). */
export function managedNodes(config: ResolvedConfig): NodeConfig[] {
  return config.nodes.filter((n) => n.decommission !== true);
}

/** The managed entries' names, sorted: the list the servers' file and the cluster's ConfigMap hold. */
export function managedNodeNames(config: ResolvedConfig): string[] {
  return managedNodes(config).map((n) => n.name).sort();
}

/** The managed servers other than the first, in config order: the first server's peers. */
export function otherServers(config: ResolvedConfig): NodeConfig[] {
  const first = clusterTopology(config).firstServer;
  return managedNodes(config).filter((n) => n.role === "server" && n.name !== first.name);
}

/**
 * On every server: the managed entries' names, one per line (decommission/contribute.ts). An
 * armed teardown's drain (render.ts) reads it on the server it runs on and refuses to remove a
 * node that is listed: deleting a `decommission: true` line instead of the entry would otherwise
 * drop the teardown resources, and the engine runs a dropped resource's `delete`. The file changes
 * with the managed set, so the servers' apply re-places it (no restart) before the engine runs
 * any delete (deletes come after every create and update).
 */
export const MANAGED_NODES_FILE = `${STATE_DIR}/managed-nodes`;

/**
 * The managed-node list inside the cluster: ConfigMap `kube-system/k3s-platform-managed-nodes`,
 * key `nodes`, the names space-separated (node names are DNS labels: no space in one). The
 * node-inventory step writes it on the first managed server whenever the managed set changes,
 * before the engine runs any delete. A drain reads it there as well as the server's own
 * managed-nodes file: the drain runs on the server stored in its state, which may have stopped
 * being applied in this very up (armed itself), so its file can be stale; the cluster's copy is
 * current whichever server reads it.
 */
export const MANAGED_NODES_CONFIGMAP = { namespace: "kube-system", name: "k3s-platform-managed-nodes", key: "nodes", uninstallOnDestroyKey: "uninstallOnDestroy" } as const;

/** The ConfigMap as JSON (`kubectl apply -f -` reads JSON as well as YAML). */
export function managedNodesManifest(config: ResolvedConfig): string {
  const names = managedNodeNames(config);
  return JSON.stringify({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: MANAGED_NODES_CONFIGMAP.name, namespace: MANAGED_NODES_CONFIGMAP.namespace, labels: { "app.kubernetes.io/managed-by": "k3s-platform" } },
    data: {
      [MANAGED_NODES_CONFIGMAP.key]: names.join(" "),
      // Read by destroy-begin's delete (destroy/render.ts): absent or "false" after an up that
      // turned it off, so dropping the destroy commands then uninstalls nothing.
      ...(config.uninstallOnDestroy !== undefined ? { [MANAGED_NODES_CONFIGMAP.uninstallOnDestroyKey]: String(config.uninstallOnDestroy) } : {}),
    },
  });
}
