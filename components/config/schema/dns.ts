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
  maxConcurrent: z.number().int().positive().optional().describe("`forward` `max_concurrent`."),
  policy: z.enum(["random", "round_robin", "sequential"]).optional().describe("`forward` `policy`."),
  healthCheck: duration.optional().describe("`forward` `health_check` interval."),
  forceTcp: z.boolean().optional().describe("`forward` `force_tcp`."),
});

export const cacheSchema = z.strictObject({
  successCapacity: z.number().int().positive().optional().describe("`cache` `success` capacity."),
  successTtl: z.number().int().positive().optional().describe("`cache` `success` TTL, seconds."),
  denialCapacity: z.number().int().positive().optional().describe("`cache` `denial` capacity."),
  denialTtl: z.number().int().positive().optional().describe("`cache` `denial` TTL, seconds."),
  prefetch: z
    .strictObject({
      amount: z.number().int().positive().describe("`prefetch` AMOUNT: queries before a name is prefetched."),
      duration: duration.optional().describe("`prefetch` DURATION."),
      percentage: z.number().int().min(0).max(100).optional().describe("`prefetch` PERCENTAGE of the TTL left."),
    })
    .optional().describe("`cache` `prefetch`."),
  serveStale: duration.optional().describe("`cache` `serve_stale` duration."),
});

export const dnsSchema = z.strictObject({
  upstreams: z.array(ipAddress).default([]).describe("Upstream resolvers for names outside the cluster (become the kubelet resolv.conf CoreDNS forwards to)."),
  stubDomains: z
    .record(
      z.string().refine(isDnsName, { message: "not a DNS domain" }),
      z.strictObject({ servers: z.array(dnsServer).min(1).describe("The domain's DNS servers, IP[:port]."), forward: forwardOptionsSchema.optional().describe("`forward` options for this domain."), cache: cacheSchema.optional().describe("`cache` options for this domain.") }),
    )
    .default({}).describe("Stub domains: their own server blocks (`<domain>.server` in coredns-custom)."),
  forward: forwardOptionsSchema.prefault({}).describe("Defaults for every block k3s-platform renders (stub domains, NodeLocal DNSCache's upstream)."),
  cache: cacheSchema.prefault({}).describe("Default `cache` options of those blocks."),
  hosts: z.record(z.string().refine(isDnsName, { message: "not a DNS name" }), ipAddress).default({}).describe("Extra host entries: name → address, served from their own zones."),
  log: z.boolean().default(false).describe("Query logging in the main zone (the `log` plugin through `log.override`)."),
  nodeLocal: z
    .strictObject({
      enabled: z.boolean().default(false).describe("Run NodeLocal DNSCache (a DaemonSet on every node)."),
      localIp: ipAddress.default("169.254.20.10").describe("The link-local address it listens on."),
      image: imageRef.default(NODE_CACHE_IMAGE).describe("Its image; prod may change it only to a digest of the same repository."),
    })
    .prefault({}).describe("NodeLocal DNSCache."),
  autoscaler: z
    .strictObject({
      enabled: z.boolean().default(false).describe("Scale CoreDNS with cluster-proportional-autoscaler."),
      coresPerReplica: z.number().positive().default(256).describe("`coresPerReplica` (linear mode)."),
      nodesPerReplica: z.number().positive().default(16).describe("`nodesPerReplica` (linear mode)."),
      min: z.number().int().positive().default(1).describe("Fewest replicas."),
      max: z.number().int().positive().optional().describe("Most replicas (unset: no limit)."),
      preventSinglePointFailure: z.boolean().default(true).describe("At least 2 replicas when there is more than one node."),
      includeUnschedulableNodes: z.boolean().default(true).describe("Count cordoned nodes too."),
      image: imageRef.default(AUTOSCALER_IMAGE).describe("Its image; prod may change it only to a digest of the same repository."),
    })
    .prefault({}).describe("The DNS autoscaler: replicas = max(ceil(cores/coresPerReplica), ceil(nodes/nodesPerReplica)), clamped to min..max."),
});
