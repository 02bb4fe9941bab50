import { ResolvedConfig } from "../config/schema";
import { renderDns } from "../dns/render";
import { serverManifests } from "../manifests/render";
import { renderRuntimeClasses } from "../runtimes/render";
import { renderTenants } from "../tenants/render";
import { KubeObject } from "./objects";

/**
 * Kinds K3s itself defines through CRDs (helm-controller): a bare API server lacks them, so a
 * real-API-server check must install the CRD first or skip these objects.
 */
export const K3S_CRD_KINDS: ReadonlySet<string> = new Set(["helm.cattle.io/v1/HelmChartConfig", "helm.cattle.io/v1/HelmChart"]);

export const needsK3sCrd = (o: KubeObject) => K3S_CRD_KINDS.has(`${o.apiVersion}/${o.kind}`);

/**
 * Every Kubernetes object the config renders: the in-cluster layer (tenants, DNS, RuntimeClasses,
 * registered through the provider) and what servers' manifests directory carries (Traefik
 * HelmChartConfig, kube-vip), which K3s' deploy controller applies.
 */
export function renderAllObjects(config: ResolvedConfig): KubeObject[] {
  return [
    ...renderTenants(config),
    ...renderDns(config),
    ...renderRuntimeClasses(config),
    ...serverManifests(config).flatMap((m) => m.objects),
  ];
}
