import { z } from "zod";
import { k3sSchema } from "./addons";
import { dnsSchema } from "./dns";
import { encryptionSchema } from "./encryption";
import { HookConfig, hookSchema } from "./hooks";
import { nodeSchema, poolName, poolSchema, sshSchema } from "./nodes";
import { tenantSchema } from "./tenants";
import { upgradeSchema } from "./upgrade";
import { maintenanceSchema, restoreSchema } from "./restore";
import { registryHost } from "./k3s";
import { FLANNEL_BACKENDS } from "./network";
import { singleLine } from "../single-line";

/**
 * The one schema of k3s-platform's stack configuration (`k3s-platform:*` keys in
 * Pulumi.<env>.yaml). Renderers, components and the policy pack all read these types.
 * Secrets (SECRET_KEYS below) are separate secure keys and never pass through this schema.
 *
 * Every value is checked against the format of the consumer it lands in (K3s flags, containerd's
 * registries.yaml, the API server, CoreDNS, systemd env files); every string that reaches a host is
 * also `singleLine()` (no newline or control character).
 */

export * from "./primitives";
export * from "./k3s";
export * from "./addons";
export * from "./network";
export * from "./nodes";
export * from "./encryption";
export * from "./tenants";
export * from "./dns";
export * from "./upgrade";
export * from "./restore";
export * from "./hooks";
export * from "./authentication";

// ---------------------------------------------------------------- the stack

export const ENVIRONMENTS = ["dev", "staging", "prod"] as const;

export const stackSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS).describe("The stack's environment; drives defaults (prod: hardening cis, no channel, the allowlist of free-form settings)."),
  k3s: k3sSchema.prefault({}).describe("K3s itself: release, networks, datastore, hardening, registries, air-gap, firewall, add-ons."),
  ssh: sshSchema.prefault({}).describe("How k3s-platform reaches every host (defaults for nodes[].ssh)."),
  pools: z.record(poolName, poolSchema).optional().describe("Shared node settings by pool name (docs/node-pools.md); resolved into `nodes` before validation."),
  nodes: z.array(nodeSchema).min(1, "at least one node is required").describe("The hosts of the cluster; the first server initialises it."),
  encryption: encryptionSchema.prefault({}).describe("Secrets encryption at rest (docs/in-cluster.md)."),
  tenants: z.array(tenantSchema).default([]).describe("Tenant namespaces with Pod Security, quotas, limits and network policies (docs/in-cluster.md)."),
  dns: dnsSchema.prefault({}).describe("CoreDNS tuning, NodeLocal DNSCache and the DNS autoscaler (docs/in-cluster.md)."),
  certificates: z
    .strictObject({
      /** Bump (a counter or a date) to rotate every node's certificates, servers one at a time. */
      rotation: z.union([singleLine().min(1), z.number()]).optional().describe("Bump (a counter or a date) to rotate every node's client and server certificates, servers one at a time."),
    })
    .optional().describe("Client and server certificates (docs/rotation.md)."),
  upgrade: upgradeSchema.prefault({}).describe("How a k3s.version change rolls out (docs/upgrading.md)."),
  restore: restoreSchema.optional().describe("Restore an etcd snapshot with `pulumi up`, once per id (docs/backup-and-restore.md)."),
  maintenance: maintenanceSchema.optional().describe("Rolling node maintenance: drain, command, reboot, uncordon, once per id (docs/maintenance.md)."),
  hooks: z.array(hookSchema).optional().describe("The user's commands at named points of a node's life (docs/hooks.md); refused in prod without an exception."),
  /**
   * The container images k3s-platform deploys (kube-vip, NodeLocal DNSCache, the DNS autoscaler):
   * `registries` lists the registries they may come from (`host[:port]`, as in the image
   * reference; a mirror of your own). Unset: the registries of the pinned defaults
   * (`ghcr.io`, `registry.k8s.io`). Prod refuses an image from another registry or without a
   * `@sha256:` digest (config/surfaces.ts imageFindings).
   */
  images: z
    .strictObject({
      registries: z.array(registryHost).min(1).optional().describe("The registries (host[:port]) the deployed images may come from; unset: those of the pinned defaults (ghcr.io, registry.k8s.io)."),
    })
    .prefault({}).describe("The container images k3s-platform deploys (kube-vip, NodeLocal DNSCache, the DNS autoscaler); prod refuses one from another registry or without a @sha256: digest."),
  uninstallOnDestroy: z.boolean().optional().describe("`pulumi destroy` uninstalls K3s from every node (agents first, servers last, one at a time) and removes the firewall rules os-prep opened (docs/destroy.md); unset or false: K3s stays."),
  protect: z.boolean().optional().describe("Pulumi `protect` for the stack (docs/destroy.md): `pulumi destroy` refuses until this is false and an `up` ran; default true in prod, false elsewhere."),
});

