import { stringify } from "yaml";
import { ipFamily } from "../config/net";
import { LOCAL_API_PORT, NODE_MASK } from "../config/network-rules";
import { CILIUM_CHART_REPO, ResolvedConfig } from "../config/schema";
import { KubeObject, MANAGED_BY } from "../kube/objects";

/**
 * Cilium the K3s way: a `HelmChart` (helm.cattle.io/v1) in the servers' auto-deploying manifests
 * directory, which K3s' helm-controller installs and upgrades (docs.k3s.io add-ons/helm "Using the
 * Helm Controller"). `bootstrap: true` ("needed to bootstrap the cluster") runs the install job on
 * the host network with the not-ready tolerations: there is no pod network before the CNI.
 *
 * The values are the ones K3s needs, derived from the typed config (never free-form):
 * - `k8sServiceHost/Port`: 127.0.0.1:6444, K3s' API load balancer on every node (docs.k3s.io
 *   installation/requirements "Local Ports"; cilium/cilium#19038): the in-cluster `kubernetes`
 *   Service is not reachable before Cilium itself routes it, and with kubeProxyReplacement no
 *   kube-proxy ever will;
 * - `ipam.mode: cluster-pool` with the pod CIDRs = `k3s.clusterCidr` per family and the node mask
 *   kube-controller-manager uses (/24 IPv4, /64 IPv6), so pods get the addresses the firewall
 *   rules, NetworkPolicy ipBlocks and NO_PROXY already name;
 * - `policyCIDRMatchMode: [nodes]`: NetworkPolicy ipBlocks match node addresses (the tenants'
 *   API-server allow), as with K3s' own policy controller;
 * - `kubeProxyReplacement` (K3s then runs with disable-kube-proxy), `routingMode: tunnel` with the
 *   chosen `tunnelProtocol` (the ports os-prep opens), `hubble.enabled`.
 * The CNI binary and configuration paths stay Cilium's defaults (/opt/cni/bin, /etc/cni/net.d):
 * with flannel off K3s' containerd uses its defaults too (k3s-io/k3s pkg/agent/config: the K3s
 * paths are set only `if !nodeConfig.NoFlannel`).
 */

/** Our own file name in the manifests directory. */
export const CILIUM_FILE = "k3s-platform-cilium.yaml";

/** The Helm values of the Cilium chart for this cluster. */
export function ciliumValues(config: ResolvedConfig): Record<string, unknown> {
  const cni = config.k3s.cni;
  if (cni?.type !== "cilium") return {};
  const v4 = config.k3s.clusterCidr.filter((c) => ipFamily(c) === "ipv4");
  const v6 = config.k3s.clusterCidr.filter((c) => ipFamily(c) === "ipv6");
  const servers = config.nodes.filter((n) => n.role === "server" && !n.decommission).length;
  return {
    k8sServiceHost: "127.0.0.1",
    k8sServicePort: LOCAL_API_PORT,
    kubeProxyReplacement: cni.kubeProxyReplacement,
    routingMode: "tunnel",
    tunnelProtocol: cni.tunnelProtocol,
    ipv4: { enabled: v4.length > 0 },
    ipv6: { enabled: v6.length > 0 },
    ipam: {
      mode: "cluster-pool",
      operator: {
        ...(v4.length ? { clusterPoolIPv4PodCIDRList: v4, clusterPoolIPv4MaskSize: NODE_MASK.ipv4 } : {}),
        ...(v6.length ? { clusterPoolIPv6PodCIDRList: v6, clusterPoolIPv6MaskSize: NODE_MASK.ipv6 } : {}),
      },
    },
    hubble: { enabled: cni.hubble },
    // The tenants' API-server allow is an ipBlock of the servers' node addresses; by default Cilium's
    // CIDR selectors never match cluster nodes, so that allow would drop (docs.cilium.io
    // security/policy/layer3 "Selecting nodes with CIDR / ipBlock"; cilium/cilium#28421).
    policyCIDRMatchMode: ["nodes"],
    // Two operators need two nodes to spread over (the chart's anti-affinity); one server, one operator.
    operator: { replicas: servers > 1 ? 2 : 1 },
  };
}

export function renderCiliumChart(config: ResolvedConfig): KubeObject | undefined {
  const cni = config.k3s.cni;
  if (cni?.type !== "cilium") return undefined;
  return {
    apiVersion: "helm.cattle.io/v1",
    kind: "HelmChart",
    metadata: { name: "cilium", namespace: "kube-system", labels: { ...MANAGED_BY } },
    spec: {
      repo: CILIUM_CHART_REPO,
      chart: "cilium",
      version: cni.version,
      targetNamespace: "kube-system",
      bootstrap: true,
      valuesContent: stringify(ciliumValues(config), { lineWidth: 0 }),
    },
  };
}
