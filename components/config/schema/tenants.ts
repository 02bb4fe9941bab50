import { z } from "zod";
import { isNetworkCidr } from "../net";
import { isQuantity, parseQuantity } from "../quantity";
import { DNS_LABEL, DNS_SUBDOMAIN, cidr, labelMap, port } from "./primitives";

/** The `tenants[]` section: quotas, limits, network policies, reserved namespaces. */

// ---------------------------------------------------------------- tenant namespaces

/** A non-negative Kubernetes quantity (the API server refuses negative quotas and limits). */
export const quantity = z
  .union([z.string(), z.number()])
  .refine(isQuantity, { message: "not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 10Gi)" })
  .refine((q) => (parseQuantity(q) ?? 0) >= 0, { message: "must not be negative" });
export const count = z.number().int().nonnegative();
export const cpuMemory = z.strictObject({ cpu: quantity.optional().describe("CPU, a quantity (e.g. `500m`)."), memory: quantity.optional().describe("Memory, a quantity (e.g. `512Mi`).") });

export function lessOrEqual(ctx: z.RefinementCtx, a: string | number | undefined, b: string | number | undefined, path: (string | number)[], message: string) {
  if (a === undefined || b === undefined) return;
  const qa = parseQuantity(a);
  const qb = parseQuantity(b);
  if (qa !== undefined && qb !== undefined && qa > qb) ctx.addIssue({ code: "custom", path, message });
}

export const quotaSchema = z
  .strictObject({
    requestsCpu: quantity.optional().describe("ResourceQuota `requests.cpu`."),
    requestsMemory: quantity.optional().describe("ResourceQuota `requests.memory`."),
    limitsCpu: quantity.optional().describe("ResourceQuota `limits.cpu`."),
    limitsMemory: quantity.optional().describe("ResourceQuota `limits.memory`."),
    pods: count.optional().describe("ResourceQuota `pods`."),
    services: count.optional().describe("ResourceQuota `services`."),
    servicesLoadBalancers: count.optional().describe("ResourceQuota `services.loadbalancers`."),
    servicesNodePorts: count.optional().describe("ResourceQuota `services.nodeports`."),
    configmaps: count.optional().describe("ResourceQuota `configmaps`."),
    secrets: count.optional().describe("ResourceQuota `secrets`."),
    persistentVolumeClaims: count.optional().describe("ResourceQuota `persistentvolumeclaims`."),
    requestsStorage: quantity.optional().describe("ResourceQuota `requests.storage`."),
    storageClasses: z
      .record(
        z.string().regex(DNS_SUBDOMAIN, "not a StorageClass name"),
        z.strictObject({ requestsStorage: quantity.optional().describe("`<class>.storageclass.storage.k8s.io/requests.storage`."), persistentVolumeClaims: count.optional().describe("`<class>.storageclass.storage.k8s.io/persistentvolumeclaims`.") }),
      )
      .default({}).describe("Per StorageClass: StorageClass name → its storage quotas."),
    priorityClass: z.string().regex(DNS_SUBDOMAIN).optional().describe("Scope this quota to pods of one PriorityClass (scopeSelector PriorityClass In [...])."),
  })
  .superRefine((q, ctx) => {
    lessOrEqual(ctx, q.requestsCpu, q.limitsCpu, ["requestsCpu"], `requests.cpu ${q.requestsCpu} exceeds limits.cpu ${q.limitsCpu}`);
    lessOrEqual(ctx, q.requestsMemory, q.limitsMemory, ["requestsMemory"], `requests.memory ${q.requestsMemory} exceeds limits.memory ${q.limitsMemory}`);
  });

export const limitsSchema = z
  .strictObject({
    container: z
      .strictObject({
        default: cpuMemory.optional().describe("LimitRange container `default` (the limits a container gets)."),
        defaultRequest: cpuMemory.optional().describe("LimitRange container `defaultRequest`."),
        min: cpuMemory.optional().describe("LimitRange container `min`."),
        max: cpuMemory.optional().describe("LimitRange container `max`."),
        maxLimitRequestRatio: z
          .strictObject({
            cpu: quantity.refine((q) => (parseQuantity(q) ?? 0) >= 1, { message: "a limit/request ratio must be at least 1" }).optional().describe("CPU limit/request ratio, at least 1."),
            memory: quantity.refine((q) => (parseQuantity(q) ?? 0) >= 1, { message: "a limit/request ratio must be at least 1" }).optional().describe("Memory limit/request ratio, at least 1."),
          })
          .optional().describe("The API server requires each ratio to be at least 1 (limit ≥ request)."),
      })
      .optional().describe("A LimitRange for containers."),
    pvc: z.strictObject({ min: quantity.optional().describe("Smallest claim (quantity)."), max: quantity.optional().describe("Largest claim (quantity).") }).optional().describe("A LimitRange for PersistentVolumeClaims."),
  })
  .superRefine((l, ctx) => {
    const c = l.container;
    if (c) {
      for (const r of ["cpu", "memory"] as const) {
        const chain: Array<[string, string | number | undefined]> = [
          ["min", c.min?.[r]],
          ["defaultRequest", c.defaultRequest?.[r]],
          ["default", c.default?.[r]],
          ["max", c.max?.[r]],
        ];
        const present = chain.filter(([, v]) => v !== undefined);
        for (let i = 1; i < present.length; i++) {
          const [lowName, low] = present[i - 1]!;
          const [highName, high] = present[i]!;
          lessOrEqual(ctx, low, high, ["container", highName, r], `${r}: ${lowName} ${low} is above ${highName} ${high}`);
        }
      }
    }
    lessOrEqual(ctx, l.pvc?.min, l.pvc?.max, ["pvc", "min"], `pvc min ${l.pvc?.min} is above max ${l.pvc?.max}`);
  });

