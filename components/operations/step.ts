import type { NodeConfig, ResolvedConfig } from "../config/schema";
import type { EncryptionKeys } from "../config/secrets";
import type { Baseline } from "./once";
import type { ClusterPlan } from "../plan/node";

/**
 * The one contract between the day-2 operations and the resources that run them, the day-2
 * counterpart of plan/contribution.ts. Each operation (operations/index.ts OPERATIONS) exports
 * `steps(config, plan)`: config and the node plan in, Steps out, no Pulumi, no I/O. The cluster
 * component turns every Step into a resource in one loop (operations/run.ts), `npm run render`
 * writes them under `operations/`, the policy pack and `preview:md` read names and order from
 * the same list. A new operation is its file and one line in OPERATIONS.
 */

/**
 * Values only the engine knows when the program runs, which some scripts and triggers are
 * rendered from: the one-shot baseline the stack was created with (operations/once.ts), the
 * cluster token and its fingerprint's salt (secrets), the custom-mode encryption keys (secrets).
 * `npm run render` fills them with placeholders.
 */
export interface Facts {
  baseline: Baseline;
  token: string;
  tokenSalt: string;
  encryptionKeys: EncryptionKeys;
  /** `restoreToken` (a secret): the token a snapshot to restore was taken with; empty when not set. */
  restoreToken: string;
  /** Whether `restoreToken` is set (not secret: only that it is): the restore's check then requires curl. Undefined (render): not set. */
  restoreTokenSet?: boolean;
  /**
   * The nodes the armed restore covered (its check step's record, backup/restore.ts
   * parseRestoreCovered): the other restore steps run only on those. Undefined where the engine
   * is not asked (`npm run render`, plan churn): every node the config manages.
   */
  restoreCovered?: readonly string[];
  /**
   * Whether the armed restore's reset on the first server was done before this `up` (its check's
   * record, backup/restore.ts parseRestoreResetDone): then a node's stop runs nothing and an
   * agent's restart runs only where one began. Undefined (render): not done.
   */
  restoreResetDone?: boolean;
  /**
   * The restore id whose cluster reset ran on the first server, from its restore-abandoned step's
   * stdout (backup/restore.ts parseAbandonedReset): the other servers' steps rejoin it then. ""
   * when none; undefined (render): none.
   */
  restoreAbandonedReset?: string;
  /** The nodes the armed maintenance covered (its `maintenance-record` step's stdout); undefined as above. */
  maintenanceCovered?: readonly string[];
  /**
   * A channel stack's release (`v1.MINOR.PATCH+k3sN`): what its k3s-release step recorded
   * (k3s/release.ts parseRelease of its stdout); the agent batch steps' target there. Undefined
   * where the engine is not asked, or when that stdout is unreadable (the batch steps then fail,
   * naming it, before anything is cordoned).
   */
  clusterRelease?: string;
  /**
   * Each agent → the keyed digest of its secret files (plan/restart.ts secretInputsDigest; not
   * secret: it reveals nothing of them): what its batch steps compare with the one its Node
   * records. Undefined where the engine is not asked (`npm run render`, plan churn): a
   * placeholder per agent (upgrade/render.ts).
   */
  secretInputs?: Readonly<Record<string, string>>;
  /**
   * Each agent → whether its apply will restart K3s (issue 26): its `<node>-preflight` runs its
   * own apply.sh as a dry run (k3s/install.ts renderApplyScript) and says so (k3s/agent-preflight.ts
   * parseRestartVerdict; undefined: no answer). Its batch's drain drains an agent whose inputs
   * changed unless it says no, and one with no record yet when it says yes. Per agent: a step
   * reads the entries of the agents it names (`FromFacts.agents`) only. Undefined where the
   * engine is not asked (render, churn): no answer from any agent.
   */
  restartVerdicts?: Readonly<Record<string, boolean | undefined>>;
}
export type FactName = keyof Facts;

/** A value rendered from facts: `needs` lists the facts read (the resource then depends on their sources only). */
export interface FromFacts<T> {
  needs: FactName[];
  /**
   * The agents whose entries of a per-agent fact (`restartVerdicts`) it reads: only theirs are
   * resolved, so the value waits for, and changes with, those agents' steps alone (issue 26: a
   * change on one agent moves its batch's drain, not every batch's). Required with such a fact.
   */
  agents?: readonly string[];
  render: (facts: Facts) => T;
}
export type StepValue<T> = T | FromFacts<T>;

export function isFromFacts<T>(value: StepValue<T> | undefined): value is FromFacts<T> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "render" in value;
}

