import type { NodeConfig, ResolvedConfig } from "./schema";
import { ClusterTopology, clusterTopology, NodeRole, roleIn } from "./topology";

/**
 * What every concern renders a node from, computed once per node (topology once per cluster):
 * renderers read `ctx.role` / `ctx.cis` instead of recomputing them from the whole config.
 */
export interface NodeContext {
  config: ResolvedConfig;
  node: NodeConfig;
  /** "first-server" | "server" | "agent" (config/topology.ts). */
  role: NodeRole;
  topology: ClusterTopology;
  /** The SSH user commands run as (node.ssh.user, else ssh.user). */
  sshUser: string;
  /** k3s.hardening is "cis" (the default in prod, resolved in config/validate.ts). */
  cis: boolean;
  /**
   * Whether the `registryAuth` secret is set (registries.yaml then carries credentials and is a
   * secret file). Optional: an addition to the GUIDE contract, defaults to false.
   */
  hasRegistryAuth?: boolean;
}

export function nodeContext(config: ResolvedConfig, node: NodeConfig, topology: ClusterTopology = clusterTopology(config)): NodeContext {
  return {
    config,
    node,
    role: roleIn(topology, node),
    topology,
    sshUser: node.ssh.user ?? config.ssh.user,
    cis: config.k3s.hardening === "cis",
  };
}

/** Every node's context, in config order, sharing one topology. */
export function nodeContexts(config: ResolvedConfig): NodeContext[] {
  const topology = clusterTopology(config);
  return config.nodes.map((n) => nodeContext(config, n, topology));
}
