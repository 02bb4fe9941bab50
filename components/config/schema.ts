import { z } from "zod";
import { isCidr, isIp } from "./net";

/**
 * The one schema of k3s-platform's stack configuration (`k3s-platform:*` keys in
 * Pulumi.<env>.yaml). Renderers, components and the policy pack all read these types.
 * Secrets (`sshPrivateKey`, `token`, `agentToken`, `datastoreEndpoint`, `registryAuth`,
 * `encryptionKeys`) are separate secure keys and never pass through this schema.
 */

export const PROJECT = "k3s-platform";

// ---------------------------------------------------------------- primitives

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

export const cidr = z.string().refine(isCidr, { message: "not a CIDR (expected e.g. 10.42.0.0/16)" });
export const ipAddress = z.string().refine(isIp, { message: "not an IP address" });
export const hostAddress = z
  .string()
  .min(1)
  .refine((v) => isIp(v) || (v.length <= 253 && DNS_SUBDOMAIN.test(v.toLowerCase())), {
    message: "not an IP address or DNS name",
  });
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
export const flagValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]);
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
  z.string().regex(/^(\d+(\.\d+)?%|\d+(\.\d+)?([KMGTPE]i?)?)$/, "threshold must be a quantity (200Mi) or a percentage (10%)"),
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

export const proxySchema = z.strictObject({
  httpProxy: z.url().optional(),
  httpsProxy: z.url().optional(),
  noProxy: z.array(z.string().min(1)).default([]),
  containerdHttpProxy: z.url().optional(),
  containerdHttpsProxy: z.url().optional(),
  containerdNoProxy: z.array(z.string().min(1)).optional(),
});

export const registriesSchema = z.strictObject({
  mirrors: z
    .record(
      z.string().min(1),
      z.strictObject({
        endpoint: z.array(z.url()).min(1),
        rewrite: z.record(z.string(), z.string()).optional(),
      }),
    )
    .default({}),
  configs: z
    .record(
      z.string().min(1),
      z.strictObject({
        tls: z
          .strictObject({
            caFile: z.string().optional(),
            certFile: z.string().optional(),
            keyFile: z.string().optional(),
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
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
  }),
]);

export const airgapSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Where the install script was pre-staged on every host. */
  installScriptPath: z.string().startsWith("/").default("/usr/local/bin/k3s-install.sh"),
  /** Where the k3s binary was pre-staged (the install script expects /usr/local/bin/k3s). */
  binaryPath: z.string().startsWith("/").default("/usr/local/bin/k3s"),
  /** Image tarballs pre-staged here are imported by K3s at start. */
  imagesDir: z.string().startsWith("/").default("/var/lib/rancher/k3s/agent/images"),
});

export const firewallSchema = z.strictObject({
  /** `open`: keep firewalld/ufw running with the K3s ports opened; `disable`: turn them off. */
  mode: z.enum(["open", "disable", "ignore"]).default("open"),
});

export const k3sSchema = z.strictObject({
  version: z
    .string()
    .regex(/^v1\.\d+\.\d+\+k3s\d+$/, "version must be an exact K3s release, e.g. v1.31.4+k3s1")
    .optional(),
  channel: z.string().regex(/^(stable|latest|testing|v1\.\d+)$/, "channel must be stable, latest, testing or v1.NN").optional(),
  /** The version the cluster runs now, recorded before an upgrade (policy: no skipped minor). */
  previousVersion: z.string().regex(/^v1\.\d+\.\d+\+k3s\d+$/).optional(),
  clusterCidr: cidr.default("10.42.0.0/16"),
  serviceCidr: cidr.default("10.43.0.0/16"),
  clusterDns: ipAddress.default("10.43.0.10"),
  clusterDomain: z.string().regex(DNS_SUBDOMAIN, "not a DNS domain").default("cluster.local"),
  disable: z.array(z.enum(PACKAGED_COMPONENTS)).default([]),
  flannelBackend: z.enum(["vxlan", "host-gw", "wireguard-native", "none"]).default("vxlan"),
  /** Address clients and agents use for the API (a VIP or load balancer); default: first server. */
  apiEndpoint: hostAddress.optional(),
  tlsSan: z.array(hostAddress).default([]),
  datastore: datastoreSchema.default({ type: "etcd" }),
  /** Defaults by environment: `cis` in prod, `none` elsewhere. */
  hardening: z.enum(["cis", "none"]).optional(),
  selinux: z.boolean().default(false),
  preferBundledBin: z.boolean().default(false),
  proxy: proxySchema.optional(),
  registries: registriesSchema.optional(),
  airgap: airgapSchema.prefault({}),
  /** Where the install script is fetched from when not air-gapped (a mirror of get.k3s.io). */
  installScriptUrl: z.url().default("https://get.k3s.io"),
  firewall: firewallSchema.prefault({}),
  kubelet: kubeletSchema.prefault({}),
  apiServer: apiServerSchema.prefault({}),
  controllerManager: controllerManagerSchema.prefault({}),
  extraServerConfig: z.record(z.string(), flagValue).default({}),
  extraAgentConfig: z.record(z.string(), flagValue).default({}),
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
  /** Raspberry Pi boards need cgroup flags on the kernel command line. */
  raspberryPi: z.boolean().default(false),
  ssh: nodeSshSchema.default({}),
});

// ---------------------------------------------------------------- the stack

export const ENVIRONMENTS = ["dev", "staging", "prod"] as const;

export const stackSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS),
  k3s: k3sSchema.prefault({}),
  ssh: sshSchema.prefault({}),
  nodes: z.array(nodeSchema).min(1, "at least one node is required"),
});

export type StackInput = z.input<typeof stackSchema>;
export type StackConfig = z.output<typeof stackSchema>;
export type K3sConfig = StackConfig["k3s"];
export type NodeConfig = StackConfig["nodes"][number];
export type SshConfig = StackConfig["ssh"];
export type Environment = StackConfig["environment"];
export type Hardening = "cis" | "none";

/** The stack config with environment-dependent defaults resolved. */
export type ResolvedConfig = Omit<StackConfig, "k3s"> & {
  k3s: Omit<K3sConfig, "hardening"> & { hardening: Hardening };
};

/** Config keys that hold secrets, read as Pulumi secrets and never validated as plain data. */
export const SECRET_KEYS = [
  "sshPrivateKey", "token", "agentToken", "datastoreEndpoint", "registryAuth", "encryptionKeys",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** Non-secret config keys the schema reads, in the order they are documented. */
export const CONFIG_KEYS = Object.keys(stackSchema.shape) as (keyof StackInput)[];
