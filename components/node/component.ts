import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { NodeSecrets } from "../config/secrets";
import { STAGING_DIR } from "../k3s/install";
import { PREFLIGHT_SCRIPT } from "../k3s/agent-preflight";
import { customTimeouts } from "../k3s/timeouts";
import { rebuildTriggers } from "../decommission/rebuild";
import { childName, NODE_CHILDREN, TYPES } from "../names";
import { sha256 } from "../plan/hash";
import { applyWithRelease, NodePlan, renderSecretsDocument, runWithRelease } from "../plan/node";
import { restartDigest } from "../plan/restart";
import type { Connection } from "../ssh/connection";

export type { Connection };

export interface K3sNodeArgs {
  plan: NodePlan;
  connection: Connection;
  /** Resolved secrets; rendered into the node's secret files on the host only. */
  secrets: pulumi.Output<NodeSecrets>;
  /** Apply steps that must finish before this node's apply runs (server join order). */
  after?: pulumi.Resource[];
  /** Steps that must finish before the secret files are rewritten (token rotation). */
  secretsAfter?: pulumi.Resource[];
  /** Steps that must finish before any step of this node runs (the rebuild's forget step). */
  before?: pulumi.Resource[];
  /** A channel stack: the k3s-release step's stdout (k3s/release.ts); the apply installs that release. */
  release?: pulumi.Output<string>;
  /** An agent: the keyed digest of its secret files (plan/restart.ts secretInputsDigest), among its preflight's triggers. */
  secretInputs?: pulumi.Output<string>;
}

// Names of a node's children live in components/names.ts (pure: validation and policies can use them).
export { NODE_CHILDREN };

/**
 * One host, five steps: create the staging directory, copy the node's bundle (every staged file
 * in one self-extracting script), write every secret file from one stdin document, prepare the
 * OS, apply K3s. OS prep runs when its script changes; apply when anything K3s reads changes.
 * `nodes[].rebuild` is added to the triggers of all five (only when set): each new value re-runs
 * every step on a re-imaged host (decommission/rebuild.ts).
 */
export class K3sNode extends pulumi.ComponentResource {
  readonly osPrep: command.remote.Command;
  readonly apply: command.remote.Command;
  /** Agents in upgrade batches: the host checks their batch's drain waits for. */
  readonly preflight?: command.remote.Command;

  constructor(name: string, args: K3sNodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TYPES.node, name, nodeInputs(args.plan), opts);
    const { osPrep, apply, preflight } = createNodeResources(this, name, args);
    this.osPrep = osPrep;
    this.apply = apply;
    this.preflight = preflight;
    this.registerOutputs({ osPrepStdout: osPrep.stdout, applyStdout: apply.stdout });
  }
}

/** What policies see of a node: identity, role, file targets and hashes; never contents. */
export function nodeInputs(plan: NodePlan) {
  return {
    node: plan.node,
    role: plan.role,
    hardening: plan.hardening,
    // Registered only when K3s' NetworkPolicy controller is replaced (no change for flannel stacks).
    ...(plan.networkPolicyBy ? { networkPolicyBy: plan.networkPolicyBy } : {}),
    // The final non-secret flags (config.yaml + drop-in keys): the CIS and flag policies read these.
    flags: plan.finalFlags.flags,
    secretFlags: plan.finalFlags.secretFlags,
    hashes: plan.hashes,
    bundle: { name: plan.bundle.name, sha256: plan.bundle.sha256 },
    files: plan.files.map((f) => ({ name: f.name, target: f.target ?? null, sha256: sha256(f.content) })),
    secretFiles: plan.secretFiles.map((f) => ({ name: f.name, target: f.target })),
  };
}

