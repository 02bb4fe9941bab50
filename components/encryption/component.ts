import { createHash } from "node:crypto";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ResolvedConfig } from "../config/schema";
import { customTimeouts, stepBounds } from "../k3s/timeouts";
import { childName, ENCRYPTION_CHILDREN, encryptionKeyNames, encryptionRestartName, encryptionStepName, TYPES } from "../names";
import type { Connection } from "../ssh/connection";
import type { ClusterPlan } from "../plan/node";
import { sha256 } from "../plan/hash";
import { stdinScriptCommand } from "../shell/root";
import type { EncryptionKey, EncryptionKeys } from "../config/secrets";
import {
  EncryptionStatus,
  keyedProvidersInUse,
  parseEncryptionStatus,
  renderEncryptionConfig,
  renderRestartScript,
  renderVerifyScript,
  rotationPhases,
} from "./render";
import { Baseline, guardOnce, NO_OP_UPDATE, ONE_SHOT_KEYS } from "./once";

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
  plan: ClusterPlan;
  /** Connections of the server nodes, in join order (first server first). */
  servers: Array<{ name: string; connection: Connection; user: string }>;
  /**
   * Every node's apply step, agents included: the rotation restarts servers, which must not
   * happen while a node is still joining (issue 21).
   */
  after: pulumi.Input<pulumi.Resource[]>;
  keys: pulumi.Output<EncryptionKeys>;
  /** The values the cluster was created with (once.ts): on that value nothing rotates. */
  baseline?: pulumi.Output<Baseline>;
}

/**
 * The encryption lifecycle once the servers run: rotation phases (each followed by restarting
 * the servers one at a time), then verification, whose JSON becomes `encryptionStatus`.
 */
export class SecretsEncryption extends pulumi.ComponentResource {
  readonly status: pulumi.Output<EncryptionStatus>;
  /** The last step (verification): later server restarts (certificate rotation) wait for it. */
  readonly done: pulumi.Resource;

  constructor(name: string, args: SecretsEncryptionArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TYPES.secretsEncryption, name, { encryption: args.config.encryption }, opts);
    const { status, verify } = createLifecycle(this, name, args);
    this.status = status;
    this.done = verify;
    this.registerOutputs({ status: this.status });
  }
}

function createLifecycle(parent: SecretsEncryption, name: string, args: SecretsEncryptionArgs): { status: pulumi.Output<EncryptionStatus>; verify: pulumi.Resource } {
  const { config, servers } = args;
  const first = servers[0]!;
  const rotation = String(config.encryption.rotation ?? "");
  let previous: pulumi.Input<pulumi.Resource[]> = args.after;
  // On the value the cluster was created with, every step records it and does nothing (once.ts).
  const createdWith = (args.baseline ?? pulumi.output<Baseline>({})).apply((b) => b[ONE_SHOT_KEYS.encryption]);

  // One-shot steps: their trigger is the rotation value alone; any other input change is a
  // no-op Update, and the host skips a step it already completed for this value (once.ts).
  rotationPhases(config).forEach((phase, i) => {
    const step: command.remote.Command = new command.remote.Command(
      encryptionStepName(name, phase.name),
      {
        connection: first.connection,
        create: stdinScriptCommand(first.user),
        update: NO_OP_UPDATE,
        stdin: createdWith.apply((c) => guardOnce(`encryption-rotation-step-${i + 1}`, rotation, phase.script, c)),
        triggers: [rotation],
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn: previous, customTimeouts: customTimeouts(stepBounds().encryptionStage) },
    );
    previous = [step];
    for (const server of servers) {
      // Servers restart strictly one after another, so etcd keeps its quorum.
      const restart: command.remote.Command = new command.remote.Command(
        encryptionRestartName(name, phase.name, server.name),
        {
          connection: server.connection,
          create: stdinScriptCommand(server.user),
          update: NO_OP_UPDATE,
          stdin: createdWith.apply((c) => guardOnce(`encryption-rotation-step-${i + 1}-restart`, rotation, renderRestartScript(server.name), c)),
          triggers: [rotation],
          addPreviousOutputInEnv: false,
        },
        { parent, dependsOn: previous, customTimeouts: customTimeouts(stepBounds().encryptionRestart) },
      );
      previous = [restart];
    }
  });

  const expectedSha =
    config.encryption.mode === "custom"
      ? args.keys.apply((keys) => sha256(renderEncryptionConfig(config.encryption, keys)))
      : pulumi.output("");
  const verifyScript = pulumi.secret(expectedSha.apply((sha) => renderVerifyScript(config, sha || undefined)));
  // Not one-shot: a read-only check (it finishes a pending enable's re-encryption, which marks
  // itself done) whose stdout is the `encryptionStatus` output, so Update re-runs it.
  const verify = new command.remote.Command(
    childName(name, ENCRYPTION_CHILDREN.verify),
    {
      connection: first.connection,
      create: stdinScriptCommand(first.user),
      update: stdinScriptCommand(first.user),
      stdin: verifyScript,
      // Re-verify whenever a server was re-applied or a rotation ran.
      triggers: [rotation, sha256(args.plan.nodes.filter((n) => n.node.role === "server").map((n) => n.hashes.apply).join())],
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: previous, customTimeouts: customTimeouts(stepBounds().encryptionStage) },
  );
  return { status: verify.stdout.apply((out) => parseEncryptionStatus(out, config.encryption.mode)), verify };
}

