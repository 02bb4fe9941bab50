import { cidrContains, ipFamily, isCanonicalIp, nodeAddressProblem, prefixLength } from "./net";
import { argMap } from "./flags";
import { clusterFamilies } from "./rules";
import type { CniType, FlannelBackend, NodeConfig, ResolvedConfig, StackConfig } from "./schema";

/**
 * The cluster network's rules: which CNI is in use, what it renders, and the fault kind "settings
 * K3s accepts but that cannot work where they land" (issue 27): a CNI without its companion
 * flags, a DNS upstream a pod cannot reach from its own network namespace, an IPv6 pod network
 * whose traffic cannot leave. Each rule names the K3s (or CoreDNS/Cilium) documentation that says
 * what is needed. Pure; validate.ts reports the findings with their config paths.
 */

/** The CNI in use: `k3s.cni.type`, flannel when unset. */
export function cniType(k3s: Pick<ResolvedConfig["k3s"], "cni">): CniType {
  return k3s.cni?.type ?? "flannel";
}

/** flannelBackend when unset: vxlan with flannel, none with any other CNI (flannel off). */
export function defaultFlannelBackend(k3s: Pick<StackConfig["k3s"], "cni" | "flannelBackend">): FlannelBackend {
  return k3s.flannelBackend ?? (cniType(k3s) === "flannel" ? "vxlan" : "none");
}

/** Unique-local IPv6 (fc00::/7, RFC 4193): never routed on the internet, so replies never reach a pod that sends from it. */
export function isUniqueLocal(cidr: string): boolean {
  return ipFamily(cidr) === "ipv6" && cidrContains("fc00::/7", cidr.split("/")[0]!);
}

/**
 * `flannel-ipv6-masq` when unset: on for flannel when an IPv6 pod CIDR is unique-local. Source:
 * docs.k3s.io networking/basic-network-options (dual-stack and single-stack IPv6): "When using IPv6
 * addresses that are not publicly routed, for example in the ULA range, you might want to add the
 * --flannel-ipv6-masq option to enable IPv6 NAT, as per default pods use their pod IPv6 address for
 * outgoing traffic."
 */
export function defaultFlannelIpv6Masq(k3s: Pick<StackConfig["k3s"], "cni" | "flannelBackend" | "flannelIpv6Masq" | "clusterCidr">): boolean {
  if (k3s.flannelIpv6Masq !== undefined) return k3s.flannelIpv6Masq;
  return defaultFlannelBackend(k3s) !== "none" && k3s.clusterCidr.some(isUniqueLocal);
}

/**
 * Who enforces NetworkPolicy: K3s' embedded controller (flannel; `undefined` here, nothing is
 * turned off), Cilium, or what the user stated for their own CNI. `null`: K3s' controller is off
 * and nothing was stated.
 */
export function networkPolicyEnforcer(k3s: Pick<ResolvedConfig["k3s"], "cni">): string | null | undefined {
  const cni = k3s.cni;
  if (!cni || cni.type === "flannel") return undefined;
  if (cni.type === "cilium") return "cilium";
  return cni.networkPolicyEnforcedBy ?? null;
}

/** The CNI replaces kube-proxy: K3s runs without it (`disable-kube-proxy`). */
export function cniReplacesKubeProxy(k3s: Pick<ResolvedConfig["k3s"], "cni">): boolean {
  const cni = k3s.cni;
  return (cni?.type === "none" && cni.replacesKubeProxy) || (cni?.type === "cilium" && cni.kubeProxyReplacement);
}

/**
 * Nodes talk across networks: flannel to the nodes' external addresses, or a Tailscale mesh. Agents
 * then join the first server through its external address (docs.k3s.io
 * networking/distributed-multicloud: "K3S_URL … should use the SERVER_EXTERNAL_IP").
 */
export function acrossNetworks(k3s: Pick<ResolvedConfig["k3s"], "flannelExternalIp">): boolean {
  return k3s.flannelExternalIp === true;
}

/**
 * Tailscale's address ranges (tailscale.com/kb/1015/100.x-addresses: 100.64.0.0/10 and
 * fd7a:115c:a1e0::/48). With `vpn-auth` K3s replaces each node's node-ip and flannel interface with
 * its tailnet address (k3s-io/k3s pkg/agent/config/config.go "If there is a VPN, we must overwrite
 * NodeIP and flannel interface"), so node-to-node traffic arrives from these ranges.
 */
