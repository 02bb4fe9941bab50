import { cidrContains, cidrSetContains, ipFamily, isCanonicalCidr, isIp } from "./net";
import type { NodeConfig, ResolvedConfig } from "./schema";
import { nodeAddressesOf } from "./topology";

/**
 * Node networks (issue 26): the networks the nodes' addresses come from, as CIDRs, so that what
 * every node is given about "the other nodes" (NO_PROXY, firewall sources) stays the same when a
 * node is added or removed. A list of every node address in those inputs made each membership
 * change restart K3s on every node (NO_PROXY is in the unit's env file, which the install script
 * hashes) and re-run the firewall step everywhere. Pure.
 */

/**
 * The addresses K3s dials a node on, which must bypass the proxy: each nodeIp and externalIp, and
 * the host when it is an address. An SSH host *name* is not among them: K3s registers and dials a
 * node by its node IP (`--node-ip`, else the address of the host); the one name nodes dial, the
 * first server's host as the join URL, is listed in NO_PROXY itself (k3s/install.ts noProxyList).
 */
export function proxyBypassAddresses(node: NodeConfig): string[] {
  return [...new Set([...(isIp(node.host) ? [node.host] : []), ...(node.nodeIp ?? []), ...(node.externalIp ?? [])])];
}

/**
 * Whether a NO_PROXY entry keeps traffic to `address` (an IP) off the proxy, as Go's httpproxy
 * reads NO_PROXY (golang.org/x/net/http/httpproxy, CL 115255 "support CIDR notation and ports"):
 * `*`, the same IP (without a port), or a CIDR containing it. Domain entries never match an IP.
 */
export function noProxyEntryCovers(entry: string, address: string): boolean {
  if (entry === "*") return true;
  if (isCanonicalCidr(entry) && entry.includes("/")) return ipFamily(entry) === ipFamily(address) && cidrContains(entry, address);
  return entry === address;
}

/**
 * Whether some entry of `entries` keeps an address off the proxy: `entries.some((e) =>
 * noProxyEntryCovers(e, address))`, with the entries indexed once (addresses in a Set, CIDRs by
 * family and prefix length: cidrSetContains), because a noProxy may list every node and is asked
 * about every node. Same answers as the pairwise form (property-tested).
 */
export function noProxyCoverage(entries: readonly string[]): (address: string) => boolean {
  if (entries.includes("*")) return () => true;
  const isRange = (e: string) => isCanonicalCidr(e) && e.includes("/");
  const exact = new Set(entries.filter((e) => !isRange(e)));
  const ranges = entries.filter(isRange);
  const inRange = { ipv4: cidrSetContains(ranges.filter((r) => ipFamily(r) === "ipv4")), ipv6: cidrSetContains(ranges.filter((r) => ipFamily(r) === "ipv6")) };
  return (address) => exact.has(address) || inRange[ipFamily(address)](address);
}

/** Each node address no entry of `entries` covers, with its node: what validation names. */
export function uncoveredAddresses(nodes: readonly NodeConfig[], entries: readonly string[], addressesOf: (n: NodeConfig) => string[]): Array<{ node: NodeConfig; index: number; address: string }> {
  const covered = noProxyCoverage(entries);
  return nodes.flatMap((node, index) => addressesOf(node).filter((a) => isIp(a) && !covered(a)).map((address) => ({ node, index, address })));
}

/**
 * The entries NO_PROXY carries for the nodes: the declared `k3s.nodeNetworks`, which the user's
 * `noProxy` follows (validation requires the two together to cover every node address; K3s' proxy
 * docs recommend exactly such CIDRs: docs.k3s.io/advanced "Configuring an HTTP proxy").
 */
export function nodeNetworks(config: ResolvedConfig): string[] {
  return config.k3s.nodeNetworks ?? [];
}

/**
 * Firewall sources for "the cluster's nodes": the declared node networks, else every node's own
 * address (nodeIp, or the host). With networks, adding or removing a node changes no other node's
 * firewall step; without, each membership change re-runs it everywhere (no K3s restart).
 */
export function nodeSources(config: ResolvedConfig): readonly string[] {
  let sources = sourcesCache.get(config);
  if (!sources) {
    const declared = config.k3s.nodeNetworks;
    sources = declared && declared.length > 0 ? [...declared] : [...new Set(config.nodes.flatMap(nodeAddressesOf).filter(isIp))];
    sourcesCache.set(config, sources);
  }
  return sources;
}
/** Per cluster, once: every node's firewall asks for it, and without networks it parses every node's address. */
const sourcesCache = new WeakMap<ResolvedConfig, readonly string[]>();
