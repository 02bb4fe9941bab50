import { z } from "zod";
import { cronProblem } from "./cron";
import { isCanonicalCidr, isCanonicalIp, isDnsName, isNetworkCidr } from "./net";
import { isQuantity, parseQuantity } from "./quantity";
import { singleLine } from "./single-line";

/**
 * The one schema of k3s-platform's stack configuration (`k3s-platform:*` keys in
 * Pulumi.<env>.yaml). Renderers, components and the policy pack all read these types.
 * Secrets (SECRET_KEYS below) are separate secure keys and never pass through this schema.
 *
 * Every value is checked against the format of the consumer it lands in (K3s flags, containerd's
 * registries.yaml, the API server, CoreDNS, systemd env files); every string that reaches a host is
 * also `singleLine()` (no newline or control character).
 */

export const PROJECT = "k3s-platform";

// ---------------------------------------------------------------- primitives

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

export const cidr = z.string().refine(isCanonicalCidr, { message: "not a CIDR in canonical form (expected e.g. 10.42.0.0/16)" });
export const ipAddress = z
  .string()
  .refine(isCanonicalIp, { message: "not an IP address in canonical form (e.g. 192.0.2.10 or 2001:db8::1; no octal, hex or single-number forms)" });
/** An IP address in canonical form or an RFC 1123 DNS name (see net.ts). */
export const hostAddress = singleLine()
  .min(1)
  .refine((v) => isCanonicalIp(v) || isDnsName(v), {
    message: "not a canonical IP address or an RFC 1123 DNS name (octal, hex and single-number addresses are refused)",
  });
const absolutePath = singleLine(z.string()).regex(/^\/[^\0]*$/, "must be an absolute path");
/** A container image reference: [registry[:port]/]path[:tag][@sha256:digest]. */
export const imageRef = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?\/)?[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/,
    "not a container image reference (registry/path:tag or @sha256:digest)",
  );
export const duration = z.string().regex(DURATION, "not a duration (expected e.g. 40s, 5m, 1h30m)");
const port = z.number().int().min(1).max(65535);

