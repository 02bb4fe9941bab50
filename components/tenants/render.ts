import type * as k8s from "@pulumi/kubernetes";
import { ResolvedConfig, TenantConfig } from "../config/schema";
import { API_PORT, nodeAddress } from "../config/topology";
import { KubeObject, MANAGED_BY } from "../kube/objects";

/**
 * Tenant namespaces, pure: a Namespace with Pod Security labels, its ResourceQuota, LimitRange
 * and NetworkPolicies (default deny + the allows K3s needs), as Kubernetes objects.
 */

type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;
type Peer = k8s.types.input.networking.v1.NetworkPolicyPeer;
type PolicyPort = k8s.types.input.networking.v1.NetworkPolicyPort;

export const TENANT_LABEL = "k3s-platform.io/tenant";

function nsSelector(name: string): k8s.types.input.meta.v1.LabelSelector {
  return { matchLabels: { "kubernetes.io/metadata.name": name } };
}

function quantities(entries: Array<[string, string | number | undefined]>): Record<string, string> {
  return Object.fromEntries(entries.filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
}

export function renderNamespace(t: TenantConfig): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: t.namespace,
      labels: {
        ...t.labels,
        ...MANAGED_BY,
        [TENANT_LABEL]: "true",
        "pod-security.kubernetes.io/enforce": t.podSecurity,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": t.podSecurity,
        "pod-security.kubernetes.io/warn": t.podSecurity,
      },
    },
  };
}

export function renderResourceQuota(t: TenantConfig): KubeObject | undefined {
  const q = t.quota;
  if (!q) return undefined;
  const hard = quantities([
    ["requests.cpu", q.requestsCpu],
    ["requests.memory", q.requestsMemory],
    ["limits.cpu", q.limitsCpu],
    ["limits.memory", q.limitsMemory],
    ["pods", q.pods],
    ["services", q.services],
    ["services.loadbalancers", q.servicesLoadBalancers],
    ["services.nodeports", q.servicesNodePorts],
    ["configmaps", q.configmaps],
    ["secrets", q.secrets],
    ["persistentvolumeclaims", q.persistentVolumeClaims],
    ["requests.storage", q.requestsStorage],
    ...Object.entries(q.storageClasses).flatMap(([cls, v]): Array<[string, string | number | undefined]> => [
      [`${cls}.storageclass.storage.k8s.io/requests.storage`, v.requestsStorage],
      [`${cls}.storageclass.storage.k8s.io/persistentvolumeclaims`, v.persistentVolumeClaims],
    ]),
  ]);
  const spec: k8s.types.input.core.v1.ResourceQuotaSpec = {
    hard,
    ...(q.priorityClass
      ? { scopeSelector: { matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: [q.priorityClass] }] } }
      : {}),
  };
  return { apiVersion: "v1", kind: "ResourceQuota", metadata: { name: "quota", namespace: t.namespace, labels: MANAGED_BY }, spec };
}

export function renderLimitRange(t: TenantConfig): KubeObject | undefined {
  const l = t.limits;
  if (!l) return undefined;
  const res = (r?: { cpu?: string | number; memory?: string | number }) =>
    r ? quantities([["cpu", r.cpu], ["memory", r.memory]]) : undefined;
  const limits: k8s.types.input.core.v1.LimitRangeItem[] = [];
  if (l.container) {
    const c = l.container;
    const item: Record<string, unknown> = { type: "Container" };
    for (const [field, value] of [["default", c.default], ["defaultRequest", c.defaultRequest], ["min", c.min], ["max", c.max], ["maxLimitRequestRatio", c.maxLimitRequestRatio]] as const) {
      const r = res(value);
      if (r && Object.keys(r).length) item[field] = r;
    }
    limits.push(item as unknown as k8s.types.input.core.v1.LimitRangeItem);
  }
  if (l.pvc && (l.pvc.min !== undefined || l.pvc.max !== undefined)) {
    limits.push({
      type: "PersistentVolumeClaim",
      ...(l.pvc.min !== undefined ? { min: { storage: String(l.pvc.min) } } : {}),
      ...(l.pvc.max !== undefined ? { max: { storage: String(l.pvc.max) } } : {}),
    });
  }
  return { apiVersion: "v1", kind: "LimitRange", metadata: { name: "limits", namespace: t.namespace, labels: MANAGED_BY }, spec: { limits } };
}

