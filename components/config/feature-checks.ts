import { argMap, CONTAINERD_2, EMBEDDED_REGISTRY_GA, hasFeature, KUBELET_REFUSES_CGROUP_V1, missingFeature, releaseOf, SERVICELB_MULTIPLE_POOLS } from "./flags";
import { LB_POOL_LABEL, SERVICELB_LABELS } from "../servicelb/pools";
import { cidrContains, isCanonicalIp, normalizeHost } from "./net";
import { GATEWAY_API_CRDS, traefikChartKeyFindings, traefikGatewayProviderOn } from "./packaged";
import { ResolvedConfig } from "./schema";

type Path = ReadonlyArray<string | number>;
type Report = (path: Path, message: string) => void;

/**
 * Cross-field checks of the add-on, VIP, registry-mirror and runtime settings (issue 14); called
 * from crossFieldChecks with the same report/warn callbacks, so every problem carries its path.
 */
export function featureChecks(config: ResolvedConfig, report: Report, warn: Report): void {
  const { k3s, nodes } = config;
  const disabled = (c: string) => (k3s.disable as string[]).includes(c);
  const nodeNames = new Set(nodes.map((n) => n.name));

  // --- Traefik
  if (k3s.traefik && disabled("traefik")) {
    report(["k3s", "traefik"], "Traefik values configure K3s' packaged Traefik, but k3s.disable lists traefik");
  }
  // Keys spelled for another chart than the pinned release packages (packaged.ts): refused in
  // every environment, since the chart drops them without a word.
  const traefikRelease = releaseOf(k3s);
  if (k3s.traefik && traefikRelease) {
    for (const f of traefikChartKeyFindings(k3s.traefik.values, traefikRelease)) report(["k3s", "traefik", "values", ...f.at], f.message);
    if (traefikGatewayProviderOn(k3s.traefik.values) && !hasFeature(GATEWAY_API_CRDS, traefikRelease)) {
      warn(
        ["k3s", "traefik", "values", "providers", "kubernetesGateway"],
        `Traefik's Gateway API provider needs the Gateway API CRDs, which K3s ships only from v1.37 (${GATEWAY_API_CRDS.source}): on ${traefikRelease.text} install them (kubernetes-sigs/gateway-api standard-install.yaml) before this up; from v1.37 K3s ships them itself`,
      );
    }
  }

  // --- ServiceLB pools
  if (k3s.serviceLb) {
    if (disabled("servicelb")) report(["k3s", "serviceLb"], "ServiceLB pools need K3s' ServiceLB, but k3s.disable lists servicelb");
    const member = new Map<string, string>();
    for (const [pool, members] of Object.entries(k3s.serviceLb.pools)) {
      members.forEach((name, i) => {
        const path = ["k3s", "serviceLb", "pools", pool, i];
        if (!nodeNames.has(name)) return report(path, `no node named "${name}" (nodes: ${[...nodeNames].join(", ")})`);
        const other = member.get(name);
        if (other !== undefined) {
          const release = releaseOf(k3s);
          const k3sHas = release && hasFeature(SERVICELB_MULTIPLE_POOLS, release);
          report(
            path,
            `node ${name} is already in pool "${other}" (k3s-platform writes one ${LB_POOL_LABEL} label per node` +
              (k3sHas ? `; K3s itself accepts several pools per node from v1.37.1 (${SERVICELB_MULTIPLE_POOLS.source}), which k3s-platform does not render yet)` : `; more than one pool per node ${release ? missingFeature(SERVICELB_MULTIPLE_POOLS, release) : "needs K3s v1.37.1+"})`),
          );
        }
        else member.set(name, pool);
      });
    }
  }
  nodes.forEach((node, i) => {
    for (const key of SERVICELB_LABELS) {
      if (key in node.labels) report(["nodes", i, "labels", key], `${key} is managed by k3s.serviceLb.pools (one definition for the labels and the policy pack)`);
    }
  });

  // --- cgroup v1 (KEP-5573): from v1.35 the kubelet refuses cgroup v1 hosts unless fail-cgroupv1=false.
  const cgroupRelease = releaseOf(k3s);
  for (const map of ["extraServerConfig", "extraAgentConfig"] as const) {
    if (argMap(k3s[map]["kubelet-arg"]).get("fail-cgroupv1") !== "false") continue;
    const note = cgroupRelease && hasFeature(KUBELET_REFUSES_CGROUP_V1, cgroupRelease)
      ? "keeps the kubelet running on cgroup v1 hosts, which Kubernetes no longer supports (KEP-5573): move the hosts to cgroup v2"
      : `has no effect before K3s v1.35 (the kubelet accepts cgroup v1 there; ${KUBELET_REFUSES_CGROUP_V1.source})`;
    warn(["k3s", map, "kubelet-arg"], `fail-cgroupv1=false ${note}`);
  }

  // --- API VIP
  const vip = k3s.apiVip;
  if (vip) {
    nodes.forEach((node, i) => {
      const addresses = [["host", node.host], ...(node.nodeIp ?? []).map((a) => ["nodeIp", a]), ...(node.externalIp ?? []).map((a) => ["externalIp", a])] as const;
      for (const [field, address] of addresses) {
        if (address && isCanonicalIp(address) && normalizeHost(address) === normalizeHost(vip.address)) {
          report(["k3s", "apiVip", "address"], `${vip.address} is nodes[${i}] (${node.name}).${field}; the VIP must be an unused address on the servers' network`);
        }
      }
    });
    for (const [name, ranges] of [["clusterCidr", k3s.clusterCidr], ["serviceCidr", k3s.serviceCidr]] as const) {
      for (const range of ranges) if (cidrContains(range, vip.address)) report(["k3s", "apiVip", "address"], `${vip.address} lies inside k3s.${name} ${range}`);
    }
    if (k3s.airgap.enabled) {
      warn(["k3s", "apiVip", "image"], `air-gapped: ${vip.image} must be in an image tarball in k3s.airgap.imagesDir (or a reachable registry mirror), or agents never see the VIP`);
    }
    if (k3s.apiEndpoint && isCanonicalIp(k3s.apiEndpoint) && normalizeHost(k3s.apiEndpoint) !== normalizeHost(vip.address)) {
      report(["k3s", "apiEndpoint"], `is ${k3s.apiEndpoint}, but k3s.apiVip.address is ${vip.address}: leave apiEndpoint unset (the VIP is used) or set a DNS name for the VIP`);
    }
  }

  // --- embedded registry mirror (Spegel)
  const mirrors = Object.entries(k3s.registries?.mirrors ?? {});
  if (k3s.embeddedRegistry) {
    if (mirrors.length === 0) {
      report(["k3s", "embeddedRegistry"], "the embedded registry mirror only serves registries listed in registries.yaml: add k3s.registries.mirrors entries (e.g. docker.io: {}, or \"*\": {} for every registry)");
    }
    if (k3s.docker) report(["k3s", "embeddedRegistry"], "the embedded registry mirror works through K3s' containerd; k3s.docker is true");
    const release = releaseOf(k3s);
    if (release && !hasFeature(EMBEDDED_REGISTRY_GA, release)) {
      warn(["k3s", "embeddedRegistry"], `the embedded registry mirror is experimental here: GA ${missingFeature(EMBEDDED_REGISTRY_GA, release)}`);
    }
  }
  for (const [host, mirror] of mirrors) {
    if (!mirror.endpoint && !k3s.embeddedRegistry) {
      report(["k3s", "registries", "mirrors", host, "endpoint"], "a mirror without endpoints only makes sense with k3s.embeddedRegistry: true");
    }
  }

  // --- runtimes
  if (k3s.defaultRuntime?.startsWith("nvidia")) {
    nodes.forEach((node, i) => {
      if (node.gpu !== "nvidia") report(["nodes", i, "gpu"], `k3s.defaultRuntime is ${k3s.defaultRuntime} on every node, but ${node.name} does not declare gpu: nvidia (its pods would not start)`);
    });
  }
  if (k3s.docker) {
    const containerdOnly: Array<[string, boolean]> = [
      ["snapshotter", k3s.snapshotter !== undefined],
      ["containerdTemplate", k3s.containerdTemplate !== undefined],
      ["defaultRuntime", k3s.defaultRuntime !== undefined],
    ];
    for (const [key, set] of containerdOnly) if (set) report(["k3s", key], `configures K3s' containerd, which k3s.docker: true replaces with cri-dockerd`);
    nodes.forEach((node, i) => {
      if (node.gpu) report(["nodes", i, "gpu"], "K3s configures the NVIDIA runtime in its containerd; with k3s.docker: true configure Docker's nvidia runtime instead");
    });
  }
  // containerd 2 (config version 3) names its CRI runtime plugin io.containerd.cri.v1.runtime, 1.7
  // (version 2) io.containerd.grpc.v1.cri; a table under the other name is ignored without a word
  // (K3s v1.32.2+k3s1 release notes: "Containerd 2.0 uses a new config file schema … migrate your
  // template to config-v3.toml.tmpl"; containerd docs/cri/config.md).
  const templateRelease = releaseOf(k3s);
  if (k3s.containerdTemplate !== undefined && templateRelease) {
    const v3 = hasFeature(CONTAINERD_2, templateRelease);
    const foreign = v3 ? "io.containerd.grpc.v1.cri" : "io.containerd.cri.v1.";
    if (k3s.containerdTemplate.includes(foreign)) {
      warn(
        ["k3s", "containerdTemplate"],
        `the template names ${foreign}${v3 ? "" : "*"}, a plugin of containerd ${v3 ? "1.7 (config version 2)" : "2 (config version 3)"}, but ${templateRelease.text} runs containerd ${v3 ? "2: use io.containerd.cri.v1.runtime / io.containerd.cri.v1.images" : "1.7: use io.containerd.grpc.v1.cri"} (containerd ignores the other version's tables)`,
      );
    }
  }
  if (k3s.containerdTemplate !== undefined && !k3s.containerdTemplate.includes('{{ template "base" . }}')) {
    warn(["k3s", "containerdTemplate"], 'the template does not extend K3s\' base template ({{ template "base" . }}): it replaces the whole generated config, which then needs upkeep on every K3s upgrade');
  }
}
