import { z } from "zod";
import { cronProblem } from "../cron";
import { isCanonicalCidr, isCanonicalIp, isDnsName } from "../net";
import { singleLine } from "../single-line";
import { apiServerAuthenticationSchema } from "./authentication";
import { absolutePath, duration, firewallSource } from "./primitives";

/** Parts of the `k3s` section (assembled by k3sSchema in addons.ts): version, networks, datastore, kubelet/apiserver/controller-manager settings, registries, proxy, air-gap, snapshots, firewall. */

// ---------------------------------------------------------------- k3s

export const PACKAGED_COMPONENTS = [
  "traefik", "servicelb", "coredns", "metrics-server", "local-storage", "runtimes",
] as const;

export const EVICTION_SIGNALS = [
  "memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available",
  "imagefs.inodesFree", "containerfs.available", "containerfs.inodesFree", "pid.available",
] as const;

export const evictionMap = z.partialRecord(
  z.enum(EVICTION_SIGNALS),
  z
    .string()
    .regex(/^(\d+(\.\d+)?%|\d+(\.\d+)?([KMGTPE]i?)?)$/, "threshold must be a quantity (200Mi) or a percentage (10%)")
    // The kubelet refuses a percentage above 100 (pkg/kubelet/eviction/api parseThresholdStatement).
    .refine((v) => !v.endsWith("%") || Number(v.slice(0, -1)) <= 100, { message: "a percentage threshold must be at most 100%" }),
);

export const reserved = z.strictObject({
  cpu: z.string().regex(/^\d+(\.\d+)?m?$/, "cpu must be e.g. 500m or 1").optional().describe("CPU to reserve, e.g. `500m` or `1`."),
  memory: z.string().regex(/^\d+([KMGTPE]i?)?$/, "memory must be e.g. 512Mi").optional().describe("Memory to reserve, e.g. `512Mi`."),
  ephemeralStorage: z.string().regex(/^\d+([KMGTPE]i?)?$/, "storage must be e.g. 1Gi").optional().describe("Ephemeral storage to reserve, e.g. `1Gi`."),
  pid: z.number().int().positive().optional().describe("Process IDs to reserve."),
});
export type Reserved = z.infer<typeof reserved>;

export const kubeletSchema = z.strictObject({
  evictionHard: evictionMap.optional().describe("`eviction-hard`: signal → threshold (a quantity or a percentage)."),
  evictionSoft: evictionMap.optional().describe("`eviction-soft`: signal → threshold; needs a grace period per signal."),
  evictionSoftGracePeriod: z.partialRecord(z.enum(EVICTION_SIGNALS), duration).optional().describe("`eviction-soft-grace-period`: signal → duration."),
  evictionMaxPodGracePeriod: z.number().int().nonnegative().optional().describe("`eviction-max-pod-grace-period`, seconds."),
  systemReserved: reserved.optional().describe("`system-reserved`: resources kept for the OS."),
  kubeReserved: reserved.optional().describe("`kube-reserved`: resources kept for K3s itself."),
  maxPods: z.number().int().min(1).max(2500).optional().describe("`max-pods` per node."),
  nodeStatusUpdateFrequency: duration.optional().describe("`node-status-update-frequency` (K3s default 10s)."),
});

export const apiServerSchema = z.strictObject({
  defaultNotReadyTolerationSeconds: z.number().int().nonnegative().optional().describe("`default-not-ready-toleration-seconds` (300 by default): how long pods stay on a NotReady node."),
  defaultUnreachableTolerationSeconds: z.number().int().nonnegative().optional().describe("`default-unreachable-toleration-seconds` (300 by default): how long pods stay on an unreachable node."),
  authentication: apiServerAuthenticationSchema.optional().describe("OIDC identity providers, as a structured AuthenticationConfiguration file on the servers (docs/oidc.md)."),
});

export const controllerManagerSchema = z.strictObject({
  nodeMonitorGracePeriod: duration.optional().describe("`node-monitor-grace-period` (40s by default): silence before a node is NotReady."),
  terminatedPodGcThreshold: z.number().int().positive().optional().describe("`terminated-pod-gc-threshold` (CIS sets 100)."),
});

/**
 * A proxy URL as Go's net/http reads HTTP(S)_PROXY: http, https or socks5, a host, no path.
 * Credentials are refused: the value lands in the staged install script and the unit's env file.
 */
