import { classifyNodeLabel } from "./labels";
import { cidrContains, cidrsOverlap, ipFamily, IpFamily, isCanonicalIp, prefixLength } from "./net";
import type { NodeConfig, StackConfig } from "./schema";

/**
 * Predicates that both config validation (config/validate.ts, before any host is touched) and
 * the policy pack (policies/policies.ts, on what the program registers) apply. Written once
 * here; each caller words its own message and path. Pure.
 */

/** An EncryptionConfiguration resource group covers Secrets: `secrets`, `*.*` or `*.` (the core group). */
export function coversSecrets(resources: readonly string[]): boolean {
  return resources.some((r) => r === "secrets" || r === "*.*" || r === "*.");
}

// ---------------------------------------------------------------- networks (single- and dual-stack)

/**
 * Network rules, single-stack and dual-stack alike. Facts (docs.k3s.io, Networking → "Basic
 * Network Options", sections "Dual-stack (IPv4 + IPv6) Networking" and "Single-stack IPv6
 * Networking"; k3s-io/docs docs/networking/basic-network-options.md):
 * - dual-stack needs a dual-stack `cluster-cidr` and `service-cidr` on every server, and can only
 *   be chosen when the cluster is first created (not added to an IPv4-only cluster later);
 * - every node needs `node-ip` with an address of each family: K3s does not auto-detect node
 *   addresses on a dual-stack cluster and refuses to start with "cluster-cidr and node-ip must
 *   share the same IP version (IPv4, IPv6 or dual-stack)" (k3s-io/k3s#11735);
 * - with IPv6 as the primary family (listed first, or IPv6-only) node-ip must be set explicitly,
 *   the IPv6 address first (the kubelet otherwise takes IPv4 as primary);
 * - the largest supported `service-cidr` is /12 for IPv4 and /112 for IPv6;
 * - `flannel-ipv6-masq` applies only to dual-stack or IPv6-only clusters, with any backend but none.
 * Dual-stack is stable from v1.23.7+k3s1 and IPv6-only from v1.22.9+k3s1: both predate the oldest
 * release k3s-platform supports (flags.ts OLDEST_SUPPORTED), so nothing here is version-gated.
 *
 * Values are read as lists (the schema's output); a plain string (an older pack reading older
 * state) is taken as a one-entry list. Findings name the field and, for two-entry values, the
 * index, so validation builds config paths and the policy pack builds messages from one source.
 */

type OneOrMore = string | readonly string[] | undefined;

/** A field value as a list: `undefined` → [], `"a"` → ["a"]. */
export function asList(value: OneOrMore): string[] {
  return value === undefined ? [] : typeof value === "string" ? [value] : [...value];
}

const FAMILY_NAME: Record<IpFamily, string> = { ipv4: "IPv4", ipv6: "IPv6" };
const familiesOf = (values: readonly string[]): IpFamily[] => values.map(ipFamily);
const describe = (families: readonly IpFamily[]) => families.map((f) => FAMILY_NAME[f]).join(" + ");

/** The cluster's IP families in clusterCidr order (primary first): ["ipv4"], ["ipv6"], or both. */
export function clusterFamilies(k3s: { clusterCidr: OneOrMore }): IpFamily[] {
  return familiesOf(asList(k3s.clusterCidr));
}

/** "dual-stack", "IPv4-only" or "IPv6-only", for messages. */
export function stackName(families: readonly IpFamily[]): string {
  return families.length === 2 ? `dual-stack (${describe(families)})` : `${FAMILY_NAME[families[0] ?? "ipv4"]}-only`;
}

export interface NetworkFinding {
  field: "clusterCidr" | "serviceCidr" | "clusterDns" | "flannelIpv6Masq";
  /** Entry of a two-entry value; undefined for a one-entry value or the whole field. */
  index?: number;
  message: string;
}

type Networks = { clusterCidr: OneOrMore; serviceCidr: OneOrMore; clusterDns?: OneOrMore };

/** Largest service-cidr K3s supports, per family (docs.k3s.io, dual-stack section). */
export const LARGEST_SERVICE_CIDR: Record<IpFamily, number> = { ipv4: 12, ipv6: 112 };

const at = (list: readonly string[], i: number) => (list.length > 1 ? i : undefined);

/**
 * Findings on the cluster's networks: serviceCidr families (same as clusterCidr, same order),
 * pod/service overlaps per family, service CIDR size, each clusterDns inside the serviceCidr of
 * its family.
 */