/** A Kubernetes label key: optional DNS-subdomain prefix, `/`, and a name of at most 63 chars. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value === "" || (value.length <= 63 && LABEL_NAME.test(value));
}

export const labelMap = z.record(
  z.string().refine(isLabelKey, { message: "not a valid label key" }),
  z.string().refine(isLabelValue, { message: "not a valid label value (≤63 chars, alphanumeric, -_.)" }),
);

/** K3s `node-taint` syntax: key[=value]:Effect. */
export const TAINT = /^([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)(=([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)?:(NoSchedule|PreferNoSchedule|NoExecute)$/;
export const taint = z
  .string()
  .regex(TAINT, "taint must be key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
  .refine((t) => isLabelKey(t.split(/[=:]/)[0]), { message: "taint key is not a valid label key" });

const SSH_HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/;
export const sshHostKey = z
  .string()
  .regex(SSH_HOST_KEY, "host key must be an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA…'");

/** A flag value as it appears in config.yaml. */
export const flagValue = z.union([singleLine(), z.number(), z.boolean(), z.array(singleLine())]);
export type FlagValue = z.infer<typeof flagValue>;

// ---------------------------------------------------------------- k3s

export const PACKAGED_COMPONENTS = [
  "traefik", "servicelb", "coredns", "metrics-server", "local-storage", "runtimes",
] as const;

export const EVICTION_SIGNALS = [
  "memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available",
  "imagefs.inodesFree", "containerfs.available", "containerfs.inodesFree", "pid.available",
] as const;

const evictionMap = z.partialRecord(
  z.enum(EVICTION_SIGNALS),
  z
    .string()
    .regex(/^(\d+(\.\d+)?%|\d+(\.\d+)?([KMGTPE]i?)?)$/, "threshold must be a quantity (200Mi) or a percentage (10%)")
    // The kubelet refuses a percentage above 100 (pkg/kubelet/eviction/api parseThresholdStatement).
    .refine((v) => !v.endsWith("%") || Number(v.slice(0, -1)) <= 100, { message: "a percentage threshold must be at most 100%" }),
);

const reserved = z.strictObject({
  cpu: z.string().regex(/^\d+(\.\d+)?m?$/, "cpu must be e.g. 500m or 1").optional(),
  memory: z.string().regex(/^\d+([KMGTPE]i?)?$/, "memory must be e.g. 512Mi").optional(),
  ephemeralStorage: z.string().regex(/^\d+([KMGTPE]i?)?$/, "storage must be e.g. 1Gi").optional(),
  pid: z.number().int().positive().optional(),
});
export type Reserved = z.infer<typeof reserved>;

export const kubeletSchema = z.strictObject({
  evictionHard: evictionMap.optional(),
  evictionSoft: evictionMap.optional(),
  evictionSoftGracePeriod: z.partialRecord(z.enum(EVICTION_SIGNALS), duration).optional(),
  evictionMaxPodGracePeriod: z.number().int().nonnegative().optional(),
  systemReserved: reserved.optional(),
  kubeReserved: reserved.optional(),
  maxPods: z.number().int().min(1).max(2500).optional(),
  nodeStatusUpdateFrequency: duration.optional(),
});

export const apiServerSchema = z.strictObject({
  defaultNotReadyTolerationSeconds: z.number().int().nonnegative().optional(),
  defaultUnreachableTolerationSeconds: z.number().int().nonnegative().optional(),
});

export const controllerManagerSchema = z.strictObject({
  nodeMonitorGracePeriod: duration.optional(),
  terminatedPodGcThreshold: z.number().int().positive().optional(),
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
const noProxyEntry = singleLine(z.string()).refine(isNoProxyEntry, { message: "NO_PROXY entries are *, an IP, a CIDR or a domain (optionally .domain or :port)" });

export const proxySchema = z.strictObject({
  httpProxy: proxyUrl.optional(),
  httpsProxy: proxyUrl.optional(),
  /** Added to the generated list (node addresses, API endpoint, tls-sans, pod/service CIDRs, cluster domain). */
  noProxy: z.array(noProxyEntry).default([]),
  containerdHttpProxy: proxyUrl.optional(),
  containerdHttpsProxy: proxyUrl.optional(),
  containerdNoProxy: z.array(noProxyEntry).optional(),
});

/** containerd registry host: `host[:port]`, or `*` (every registry) as a mirrors key. */
const registryHost = singleLine(z.string()).refine((v) => {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(v);
  return !!m && (isCanonicalIp(m[1]!) || isDnsName(m[1]!)) && (m[2] === undefined || Number(m[2]) <= 65535);
}, { message: "registry must be host[:port] (e.g. docker.io, registry.example.com:5000)" });
/** A mirror endpoint: containerd takes http(s) URLs; credentials belong in the secure key registryAuth. */
const registryEndpoint = singleLine(z.string()).refine(
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
        endpoint: z.array(registryEndpoint).min(1).optional(),
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
          .optional(),
      }),
    )
    .default({}),
  configs: z
    .record(
      registryHost,
      z.strictObject({
        tls: z
          .strictObject({
            caFile: absolutePath.optional(),
            certFile: absolutePath.optional(),
            keyFile: absolutePath.optional(),
            insecureSkipVerify: z.boolean().optional(),
          })
          .optional(),
      }),
    )
    .default({}),
});

export const datastoreSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("etcd") }),
  z.strictObject({ type: z.literal("sqlite") }),
  z.strictObject({
    // The endpoint URL carries credentials, so it comes from the secure key `datastoreEndpoint`.
    type: z.literal("external"),
    caFile: absolutePath.optional(),
    certFile: absolutePath.optional(),
    keyFile: absolutePath.optional(),
  }),
]);