export const TAILSCALE_RANGES = ["100.64.0.0/10", "fd7a:115c:a1e0::/48"] as const;

/** The node port K3s' client load balancer serves the API on, on every node (docs.k3s.io installation/requirements "Local Ports": 6444). */
export const LOCAL_API_PORT = 6444;

/** Node CIDR mask per family: kube-controller-manager's defaults (node-cidr-mask-size-ipv4/-ipv6), which the Cilium pool uses too. */
export const NODE_MASK = { ipv4: 24, ipv6: 64 } as const;

export type Finding = { path: ReadonlyArray<string | number>; message: string; warning?: boolean };

/** A DNS server as written (`ip`, `ip:port`, `[v6]:port`) → its address. */
function dnsHost(server: string): string {
  if (server.startsWith("[")) return server.slice(1, server.indexOf("]"));
  const colons = server.split(":").length - 1;
  return colons === 1 ? server.split(":")[0]! : server;
}

/**
 * Why CoreDNS, in a pod's network namespace, cannot use `ip` as an upstream; undefined when it
 * can. Loopback is the pod itself (CoreDNS `loop` plugin README, "Troubleshooting Loops In
 * Kubernetes Clusters": a host's 127.0.0.53 handed to CoreDNS through the kubelet's resolv.conf
 * forwards to itself); a family the pod network lacks has no route out of the pod.
 */
export function podUnreachableUpstream(ip: string, config: Pick<ResolvedConfig, "k3s" | "dns">): string | undefined {
  if (!isCanonicalIp(ip)) return undefined;
  const problem = nodeAddressProblem(ip);
  if (problem?.startsWith("a loopback")) {
    return `${ip} is a loopback address: CoreDNS runs in a pod's network namespace, where it is the pod itself (a host resolver such as systemd-resolved's 127.0.0.53 is out of reach; CoreDNS loop plugin docs): name the resolver's network address`;
  }
  // IPv4 link-local resolvers are reached through the node (a cloud's 169.254.169.253); an IPv6
  // link-local address needs an interface zone, which the pod's interface is not.
  if (problem && (!problem.startsWith("a link-local") || ipFamily(ip) === "ipv6")) return `${ip} is ${problem}; CoreDNS cannot send queries there from a pod`;
  const families = clusterFamilies(config.k3s);
  if (!families.includes(ipFamily(ip))) {
    return `${ip} is ${ipFamily(ip) === "ipv6" ? "IPv6" : "IPv4"}, but the pod network (k3s.clusterCidr) has no ${ipFamily(ip) === "ipv6" ? "IPv6" : "IPv4"} CIDR: pods have no route to it`;
  }
  if (config.dns.nodeLocal.enabled && ip === config.dns.nodeLocal.localIp) {
    return `${ip} is NodeLocal DNSCache's own address, which forwards cluster misses back to CoreDNS: a loop`;
  }
  return undefined;
}

/** The fault kind in DNS: upstreams and stub-domain servers a pod cannot reach; host entries pointing at the pod itself (a warning). */
export function dnsReachabilityFindings(config: Pick<ResolvedConfig, "k3s" | "dns">): Finding[] {
  const out: Finding[] = [];
  for (const [name, ip] of Object.entries(config.dns.hosts)) {
    if (isCanonicalIp(ip) && nodeAddressProblem(ip)?.startsWith("a loopback")) {
      out.push({ path: ["dns", "hosts", name], warning: true, message: `${ip} is a loopback address: a pod resolving ${name} reaches itself, not the host that serves it; name the host's network address` });
    }
  }
  config.dns.upstreams.forEach((ip, i) => {
    const why = podUnreachableUpstream(ip, config);
    if (why) out.push({ path: ["dns", "upstreams", i], message: why });
  });
  for (const [domain, stub] of Object.entries(config.dns.stubDomains)) {
    stub.servers.forEach((server, j) => {
      const why = podUnreachableUpstream(dnsHost(server), config);
      if (why) out.push({ path: ["dns", "stubDomains", domain, "servers", j], message: why });
    });
  }
  return out;
}

