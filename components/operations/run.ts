import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { NodeConfig } from "../config/schema";
import type { EncryptionKeys } from "../config/secrets";
import type { Baseline } from "./once";
import { customTimeouts } from "../k3s/timeouts";
import { childName } from "../names";
import type { Connection } from "../ssh/connection";
import { runOrder } from "./index";
import { applyOf, FactName, Facts, isFromFacts, preflightOf, Step, StepValue } from "./step";

/**
 * The one loop that turns steps (operations/index.ts, in run order) into resources: a
 * `remote.Command` per command step, a K3sNode per node step (through `declareNode`). Thin: every
 * name, input, trigger and dependency comes from the step; this only resolves names to resources
 * and facts to Outputs.
 */

/**
 * Where the facts come from: Outputs of secrets and of declared steps (`get`, e.g. the baseline's
 * stdout), read once, when a step first needs them (run order declares their steps first).
 */
export interface FactSources {
  baseline: (get: (name: string) => pulumi.Resource | undefined) => pulumi.Output<Baseline>;
  token: () => pulumi.Input<string>;
  tokenSalt: () => pulumi.Input<string>;
  encryptionKeys: () => pulumi.Input<EncryptionKeys>;
  restoreToken: () => pulumi.Input<string>;
  restoreTokenSet: () => pulumi.Output<boolean>;
  restoreCovered: (get: (name: string) => pulumi.Resource | undefined) => pulumi.Output<readonly string[]>;
  restoreResetDone: (get: (name: string) => pulumi.Resource | undefined) => pulumi.Output<boolean>;
  restoreAbandonedReset: (get: (name: string) => pulumi.Resource | undefined) => pulumi.Output<string>;
  maintenanceCovered: (get: (name: string) => pulumi.Resource | undefined) => pulumi.Output<readonly string[]>;
  clusterRelease: (get: (name: string) => pulumi.Resource | undefined) => pulumi.Output<string | undefined>;
  secretInputs: () => pulumi.Output<Readonly<Record<string, string>>>;
  /**
   * The answers of these agents' preflights only (FromFacts.agents), each agent → whether its apply
   * restarts K3s; `awaited` gives steps declared later (the preflights follow their batch's drain).
   */
  restartVerdicts: (agents: readonly string[], awaited: (names: readonly string[]) => Promise<pulumi.Resource[]>) => pulumi.Output<Readonly<Record<string, boolean | undefined>>>;
}

/** What a node step waits for: resolved from other steps' `after`, and gates. */
export interface NodeWaits {
  /** Its apply waits for these (server join order, its batch's drain). */
  after: pulumi.Resource[];
  /** Every step of the node waits for these (the rebuild's forget, the baseline). */
  before: pulumi.Resource[];
  /** Its secrets write waits for these (the token rotation). */
  secretsAfter: pulumi.Resource[];
}

export interface RunArgs {
  /** The cluster's name: every step is `<cluster>-<step name>`. */
  cluster: string;
  parents: { cluster: pulumi.Resource; encryption?: pulumi.Resource };
  connectionOf: (node: NodeConfig) => Connection;
  facts: FactSources;
  /** Declares the K3sNode of a node step; returns its apply step and, for an agent in upgrade batches, its preflight. */
  declareNode: (step: Step, waits: NodeWaits, get: (name: string) => pulumi.Resource | undefined) => { apply: pulumi.Resource; preflight?: pulumi.Resource };
  /**
   * Agents past this many are declared in chunks of this many, yielding to the event loop before
   * each chunk (memory, cluster/component.ts AGENT_BATCH); every other step is declared at once.
   */
  agentChunk: number;
}

export interface StepResources {
  /** The resource of a step by name (a node step's apply as `<node>-apply`); undefined until declared. */
  get(name: string): pulumi.Resource | undefined;
  /** The resources of `names`, once all are declared. */
  all(names: readonly string[]): Promise<pulumi.Resource[]>;
  /** Resolves once every step is declared (agents included). */
  declared: Promise<void>;
}

const NO_FACTS: Facts = { baseline: {}, token: "", tokenSalt: "", encryptionKeys: {}, restoreToken: "" };

/**
 * Declares `listed` (operationSteps: in OPERATIONS order) in run order (runOrder). A node waits
 * for the steps that gate it in list order.
 */
