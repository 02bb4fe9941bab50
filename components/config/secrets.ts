import type { KeyedProvider } from "./schema";

/**
 * The secret inputs (Pulumi secure config keys, SECRET_KEYS in schema/) as renderers receive
 * them. They live in config/ beside the schema so renderers import them downward; values only
 * ever reach a host through the node's `secrets` command (plan/node.ts), never a staged file.
 */

/** K3s join and datastore secrets (server/agent tokens, external datastore DSN, etcd S3 keys). */
export interface ClusterSecrets {
  token: string;
  agentToken?: string;
  datastoreEndpoint?: string;
  etcdS3AccessKey?: string;
  etcdS3SecretKey?: string;
  /** Tailscale auth key for k3s.vpn (vpn-auth `joinKey`). */
  vpnAuthKey?: string;
}

/** `registryAuth`: registries.yaml `configs.<host>.auth` per registry host (containerd fields). */
export type RegistryAuth = Record<string, { username?: string; password?: string; auth?: string; identitytoken?: string }>;

/** One key of a keyed encryption provider. */
export interface EncryptionKey {
  name: string;
  /** base64 of 32 random bytes */
  secret: string;
}

/** `encryptionKeys`: keys per keyed provider (custom encryption mode), newest first. */
export type EncryptionKeys = Partial<Record<KeyedProvider, EncryptionKey[]>>;

/** Everything a node's secret files may render from. */
export interface NodeSecrets extends ClusterSecrets {
  registryAuth?: RegistryAuth;
  encryptionKeys?: EncryptionKeys;
}