export function clusterNetworkFindings(k3s: Networks): NetworkFinding[] {
  const pods = asList(k3s.clusterCidr);
  const services = asList(k3s.serviceCidr);
  const out: NetworkFinding[] = [];
  const podFamilies = familiesOf(pods);
  const serviceFamilies = familiesOf(services);
  if (podFamilies.join() !== serviceFamilies.join()) {
    out.push({
      field: "serviceCidr",
      message: `is ${describe(serviceFamilies)}, but clusterCidr is ${describe(podFamilies)}: both need the same IP families in the same order (the first is the primary family)`,
    });
  }
  services.forEach((service, i) => {
    for (const pod of pods) if (cidrsOverlap(pod, service)) out.push({ field: "serviceCidr", index: at(services, i), message: `overlaps clusterCidr ${pod}` });
    const family = ipFamily(service);
    if (prefixLength(service) < LARGEST_SERVICE_CIDR[family]) {
      out.push({ field: "serviceCidr", index: at(services, i), message: `${service} is larger than K3s supports for ${FAMILY_NAME[family]} (at most /${LARGEST_SERVICE_CIDR[family]})` });
    }
  });
  const dns = asList(k3s.clusterDns);
  dns.forEach((ip, i) => {
    const range = services.find((s) => ipFamily(s) === ipFamily(ip));
    if (!range) out.push({ field: "clusterDns", index: at(dns, i), message: `${ip} is ${FAMILY_NAME[ipFamily(ip)]}, but serviceCidr ${services.join(", ")} has no ${FAMILY_NAME[ipFamily(ip)]} CIDR` });
    else if (!cidrContains(range, ip)) out.push({ field: "clusterDns", index: at(dns, i), message: `${ip} is outside serviceCidr ${range}` });
  });
  return out;
}

/** `flannel-ipv6-masq` set where it has no effect (no IPv6 pod network, or flannel off). */
export function flannelIpv6MasqFinding(k3s: Networks & { flannelIpv6Masq?: boolean; flannelBackend: string; cni?: { type: string } }): NetworkFinding | undefined {
  if (!k3s.flannelIpv6Masq) return undefined;
  if (!clusterFamilies(k3s).includes("ipv6")) return { field: "flannelIpv6Masq", message: "applies only to dual-stack or IPv6-only clusters: clusterCidr has no IPv6 CIDR" };
  // With another CNI (flannel off) network-rules.ts cniFindings names k3s.cni instead.
  if (k3s.flannelBackend === "none" && !k3s.cni) return { field: "flannelIpv6Masq", message: "is a flannel option, but flannelBackend is none" };
  return undefined;
}

/** The pod CIDR and the service CIDR overlap (any family). */
export function podServiceCidrsOverlap(k3s: Networks): boolean {
  return clusterNetworkFindings(k3s).some((f) => f.field === "serviceCidr" && f.message.startsWith("overlaps"));
}

/** Every cluster DNS address lies inside the service CIDR of its family (kubelet points pods at it). */
export function clusterDnsInServiceCidr(k3s: Networks): boolean {
  return !clusterNetworkFindings(k3s).some((f) => f.field === "clusterDns");
}

type NodeNetworking = { name: string; host: string; nodeIp?: OneOrMore; externalIp?: OneOrMore };

export interface NodeAddressInNetwork {
  nodeIndex: number;
  node: string;
  field: "nodeIp" | "externalIp" | "host";
  /** Entry of a two-entry nodeIp/externalIp. */
  index?: number;
  address: string;
  network: "clusterCidr" | "serviceCidr";
  range: string;
}

/** Every node address (nodeIp, externalIp, host when it is an IP) inside a pod or service CIDR. */
export function nodeAddressesInClusterNetworks(config: { k3s: Networks; nodes: readonly NodeNetworking[] }): NodeAddressInNetwork[] {
  const out: NodeAddressInNetwork[] = [];
  config.nodes.forEach((node, nodeIndex) => {
    const nodeIps = asList(node.nodeIp);
    const externalIps = asList(node.externalIp);
    const addresses: Array<[NodeAddressInNetwork["field"], string, number | undefined]> = [
      ...nodeIps.map((a, i): [NodeAddressInNetwork["field"], string, number | undefined] => ["nodeIp", a, at(nodeIps, i)]),
      ...externalIps.map((a, i): [NodeAddressInNetwork["field"], string, number | undefined] => ["externalIp", a, at(externalIps, i)]),
      ["host", node.host, undefined],
    ];
    for (const [field, address, index] of addresses) {
      if (!isCanonicalIp(address)) continue;
      for (const network of ["clusterCidr", "serviceCidr"] as const) {
        for (const range of asList(config.k3s[network])) {
          if (cidrContains(range, address)) out.push({ nodeIndex, node: node.name, field, index, address, network, range });
        }
      }
    }
  });
  return out;
}

