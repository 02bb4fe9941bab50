import { z } from "zod";
import { isCanonicalIp, isDnsName } from "../net";
import { duration, imageRef, ipAddress } from "./primitives";

/** The `dns` section (CoreDNS tuning, NodeLocal DNSCache, autoscaler). */

// ---------------------------------------------------------------- CoreDNS

/**
 * NodeLocal DNSCache's image, pinned by tag; prod pins its digest (surfaces.ts). 1.26.8: the tag
 * of the upstream nodelocaldns manifest (kubernetes/kubernetes cluster/addons/dns/nodelocaldns,
 * as 2026 projects following it quote it); the flags rendered (dns/render.ts) are that manifest's.
 */
export const NODE_CACHE_IMAGE = "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8";
/** cluster-proportional-autoscaler's image, pinned by tag (same rule). v1.10.3: the current release of kubernetes-sigs/cluster-proportional-autoscaler as 2026 manifests quote it. */
export const AUTOSCALER_IMAGE = "registry.k8s.io/cpa/cluster-proportional-autoscaler:v1.10.3";

export const dnsServer = z
  .string()
  .refine((v) => {
    const m = /^(.*?)(?::(\d+))?$/.exec(v.startsWith("[") ? v.replace(/^\[(.*)\](:\d+)?$/, "$1$2") : v);
    return !!m && isCanonicalIp(m[1]!) && (m[2] === undefined || Number(m[2]) <= 65535);
  }, { message: "DNS server must be an IP address, optionally with :port" });

export const forwardOptionsSchema = z.strictObject({
  maxConcurrent: z.number().int().positive().optional(),
  policy: z.enum(["random", "round_robin", "sequential"]).optional(),
  healthCheck: duration.optional(),
  forceTcp: z.boolean().optional(),
});

export const cacheSchema = z.strictObject({
  successCapacity: z.number().int().positive().optional(),
  successTtl: z.number().int().positive().optional(),
  denialCapacity: z.number().int().positive().optional(),
  denialTtl: z.number().int().positive().optional(),
  prefetch: z
    .strictObject({
      amount: z.number().int().positive(),
      duration: duration.optional(),
      percentage: z.number().int().min(0).max(100).optional(),
    })
    .optional(),
  serveStale: duration.optional(),
});

export const dnsSchema = z.strictObject({
  /** Upstream resolvers for names outside the cluster (become the kubelet resolv.conf CoreDNS forwards to). */
  upstreams: z.array(ipAddress).default([]),
  /** Stub domains: their own server blocks (`<domain>.server` in coredns-custom). */
  stubDomains: z
    .record(
      z.string().refine(isDnsName, { message: "not a DNS domain" }),
      z.strictObject({ servers: z.array(dnsServer).min(1), forward: forwardOptionsSchema.optional(), cache: cacheSchema.optional() }),
    )
    .default({}),
  /** Defaults for every block we render (stub domains, NodeLocal DNSCache's upstream). */
  forward: forwardOptionsSchema.prefault({}),
  cache: cacheSchema.prefault({}),
  /** Extra host entries: name → address, served from their own zones. */
  hosts: z.record(z.string().refine(isDnsName, { message: "not a DNS name" }), ipAddress).default({}),
  /** Query logging in the main zone (the `log` plugin through `log.override`). */
  log: z.boolean().default(false),
  nodeLocal: z
    .strictObject({
      enabled: z.boolean().default(false),
      localIp: ipAddress.default("169.254.20.10"),
      image: imageRef.default(NODE_CACHE_IMAGE),
    })
    .prefault({}),
  autoscaler: z
    .strictObject({
      enabled: z.boolean().default(false),
      coresPerReplica: z.number().positive().default(256),
      nodesPerReplica: z.number().positive().default(16),
      min: z.number().int().positive().default(1),
      max: z.number().int().positive().optional(),
      preventSinglePointFailure: z.boolean().default(true),
      includeUnschedulableNodes: z.boolean().default(true),
      image: imageRef.default(AUTOSCALER_IMAGE),
    })
    .prefault({}),
});
