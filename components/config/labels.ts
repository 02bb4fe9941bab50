/**
 * Which node labels K3s may set at registration (`node-label`), which only an administrator may
 * set afterwards, and which are refused. The kubelet's NodeRestriction admission refuses labels in
 * the kubernetes.io / k8s.io namespaces except the list below, and K3s then fails to start.
 * Source: Kubernetes NodeRestriction admission plugin docs; K3s "Node Labels and Taints".
 */

const KUBELET_SETTABLE_KEYS = new Set([
  "kubernetes.io/hostname",
  "kubernetes.io/arch",
  "kubernetes.io/os",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "failure-domain.beta.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "topology.kubernetes.io/zone",
]);
const KUBELET_SETTABLE_PREFIXES = ["kubelet.kubernetes.io", "node.kubernetes.io"];
/** Reserved for administrators: applied with kubectl once the node has registered. */
const ADMIN_PREFIXES = ["node-role.kubernetes.io", "node-restriction.kubernetes.io"];

export type LabelClass = "registration" | "post-registration" | "restricted";

function inNamespace(prefix: string, namespace: string): boolean {
  return prefix === namespace || prefix.endsWith(`.${namespace}`);
}

export function classifyNodeLabel(key: string): LabelClass {
  const slash = key.indexOf("/");
  if (slash < 0) return "registration";
  const prefix = key.slice(0, slash);
  if (!inNamespace(prefix, "kubernetes.io") && !inNamespace(prefix, "k8s.io")) return "registration";
  if (KUBELET_SETTABLE_KEYS.has(key)) return "registration";
  if (KUBELET_SETTABLE_PREFIXES.some((p) => inNamespace(prefix, p))) return "registration";
  if (ADMIN_PREFIXES.includes(prefix)) return "post-registration";
  return "restricted";
}

/** Splits a node's labels into those passed as `node-label` and those applied after joining. */
export function splitNodeLabels(labels: Record<string, string>): {
  registration: Record<string, string>;
  postRegistration: Record<string, string>;
} {
  const registration: Record<string, string> = {};
  const postRegistration: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    const cls = classifyNodeLabel(key);
    if (cls === "registration") registration[key] = value;
    else if (cls === "post-registration") postRegistration[key] = value;
  }
  return { registration, postRegistration };
}