function policy(t: TenantConfig, name: string, spec: NetworkPolicySpec): KubeObject {
  const nflog = t.network.nflog;
  const annotations: Record<string, string> = {};
  if (nflog?.limit) annotations["kube-router.io/netpol-nflog-limit"] = nflog.limit;
  if (nflog?.burst !== undefined) annotations["kube-router.io/netpol-nflog-limit-burst"] = String(nflog.burst);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace: t.namespace, labels: MANAGED_BY, ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec,
  };
}

const DNS_PORTS: PolicyPort[] = [
  { protocol: "UDP", port: 53 },
  { protocol: "TCP", port: 53 },
];

export function renderNetworkPolicies(config: ResolvedConfig, t: TenantConfig): KubeObject[] {
  const n = t.network;
  const out: KubeObject[] = [];
  const all = {} as Record<string, never>;
  if (n.defaultDeny) out.push(policy(t, "default-deny", { podSelector: all, policyTypes: ["Ingress", "Egress"] }));
  if (n.allowDns) {
    const to: Peer[] = [{ namespaceSelector: nsSelector("kube-system"), podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }];
    if (config.dns.nodeLocal.enabled) {
      // NodeLocal DNSCache answers on the host network at its link-local address and the kube-dns IP.
      to.push({ ipBlock: { cidr: `${config.dns.nodeLocal.localIp}/32` } }, { ipBlock: { cidr: `${config.k3s.clusterDns}/32` } });
    }
    out.push(policy(t, "allow-dns", { podSelector: all, policyTypes: ["Egress"], egress: [{ to, ports: DNS_PORTS }] }));
  }
  if (n.allowSameNamespace) {
    out.push(
      policy(t, "allow-same-namespace", {
        podSelector: all,
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ podSelector: all }] }],
        egress: [{ to: [{ podSelector: all }] }],
      }),
    );
  }
  const traefik = !config.k3s.disable.includes("traefik");
  if (n.allowIngressController ?? traefik) {
    out.push(
      policy(t, "allow-ingress-controller", {
        podSelector: all,
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ namespaceSelector: nsSelector("kube-system"), podSelector: { matchLabels: { "app.kubernetes.io/name": "traefik" } } }] }],
      }),
    );
  }
  if (n.allowMetricsServer && !config.k3s.disable.includes("metrics-server")) {
    out.push(
      policy(t, "allow-metrics-server", {
        podSelector: all,
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ namespaceSelector: nsSelector("kube-system"), podSelector: { matchLabels: { "k8s-app": "metrics-server" } } }] }],
      }),
    );
  }
  if (n.allowApiServer) {
    // The API answers on the servers' own addresses: the Service IP alone is not enough here.
    const servers = config.nodes.filter((node) => node.role === "server").map((node) => nodeAddress(node));
    out.push(
      policy(t, "allow-apiserver", {
        podSelector: all,
        policyTypes: ["Egress"],
        egress: [{ to: servers.map((ip) => ({ ipBlock: { cidr: ip.includes(":") ? `${ip}/128` : `${ip}/32` } })), ports: [{ protocol: "TCP", port: API_PORT }] }],
      }),
    );
  }
  for (const allow of n.allows) {
    const peers: Peer[] = [
      ...allow.namespaces.map((ns): Peer => ({ namespaceSelector: nsSelector(ns), ...(allow.podSelector ? { podSelector: { matchLabels: allow.podSelector } } : {}) })),
      ...(allow.namespaces.length === 0 && allow.podSelector ? [{ podSelector: { matchLabels: allow.podSelector } }] : []),
      ...allow.cidrs.map((cidr): Peer => ({ ipBlock: { cidr } })),
    ];
    const ports = allow.ports.length ? { ports: allow.ports.map((p): PolicyPort => ({ protocol: p.protocol, port: p.port })) } : {};
    const spec: NetworkPolicySpec =
      allow.direction === "ingress"
        ? { podSelector: all, policyTypes: ["Ingress"], ingress: [{ from: peers, ...ports }] }
        : { podSelector: all, policyTypes: ["Egress"], egress: [{ to: peers, ...ports }] };
    out.push(policy(t, `allow-${allow.name}`, spec));
  }
  return out;
}

/** Every object of one tenant, the Namespace first. */
export function renderTenant(config: ResolvedConfig, t: TenantConfig): KubeObject[] {
  return [renderNamespace(t), renderResourceQuota(t), renderLimitRange(t), ...renderNetworkPolicies(config, t)].filter(
    (o): o is KubeObject => o !== undefined,
  );
}

export function renderTenants(config: ResolvedConfig): KubeObject[] {
  return config.tenants.flatMap((t) => renderTenant(config, t));
}