export interface NodeFamilyFinding {
  nodeIndex: number;
  node: string;
  field: "nodeIp" | "externalIp";
  index?: number;
  message: string;
}

/**
 * A dual-stack cluster is dual-stack on every node: each node's nodeIp has exactly the cluster's
 * families in the cluster's order (K3s refuses to start otherwise, and does not auto-detect node
 * addresses on dual-stack or IPv6-primary clusters; sources in the section comment above). An
 * IPv4-only cluster keeps today's rule: nodeIp optional, IPv4 when set. externalIp: only families
 * the cluster has.
 */
export function nodeFamilyFindings(config: { k3s: Networks; nodes: readonly NodeNetworking[] }): NodeFamilyFinding[] {
  const cluster = clusterFamilies(config.k3s);
  const stack = stackName(cluster);
  const out: NodeFamilyFinding[] = [];
  config.nodes.forEach((node, nodeIndex) => {
    const base = { nodeIndex, node: node.name };
    const nodeIps = asList(node.nodeIp);
    const families = familiesOf(nodeIps);
    const explicitNeeded = cluster.length === 2 || cluster[0] === "ipv6";
    if (nodeIps.length === 0) {
      if (explicitNeeded) {
        const want = cluster.length === 2 ? `one ${describe(cluster)} address each, in that order` : "its IPv6 address";
        out.push({ ...base, field: "nodeIp", message: `the cluster is ${stack}: set nodeIp to ${want} (K3s does not auto-detect node addresses here and refuses to start when node-ip and cluster-cidr differ in IP version)` });
      }
    } else if (families.join() !== cluster.join()) {
      const sameSet = families.length === cluster.length && cluster.every((f) => families.includes(f));
      out.push({
        ...base,
        field: "nodeIp",
        message: sameSet
          ? `lists ${describe(families)}, but clusterCidr lists ${describe(cluster)}: list the node's addresses in the cluster's family order (the first is the primary address)`
          : `is ${describe(families)}, but the cluster is ${stack}: node-ip needs ${cluster.length === 2 ? "one address of each family" : `an ${FAMILY_NAME[cluster[0]!]} address`} (K3s: "cluster-cidr and node-ip must share the same IP version")`,
      });
    }
    const externalIps = asList(node.externalIp);
    externalIps.forEach((ip, i) => {
      if (!cluster.includes(ipFamily(ip))) {
        out.push({ ...base, field: "externalIp", index: at(externalIps, i), message: `${ip} is ${FAMILY_NAME[ipFamily(ip)]}, but the cluster is ${stack}` });
      }
    });
  });
  return out;
}

/** Node labels NodeRestriction refuses at registration (kubernetes.io / k8s.io namespaces): K3s would not start. */
export function restrictedNodeLabels(nodes: readonly Pick<NodeConfig, "name" | "labels">[]): Array<{ nodeIndex: number; node: string; key: string }> {
  return nodes.flatMap((node, nodeIndex) =>
    Object.keys(node.labels)
      .filter((key) => classifyNodeLabel(key) === "restricted")
      .map((key) => ({ nodeIndex, node: node.name, key })),
  );
}

// ---------------------------------------------------------------- servers and quorum

/**
 * Server quorum, judged on the whole change an `up` makes (docs/removing-and-replacing-nodes.md).
 * An armed entry (`decommission: true`) changes nothing on its host: K3s keeps running there, as
 * an etcd member, until the entry is deleted, and then the engine removes it after every create
 * and update of that `up` (deletes run last), so a server added in the same change has joined
 * before the old one leaves. Hence two counts:
 *  - standing after this `up`: every server entry, armed ones included (what prod must keep odd);
 *  - left once the armed ones' entries are deleted: the entries not armed.
 * A prod replacement is therefore two `up`s with three servers standing after each: arm the old
 * server alone, then add the new one and delete the old entry in one change. Adding first would
 * leave four standing; deleting without adding, two. Pure; validation (config/validate.ts) and the
 * policy pack (policies/policies.ts) both call these, each wording only its own prefix.
 */