/**
 * How often a step runs on its host:
 *  - `once`: per value of its trigger (update is a no-op; a new value replaces it; the host guard
 *    of operations/once.ts skips a value it already completed);
 *  - `once-per-stack`: created once and never updated (every input ignored after creation);
 *  - `on-change`: whenever one of its inputs changes (update runs the script again);
 *  - `on-delete`: the script is its `delete`, run when the resource leaves the program (teardown);
 *  - `node`: a K3sNode (stage, bundle, secrets, os-prep, apply: components/node), each on its own triggers.
 */
export type StepRuns = "once" | "once-per-stack" | "on-change" | "on-delete" | "node";

/** A node step that must wait for this step: every step of that node, or only its secrets write. */
export interface Gate {
  node: string;
  steps: "all" | "secrets";
}

export interface Step {
  /**
   * The resource name without the `<stack>-` prefix (names.ts builds every one), so the URN's
   * last part. Other steps name it in `after`; a node step also answers to `<node>-apply`.
   */
  name: string;
  /** The operation that produced it (OPERATIONS' name). */
  operation: string;
  /** The node it runs on: its connection and SSH user. */
  host: NodeConfig;
  /** The component it is a child of: the K3sCluster, or its SecretsEncryption. */
  parent: "cluster" | "encryption";
  runs: StepRuns;
  /** Whether it stops or restarts K3s on its host (servers must never do so at once). */
  restartsK3s: boolean;
  /** One line for `npm run render`'s plan.md and the docs: what it does, in the field's words. */
  summary: string;
  /** Names (as above) of the steps that must finish first, in dependsOn order. */
  after: string[];
  /**
   * Node sub-steps declared after this step (they wait for it through `gates` or `after`) that it
   * must nevertheless wait for: an agent's `<node>-preflight` for its batch's drain. Outside the
   * run order (it would be a cycle); resolved when the node is declared.
   */
  awaits?: string[];
  /** Seconds its script may take at most (its own bounded waits, k3s/timeouts.ts): customTimeouts sit above. */
  timeoutSeconds?: number;
  /** Node steps that wait for this one (they name no day-2 step themselves). */
  gates?: Gate[];
  /** Command inputs (@pulumi/command remote.Command), as the provider receives them. */
  create?: string;
  update?: string;
  delete?: string;
  stdin?: StepValue<string>;
  triggers?: StepValue<string[]>;
  /** Inputs rendered from secrets: kept secret in state (the token's stdin and trigger, the verify script). */
  secretInputs?: Array<"stdin" | "triggers">;
  /** Outputs kept secret in state (`additionalSecretOutputs`): the token's stdin, the kubeconfig. */
  secretOutputs?: string[];
  /** `none`: stdout and stderr are never logged (the kubeconfig). */
  logging?: "none";
  /**
   * Kept at the provider's default (true) where a step was first declared without it: changing it
   * now would be an Update on every host. Every other step sets it false.
   */
  previousOutputInEnv?: true;
  /** Inputs the engine never updates after creation (`once-per-stack`). */
  ignoreChanges?: string[];
  /** For render, when the step sends no stdin: the script its command runs (a teardown's delete runs it as one argument). */
  script?: StepValue<string>;
  /** For render, when a step that sends stdin also has a `delete`: the script that delete runs (`<step>.on-removal.sh`). */
  onRemoval?: string;
}

/** A remote command as a renderer gives it (operations/host-command.ts: below the plan, so renderers need not import it). */
export type { HostCommand } from "./host-command";

/** An operation: a name (the `operations/` folder of `npm run render`) and its pure steps. */
export interface Operation {
  name: string;
  /** What it is for, one line: plan.md's heading. */
  description: string;
  steps(config: ResolvedConfig, plan: ClusterPlan): Step[];
  /**
   * Whether a command's name (without the `<stack>-` prefix) is one of this operation's steps,
   * for readers that have resource names but no config (preview:md). Absent: none is a command.
   */
  owns?(name: string): boolean;
  /** Its steps run when deleted (teardowns): a preview's delete of one runs it; of any other step, nothing. */
  runsOnDelete?: true;
}

/** `owns` for steps named `<node>-<suffix>` (names.ts NODE_LIFECYCLE_CHILDREN). */
export function endsWithAny(...suffixes: string[]): (name: string) => boolean {
  return (name) => suffixes.some((s) => name.length > s.length + 1 && name.endsWith(`-${s}`));
}

/** The SSH user a step's host is reached as. */
export function sshUserOf(config: ResolvedConfig, node: NodeConfig): string {
  return node.ssh.user ?? config.ssh.user;
}

/** The name a node step's apply answers to in `after` (node/component.ts names it `<node>-apply`). */
export function applyOf(node: string): string {
  return `${node}-apply`;
}

/** The name an agent's preflight check answers to in `awaits` (node/component.ts `<node>-preflight`). */
export function preflightOf(node: string): string {
  return `${node}-preflight`;
}
