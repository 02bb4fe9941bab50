import { createHash } from "node:crypto";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ResolvedConfig } from "../config/schema";
import { encryptionKeyNames, TYPES } from "../names";
import type { EncryptionKey, EncryptionKeys } from "../config/secrets";
import { EncryptionStatus, keyedProvidersInUse, parseEncryptionStatus } from "./render";

/**
 * Keys for custom mode: the secure key `encryptionKeys` where given, otherwise one generated key
 * per provider: SHA-256 of a 64-character random.RandomPassword (~380 bits), base64 — 32 bytes.
 * Not random.RandomBytes: its resource ID is the base64 value, and IDs are stored in plaintext.
 * RandomPassword's ID is "none" and its result a secret. The key's name carries a random,
 * non-secret suffix (random.RandomString) so a key generated after `destroy` + `up` never reuses
 * the name of a key still on the servers (the host-side write keeps those: keep-keys.ts).
 */
export function encryptionKeys(
  name: string,
  config: ResolvedConfig,
  provided: pulumi.Input<EncryptionKeys> | undefined,
  parent: pulumi.Resource,
): pulumi.Output<EncryptionKeys> {
  const generated: Record<string, pulumi.Output<EncryptionKey>> = {};
  for (const type of keyedProvidersInUse(config.encryption)) {
    const password = new random.RandomPassword(encryptionKeyNames(name, type).key, { length: 64, special: false }, { parent });
    const suffix = new random.RandomString(encryptionKeyNames(name, type).name, { length: 8, special: false, upper: false }, { parent });
    generated[type] = pulumi
      .all([password.result, suffix.result])
      .apply(([p, s]) => ({ name: `${type}-${s}`, secret: createHash("sha256").update(p).digest("base64") }));
  }
  return pulumi.secret(
    pulumi.all([pulumi.output(provided ?? {}), pulumi.all(generated)]).apply(([given, fresh]) => {
      const keys: EncryptionKeys = { ...(given as EncryptionKeys) };
      for (const [type, key] of Object.entries(fresh)) {
        const t = type as keyof EncryptionKeys;
        if (!keys[t]?.length) keys[t] = [key];
      }
      return keys;
    }),
  );
}

export interface SecretsEncryptionArgs {
  config: ResolvedConfig;
}

/**
 * The parent of the encryption lifecycle's steps (operations/encryption.ts: rotation phases, each
 * followed by restarting the servers one at a time, then verification), which the cluster's step
 * loop declares; the verification's JSON becomes `status` (complete).
 */
export class SecretsEncryption extends pulumi.ComponentResource {
  status?: pulumi.Output<EncryptionStatus>;
  /** The last step (verification): later server restarts (certificate rotation) wait for it. */
  done?: pulumi.Resource;
  private readonly mode: ResolvedConfig["encryption"]["mode"];

  constructor(name: string, args: SecretsEncryptionArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TYPES.secretsEncryption, name, { encryption: args.config.encryption }, opts);
    this.mode = args.config.encryption.mode;
  }

  /** Reads the status from the verification step, once the loop declared it. */
  complete(verify: command.remote.Command): pulumi.Output<EncryptionStatus> {
    const mode = this.mode;
    this.status = verify.stdout.apply((out) => parseEncryptionStatus(out, mode));
    this.done = verify;
    this.registerOutputs({ status: this.status });
    return this.status;
  }
}