export const proxyUrl = singleLine(z.string()).refine(
  (v) => {
    try {
      const u = new URL(v);
      return ["http:", "https:", "socks5:"].includes(u.protocol) && u.hostname !== "" && !u.username && !u.password && (u.pathname === "/" || u.pathname === "") && !u.search && !u.hash;
    } catch {
      return false;
    }
  },
  { message: "proxy must be http://, https:// or socks5://host[:port] without credentials, path or query (credentials would land in a staged file)" },
);
/** A NO_PROXY entry as Go's httpproxy matches it: `*`, an IP, a CIDR, or a domain (optional leading dot), optionally with :port. */
export function isNoProxyEntry(v: string): boolean {
  if (v === "*") return true;
  if (isCanonicalIp(v) || isCanonicalCidr(v)) return true;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m) return false;
  const host = m[1]!.replace(/^\[|\]$/g, "");
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  return isCanonicalIp(host) || isDnsName(host.replace(/^\*?\./, ""));
}
export const noProxyEntry = singleLine(z.string()).refine(isNoProxyEntry, { message: "NO_PROXY entries are *, an IP, a CIDR or a domain (optionally .domain or :port)" });

export const proxySchema = z.strictObject({
  httpProxy: proxyUrl.optional().describe("`HTTP_PROXY` in the unit's env file (http, https or socks5 URL, no credentials)."),
  httpsProxy: proxyUrl.optional().describe("`HTTPS_PROXY` in the unit's env file."),
  /** Added to the generated list (node addresses, API endpoint, tls-sans, pod/service CIDRs, cluster domain). */
  noProxy: z.array(noProxyEntry).default([]).describe("`NO_PROXY` entries added to the generated list (loopback, pod/service CIDRs, .svc, the cluster domain, the API endpoint, tls-sans, the first server's host when a name, k3s.nodeNetworks; never a node address)."),
  containerdHttpProxy: proxyUrl.optional().describe("`CONTAINERD_HTTP_PROXY`: a proxy for image pulls only."),
  containerdHttpsProxy: proxyUrl.optional().describe("`CONTAINERD_HTTPS_PROXY`: a proxy for image pulls only."),
  containerdNoProxy: z.array(noProxyEntry).optional().describe("`CONTAINERD_NO_PROXY` entries."),
});

/** containerd registry host: `host[:port]`, or `*` (every registry) as a mirrors key. */
export const registryHost = singleLine(z.string()).refine((v) => {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(v);
  return !!m && (isCanonicalIp(m[1]!) || isDnsName(m[1]!)) && (m[2] === undefined || Number(m[2]) <= 65535);
}, { message: "registry must be host[:port] (e.g. docker.io, registry.example.com:5000)" });
/** A mirror endpoint: containerd takes http(s) URLs; credentials belong in the secure key registryAuth. */
export const registryEndpoint = singleLine(z.string()).refine(
  (v) => {
    try {
      const u = new URL(v);
      return ["http:", "https:"].includes(u.protocol) && u.hostname !== "" && !u.username && !u.password && !u.search && !u.hash;
    } catch {
      return false;
    }
  },
  { message: "endpoint must be an http(s)://host[:port][/path] URL without credentials (use the secure key registryAuth)" },
);

export const registriesSchema = z.strictObject({
  mirrors: z
    .record(
      z.union([z.literal("*"), registryHost]),
      z.strictObject({
        /** Optional only with k3s.embeddedRegistry (the registry is then mirrored between nodes). */
        endpoint: z.array(registryEndpoint).min(1).optional().describe("Mirror URLs (http(s), no credentials: those go in the secure key registryAuth); optional only with k3s.embeddedRegistry."),
        rewrite: z
          .record(
            singleLine().refine((r) => {
              try {
                new RegExp(r);
                return true;
              } catch {
                return false;
              }
            }, { message: "rewrite key must be a regular expression" }),
            singleLine(),
          )
          .optional().describe("Repository rewrites: regular expression → replacement."),
      }),
    )
    .default({}).describe("registries.yaml `mirrors`: registry host (or `*`) → endpoints and rewrites."),
  configs: z
    .record(
      registryHost,
      z.strictObject({
        tls: z
          .strictObject({
            caFile: absolutePath.optional().describe("CA bundle on the host (absolute path)."),
            certFile: absolutePath.optional().describe("Client certificate on the host (absolute path)."),
            keyFile: absolutePath.optional().describe("Client key on the host (absolute path)."),
            insecureSkipVerify: z.boolean().optional().describe("Skip TLS verification (refused in prod)."),
          })
          .optional().describe("TLS to this registry."),
      }),
    )
    .default({}).describe("registries.yaml `configs`: registry host → TLS settings."),
});