export const airgapSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Where the install script was pre-staged on every host. */
  installScriptPath: absolutePath.default("/usr/local/bin/k3s-install.sh"),
  /**
   * Where the k3s binary was pre-staged. The install script looks for `${INSTALL_K3S_BIN_DIR}/k3s`,
   * so the file must be named k3s; its directory is passed as INSTALL_K3S_BIN_DIR.
   */
  binaryPath: absolutePath
    .refine((p) => /\/k3s$/.test(p), { message: "the binary must be named k3s (the install script runs INSTALL_K3S_BIN_DIR/k3s), e.g. /opt/k3s/bin/k3s" })
    .default("/usr/local/bin/k3s"),
  /**
   * Image tarballs pre-staged here; install-k3s.sh copies them to /var/lib/rancher/k3s/agent/images,
   * the only directory K3s imports from at start.
   */
  imagesDir: absolutePath.default("/var/lib/rancher/k3s/agent/images"),
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
    .optional(),
  /** Snapshots kept (K3s default 5). */
  retention: z.number().int().min(1).optional(),
  compress: z.boolean().optional(),
  dir: absolutePath.optional(),
  s3: z
    .strictObject({
      /** Host[:port] of the S3 API, no scheme (K3s default s3.amazonaws.com). */
      endpoint: registryHost.optional(),
      endpointCa: absolutePath.optional(),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "not an S3 bucket name (3-63 chars: a-z, 0-9, . and -)"),
      folder: z.string().regex(/^[A-Za-z0-9!_.*'()\/-]+$/, "folder must be an S3 key prefix (letters, digits, !_.*'()/-)").optional(),
      region: z.string().regex(/^[a-z0-9-]+$/, "not an S3 region (e.g. us-east-1)").optional(),
      skipSslVerify: z.boolean().optional(),
      /** Plain HTTP to the endpoint. */
      insecure: z.boolean().optional(),
      timeout: duration.optional(),
    })
    .optional(),
});

export const firewallSchema = z.strictObject({
  /** `open`: keep firewalld/ufw running with the K3s ports opened; `disable`: turn them off. */
  mode: z.enum(["open", "disable", "ignore"]).default("open"),
  /**
   * Sources allowed to reach the API server (6443/tcp) in mode `open`: CIDRs or addresses.
   * Default: any. The other K3s ports are open only to the cluster's nodes (and pod/service CIDRs).
   */
  apiServerSources: z.array(singleLine(z.string().refine((v) => isCanonicalCidr(v) || isCanonicalIp(v), { message: "not a CIDR or IP address in canonical form" }))).default([]),
});

// ---------------------------------------------------------------- packaged add-ons, VIP, runtimes

/**
 * Traefik customisation: `values` is a YAML object rendered as the `valuesContent` of a
 * HelmChartConfig `kube-system/traefik` (K3s networking docs: never edit traefik.yaml).
 */
export const traefikSchema = z.strictObject({
  values: z.record(z.string().min(1), z.unknown()),
});

/** A ServiceLB pool name: the value of the node label `svccontroller.k3s.cattle.io/lbpool`. */
const lbPoolName = z.string().min(1).refine(isLabelValue, { message: "pool name must be a label value (≤63 chars, alphanumeric, -_.)" });

/** ServiceLB node pools: `{ <pool>: [node names] }` (K3s networking docs, "Controlling ServiceLB Node Selection"). */
export const serviceLbSchema = z.strictObject({
  pools: z.record(lbPoolName, z.array(z.string().min(1)).min(1, "a pool needs at least one node")),
});

/** kube-vip's image, pinned by tag (a digest may be added); bump deliberately. */
export const KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v0.8.9";
/** Linux interface names: at most 15 bytes (IFNAMSIZ-1), no slash, colon or whitespace. */
const interfaceName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/, "not a network interface name (≤15 chars: letters, digits, _ . @ -)");

