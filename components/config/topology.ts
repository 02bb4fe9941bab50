import type { NodeConfig, ResolvedConfig } from "./schema";

/**
 * The cluster's shape, derived from config once: which server initialises the cluster, the
 * role each node plays in it and the addresses nodes join through. Pure.
 */

/** The K3s supervisor/API port (K3s docs, "Inbound rules for K3s nodes"). */
export const API_PORT = 6443;

export type NodeRole = "first-server" | "server" | "agent";

export interface ClusterTopology {
  /** The server every other node joins through. */
  firstServer: NodeConfig;
  /** `https://<first server>:6443`: joining servers register here, not through a VIP that may not exist yet. */
  serverJoinUrl: string;
  /** `https://<apiEndpoint or first server>:6443`: agents register here. */
  agentJoinUrl: string;
  /** Host name or address clients use for the API (kubeconfig, tls-san). */
  apiEndpoint: string;
}

/** The address K3s advertises for a node: its primary nodeIp (the first) when set, else the SSH host. */
export function nodeAddress(node: NodeConfig): string {
  return node.nodeIp?.[0] ?? node.host;
}

/** Every address of a node's own network (each nodeIp, one per family), else the SSH host. */
export function nodeAddressesOf(node: NodeConfig): string[] {
  return node.nodeIp && node.nodeIp.length > 0 ? [...node.nodeIp] : [node.host];
}

/** Throws when there is no server (validation reports that first). */
export function clusterTopology(config: ResolvedConfig): ClusterTopology {
  // A server being decommissioned hands the first slot to the next one (docs/removing-and-replacing-nodes.md "Removing a node").
  const firstServer = config.nodes.find((n) => n.role === "server" && !n.decommission);
  if (!firstServer) throw new Error("no server node (validation should have caught this)");
  const apiEndpoint = config.k3s.apiEndpoint ?? firstServer.host;
  const url = (host: string) => `https://${bracketIpv6(host)}:${API_PORT}`;
  return {
    firstServer,
    apiEndpoint,
    serverJoinUrl: url(nodeAddress(firstServer)),
    // Across networks an agent reaches the first server at its external address (docs.k3s.io
    // networking/distributed-multicloud: "K3S_URL … should use the SERVER_EXTERNAL_IP").
    agentJoinUrl: url(config.k3s.apiEndpoint ?? (config.k3s.flannelExternalIp ? firstServer.externalIp?.[0] : undefined) ?? nodeAddress(firstServer)),
  };
}

/** A node's role in a topology: the first server in config order initialises the cluster. */
export function roleIn(topology: ClusterTopology, node: NodeConfig): NodeRole {
  if (node.role === "agent") return "agent";
  return topology.firstServer.name === node.name ? "first-server" : "server";
}

/** `[addr]` for an IPv6 literal (URLs), the host unchanged otherwise. */
export function bracketIpv6(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
