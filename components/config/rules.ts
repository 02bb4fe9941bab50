import { classifyNodeLabel } from "./labels";
import { cidrContains, cidrsOverlap, isCanonicalIp } from "./net";
import type { K3sConfig, NodeConfig } from "./schema";

/**
 * Predicates that both config validation (config/validate.ts, before any host is touched) and
 * the policy pack (policies/policies.ts, on what the program registers) apply. Written once
 * here; each caller words its own message and path. Pure.
 */

/** An EncryptionConfiguration resource group covers Secrets: `secrets`, `*.*` or `*.` (the core group). */
export function coversSecrets(resources: readonly string[]): boolean {
  return resources.some((r) => r === "secrets" || r === "*.*" || r === "*.");
}

type Networks = Pick<K3sConfig, "clusterCidr" | "serviceCidr">;

/** The pod CIDR and the service CIDR overlap. */
export function podServiceCidrsOverlap(k3s: Networks): boolean {
  return cidrsOverlap(k3s.clusterCidr, k3s.serviceCidr);
}

/** The cluster DNS address lies inside the service CIDR (kubelet points pods at it). */
export function clusterDnsInServiceCidr(k3s: Pick<K3sConfig, "serviceCidr" | "clusterDns">): boolean {
  return cidrContains(k3s.serviceCidr, k3s.clusterDns);
}

export interface NodeAddressInNetwork {
  nodeIndex: number;
  node: string;
  field: "nodeIp" | "externalIp" | "host";
  address: string;
  network: "clusterCidr" | "serviceCidr";
  range: string;
}

/** Every node address (nodeIp, externalIp, host when it is an IP) inside the pod or service CIDR. */
export function nodeAddressesInClusterNetworks(config: { k3s: Networks; nodes: readonly Pick<NodeConfig, "name" | "host" | "nodeIp" | "externalIp">[] }): NodeAddressInNetwork[] {
  const out: NodeAddressInNetwork[] = [];
  config.nodes.forEach((node, nodeIndex) => {
    const addresses: Array<[NodeAddressInNetwork["field"], string]> = [["nodeIp", node.nodeIp ?? ""], ["externalIp", node.externalIp ?? ""], ["host", node.host]];
    for (const [field, address] of addresses) {
      if (!isCanonicalIp(address)) continue;
      for (const network of ["clusterCidr", "serviceCidr"] as const) {
        const range = config.k3s[network];
        if (cidrContains(range, address)) out.push({ nodeIndex, node: node.name, field, address, network, range });
      }
    }
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