export const datastoreSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("etcd").describe("`etcd`: embedded etcd (the first server runs cluster-init).") }),
  z.strictObject({ type: z.literal("sqlite").describe("`sqlite`: one server only.") }),
  z.strictObject({
    // The endpoint URL carries credentials, so it comes from the secure key `datastoreEndpoint`.
    type: z.literal("external").describe("`external`: an external datastore; its endpoint is the secure key datastoreEndpoint."),
    caFile: absolutePath.optional().describe("`datastore-cafile` on the servers (absolute path)."),
    certFile: absolutePath.optional().describe("`datastore-certfile` on the servers (absolute path)."),
    keyFile: absolutePath.optional().describe("`datastore-keyfile` on the servers (absolute path)."),
  }),
]);

export const airgapSchema = z.strictObject({
  enabled: z.boolean().default(false).describe("Install from files pre-staged on every host instead of downloading."),
  installScriptPath: absolutePath.default("/usr/local/bin/k3s-install.sh").describe("Where the install script was pre-staged on every host."),
  binaryPath: absolutePath
    .refine((p) => /\/k3s$/.test(p), { message: "the binary must be named k3s (the install script runs INSTALL_K3S_BIN_DIR/k3s), e.g. /opt/k3s/bin/k3s" })
    .default("/usr/local/bin/k3s").describe("Where the k3s binary was pre-staged. The install script looks for `${INSTALL_K3S_BIN_DIR}/k3s`, so the file must be named k3s; its directory is passed as INSTALL_K3S_BIN_DIR."),
  binarySha256: z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits").optional().describe("sha256 of the pinned release's binary (the `k3s` line of the release's sha256sum-<arch>.txt): checked in preflight, on the staged `<binaryPath>-<version>` or on binaryPath, before anything is disrupted. Unset: only the version the binary reports is checked."),
  imagesDir: absolutePath.default("/var/lib/rancher/k3s/agent/images").describe("Image tarballs pre-staged here; install-k3s.sh copies them to /var/lib/rancher/k3s/agent/images, the only directory K3s imports from at start."),
});

/**
 * Scheduled etcd snapshots (embedded etcd only). S3 credentials are the secure keys
 * etcdS3AccessKey / etcdS3SecretKey, written through the secrets drop-in; without them K3s uses
 * the host's instance credentials.
 */
export const etcdSnapshotsSchema = z.strictObject({
  /** K3s default: every 12 hours at minute 0. */
  scheduleCron: z
    .string()
    .superRefine((v, ctx) => {
      const problem = cronProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: `not a cron schedule: ${problem}` });
    })
    .optional().describe("`etcd-snapshot-schedule-cron`: a 5-field cron or `@daily`/`@every 6h` (K3s default: every 12 hours)."),
  retention: z.number().int().min(1).optional().describe("Snapshots kept (K3s default 5)."),
  compress: z.boolean().optional().describe("`etcd-snapshot-compress`: zip the snapshots."),
  dir: absolutePath.optional().describe("`etcd-snapshot-dir` (absolute path; K3s default under its data directory)."),
  s3: z
    .strictObject({
      endpoint: registryHost.optional().describe("Host[:port] of the S3 API, no scheme (K3s default s3.amazonaws.com)."),
      endpointCa: absolutePath.optional().describe("CA bundle for the S3 endpoint (absolute path)."),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "not an S3 bucket name (3-63 chars: a-z, 0-9, . and -)").describe("S3 bucket name."),
      folder: z.string().regex(/^[A-Za-z0-9!_.*'()\/-]+$/, "folder must be an S3 key prefix (letters, digits, !_.*'()/-)").optional().describe("Key prefix inside the bucket."),
      region: z.string().regex(/^[a-z0-9-]+$/, "not an S3 region (e.g. us-east-1)").optional().describe("S3 region, e.g. `us-east-1`."),
      skipSslVerify: z.boolean().optional().describe("Skip TLS verification of the endpoint (refused in prod)."),
      /** Plain HTTP to the endpoint. */
      insecure: z.boolean().optional().describe("Plain HTTP to the endpoint (refused in prod)."),
      timeout: duration.optional().describe("S3 request timeout, e.g. `5m`."),
    })
    .optional().describe("Also upload snapshots to S3; credentials are the secure keys etcdS3AccessKey/etcdS3SecretKey (neither: the host's instance credentials)."),
});

export const firewallSchema = z.strictObject({
  /** `open`: keep firewalld/ufw running with the K3s ports opened; `disable`: turn them off. */
  mode: z.enum(["open", "disable", "ignore"]).default("open").describe("`open`: keep firewalld/ufw running with the K3s ports opened (scoped to the nodes); `disable`: turn them off; `ignore`: leave them as they are."),
  apiServerSources: z.array(firewallSource).default([]).describe("Sources allowed to reach the API server (6443/tcp) in mode `open`: CIDRs or addresses. Default: any. The other K3s ports are open only to the cluster's nodes (and pod/service CIDRs)."),
});
