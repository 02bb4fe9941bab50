import * as pulumi from "@pulumi/pulumi";
import { EncryptionKeys } from "../encryption/render";
import { RegistryAuth } from "../k3s/render";
import { CONFIG_KEYS, PROJECT, ResolvedConfig } from "./schema";
import { loadStackConfig } from "./validate";

/** Everything the program needs from the stack's configuration, secrets kept as secrets. */
export interface ProgramConfig {
  config: ResolvedConfig;
  sshPrivateKey?: pulumi.Output<string>;
  token?: pulumi.Output<string>;
  agentToken?: pulumi.Output<string>;
  datastoreEndpoint?: pulumi.Output<string>;
  registryAuth?: pulumi.Output<RegistryAuth>;
  encryptionKeys?: pulumi.Output<EncryptionKeys>;
}

/**
 * Reads and validates `k3s-platform:*`. Throws a ConfigError naming every bad path before the
 * program registers any resource, so nothing reaches a host.
 */
export function readProgramConfig(cfg = new pulumi.Config(PROJECT)): ProgramConfig {
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = key === "environment" ? cfg.get(key) : cfg.getObject<unknown>(key);
    if (value !== undefined) raw[key] = value;
  }
  const config = loadStackConfig(raw);
  const datastoreEndpoint = cfg.getSecret("datastoreEndpoint");
  if (config.k3s.datastore.type === "external" && !datastoreEndpoint) {
    throw new Error(`${PROJECT}:datastoreEndpoint: required (as a secret) when k3s.datastore.type is external`);
  }
  return {
    config,
    sshPrivateKey: cfg.getSecret("sshPrivateKey"),
    token: cfg.getSecret("token"),
    agentToken: cfg.getSecret("agentToken"),
    datastoreEndpoint,
    registryAuth: cfg.getSecretObject<RegistryAuth>("registryAuth"),
    encryptionKeys: cfg.getSecretObject<EncryptionKeys>("encryptionKeys"),
  };
}
