import { NodeConfig, ResolvedConfig } from "../config/schema";

/** Nodes the cluster still manages: every entry not armed for removal (`decommission: true`). */
export function managedNodes(config: ResolvedConfig): NodeConfig[] {
  return config.nodes.filter((n) => n.decommission !== true);
}

/**
 * The managed-node list inside the cluster: ConfigMap `kube-system/k3s-platform-managed-nodes`,
 * key `nodes`, the names space-separated (node names are DNS labels: no space in one). The
 * node-inventory step writes it on the first managed server whenever the managed set changes,
 * before the engine runs any delete. A drain reads it there as well as the server's own
 * managed-nodes file: the drain runs on the server stored in its state, which may have stopped
 * being applied in this very up (armed itself), so its file can be stale; the cluster's copy is
 * current whichever server reads it.
 */
export const MANAGED_NODES_CONFIGMAP = { namespace: "kube-system", name: "k3s-platform-managed-nodes", key: "nodes" } as const;

/** The ConfigMap as JSON (`kubectl apply -f -` reads JSON as well as YAML). */
export function managedNodesManifest(config: ResolvedConfig): string {
  const names = managedNodes(config).map((n) => n.name).sort();
  return JSON.stringify({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: MANAGED_NODES_CONFIGMAP.name, namespace: MANAGED_NODES_CONFIGMAP.namespace, labels: { "app.kubernetes.io/managed-by": "k3s-platform" } },
    data: { [MANAGED_NODES_CONFIGMAP.key]: names.join(" ") },
  });
}