export type StackInput = z.input<typeof stackSchema>;
export type StackConfig = z.output<typeof stackSchema>;
export type K3sConfig = StackConfig["k3s"];
export type NodeConfig = StackConfig["nodes"][number];
export type SshConfig = StackConfig["ssh"];
export type Environment = StackConfig["environment"];
export type Hardening = "cis" | "none";
export type FlannelBackend = (typeof FLANNEL_BACKENDS)[number];
export type TenantConfig = StackConfig["tenants"][number];
export type DnsConfig = StackConfig["dns"];

/** The stack config with environment-dependent defaults resolved. */
export type ResolvedConfig = Omit<StackConfig, "k3s" | "encryption" | "pools" | "hooks"> & {
  /** Hooks with their pools resolved into node names (config/hooks.ts). */
  hooks?: ResolvedHook[];
  /** clusterDns resolved per family (resolveDefaults). */
  k3s: Omit<K3sConfig, "hardening" | "clusterDns" | "flannelBackend" | "flannelIpv6Masq"> & {
    hardening: Hardening;
    clusterDns: string[];
    /** Resolved: vxlan with cni flannel, none with any other cni (config/validate.ts resolveDefaults). */
    flannelBackend: FlannelBackend;
    flannelIpv6Masq: boolean;
  };
  encryption: Omit<StackConfig["encryption"], "enabled"> & { enabled: boolean };
};
export type EncryptionConfig = ResolvedConfig["encryption"];
/** A hook as renderers read it: `pools` resolved into `nodes` (members of the pools added). */
export type ResolvedHook = Omit<HookConfig, "pools">;

/** Config keys that hold secrets, read as Pulumi secrets and never validated as plain data. */
export const SECRET_KEYS = [
  "sshPrivateKey", "token", "agentToken", "datastoreEndpoint", "registryAuth", "encryptionKeys",
  "etcdS3AccessKey", "etcdS3SecretKey", "vpnAuthKey", "restoreToken",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** What each secure key holds (docs/configuration-reference.md). */
export const SECRET_DESCRIPTIONS: Record<SecretKey, string> = {
  sshPrivateKey: "The SSH private key for every host (and the bastion); absent: the SSH agent.",
  token: "The cluster token; generated when absent (stack output clusterToken; a restore needs it).",
  agentToken: "An agent-only join token (`agent-token`), optional.",
  datastoreEndpoint: "The external datastore's URL with its credentials; required with k3s.datastore.type external.",
  registryAuth: "Registry credentials: `{ \"<registry host>\": { username, password } }` (registries.yaml configs.auth).",
  encryptionKeys: "Keys of the custom encryption mode: `{ secretbox: [{ name, secret }] }`; generated when absent.",
  etcdS3AccessKey: "S3 access key for k3s.etcdSnapshots.s3 (set with etcdS3SecretKey; neither: the host's instance credentials).",
  etcdS3SecretKey: "S3 secret key for k3s.etcdSnapshots.s3.",
  vpnAuthKey: "The VPN auth key for k3s.vpn (`vpn-auth`, e.g. a Tailscale auth key); written through the secrets drop-in.",
  restoreToken: "The token the cluster had when the snapshot to restore was taken (restore; only when it differs from token); never on a command line.",
};

export function isSecretKey(key: string): key is SecretKey {
  return (SECRET_KEYS as readonly string[]).includes(key);
}

/** Non-secret config keys the schema reads, in the order they are documented. */
export const CONFIG_KEYS = Object.keys(stackSchema.shape) as (keyof StackInput)[];