const withExtra = (config: ResolvedConfig, flag: string): Array<["extraServerConfig" | "extraAgentConfig", unknown]> =>
  (["extraServerConfig", "extraAgentConfig"] as const).filter((m) => flag in config.k3s[m]).map((m) => [m, config.k3s[m][flag]]);

/**
 * The fault kind in CNI settings: a backend or a plugin without its companion flags, or a flag the
 * chosen CNI makes unworkable. Read on the resolved config, so validation and the policy pack (on
 * the registered config) apply the same rules: with flannel the resolved flannelBackend is none
 * only when written so; with another CNI it is something else, or flannelIpv6Masq true, only when
 * written so (defaultFlannelBackend, defaultFlannelIpv6Masq).
 */
export function cniFindings(config: ResolvedConfig): Finding[] {
  const { k3s } = config;
  const out: Finding[] = [];
  const cni = cniType(k3s);
  const refuse = (path: ReadonlyArray<string | number>, message: string) => out.push({ path, message });
  const warn = (path: ReadonlyArray<string | number>, message: string) => out.push({ path, message, warning: true });

  if (cni === "flannel" && k3s.flannelBackend === "none") {
    refuse(
      ["k3s", "flannelBackend"],
      "none turns flannel off without saying what replaces it: K3s would keep its own network-policy controller, which collides with the replacement CNI's (docs.k3s.io basic-network-options \"Custom CNI\": set disable-network-policy as well), and CIS hardening forbids turning it off by hand. Set k3s.cni: { type: none } (your own CNI; renders flannel-backend none with disable-network-policy) or { type: cilium }, and remove flannelBackend",
    );
  }
  if (cni !== "flannel" && k3s.flannelBackend !== "none") {
    refuse(["k3s", "flannelBackend"], `${k3s.flannelBackend} is a flannel backend, but k3s.cni.type is ${cni}, which runs without flannel: remove flannelBackend`);
  }
  if (cni !== "flannel" && k3s.flannelIpv6Masq) {
    refuse(["k3s", "flannelIpv6Masq"], `is a flannel option, but k3s.cni.type is ${cni}${cni === "cilium" ? " (Cilium masquerades IPv6 itself: enableIPv6Masquerade)" : ""}`);
  }

  // Flags the CNI choice decides; set by hand they either collide with it or break Services.
  if (cni !== "flannel") {
    for (const [map] of withExtra(config, "disable-network-policy")) refuse(["k3s", map, "disable-network-policy"], `is set by k3s.cni.type ${cni} (K3s' policy controller is off); remove it`);
  }
  if (cni !== "flannel") {
    for (const flag of ["flannel-iface", "flannel-conf", "flannel-cni-conf"]) {
      for (const [map] of withExtra(config, flag)) refuse(["k3s", map, flag], `is a flannel setting, but k3s.cni.type is ${cni} (flannel is off): it has no effect`);
    }
  }
  if (cni === "none") {
    for (const [map, value] of withExtra(config, "egress-selector-mode")) {
      if (value === "pod") warn(["k3s", map, "egress-selector-mode"], "pod does not work with a CNI that allocates pod addresses itself instead of the nodes' PodCIDR (docs.k3s.io basic-network-options \"Control-Plane Egress Selector configuration\"): keep it only if yours uses the PodCIDR");
    }
  }
  if (cni === "cilium") {
    // docs.k3s.io basic-network-options "Control-Plane Egress Selector configuration": pod mode
    // "will not work when using a CNI that uses its own IPAM" (Cilium's cluster-pool IPAM).
    for (const [map, value] of withExtra(config, "egress-selector-mode")) {
      if (value === "pod") refuse(["k3s", map, "egress-selector-mode"], "pod does not work with a CNI that allocates pod addresses itself (Cilium's cluster-pool IPAM; docs.k3s.io basic-network-options \"Control-Plane Egress Selector configuration\"): use agent (the default) or cluster");
    }
    k3s.clusterCidr.forEach((range, i) => {
      if (prefixLength(range) >= NODE_MASK[ipFamily(range)]) {
        refuse(["k3s", "clusterCidr", ...(k3s.clusterCidr.length > 1 ? [i] : [])], `${range} is too small for Cilium's cluster pool: each node takes a /${NODE_MASK[ipFamily(range)]} from it`);
      }
    });
    for (const [map] of withExtra(config, "lb-server-port")) {
      refuse(["k3s", map, "lb-server-port"], `Cilium reaches the API through K3s' node-local load balancer on 127.0.0.1:${LOCAL_API_PORT} (the pod network does not exist yet when it starts); a different port leaves it without an API`);
    }
  }

  // NodeLocal DNSCache listens on the cluster DNS address and relies on kube-proxy's iptables rules
  // for it (components/dns/render.ts); a CNI that replaces kube-proxy load-balances that address in
  // eBPF before the host sees it (docs.cilium.io network/kubernetes/local-redirect-policy "Node-local DNS cache").
  if (cniReplacesKubeProxy(k3s) && config.dns.nodeLocal.enabled) {
    const off = cni === "cilium" ? "k3s.cni.kubeProxyReplacement: false" : "k3s.cni.replacesKubeProxy: false";
    refuse(["dns", "nodeLocal", "enabled"], `NodeLocal DNSCache intercepts the cluster DNS address through kube-proxy's iptables rules, which a CNI replacing kube-proxy bypasses: pods would never reach it (Cilium's Local Redirect Policy is the way there); turn it off or set ${off}`);
  }

  // flannel backends: host-gw routes pod subnets through node addresses, so every node needs direct L2 reach.
  if (cni === "flannel" && k3s.flannelBackend === "host-gw" && (k3s.flannelExternalIp || k3s.vpn)) {
    refuse(["k3s", "flannelBackend"], "host-gw routes pods through the nodes' addresses and needs direct layer-2 connectivity between all nodes (docs.k3s.io basic-network-options): nodes across networks need wireguard-native");
  }

  // Nodes across networks (docs.k3s.io networking/distributed-multicloud).
  if (k3s.flannelExternalIp) {
    if (cni !== "flannel") refuse(["k3s", "flannelExternalIp"], `is a flannel option, but k3s.cni.type is ${cni}`);
    else if (k3s.flannelBackend === "vxlan") {
      const message = "sends pod traffic between the nodes' external addresses in plain VXLAN, and K3s warns the VXLAN port must never face the internet (docs.k3s.io installation/requirements): use flannelBackend wireguard-native (encrypted; docs.k3s.io networking/distributed-multicloud)";
      (config.environment === "prod" ? refuse : warn)(["k3s", "flannelExternalIp"], message);
    }
    const families = clusterFamilies(k3s);
    config.nodes.forEach((node, i) => {
      if (!node.externalIp?.length) {
        refuse(["nodes", i, "externalIp"], `node ${node.name}: k3s.flannelExternalIp sends pod traffic to every node's external address, but this node has none (flannel would fall back to its internal address, which nodes on other networks cannot reach): set externalIp`);
        return;
      }
      // flannel keeps one public address per family of the pod network (its public-ip and
      // public-ipv6 node annotations); a family without an external address falls back to the internal one.
      const missing = families.filter((f) => !node.externalIp!.some((ip) => ipFamily(ip) === f));
      if (missing.length) {
        refuse(["nodes", i, "externalIp"], `node ${node.name}: the pod network (k3s.clusterCidr) has ${missing.map((f) => (f === "ipv6" ? "IPv6" : "IPv4")).join(" and ")} but externalIp has no such address: flannel would send that family's pod traffic to the node's internal address, which nodes on other networks cannot reach; add one`);
      }
    });
    if (k3s.vpn) refuse(["k3s", "vpn"], "the Tailscale mesh and flannelExternalIp are two transports for the same traffic: choose one");
  }
  if (k3s.vpn && cni !== "flannel") {
    refuse(["k3s", "vpn"], `K3s' Tailscale integration moves flannel onto the tailnet (node-ip and flannel interface); with k3s.cni.type ${cni} there is no flannel to move`);
  }
  if ((k3s.flannelExternalIp || k3s.vpn) && k3s.datastore.type === "etcd" && config.nodes.filter((n) => n.role === "server").length > 1) {
    warn(["k3s", k3s.vpn ? "vpn" : "flannelExternalIp"], "embedded etcd is not supported across networks: all servers must reach each other on their private addresses (docs.k3s.io networking/distributed-multicloud); keep the servers in one location and spread only agents");
  }
  // Set by hand, these have no effect: without kube-proxy nothing reads kube-proxy-arg; with vpn-auth
  // K3s replaces the flannel interface with the tailnet's (k3s-io/k3s pkg/agent/config "Overwrite
  // nodeip and flannel interface").
  if (cniReplacesKubeProxy(k3s)) {
    for (const [map] of withExtra(config, "kube-proxy-arg")) refuse(["k3s", map, "kube-proxy-arg"], `has no effect: k3s.cni.type ${cni} replaces kube-proxy (K3s runs with disable-kube-proxy), so no kube-proxy reads it; remove it`);
  }
  if (k3s.vpn) {
    for (const [map] of withExtra(config, "flannel-iface")) refuse(["k3s", map, "flannel-iface"], "has no effect: with k3s.vpn K3s replaces the flannel interface with the tailnet's (k3s-io/k3s pkg/agent/config); remove it");
    config.nodes.forEach((node, i) => {
      if (node.externalIp?.length) warn(["nodes", i, "externalIp"], `node ${node.name}: with k3s.vpn K3s replaces node-external-ip with the node's tailnet address (k3s-io/k3s pkg/agent/config "VPN provider overrides node-external-ip"); this externalIp reaches only tls-san and the firewall`);
      if (node.nodeIp?.length) warn(["nodes", i, "nodeIp"], `node ${node.name}: with k3s.vpn K3s replaces node-ip with the node's tailnet address (k3s-io/k3s pkg/agent/config); this nodeIp is used only for the SSH-side checks and the firewall`);
    });
  }

  // CIS: K3s' policy controller is off with any CNI but flannel; Cilium enforces NetworkPolicy,
  // a CNI of your own must be said to (k3s.cni.networkPolicyEnforcedBy).
  const enforcer = networkPolicyEnforcer(k3s);
  if (enforcer === null) {
    const message = "K3s' NetworkPolicy controller is off with your own CNI: say what enforces NetworkPolicy (networkPolicyEnforcedBy: e.g. \"calico 3.29\"), or the tenants' default-deny policies may enforce nothing";
    if (k3s.hardening === "cis") refuse(["k3s", "cni", "networkPolicyEnforcedBy"], `${message} (k3s.hardening is cis: CIS 5.3.2 expects NetworkPolicies enforced)`);
    else if (config.tenants.some((t) => t.network.defaultDeny)) warn(["k3s", "cni", "networkPolicyEnforcedBy"], message);
  }
  return out;
}