export function runSteps(listed: readonly Step[], args: RunArgs): StepResources {
  const steps = runOrder(listed);
  const created = new Map<string, pulumi.Resource>();
  const waiting = new Map<string, { promise: Promise<pulumi.Resource>; resolve: (r: pulumi.Resource) => void }>();
  const promised = (name: string) => {
    let w = waiting.get(name);
    if (!w) {
      let resolve!: (r: pulumi.Resource) => void;
      const promise = new Promise<pulumi.Resource>((r) => (resolve = r));
      w = { promise, resolve };
      waiting.set(name, w);
    }
    return w;
  };
  const record = (name: string, resource: pulumi.Resource) => {
    created.set(name, resource);
    promised(name).resolve(resource);
  };
  const all = (names: readonly string[]) => Promise.all(names.map((n) => created.get(n) ?? promised(n).promise));
  /** The resources of `names`: a list when all are declared (always for node steps), else a promise of it. */
  const dependsOn = (names: readonly string[]): pulumi.Input<pulumi.Resource[]> =>
    names.every((n) => created.has(n)) ? names.map((n) => created.get(n)!) : all(names);
  const declaredNow = (names: readonly string[], of: string): pulumi.Resource[] =>
    names.map((n) => {
      const r = created.get(n);
      if (!r) throw new Error(`node step ${of} waits for ${n}, which is not declared yet`);
      return r;
    });

  // One source per fact, read once; a per-agent fact's per set of agents (FromFacts.agents).
  const sources = new Map<string, pulumi.Input<unknown>>();
  const source = (fact: FactName, agents: readonly string[] | undefined, of: string) => {
    const key = fact === "restartVerdicts" ? `${fact}:${(agents ?? []).join(",")}` : fact;
    if (!sources.has(key)) {
      if (fact !== "restartVerdicts") sources.set(key, args.facts[fact]((name) => created.get(name)));
      else if (!agents) throw new Error(`step ${of} reads ${fact} without naming its agents (FromFacts.agents)`);
      else sources.set(key, args.facts.restartVerdicts(agents, all));
    }
    return sources.get(key)!;
  };
  const resolve = <T>(value: StepValue<T> | undefined, secret: boolean, of: string): pulumi.Input<T> | undefined => {
    if (value === undefined) return undefined;
    if (!isFromFacts(value)) return value;
    const rendered: pulumi.Input<T> = value.needs.length
      ? pulumi.all(value.needs.map((fact) => source(fact, value.agents, of))).apply((values) => value.render({ ...NO_FACTS, ...Object.fromEntries(value.needs.map((n, i) => [n, values[i]])) }))
      : value.render(NO_FACTS);
    // pulumi.secret's Output<Unwrap<T>> is Output<T> for the strings and string lists steps carry.
    return secret ? (pulumi.secret(rendered) as pulumi.Output<T>) : rendered;
  };

  // Gates, inverted: what each node step waits for from the steps before it.
  const before = new Map<string, string[]>();
  const secretsAfter = new Map<string, string[]>();
  for (const s of listed) {
    for (const g of s.gates ?? []) {
      const into = g.steps === "all" ? before : secretsAfter;
      into.set(g.node, [...(into.get(g.node) ?? []), s.name]);
    }
  }

  const declareCommand = (s: Step) => {
    const secret = new Set(s.secretInputs ?? []);
    const inputs: command.remote.CommandArgs = {
      connection: args.connectionOf(s.host),
      ...(s.create !== undefined ? { create: s.create } : {}),
      ...(s.update !== undefined ? { update: s.update } : {}),
      ...(s.delete !== undefined ? { delete: s.delete } : {}),
      ...(s.stdin !== undefined ? { stdin: resolve(s.stdin, secret.has("stdin"), s.name) } : {}),
      ...(s.triggers !== undefined ? { triggers: resolve(s.triggers, secret.has("triggers"), s.name) } : {}),
      ...(s.logging === "none" ? { logging: command.types.enums.remote.Logging.None } : {}),
      ...(s.previousOutputInEnv ? {} : { addPreviousOutputInEnv: false }),
    };
    const parent = s.parent === "encryption" ? args.parents.encryption : args.parents.cluster;
    if (!parent) throw new Error(`step ${s.name} belongs to the ${s.parent} component, which is not declared`);
    record(
      s.name,
      new command.remote.Command(childName(args.cluster, s.name), inputs, {
        parent,
        dependsOn: s.awaits?.length ? all([...s.after, ...s.awaits]) : dependsOn(s.after),
        ...(s.timeoutSeconds !== undefined ? { customTimeouts: customTimeouts(s.timeoutSeconds) } : {}),
        ...(s.secretOutputs ? { additionalSecretOutputs: s.secretOutputs } : {}),
        ...(s.ignoreChanges ? { ignoreChanges: s.ignoreChanges } : {}),
      }),
    );
  };
  const declareNode = (s: Step) => {
    const { apply, preflight } = args.declareNode(s, {
      after: declaredNow(s.after, s.name),
      before: declaredNow(before.get(s.name) ?? [], s.name),
      secretsAfter: declaredNow(secretsAfter.get(s.name) ?? [], s.name),
    }, (name) => created.get(name));
    record(applyOf(s.name), apply);
    if (preflight) record(preflightOf(s.name), preflight);
  };

  const later: Step[] = [];
  let agents = 0;
  for (const s of steps) {
    if (s.runs !== "node") declareCommand(s);
    else if (s.host.role === "server" || agents++ < args.agentChunk) declareNode(s);
    else later.push(s);
  }
  const declared = (async () => {
    for (let i = 0; i < later.length; i += args.agentChunk) {
      await new Promise((resolve) => setImmediate(resolve));
      for (const s of later.slice(i, i + args.agentChunk)) declareNode(s);
    }
    // An awaited name no node declared would leave its step waiting forever: fail by name instead.
    const missing = steps.flatMap((s) => s.awaits ?? []).filter((n) => !created.has(n));
    if (missing.length) throw new Error(`steps await ${missing.join(", ")}, which no node declared`);
  })();
  return { get: (name) => created.get(name), all, declared };
}
