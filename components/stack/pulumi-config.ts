import * as pulumi from "@pulumi/pulumi";
import { PROJECT, ResolvedConfig } from "../config/schema";
import type { EncryptionKeys, RegistryAuth } from "../config/secrets";
import { splitStackConfig } from "../config/stack-file";
import { ConfigError } from "../config/validate";
import { checkStackFile } from "./load";

/** Everything the program needs from the stack's configuration, secrets kept as secrets. */
export interface ProgramConfig {
  config: ResolvedConfig;
  sshPrivateKey?: pulumi.Output<string>;
  token?: pulumi.Output<string>;
  agentToken?: pulumi.Output<string>;
  datastoreEndpoint?: pulumi.Output<string>;
  registryAuth?: pulumi.Output<RegistryAuth>;
  encryptionKeys?: pulumi.Output<EncryptionKeys>;
  etcdS3AccessKey?: pulumi.Output<string>;
  etcdS3SecretKey?: pulumi.Output<string>;
  vpnAuthKey?: pulumi.Output<string>;
}

// The engine's config map and its secret keys. `isConfigSecret` is how the SDK itself tells secret
// keys apart but is marked @internal (absent from the .d.ts), hence the typed require.
const runtimeConfig = require("@pulumi/pulumi/runtime/config") as {
  allConfig(): Record<string, string>;
  isConfigSecret(key: string): boolean;
};

/** Engine values are strings; objects and lists arrive as JSON (as Config.getObject reads them). */
function fromEngine(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/**
 * Reads and validates every `k3s-platform:*` key through the same reader as `npm run render`.
 * Throws a ConfigError naming every bad path (unknown keys, plaintext secrets, missing secrets)
 * before the program registers any resource, so nothing reaches a host.
 */
export function readProgramConfig(cfg = new pulumi.Config(PROJECT)): ProgramConfig {
  const all = runtimeConfig.allConfig();
  const values = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, fromEngine(v)]));
  const file = splitStackConfig(values, (fullKey) => runtimeConfig.isConfigSecret(fullKey));
  const result = checkStackFile(file);
  if (!result.ok) throw new ConfigError(result.issues, `the config of stack ${pulumi.getStack()} (Pulumi.${pulumi.getStack()}.yaml)`);
  for (const w of result.warnings) pulumi.log.warn(`${w.path}: ${w.message}`);
  return {
    config: result.config,
    sshPrivateKey: cfg.getSecret("sshPrivateKey"),
    token: cfg.getSecret("token"),
    agentToken: cfg.getSecret("agentToken"),
    datastoreEndpoint: cfg.getSecret("datastoreEndpoint"),
    registryAuth: cfg.getSecretObject<RegistryAuth>("registryAuth"),
    encryptionKeys: cfg.getSecretObject<EncryptionKeys>("encryptionKeys"),
    etcdS3AccessKey: cfg.getSecret("etcdS3AccessKey"),
    etcdS3SecretKey: cfg.getSecret("etcdS3SecretKey"),
    vpnAuthKey: cfg.getSecret("vpnAuthKey"),
  };
}