/** A control-plane VIP announced by kube-vip (ARP) from the servers. */
export const apiVipSchema = z.strictObject({
  address: ipAddress,
  interface: interfaceName,
  image: imageRef
    .refine((i) => /:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?$/.test(i.replace(/^[^/]*:\d+\//, "")), { message: "pin the image by tag (optionally with @sha256:digest)" })
    .refine((i) => !/:latest(@|$)/.test(i), { message: "pin a release tag, not latest" })
    .default(KUBE_VIP_IMAGE),
});

/** containerd snapshotters K3s accepts for `snapshotter` (K3s agent CLI help; stargz: K3s advanced docs). */
export const SNAPSHOTTERS = ["overlayfs", "fuse-overlayfs", "native", "stargz"] as const;

export const k3sSchema = z.strictObject({
  version: z
    .string()
    .regex(/^v1\.\d+\.\d+\+k3s\d+$/, "version must be an exact K3s release, e.g. v1.31.4+k3s1")
    .optional(),
  channel: z.string().regex(/^(stable|latest|testing|v1\.\d+)$/, "channel must be stable, latest, testing or v1.NN").optional(),
  clusterCidr: cidr.default("10.42.0.0/16"),
  serviceCidr: cidr.default("10.43.0.0/16"),
  clusterDns: ipAddress.default("10.43.0.10"),
  clusterDomain: z.string().refine(isDnsName, { message: "not a DNS domain" }).default("cluster.local"),
  disable: z.array(z.enum(PACKAGED_COMPONENTS)).default([]),
  flannelBackend: z.enum(["vxlan", "host-gw", "wireguard-native", "none"]).default("vxlan"),
  /** Address clients and agents use for the API (a VIP or load balancer); default: first server. */
  apiEndpoint: hostAddress.optional(),
  tlsSan: z.array(hostAddress).default([]),
  datastore: datastoreSchema.default({ type: "etcd" }),
  /** Scheduled etcd snapshots; only with datastore etcd. */
  etcdSnapshots: etcdSnapshotsSchema.optional(),
  /** Defaults by environment: `cis` in prod, `none` elsewhere. */
  hardening: z.enum(["cis", "none"]).optional(),
  selinux: z.boolean().default(false),
  preferBundledBin: z.boolean().default(false),
  proxy: proxySchema.optional(),
  registries: registriesSchema.optional(),
  airgap: airgapSchema.prefault({}),
  /** Where the install script is fetched from when not air-gapped (a mirror of get.k3s.io). */
  // singleLine() before z.url(): zod's url check hands on the WHATWG-normalised value (newlines
  // stripped), so a refinement after it never sees them (property test, seed -1340385526).
  installScriptUrl: singleLine().pipe(z.url())
    .refine((u) => u.startsWith("https://"), { message: "the install script runs as root: it must come over https:// (no http:// or file://)" })
    .default("https://get.k3s.io"),
  /** sha256 of the install script at installScriptUrl, checked before it runs (required in prod unless air-gapped). */
  installScriptSha256: z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits").optional(),
  firewall: firewallSchema.prefault({}),
  /** Traefik Helm values (HelmChartConfig in the servers' manifests directory). */
  traefik: traefikSchema.optional(),
  /** ServiceLB node pools (node labels, allow-list mode). */
  serviceLb: serviceLbSchema.optional(),
  /** API VIP through kube-vip; becomes the default apiEndpoint and a tls-san. */
  apiVip: apiVipSchema.optional(),
  /** Spegel, K3s' embedded peer-to-peer registry mirror (`embedded-registry`); needs registries.mirrors. */
  embeddedRegistry: z.boolean().default(false),
  /** `default-runtime` on every node, e.g. nvidia (then every node needs `gpu: nvidia`). */
  defaultRuntime: z.string().max(63).regex(DNS_LABEL, "runtime name must be a DNS label (e.g. nvidia, crun)").optional(),
  /** `docker: true`: cri-dockerd with the host's Docker instead of the embedded containerd. */
  docker: z.boolean().default(false),
  /** containerd snapshotter (`snapshotter`), e.g. stargz for lazy pulling of eStargz images. */
  snapshotter: z.enum(SNAPSHOTTERS).optional(),
  /** containerd config template (Go template text), placed as config.toml.tmpl or config-v3.toml.tmpl by K3s version. */
  containerdTemplate: z.string().min(1).optional(),
  kubelet: kubeletSchema.prefault({}),
  apiServer: apiServerSchema.prefault({}),
  controllerManager: controllerManagerSchema.prefault({}),
  extraServerConfig: z.record(singleLine(), flagValue).default({}),
  extraAgentConfig: z.record(singleLine(), flagValue).default({}),
});

// ---------------------------------------------------------------- ssh and nodes

export const bastionSchema = z.strictObject({
  host: hostAddress,
  port: port.default(22),
  user: z.string().min(1).default("root"),
  hostKey: sshHostKey.optional(),
});

export const sshSchema = z.strictObject({
  user: z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, "not a valid Unix user name").default("root"),
  port: port.default(22),
  bastion: bastionSchema.optional(),
  /** Seconds per dial attempt and number of failed dials before giving up. */
  perDialTimeout: z.number().int().positive().default(15),
  dialErrorLimit: z.number().int().positive().default(10),
});

export const nodeSshSchema = z.strictObject({
  user: z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, "not a valid Unix user name").optional(),
  port: port.optional(),
  hostKey: sshHostKey.optional(),
});

export const nodeSchema = z.strictObject({
  name: z
    .string()
    .max(63)
    .regex(DNS_LABEL, "node name must be a lowercase DNS label (a-z, 0-9, -)"),
  host: hostAddress,
  role: z.enum(["server", "agent"]),
  labels: labelMap.default({}),
  taints: z.array(taint).default([]),
  nodeIp: ipAddress.optional(),
  externalIp: ipAddress.optional(),
  /** GPUs the node carries: `nvidia` checks for the NVIDIA container runtime and labels the node. */
  gpu: z.enum(["nvidia"]).optional(),
  /** Raspberry Pi boards need cgroup flags on the kernel command line. */
  raspberryPi: z.boolean().default(false),
  ssh: nodeSshSchema.default({}),
});

// ---------------------------------------------------------------- secrets encryption

export const ENCRYPTION_PROVIDERS = ["secretbox", "aesgcm", "aescbc", "kms", "identity"] as const;
export type EncryptionProviderType = (typeof ENCRYPTION_PROVIDERS)[number];
/** Providers whose keys k3s-platform holds (as the secure key encryptionKeys, or generated). */
export const KEYED_PROVIDERS = ["secretbox", "aesgcm", "aescbc"] as const;
export type KeyedProvider = (typeof KEYED_PROVIDERS)[number];

export const encryptionSchema = z.strictObject({
  /** Default: on when hardening is cis, off otherwise. Must be on at the cluster's first start. */
  enabled: z.boolean().optional(),
  /** `k3s`: K3s generates and manages the key; `custom`: we render the EncryptionConfiguration. */
  mode: z.enum(["k3s", "custom"]).default("k3s"),
  /** K3s-managed provider (`secrets-encryption-provider`); K3s' own default is aescbc. */
  provider: z.enum(["aescbc", "secretbox"]).default("aescbc"),
  custom: z
    .strictObject({
      resources: z
        .array(
          z.strictObject({
            /** e.g. secrets, configmaps, *.apps, *.* (wildcards as in EncryptionConfiguration). */
            resources: z.array(z.string().regex(/^(\*\.\*|\*\.[a-z0-9.-]+|[a-z0-9-]+(\.[a-z0-9.-]+)?)$/, "resource must be name[.group], *.group or *.*")).min(1),
            /** In order: the first encrypts new writes, all are tried on read. */
            providers: z.array(z.enum(ENCRYPTION_PROVIDERS)).min(1),
          }),
        )
        .min(1),
      kms: z
        .strictObject({
          name: z.string().regex(DNS_LABEL, "KMS plugin name must be a DNS label"),
          endpoint: singleLine(z.string().regex(/^unix:\/\/\/.+/, "KMS endpoint must be unix:///path/to/socket")),
          timeout: duration.default("3s"),
        })
        .optional(),
    })
    .optional(),
  /** Bump (a counter or a date) to rotate keys; each change runs one rotation. */
  rotation: z.union([singleLine().min(1), z.number()]).optional(),
});

// ---------------------------------------------------------------- tenant namespaces

/** A non-negative Kubernetes quantity (the API server refuses negative quotas and limits). */
export const quantity = z
  .union([z.string(), z.number()])
  .refine(isQuantity, { message: "not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 10Gi)" })
  .refine((q) => (parseQuantity(q) ?? 0) >= 0, { message: "must not be negative" });
const count = z.number().int().nonnegative();
const cpuMemory = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional() });

