import { stringify } from "yaml";
import type { NodeContext } from "../config/context";
import { splitNodeLabels } from "../config/labels";
import type { FlagValue, K3sConfig } from "../config/schema";
import { acrossNetworks, cniReplacesKubeProxy, cniType, externalAddressesOf } from "../config/network-rules";
import { apiServerArgs, controllerManagerArgs, kubeletArgs } from "./args";
import { generatedHeader, PATHS } from "./paths";

/** The flags of /etc/rancher/k3s/config.yaml. Pure: config in, flag map / text out. */

export type FlagMap = Record<string, FlagValue>;

/** Adds `extra` to `base`: list values append, scalar values replace. */
export function mergeFlags(base: FlagMap, extra: Record<string, FlagValue>): FlagMap {
  const out: FlagMap = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    if (Array.isArray(current)) out[key] = [...current, ...(Array.isArray(value) ? value : [String(value)])];
    else out[key] = value;
  }
  return out;
}

function compact(map: Record<string, FlagValue | undefined>): FlagMap {
  const out: FlagMap = {};
  for (const [key, value] of Object.entries(map)) {
    if (value === undefined || value === false) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out[key] = value;
  }
  return out;
}

/**
 * A per-family value as K3s reads it: `10.42.0.0/16,2001:db8:42::/56` (docs.k3s.io, "Dual-stack
 * (IPv4 + IPv6) Networking"); entries are canonical (schema), so the join is the whole escaping.
 */
export function perFamily(values: readonly string[] | undefined): string | undefined {
  return values && values.length > 0 ? values.join(",") : undefined;
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/**
 * The flags the k3s concern puts in the node's config.yaml (the user's extra*Config last).
 * Holds no secret: the token and datastore endpoint go into the secrets drop-in. Flags of other
 * concerns (e.g. secrets encryption) are merged after these by the node plan; `extra` does the
 * same for a caller that wants the final map without the plan.
 */
export function configYamlObject(ctx: NodeContext, extra: Record<string, FlagValue> = {}): FlagMap {
  const { config, node, role, topology, cis } = ctx;
  const { k3s } = config;
  const labels = splitNodeLabels(node.labels).registration;

  const common: Record<string, FlagValue | undefined> = {
    "node-name": node.name,
    // One address per family, comma-joined as K3s takes dual-stack values (one value stays a plain string).
    "node-ip": perFamily(node.nodeIp),
    "node-external-ip": perFamily(node.externalIp),
    "node-label": Object.entries(labels).map(([k, v]) => `${k}=${v}`),
    "node-taint": node.taints,
    "selinux": k3s.selinux,
    "prefer-bundled-bin": k3s.preferBundledBin,
    // CoreDNS forwards the root zone to the kubelet's resolv.conf: dns.upstreams lands there.
    "resolv-conf": config.dns.upstreams.length > 0 ? PATHS.upstreamResolvConf : undefined,
    "protect-kernel-defaults": cis,
    "kubelet-arg": kubeletArgs(ctx),
    // Runtimes (agent flags: every node runs an agent).
    "default-runtime": k3s.defaultRuntime,
    "snapshotter": k3s.snapshotter,
    "docker": k3s.docker,
  };

  if (role === "agent") {
    return mergeFlags(mergeFlags(compact({ server: topology.agentJoinUrl, ...common }), k3s.extraAgentConfig), extra);
  }

  const ds = k3s.datastore;
  const server: Record<string, FlagValue | undefined> = {
    "cluster-init": role === "first-server" && ds.type === "etcd",
    "server": role === "server" && ds.type === "etcd" ? topology.serverJoinUrl : undefined,
    "datastore-cafile": ds.type === "external" ? ds.caFile : undefined,
    "datastore-certfile": ds.type === "external" ? ds.certFile : undefined,
    "datastore-keyfile": ds.type === "external" ? ds.keyFile : undefined,
    ...common,
    "write-kubeconfig-mode": "0600",
    // Across networks, agents and clients reach a server at its external address: it must be in the certificate.
    "tls-san": unique([topology.apiEndpoint, ...k3s.tlsSan, ...(acrossNetworks(k3s) ? externalAddressesOf(node) : [])]),
    "cluster-cidr": perFamily(k3s.clusterCidr),
    "service-cidr": perFamily(k3s.serviceCidr),
    "cluster-dns": perFamily(k3s.clusterDns),
    "cluster-domain": k3s.clusterDomain,
    "flannel-backend": k3s.flannelBackend,
    "flannel-ipv6-masq": k3s.flannelIpv6Masq,
    "flannel-external-ip": k3s.flannelExternalIp,
    // Any CNI but flannel brings its own policy engine: K3s' controller would collide with it
    // (docs.k3s.io basic-network-options "Custom CNI"); kube-proxy goes only when the CNI replaces it.
    "disable-network-policy": cniType(k3s) !== "flannel" || undefined,
    "disable-kube-proxy": cniReplacesKubeProxy(k3s) || undefined,
    "disable": k3s.disable,
    // Cluster-wide, set on servers only (K3s docs: a server flag, agents follow).
    "embedded-registry": k3s.embeddedRegistry,
    "kube-apiserver-arg": apiServerArgs(ctx),
    "kube-controller-manager-arg": controllerManagerArgs(ctx),
    ...(ds.type === "etcd" ? etcdSnapshotFlags(k3s) : {}),
  };
  return mergeFlags(mergeFlags(compact(server), k3s.extraServerConfig), extra);
}

/** Scheduled snapshot flags from k3s.etcdSnapshots (credentials go to the secrets drop-in). */
export function etcdSnapshotFlags(k3s: K3sConfig): Record<string, FlagValue | undefined> {
  const e = k3s.etcdSnapshots;
  if (!e) return {};
  const s3 = e.s3;
  return {
    "etcd-snapshot-schedule-cron": e.scheduleCron,
    "etcd-snapshot-retention": e.retention,
    "etcd-snapshot-compress": e.compress,
    "etcd-snapshot-dir": e.dir,
    ...(s3
      ? {
          "etcd-s3": true,
          "etcd-s3-endpoint": s3.endpoint,
          "etcd-s3-endpoint-ca": s3.endpointCa,
          "etcd-s3-bucket": s3.bucket,
          "etcd-s3-folder": s3.folder,
          "etcd-s3-region": s3.region,
          "etcd-s3-skip-ssl-verify": s3.skipSslVerify,
          "etcd-s3-insecure": s3.insecure,
          "etcd-s3-timeout": s3.timeout,
        }
      : {}),
  };
}

/** config.yaml's text for a node from its final flag map. */
export function renderConfigYaml(nodeName: string, flags: FlagMap): string {
  return generatedHeader("K3s config.yaml", nodeName) + stringify(flags, { lineWidth: 0 });
}
