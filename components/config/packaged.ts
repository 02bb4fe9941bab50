import { hasFeature, K3sRelease, Since } from "./flags";

/**
 * What the components K3s packages (its Traefik chart, the Gateway API CRDs, the kubelet it runs)
 * change per release, where a stack's settings depend on it. Facts as `Since` (config/flags.ts:
 * the first patch per line), each with its source; the checks read them against the pinned
 * release (validate.ts crossFieldChecks, every environment).
 */

/**
 * K3s' packaged Traefik chart moved to v40 (Traefik v3.7) in the June 2026 patch releases:
 * v1.36.2+k3s1 ("This release upgrades Traefik chart to v40.x which includes a breaking change for
 * the ingress-nginx migration: the provider name changes from `kubernetesIngressNginx` to
 * `kubernetesIngressNGINX`": docs.k3s.io/release-notes/v1.36.X), and the same backport
 * (k3s-io/k3s#14133 "Bump Traefik to v3.7.x") on v1.35 (#14161, #14198: validated on
 * v1.35.6-rc1) and v1.34 (#14162, validated with the June releases: v1.34.9+k3s1). Lines newer
 * than these (v1.37) carry it from their first release (k3s-io/k3s#14573, #14605: v1.37 ships
 * Traefik v3.7.13). A v1.33 backport exists (#14163), but no v1.33 release after it is in the
 * release table: v1.33 counts as before v40.
 */
export const TRAEFIK_CHART_V40: Since = {
  lines: { 34: 9, 35: 6, 36: 2 },
  source: "docs.k3s.io/release-notes/v1.36.X (v1.36.2+k3s1 Traefik chart v40 warning); k3s-io/k3s#14133 backports #14161, #14162, #14198",
};

/** A chart key the pinned release's packaged chart renamed: the old spelling is silently ignored by the new chart (Helm drops unknown values), and the other way round. */
export interface ChartKeyRename {
  /** Path under `traefik.values` before the rename. */
  before: readonly string[];
  /** The same key in the renamed chart. */
  after: readonly string[];
  since: Since;
  source: string;
}

/**
 * traefik/traefik-helm-chart#1714 "fix(providers)!: kubernetesIngressNginx => kubernetesIngressNGINX"
 * (chart v40.0.0, following Traefik's own provider name: traefik/traefik#13236 "Capitalize NGINX
 * in kubernetesIngressNGINX").
 */
export const TRAEFIK_CHART_RENAMES: readonly ChartKeyRename[] = [
  {
    before: ["providers", "kubernetesIngressNginx"],
    after: ["providers", "kubernetesIngressNGINX"],
    since: TRAEFIK_CHART_V40,
    source: "traefik/traefik-helm-chart#1714 (chart v40.0.0)",
  },
];

const has = (values: Record<string, unknown>, path: readonly string[]): boolean => {
  let node: unknown = values;
  for (const key of path) {
    if (!node || typeof node !== "object" || Array.isArray(node) || !(key in node)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
};

/**
 * `traefik.values` keys spelled for another chart than the one the pinned release packages:
 * `at` is the path under `traefik.values`, `message` names the spelling to use and why. A channel
 * (`stable`, `latest`) counts as the newest release.
 */
export function traefikChartKeyFindings(values: Record<string, unknown>, release: K3sRelease): Array<{ at: readonly string[]; message: string }> {
  const out: Array<{ at: readonly string[]; message: string }> = [];
  for (const rename of TRAEFIK_CHART_RENAMES) {
    const renamed = hasFeature(rename.since, release);
    const written = renamed ? rename.before : rename.after;
    if (!has(values, written)) continue;
    const use = (renamed ? rename.after : rename.before).join(".");
    out.push({
      at: written,
      message: renamed
        ? `K3s ${release.text} packages the Traefik chart v40, which renamed ${written.join(".")} to ${use} (${rename.source}; ${rename.since.source}): the chart ignores the old key, so the setting would silently stop working; write ${use}`
        : `K3s ${release.text} packages a Traefik chart before v40, which spells it ${use} (${rename.source}): the chart ignores ${written.join(".")}; write ${use}, or pin a release with the v40 chart`,
    });
  }
  return out;
}

/**
 * Gateway API CRDs ship with K3s from v1.37 (v1.37.0+k3s1: "Bump Traefik and bundle gateway-api
 * crds", k3s-io/k3s#14573; "Bump gateway-api-crd version 3, which includes the keep annotation",
 * #14586: docs.k3s.io/release-notes/v1.37.X). Before, Traefik's Gateway provider
 * (`providers.kubernetesGateway.enabled`) finds no Gateway API types unless the user installs
 * the CRDs (kubernetes-sigs/gateway-api standard-install.yaml) first.
 */
export const GATEWAY_API_CRDS: Since = {
  lines: { 37: 0 },
  source: "docs.k3s.io/release-notes/v1.37.X (v1.37.0+k3s1: k3s-io/k3s#14573, #14586)",
};

/** Whether `traefik.values` turns Traefik's Gateway API provider on (Helm treats any non-empty value but false as on). */
export function traefikGatewayProviderOn(values: Record<string, unknown>): boolean {
  const provider = (values.providers as Record<string, unknown> | undefined)?.kubernetesGateway as Record<string, unknown> | undefined;
  const enabled = provider && typeof provider === "object" ? provider.enabled : undefined;
  return !(enabled === false || enabled === null || enabled === undefined || enabled === 0 || enabled === "");
}

/**
 * Kubelet configuration drop-ins: from v1.32 K3s runs the kubelet with a config file and
 * `--config-dir=/var/lib/rancher/k3s/agent/etc/kubelet.conf.d`, where `*.conf`
 * KubeletConfiguration files override K3s' defaults (docs.k3s.io/installation/configuration
 * "Kubelet configuration", Version Gate: "only available in v1.32 and above", because of the
 * upstream fix kubernetes/kubernetes#127421; k3s-io/docs#433; Kubernetes KEP-3983, GA in v1.35).
 *
 * Modelled, not used: k3s-platform keeps writing the typed kubelet settings (k3s.kubelet:
 * reserved resources, maxPods, eviction…) as `kubelet-arg` in config.yaml. Moving them to a
 * drop-in changes every node's K3s inputs once (config.yaml loses the entries, a new file
 * appears), so every node restarts once on the first `up` with it; kubelet flags beat drop-ins
 * anyway (kubernetes.io kubelet-config-file "merging order"), and the CIS profile and the pack's
 * node-final-flags-* policies read the kubelet settings from each node's final flags (K3sNode
 * registers them), which a drop-in would take out of their sight. docs/upgrading.md ("Kubelet settings and drop-ins") says so.
 */
export const KUBELET_CONFIG_DROPINS: Since = {
  lines: { 32: 0 },
  source: "docs.k3s.io/installation/configuration 'Kubelet configuration' Version Gate (k3s-io/docs#433; kubernetes/kubernetes#127421)",
};