export const networkPort = z.strictObject({
  // Named ports are IANA service names (Kubernetes IsValidPortName): ≤15 chars, a-z0-9 and single
  // hyphens, at least one letter.
  port: z.union([
    port,
    z.string().refine((v) => v.length <= 15 && /^[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$/.test(v) && /[a-z]/.test(v), {
      message: "named port must be an IANA service name (≤15 chars, a-z, 0-9, single hyphens, one letter at least)",
    }),
  ]).describe("A port number or an IANA service name."),
  protocol: z.enum(["TCP", "UDP", "SCTP"]).default("TCP").describe("The port's protocol."),
});

export const networkAllowSchema = z
  .strictObject({
    name: z.string().max(50).regex(DNS_LABEL, "policy name must be a DNS label").describe("The NetworkPolicy's name suffix (a DNS label)."),
    direction: z.enum(["ingress", "egress"]).default("ingress").describe("Traffic into (`ingress`) or out of (`egress`) the tenant's pods."),
    namespaces: z.array(z.string().max(63).regex(DNS_LABEL, "namespace must be a DNS label")).default([]).describe("Peers: namespaces (by kubernetes.io/metadata.name), optionally narrowed to pods; CIDRs."),
    podSelector: labelMap.optional().describe("Narrows the peers to pods with these labels."),
    cidrs: z.array(cidr.refine(isNetworkCidr, { message: "host bits set: use the network address (e.g. 10.0.0.0/24)" })).default([]).describe("ipBlock CIDRs: network addresses (the API server refuses host bits, e.g. 10.0.0.1/24, from K8s 1.33)."),
    ports: z.array(networkPort).default([]).describe("Ports allowed (none: every port)."),
  })
  .refine((a) => a.namespaces.length > 0 || a.cidrs.length > 0 || a.podSelector !== undefined, {
    message: "an allow needs namespaces, cidrs or a podSelector (an empty peer list would allow everything)",
  });

export const tenantNetworkSchema = z.strictObject({
  defaultDeny: z.boolean().default(true).describe("A default-deny policy for ingress and egress."),
  allowDns: z.boolean().default(true).describe("Egress to cluster DNS (TCP and UDP 53)."),
  allowSameNamespace: z.boolean().default(true).describe("Traffic between the tenant's own pods."),
  /** Default: on when Traefik is not disabled. */
  allowIngressController: z.boolean().optional().describe("Ingress from Traefik. Default: on when Traefik is not disabled."),
  /** Default: on when metrics-server is not disabled. */
  allowMetricsServer: z.boolean().default(true).describe("Ingress from metrics-server. Default: on when metrics-server is not disabled."),
  allowApiServer: z.boolean().default(false).describe("Egress to the Kubernetes API: server node IPs on 6443, not just the Service IP."),
  allows: z.array(networkAllowSchema).default([]).describe("More allows, one NetworkPolicy each."),
  nflog: z
    .strictObject({
      limit: z.string().regex(/^\d+\/(second|minute|hour|day)$/, "limit must be N/second|minute|hour|day").optional().describe("Log rate, `N/second|minute|hour|day`."),
      burst: z.number().int().positive().optional().describe("Log burst."),
    })
    .optional().describe("kube-router NFLOG rate for dropped packets (annotations on every policy)."),
});

/**
 * Namespaces exempt from Pod Security in the CIS psa.yaml (renderPsaYaml reads this list):
 * kube-system, and cis-operator-system for the Rancher CIS operator (K3s hardening guide).
 */
export const PSA_EXEMPT_NAMESPACES = ["kube-system", "cis-operator-system"] as const;
/** Namespaces that are never tenants: Kubernetes' own and every Pod-Security-exempt one. */
export const RESERVED_NAMESPACES: readonly string[] = [
  ...new Set(["default", "kube-system", "kube-public", "kube-node-lease", ...PSA_EXEMPT_NAMESPACES]),
];
/** The one predicate behind validation and the `tenant-not-reserved-namespace` policy. */
export function isReservedNamespace(name: string): boolean {
  return RESERVED_NAMESPACES.includes(name);
}

export const tenantSchema = z.strictObject({
  namespace: z
    .string()
    .max(63)
    .regex(DNS_LABEL, "namespace must be a DNS label")
    .refine((n) => !isReservedNamespace(n), {
      message: `system and Pod-Security-exempt namespaces (${RESERVED_NAMESPACES.join(", ")}) cannot be tenants`,
    }).describe("The tenant's namespace (a DNS label; system and Pod-Security-exempt namespaces are refused)."),
  labels: labelMap.default({}).describe("Labels on the namespace."),
  podSecurity: z.enum(["privileged", "baseline", "restricted"]).default("restricted").describe("The Pod Security level enforced (also audit and warn)."),
  quota: quotaSchema.optional().describe("A ResourceQuota."),
  limits: limitsSchema.optional().describe("LimitRanges."),
  network: tenantNetworkSchema.prefault({}).describe("NetworkPolicies."),
});