function lessOrEqual(ctx: z.RefinementCtx, a: string | number | undefined, b: string | number | undefined, path: (string | number)[], message: string) {
  if (a === undefined || b === undefined) return;
  const qa = parseQuantity(a);
  const qb = parseQuantity(b);
  if (qa !== undefined && qb !== undefined && qa > qb) ctx.addIssue({ code: "custom", path, message });
}

export const quotaSchema = z
  .strictObject({
    requestsCpu: quantity.optional(),
    requestsMemory: quantity.optional(),
    limitsCpu: quantity.optional(),
    limitsMemory: quantity.optional(),
    pods: count.optional(),
    services: count.optional(),
    servicesLoadBalancers: count.optional(),
    servicesNodePorts: count.optional(),
    configmaps: count.optional(),
    secrets: count.optional(),
    persistentVolumeClaims: count.optional(),
    requestsStorage: quantity.optional(),
    storageClasses: z
      .record(
        z.string().regex(DNS_SUBDOMAIN, "not a StorageClass name"),
        z.strictObject({ requestsStorage: quantity.optional(), persistentVolumeClaims: count.optional() }),
      )
      .default({}),
    /** Scope this quota to pods of one PriorityClass (scopeSelector PriorityClass In [...]). */
    priorityClass: z.string().regex(DNS_SUBDOMAIN).optional(),
  })
  .superRefine((q, ctx) => {
    lessOrEqual(ctx, q.requestsCpu, q.limitsCpu, ["requestsCpu"], `requests.cpu ${q.requestsCpu} exceeds limits.cpu ${q.limitsCpu}`);
    lessOrEqual(ctx, q.requestsMemory, q.limitsMemory, ["requestsMemory"], `requests.memory ${q.requestsMemory} exceeds limits.memory ${q.limitsMemory}`);
  });

