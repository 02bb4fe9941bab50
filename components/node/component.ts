import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { STAGING_DIR } from "../k3s/install";
import { NODE_CHILDREN } from "./names";
import { NodePlan, NodeSecrets, secretWriteCommand, sha256 } from "./plan";

export type Connection = command.types.input.remote.ConnectionArgs;

export interface K3sNodeArgs {
  plan: NodePlan;
  connection: Connection;
  /** Resolved secrets; rendered into the node's secret files on the host only. */
  secrets: pulumi.Output<NodeSecrets>;
  /** Apply steps that must finish before this node's apply runs (server join order). */
  after?: pulumi.Resource[];
}

// Names of a node's children live in names.ts, so validation can check them for collisions.
export { NODE_CHILDREN };

/**
 * One host: stage files over SFTP, write secret files from stdin, prepare the OS, apply K3s.
 * The OS-prep step runs when its script changes; the apply step when anything K3s reads changes.
 */
export class K3sNode extends pulumi.ComponentResource {
  readonly osPrep: command.remote.Command;
  readonly apply: command.remote.Command;

  constructor(name: string, args: K3sNodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("k3s-platform:index:K3sNode", name, nodeInputs(args.plan), opts);
    const { osPrep, apply } = createNodeResources(this, name, args);
    this.osPrep = osPrep;
    this.apply = apply;
    this.registerOutputs({ osPrepStdout: osPrep.stdout, applyStdout: apply.stdout });
  }
}

/** What policies see of a node: identity, role, file targets and hashes; never contents. */
export function nodeInputs(plan: NodePlan) {
  return {
    node: plan.node,
    role: plan.role,
    hardening: plan.hardening,
    // The final non-secret flags (config.yaml + drop-in keys): the CIS and flag policies read these.
    flags: plan.finalFlags.flags,
    secretFlags: plan.finalFlags.secretFlags,
    hashes: plan.hashes,
    files: plan.files.map((f) => ({ name: f.name, target: f.target ?? null, sha256: sha256(f.content) })),
    secretFiles: plan.secretFiles.map((f) => ({ name: f.name, target: f.target })),
  };
}

function createNodeResources(parent: K3sNode, name: string, args: K3sNodeArgs) {
  const { plan, connection, secrets } = args;
  const child = (suffix: string) => `${name}-${suffix}`;

  const stage = new command.remote.Command(
    child(NODE_CHILDREN.stage),
    { connection, create: plan.commands.stage, triggers: [STAGING_DIR] },
    { parent },
  );

  const copies = new Map<string, command.remote.CopyToRemote>();
  for (const file of plan.files) {
    copies.set(
      file.name,
      new command.remote.CopyToRemote(
        child(NODE_CHILDREN.file(file.name)),
        {
          connection,
          source: new pulumi.asset.StringAsset(file.content),
          remotePath: `${STAGING_DIR}/${file.name}`,
          triggers: [sha256(file.content)],
        },
        { parent, dependsOn: [stage] },
      ),
    );
  }

  const secretWrites = plan.secretFiles.map((file) => {
    const write = secretWriteCommand(plan.sshUser, file);
    return new command.remote.Command(
      child(NODE_CHILDREN.secret(file.name)),
      {
        connection,
        create: write,
        update: write,
        stdin: pulumi.secret(secrets.apply((s) => file.render(s))),
        logging: command.types.enums.remote.Logging.None,
        addPreviousOutputInEnv: false,
      },
      { parent, additionalSecretOutputs: ["stdout", "stderr", "stdin"] },
    );
  });

  const osPrep = new command.remote.Command(
    child(NODE_CHILDREN.osPrep),
    {
      connection,
      create: plan.commands.osPrep,
      update: plan.commands.osPrep,
      triggers: [plan.hashes.osPrep],
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: [copies.get("os-prep.sh")!] },
  );

  // A changed secret re-runs apply; its hash is derived from a secret, so it stays one.
  const secretsHash = pulumi.secret(
    secrets.apply((s) => sha256(plan.secretFiles.map((f) => f.render(s)).join("\0"))),
  );
  const apply = new command.remote.Command(
    child(NODE_CHILDREN.apply),
    {
      connection,
      create: plan.commands.apply,
      update: plan.commands.apply,
      triggers: [plan.hashes.apply, secretsHash],
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: [...copies.values(), ...secretWrites, osPrep, ...(args.after ?? [])] },
  );

  return { osPrep, apply };
}
