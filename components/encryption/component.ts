import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ResolvedConfig } from "../config/schema";
import { Connection } from "../node/component";
import { ClusterPlan, sha256, stdinScriptCommand } from "../node/plan";
import {
  EncryptionKeys,
  EncryptionStatus,
  keyedProvidersInUse,
  parseEncryptionStatus,
  renderEncryptionConfig,
  renderRestartScript,
  renderVerifyScript,
  rotationPhases,
} from "./render";

/**
 * Keys for custom mode: the secure key `encryptionKeys` where given, otherwise 32 random bytes
 * per provider from @pulumi/random (kept in state as a secret).
 */
export function encryptionKeys(
  name: string,
  config: ResolvedConfig,
  provided: pulumi.Input<EncryptionKeys> | undefined,
  parent: pulumi.Resource,
): pulumi.Output<EncryptionKeys> {
  const generated: Record<string, pulumi.Output<string>> = {};
  for (const type of keyedProvidersInUse(config.encryption)) {
    generated[type] = new random.RandomBytes(`${name}-encryption-key-${type}`, { length: 32 }, { parent }).base64;
  }
  return pulumi.secret(
    pulumi.all([pulumi.output(provided ?? {}), pulumi.all(generated)]).apply(([given, fresh]) => {
      const keys: EncryptionKeys = { ...(given as EncryptionKeys) };
      for (const [type, secret] of Object.entries(fresh)) {
        const t = type as keyof EncryptionKeys;
        if (!keys[t]?.length) keys[t] = [{ name: `${type}-key-1`, secret }];
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
  /** Every server's apply step: encryption steps run after the servers are up. */
  after: pulumi.Resource[];
  keys: pulumi.Output<EncryptionKeys>;
}

/**
 * The encryption lifecycle once the servers run: rotation phases (each followed by restarting
 * the servers one at a time), then verification, whose JSON becomes `encryptionStatus`.
 */
export class SecretsEncryption extends pulumi.ComponentResource {
  readonly status: pulumi.Output<EncryptionStatus>;

  constructor(name: string, args: SecretsEncryptionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s-platform:index:SecretsEncryption", name, { encryption: args.config.encryption }, opts);
    this.status = createLifecycle(this, name, args);
    this.registerOutputs({ status: this.status });
  }
}

function createLifecycle(parent: SecretsEncryption, name: string, args: SecretsEncryptionArgs): pulumi.Output<EncryptionStatus> {
  const { config, servers } = args;
  const first = servers[0]!;
  const rotation = String(config.encryption.rotation ?? "");
  let previous: pulumi.Resource[] = args.after;

  for (const phase of rotationPhases(config)) {
    const step = new command.remote.Command(
      `${name}-${phase.name}`,
      {
        connection: first.connection,
        create: stdinScriptCommand(first.user),
        update: stdinScriptCommand(first.user),
        stdin: phase.script,
        triggers: [rotation],
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn: previous },
    );
    previous = [step];
    for (const server of servers) {
      // Servers restart strictly one after another, so etcd keeps its quorum.
      const restart = new command.remote.Command(
        `${name}-${phase.name}-restart-${server.name}`,
        {
          connection: server.connection,
          create: stdinScriptCommand(server.user),
          update: stdinScriptCommand(server.user),
          stdin: renderRestartScript(server.name),
          triggers: [rotation],
          addPreviousOutputInEnv: false,
        },
        { parent, dependsOn: previous },
      );
      previous = [restart];
    }
  }

  const expectedSha =
    config.encryption.mode === "custom"
      ? args.keys.apply((keys) => sha256(renderEncryptionConfig(config.encryption, keys)))
      : pulumi.output("");
  const verifyScript = pulumi.secret(expectedSha.apply((sha) => renderVerifyScript(config, sha || undefined)));
  const verify = new command.remote.Command(
    `${name}-verify`,
    {
      connection: first.connection,
      create: stdinScriptCommand(first.user),
      update: stdinScriptCommand(first.user),
      stdin: verifyScript,
      // Re-verify whenever a server was re-applied or a rotation ran.
      triggers: [rotation, sha256(args.plan.nodes.filter((n) => n.node.role === "server").map((n) => n.hashes.apply).join())],
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: previous },
  );
  return verify.stdout.apply((out) => parseEncryptionStatus(out, config.encryption.mode));
}