/**
 * The fault kind in pod address allocation: kube-controller-manager (K3s runs it with
 * allocate-node-cidrs) cuts one block per node out of each `k3s.clusterCidr` range, /24 (IPv4) and
 * /64 (IPv6) unless `node-cidr-mask-size*` says otherwise. K3s accepts any pairing; these cannot work
 * (kubernetes v1.31 cmd/kube-controller-manager/app/core.go setNodeCIDRMaskSizes and
 * pkg/controller/nodeipam/ipam/cidrset/cidr_set.go):
 * - `node-cidr-mask-size` on a dual-stack cluster, beside `-ipv4`/`-ipv6`, or the other family's flag
 *   on a single-stack cluster: kube-controller-manager refuses to start;
 * - an IPv6 node block more than 16 bits longer than its range (a /32 cluster CIDR with /64 blocks):
 *   "the node CIDR size is too big", kube-controller-manager refuses to start;
 * - a range no larger than a node block, or with fewer blocks than the stack has nodes: a node
 *   without a block never gets a pod network ("no remaining CIDRs left to allocate").
 * Cilium's own pool (components/cni/render.ts) takes the same default blocks; cniFindings refuses a
 * range too small for it, so that case is named once.
 */
export function podCidrAllocationFindings(config: ResolvedConfig): Finding[] {
  const { k3s } = config;
  const out: Finding[] = [];
  const path = ["k3s", "extraServerConfig", "kube-controller-manager-arg"] as const;
  const args = argMap(k3s.extraServerConfig["kube-controller-manager-arg"]);
  const families = k3s.clusterCidr.map(ipFamily);
  const dualStack = new Set(families).size > 1;
  const flag = (name: string): number | undefined => (args.has(name) ? Number(args.get(name)) : undefined);
  const both = flag("node-cidr-mask-size");
  const perFamily = { ipv4: flag("node-cidr-mask-size-ipv4"), ipv6: flag("node-cidr-mask-size-ipv6") };
  if (both !== undefined && dualStack) {
    out.push({ path, message: "node-cidr-mask-size is not allowed on a dual-stack cluster: kube-controller-manager refuses to start; use node-cidr-mask-size-ipv4 and node-cidr-mask-size-ipv6" });
  } else if (both !== undefined && (perFamily.ipv4 !== undefined || perFamily.ipv6 !== undefined)) {
    out.push({ path, message: "node-cidr-mask-size beside node-cidr-mask-size-ipv4/-ipv6: kube-controller-manager refuses to start; keep one" });
  }
  if (!dualStack) {
    const other = families[0] === "ipv6" ? "ipv4" : "ipv6";
    if (perFamily[other] !== undefined) {
      out.push({ path, message: `node-cidr-mask-size-${other} on a single-stack ${families[0] === "ipv6" ? "IPv6" : "IPv4"} cluster: kube-controller-manager refuses to start; use ${both === undefined ? `node-cidr-mask-size-${families[0]} or ` : ""}node-cidr-mask-size` });
    }
  }
  if (out.length) return out;
  const nodes = config.nodes.length;
  k3s.clusterCidr.forEach((range, i) => {
    const family = ipFamily(range);
    const mask = perFamily[family] ?? both ?? NODE_MASK[family];
    // Named where the user chose the pairing: the mask flag when set, else the range.
    const fromFlag = perFamily[family] !== undefined || both !== undefined;
    const at = fromFlag ? path : ["k3s", "clusterCidr", ...(k3s.clusterCidr.length > 1 ? [i] : [])];
    const prefix = prefixLength(range);
    if (cniType(k3s) === "cilium" && prefix >= NODE_MASK[family]) return; // cniFindings: too small for Cilium's pool
    if (family === "ipv6" && mask - prefix > 16) {
      out.push({ path: at, message: `${range} with /${mask} node blocks: kube-controller-manager allows at most 16 bits between an IPv6 cluster CIDR and its node blocks and refuses to start ("the node CIDR size is too big"); use a /${mask - 16} or longer prefix` });
    } else if (prefix > mask) {
      out.push({ path: at, message: `${range} is smaller than one node's /${mask} pod block: no node would get a pod network` });
    } else if (mask - prefix < 31 && 2 ** (mask - prefix) < nodes) {
      out.push({ path: at, message: `${range} holds ${2 ** (mask - prefix)} node block(s) of /${mask}, but the stack has ${nodes} nodes: the rest would never get a pod network (kube-controller-manager: "no remaining CIDRs left to allocate")` });
    }
  });
  return out;
}

