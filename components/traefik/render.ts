import { stringify } from "yaml";
import { ResolvedConfig } from "../config/schema";
import { KubeObject, MANAGED_BY } from "../kube/objects";

/**
 * Traefik customisation the K3s way: a `HelmChartConfig` named `traefik` in `kube-system`, whose
 * `spec.valuesContent` (a YAML string) the helm-controller merges over the packaged chart's values.
 * Source: K3s networking docs ("Traefik Ingress Controller"; seed 002), which say to place it in
 * /var/lib/rancher/k3s/server/manifests/ and never to edit traefik.yaml there (K3s rewrites it).
 * HelmChartConfig (helm.cattle.io/v1) is a K3s CRD: a plain API server without K3s lacks it.
 */

/** Our own file name in the manifests directory: never `traefik.yaml`, which K3s owns. */
export const TRAEFIK_CONFIG_FILE = "k3s-platform-traefik-config.yaml";

export function renderTraefikConfig(config: ResolvedConfig): KubeObject | undefined {
  const values = config.k3s.traefik?.values;
  if (!values) return undefined;
  return {
    apiVersion: "helm.cattle.io/v1",
    kind: "HelmChartConfig",
    metadata: { name: "traefik", namespace: "kube-system", labels: { ...MANAGED_BY } },
    spec: { valuesContent: stringify(values, { lineWidth: 0 }) },
  };
}