export const limitsSchema = z
  .strictObject({
    container: z
      .strictObject({
        default: cpuMemory.optional(),
        defaultRequest: cpuMemory.optional(),
        min: cpuMemory.optional(),
        max: cpuMemory.optional(),
        /** The API server requires each ratio to be at least 1 (limit ≥ request). */
        maxLimitRequestRatio: z
          .strictObject({
            cpu: quantity.refine((q) => (parseQuantity(q) ?? 0) >= 1, { message: "a limit/request ratio must be at least 1" }).optional(),
            memory: quantity.refine((q) => (parseQuantity(q) ?? 0) >= 1, { message: "a limit/request ratio must be at least 1" }).optional(),
          })
          .optional(),
      })
      .optional(),
    pvc: z.strictObject({ min: quantity.optional(), max: quantity.optional() }).optional(),
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

const networkPort = z.strictObject({
  // Named ports are IANA service names (Kubernetes IsValidPortName): ≤15 chars, a-z0-9 and single
  // hyphens, at least one letter.
  port: z.union([
    port,
    z.string().refine((v) => v.length <= 15 && /^[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$/.test(v) && /[a-z]/.test(v), {
      message: "named port must be an IANA service name (≤15 chars, a-z, 0-9, single hyphens, one letter at least)",
    }),
  ]),
  protocol: z.enum(["TCP", "UDP", "SCTP"]).default("TCP"),
});

export const networkAllowSchema = z
  .strictObject({
    name: z.string().max(50).regex(DNS_LABEL, "policy name must be a DNS label"),
    direction: z.enum(["ingress", "egress"]).default("ingress"),
    /** Peers: namespaces (by kubernetes.io/metadata.name), optionally narrowed to pods; CIDRs. */
    namespaces: z.array(z.string().max(63).regex(DNS_LABEL, "namespace must be a DNS label")).default([]),
    podSelector: labelMap.optional(),
    /** ipBlock CIDRs: network addresses (the API server refuses host bits, e.g. 10.0.0.1/24, from K8s 1.33). */
    cidrs: z.array(cidr.refine(isNetworkCidr, { message: "host bits set: use the network address (e.g. 10.0.0.0/24)" })).default([]),
    ports: z.array(networkPort).default([]),
  })
  .refine((a) => a.namespaces.length > 0 || a.cidrs.length > 0 || a.podSelector !== undefined, {
    message: "an allow needs namespaces, cidrs or a podSelector (an empty peer list would allow everything)",
  });

export const tenantNetworkSchema = z.strictObject({
  defaultDeny: z.boolean().default(true),
  allowDns: z.boolean().default(true),
  allowSameNamespace: z.boolean().default(true),
  /** Default: on when Traefik is not disabled. */
  allowIngressController: z.boolean().optional(),
  /** Default: on when metrics-server is not disabled. */
  allowMetricsServer: z.boolean().default(true),
  /** Egress to the Kubernetes API: server node IPs on 6443, not just the Service IP. */
  allowApiServer: z.boolean().default(false),
  allows: z.array(networkAllowSchema).default([]),
  /** kube-router NFLOG rate for dropped packets (annotations on every policy). */
  nflog: z
    .strictObject({
      limit: z.string().regex(/^\d+\/(second|minute|hour|day)$/, "limit must be N/second|minute|hour|day").optional(),
      burst: z.number().int().positive().optional(),
    })
    .optional(),
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
    }),
  labels: labelMap.default({}),
  podSecurity: z.enum(["privileged", "baseline", "restricted"]).default("restricted"),
  quota: quotaSchema.optional(),
  limits: limitsSchema.optional(),
  network: tenantNetworkSchema.prefault({}),
});

// ---------------------------------------------------------------- CoreDNS

const dnsServer = z
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
      image: imageRef.default("registry.k8s.io/dns/k8s-dns-node-cache:1.26.0"),
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
      image: imageRef.default("registry.k8s.io/cpa/cluster-proportional-autoscaler:v1.9.0"),
    })
    .prefault({}),
});

