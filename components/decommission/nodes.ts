import { NodeConfig, ResolvedConfig } from "../config/schema";

/** Nodes the cluster still manages: every entry not armed for removal (`decommission: true`). */
export function managedNodes(config: ResolvedConfig): NodeConfig[] {
  return config.nodes.filter((n) => n.decommission !== true);
}