export interface ServerCounts {
  /** Server entries, armed ones included: the servers running after this `up`. */
  standing: number;
  /** Servers armed for removal (`decommission: true`), with their entry index. */
  armed: Array<{ node: Pick<NodeConfig, "name">; index: number }>;
  /** Servers left once the armed entries are deleted. */
  staying: number;
}

export function serverCounts(config: Pick<StackConfig, "nodes">): ServerCounts {
  const servers = config.nodes.map((node, index) => ({ node, index })).filter(({ node }) => node.role === "server");
  const armed = servers.filter(({ node }) => node.decommission === true);
  return { standing: servers.length, armed, staying: servers.length - armed.length };
}

/** How a prod change reaches an odd number of servers, for a message that would otherwise stop at "no". */
const REPLACE_PATH =
  "to replace a server, arm the old one alone (decommission: true, pulumi up: three keep running), then add the new server and delete the old entry in one change (the new server joins before the old one is removed)";

/**
 * Prod's server count after this `up` (the pack's `prod-server-quorum`): at least `minServers`,
 * an odd number. Each message names the armed servers it counted and the path that passes.
 */
export function prodServerCountFindings(config: Pick<StackConfig, "nodes">, minServers: number): string[] {
  const { standing, armed } = serverCounts(config);
  const still = armed.length ? ` (counting ${armed.map((a) => a.node.name).join(", ")}: armed, ${armed.length === 1 ? "it keeps" : "they keep"} running until ${armed.length === 1 ? "its entry is" : "their entries are"} deleted)` : "";
  const out: string[] = [];
  if (standing < minServers) {
    out.push(`prod has ${standing} server(s) after this up${still}; at least ${minServers} are required: if a server's entry was deleted, add its replacement in this same change (${REPLACE_PATH})`);
  }
  if (standing % 2 === 0) {
    out.push(
      `prod has ${standing} servers after this up${still}; use an odd number so etcd keeps quorum: ${armed.length ? "add a replacement in the change that deletes the armed entry, not while the armed server still runs" : REPLACE_PATH}`,
    );
  }
  return out;
}

/**
 * Refusals and advice for `decommission` (before any host is touched): the last server; more
 * servers armed at once than etcd can lose (floor((n-1)/2) of n: a member stopped before K3s
 * removed it still counts towards quorum; the teardowns then run one server at a time). In prod,
 * an armed server whose removal alone would leave an even number is advice, not a refusal:
 * arming stops nothing, and deleting the entry is judged then (prodServerCountFindings), so the
 * advice names the change that passes. `advise` receives it (validation warns; the pack, whose
 * levels are refusals, does not take advice).
 */
export function decommissionChecks(
  config: StackConfig,
  report: (path: ReadonlyArray<string | number>, message: string) => void,
  advise: (path: ReadonlyArray<string | number>, message: string) => void = () => {},
): void {
  const { standing, armed, staying } = serverCounts(config);
  if (armed.length === 0) return;
  const tolerated = Math.floor((standing - 1) / 2);
  for (const { node, index } of armed) {
    const path = ["nodes", index, "decommission"];
    if (staying === 0) {
      report(path, `decommissioning ${node.name} leaves no server; a cluster needs at least one (remove the whole stack with pulumi destroy instead)`);
    } else if (config.k3s.datastore.type === "etcd" && armed.length > tolerated) {
      report(
        path,
        `${armed.length} of ${standing} servers are decommissioned at once; etcd keeps quorum with at most ${tolerated} leaving together: ${
          tolerated === 0
            ? "add a server first, then decommission one"
            : `decommission at most ${tolerated}, delete ${tolerated === 1 ? "its entry" : "their entries"} (they leave one at a time), then the next`
        }`,
      );
    } else if (config.environment === "prod" && staying % 2 === 0) {
      advise(
        path,
        `${node.name} is armed: deleting its entry alone would leave ${staying} servers in prod, which is refused (an even number); delete it in the change that adds its replacement (role: server: it joins first, then ${node.name} is removed, and ${staying + 1} stay)${staying >= 4 ? `, or arm one more server to shrink to ${staying - 1}` : ""}`,
      );
    }
  }
}