// ---------------------------------------------------------------- upgrades

/** `kubectl drain` options for upgrades (kubectl drain flags of the same names). */
export const drainSchema = z.strictObject({
  /** Seconds `kubectl drain` may take (`--timeout`); a drain still blocked then fails the step. */
  timeout: z.number().int().min(1).max(86400).default(300),
  /** `--delete-emptydir-data`: pods with emptyDir volumes (metrics-server has one) are evicted, their scratch data lost. */
  deleteEmptyDirData: z.boolean().default(true),
  /** `--ignore-daemonsets`: DaemonSet pods stay (K3s runs several: svclb, kube-vip); without it drain refuses. */
  ignoreDaemonSets: z.boolean().default(true),
  /** `--disable-eviction`: delete pods instead of evicting them, bypassing PodDisruptionBudgets. */
  disableEviction: z.boolean().default(false),
});

/**
 * How a `k3s.version` change rolls out (components/upgrade): servers one at a time, agents in
 * batches of at most `maxUnavailable` (a count, or a percentage of the agents rounded down, at least 1).
 */
export const upgradeSchema = z.strictObject({
  maxUnavailable: z
    .union([
      z.number().int().min(1),
      z.string().regex(/^(100|[1-9][0-9]?)%$/, "a percentage must be 1% to 100% (e.g. 25%)"),
    ])
    .default("10%"),
  drain: drainSchema.prefault({}),
  /** Seconds to wait, after the install, for the node to be Ready with the new kubelet version. */
  readyTimeout: z.number().int().min(10).max(86400).default(600),
});

// ---------------------------------------------------------------- the stack

export const ENVIRONMENTS = ["dev", "staging", "prod"] as const;

export const stackSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS),
  k3s: k3sSchema.prefault({}),
  ssh: sshSchema.prefault({}),
  nodes: z.array(nodeSchema).min(1, "at least one node is required"),
  encryption: encryptionSchema.prefault({}),
  tenants: z.array(tenantSchema).default([]),
  dns: dnsSchema.prefault({}),
  upgrade: upgradeSchema.prefault({}),
});

export type StackInput = z.input<typeof stackSchema>;
export type StackConfig = z.output<typeof stackSchema>;
export type K3sConfig = StackConfig["k3s"];
export type NodeConfig = StackConfig["nodes"][number];
export type SshConfig = StackConfig["ssh"];
export type Environment = StackConfig["environment"];
export type Hardening = "cis" | "none";
export type TenantConfig = StackConfig["tenants"][number];
export type DnsConfig = StackConfig["dns"];

/** The stack config with environment-dependent defaults resolved. */
export type ResolvedConfig = Omit<StackConfig, "k3s" | "encryption"> & {
  k3s: Omit<K3sConfig, "hardening"> & { hardening: Hardening };
  encryption: Omit<StackConfig["encryption"], "enabled"> & { enabled: boolean };
};
export type EncryptionConfig = ResolvedConfig["encryption"];

/** Config keys that hold secrets, read as Pulumi secrets and never validated as plain data. */
export const SECRET_KEYS = [
  "sshPrivateKey", "token", "agentToken", "datastoreEndpoint", "registryAuth", "encryptionKeys",
  "etcdS3AccessKey", "etcdS3SecretKey",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

export function isSecretKey(key: string): key is SecretKey {
  return (SECRET_KEYS as readonly string[]).includes(key);
}

/** Non-secret config keys the schema reads, in the order they are documented. */
export const CONFIG_KEYS = Object.keys(stackSchema.shape) as (keyof StackInput)[];
