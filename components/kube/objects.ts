/** A Kubernetes object as the renderers produce it: what `kubectl apply` or a Pulumi resource takes. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "k3s-platform" };

/** `<prefix>-<kind>-[<namespace>-]<name>`, with characters Pulumi names dislike replaced. */
export function kubeResourceName(prefix: string, obj: KubeObject): string {
  const parts = [prefix, obj.kind.toLowerCase(), ...(obj.metadata.namespace ? [obj.metadata.namespace] : []), obj.metadata.name];
  return parts.join("-").replace(/[^A-Za-z0-9._-]/g, "-");
}
