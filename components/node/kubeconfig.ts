import { parse, stringify } from "yaml";
import { PATHS } from "../k3s/paths";

/**
 * Rewrites the kubeconfig K3s writes (server https://127.0.0.1:6443, every name "default") so
 * it points at the cluster's API endpoint and names the cluster after the stack.
 */
export function rewriteKubeconfig(kubeconfig: string, apiEndpoint: string, clusterName: string): string {
  const doc = parse(kubeconfig) as KubeconfigDoc | null;
  if (!doc || !Array.isArray(doc.clusters)) {
    throw new Error(`the kubeconfig read from the first server (${PATHS.kubeconfig}) is empty or not a kubeconfig`);
  }
  const host = apiEndpoint.includes(":") ? `[${apiEndpoint}]` : apiEndpoint;
  for (const c of doc.clusters ?? []) {
    c.name = clusterName;
    if (c.cluster?.server) c.cluster.server = c.cluster.server.replace(/^https:\/\/[^/]+:(\d+)/, `https://${host}:$1`);
  }
  for (const u of doc.users ?? []) u.name = clusterName;
  for (const c of doc.contexts ?? []) {
    c.name = clusterName;
    if (c.context) Object.assign(c.context, { cluster: clusterName, user: clusterName });
  }
  doc["current-context"] = clusterName;
  return stringify(doc);
}

interface KubeconfigDoc {
  clusters?: Array<{ name: string; cluster?: { server?: string } }>;
  users?: Array<{ name: string }>;
  contexts?: Array<{ name: string; context?: Record<string, unknown> }>;
  "current-context"?: string;
}