function createNodeResources(parent: K3sNode, name: string, args: K3sNodeArgs) {
  const { plan, connection, secrets } = args;
  const child = (suffix: string) => childName(name, suffix);
  // Unset: [] (triggers stay byte-identical to a config without the key).
  const rebuild = rebuildTriggers(plan.node);
  const before = args.before ?? [];

  const stage = new command.remote.Command(
    child(NODE_CHILDREN.stage),
    { connection, create: plan.commands.stage, triggers: [STAGING_DIR, ...rebuild] },
    { parent, dependsOn: before },
  );

  const bundle = new command.remote.CopyToRemote(
    child(NODE_CHILDREN.bundle),
    {
      connection,
      source: new pulumi.asset.StringAsset(plan.bundle.content),
      remotePath: `${STAGING_DIR}/${plan.bundle.name}`,
      triggers: [plan.bundle.sha256, ...rebuild],
    },
    { parent, dependsOn: [stage] },
  );

  // One document for all secret files; derived from secrets, so it and its hash stay secret.
  const document = pulumi.secret(secrets.apply((s) => renderSecretsDocument(plan, s)));
  const secretWrites = new command.remote.Command(
    child(NODE_CHILDREN.secrets),
    {
      connection,
      create: plan.commands.secrets,
      update: plan.commands.secrets,
      stdin: document,
      logging: command.types.enums.remote.Logging.None,
      ...(rebuild.length ? { triggers: rebuild } : {}),
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: [...(args.secretsAfter ?? []), ...before], additionalSecretOutputs: ["stdout", "stderr", "stdin"] },
  );

  const osPrep = new command.remote.Command(
    child(NODE_CHILDREN.osPrep),
    {
      connection,
      create: plan.commands.osPrep,
      update: plan.commands.osPrep,
      triggers: [plan.hashes.osPrep, ...rebuild],
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: [bundle] },
  );

  // A changed secret re-runs apply.
  const secretsHash = pulumi.secret(document.apply(sha256));
  const applyCommand = args.release ? args.release.apply((stdout) => applyWithRelease(plan, stdout)) : plan.commands.apply;
  const apply = new command.remote.Command(
    child(NODE_CHILDREN.apply),
    {
      connection,
      create: applyCommand,
      update: applyCommand,
      triggers: [plan.hashes.apply, secretsHash, ...rebuild],
      addPreviousOutputInEnv: false,
    },
    // Above the sum of apply.sh's own bounded waits (k3s/timeouts.ts): the script's message, naming
    // host and step, comes first; this is the backstop for a hung SSH session.
    { parent, dependsOn: [bundle, secretWrites, osPrep, ...(args.after ?? [])], customTimeouts: customTimeouts(plan.applyBoundSeconds) },
  );

  // Read-only host checks (k3s/preflight.ts) for the upgrade batch's drain, which waits for them.
  // Triggered by the version and this agent's K3s inputs, its secret files' among them (the keyed
  // digest), as its batch's drain is (issue 26: a restart goes through the drain too): an agent
  // that restarts and cannot be reached fails here,
  // before anything is cordoned; on any other change an unreachable agent holds back nothing (an
  // unchanged step does not log in).
  // A channel stack: with the cluster's release, as the apply (its guard refuses another release).
  const preflightCommand = args.release ? args.release.apply((stdout) => runWithRelease(plan, PREFLIGHT_SCRIPT, stdout)) : plan.commands.preflight;
  const preflight = plan.commands.preflight
    ? new command.remote.Command(
        child(NODE_CHILDREN.preflight),
        {
          connection,
          create: preflightCommand,
          update: preflightCommand,
          triggers: preflightTriggers(plan, args.secretInputs ?? "", rebuild),
          addPreviousOutputInEnv: false,
        },
        // After the secrets write: its dry run fingerprints the secret files the apply will read.
        { parent, dependsOn: [bundle, secretWrites] },
      )
    : undefined;

  return { osPrep, apply, preflight };
}

/** An agent's preflight triggers: the version, its restart digest, the keyed digest of its secret files, `rebuild`. */
export function preflightTriggers<S extends pulumi.Input<string>>(plan: NodePlan, secretInputs: S, rebuild: string[] = []): Array<string | S> {
  return [plan.targetVersion ?? "", restartDigest(plan), secretInputs, ...rebuild];
}