/**
 * The fault kind in IPv6: a pod network whose IPv6 traffic cannot leave. Unique-local pod CIDRs get
 * flannel-ipv6-masq by default (defaultFlannelIpv6Masq); turned off explicitly, or with a global
 * prefix and no masquerade, the replies need routes the cluster does not set up.
 */
export function ipv6EgressFindings(config: ResolvedConfig): Finding[] {
  const { k3s } = config;
  if (cniType(k3s) !== "flannel" || k3s.flannelIpv6Masq) return [];
  const v6 = k3s.clusterCidr.filter((c) => ipFamily(c) === "ipv6");
  return v6.map((range) => ({
    path: ["k3s", "flannelIpv6Masq"],
    warning: true,
    message: isUniqueLocal(range)
      ? `is false, but clusterCidr ${range} is unique-local (fc00::/7): pods send from it and no reply finds its way back unless your own router masquerades it (docs.k3s.io basic-network-options): set flannelIpv6Masq: true`
      : `is off: pods send IPv6 traffic from their own addresses in ${range}; route ${range} to the cluster's nodes, or set flannelIpv6Masq: true (docs.k3s.io basic-network-options)`,
  }));
}

/** Node addresses other nodes reach across networks: its externalIp list (empty when unset; validation requires it with flannelExternalIp). */
export function externalAddressesOf(node: NodeConfig): string[] {
  return node.externalIp?.length ? [...node.externalIp] : [];
}
