import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { ResolvedConfig } from "../../components/config/schema";
import { buildProgram } from "../../components/program";
import { CLUSTER_CHILDREN } from "../../components/names";
import type { ProgramConfig } from "../../components/stack/pulumi-config";
import { mockId, mockState, SECRET_SIG, SPECIAL_SIG } from "./pulumi-mocks";

/**
 * The whole registered graph of one program run under Pulumi mocks, in a form a file can hold and
 * a diff can show: what the engine would see of every resource (type, name, parent, inputs as
 * resolved, dependsOn by name, the options that change what the engine does). Used to prove that a
 * refactoring changes no URN, input, trigger or dependency (test/components/resource-graph.test.ts).
 *
 * Secret values are never written: a secret input becomes `{ secret: sha256 of its JSON }` (a
 * change still shows); strings longer than LONG become `sha256:<hex> (<n> chars)`, so scripts and
 * bundles stay comparable byte for byte without bloating the snapshot.
 */

export interface GraphResource {
  type: string;
  name: string;
  parent?: string;
  inputs: unknown;
  dependsOn: string[];
  options: Record<string, unknown>;
}

const LONG = 160;
const hash = (text: string) => createHash("sha256").update(text).digest("hex");

/** Wire-form inputs → snapshot form: secrets hashed, long strings hashed, keys sorted. */
export function normalize(value: unknown): unknown {
  if (typeof value === "string") return value.length > LONG ? `sha256:${hash(value)} (${value.length} chars)` : value;
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SPECIAL_SIG] === SECRET_SIG) return { secret: hash(JSON.stringify(obj.value ?? null)) };
    return Object.fromEntries(
      Object.keys(obj)
        .sort()
        .map((k) => [k, normalize(obj[k])]),
    );
  }
  return value;
}

/** The options of a custom resource that change what the engine does with it (besides dependsOn and parent). */
const OPTION_KEYS = ["additionalSecretOutputs", "ignoreChanges", "protect", "deleteBeforeReplace", "replaceOnChanges", "retainOnDelete", "deletedWith", "aliases", "customTimeouts"] as const;

export interface GraphRun {
  program: ProgramConfig;
  stack: string;
  /** What the `<stack>-one-shot-baseline` step printed in the up that created the cluster. */
  baselineStdout?: string;
}

/** Runs buildProgram under mocks and returns every registered resource, sorted by type then name. */
export async function registeredGraph(run: GraphRun): Promise<GraphResource[]> {
  const { stack } = run;
  const inputs = new Map<string, unknown>();
  const key = (type: string, name: string) => `${type}::${name}`;
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        inputs.set(key(args.type, args.name), args.inputs);
        const state = mockState(args);
        if (args.name === `${stack}-${CLUSTER_CHILDREN.oneShotBaseline}` && run.baselineStdout !== undefined) state.stdout = run.baselineStdout;
        return { id: mockId(args, state), state };
      },
      call: (args) => args.inputs,
    },
    "k3s-platform",
    stack,
    false,
    // The organization the file backend reports (StackReference names are <organization>/<project>/<stack>).
    "organization",
  );
  const names = new WeakMap<pulumi.Resource, string>();
  const seen: Array<{ resource: pulumi.Resource; type: string; name: string; opts: pulumi.CustomResourceOptions; deps: Promise<string[]> }> = [];
  const transformation: pulumi.ResourceTransformation = (args) => {
    names.set(args.resource, args.name);
    const opts = args.opts as pulumi.CustomResourceOptions;
    // dependsOn may be a promise or an Output of resources: named once it resolves.
    const deps = resolveList(opts.dependsOn).then((list) => list.map((d) => names.get(d) ?? "?"));
    seen.push({ resource: args.resource, type: args.type, name: args.name, opts, deps });
    return undefined;
  };
  const outputs = buildProgram(run.program, stack, { transformations: [transformation] });
  await new Promise((resolve) => outputs.registered.apply(resolve));
  await new Promise((resolve) => pulumi.output(outputs.certificateExpiry).apply(resolve));
  // Steps whose inputs wait on other outputs register later: wait until no new resource appears.
  for (let count = -1; count !== seen.length; ) {
    count = seen.length;
    await Promise.all(seen.map((s) => new Promise((resolve) => s.resource.urn.apply(resolve))));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  }
  const graph: GraphResource[] = [];
  for (const s of seen) {
    const options: Record<string, unknown> = {};
    for (const k of OPTION_KEYS) if (s.opts[k] !== undefined) options[k] = s.opts[k];
    graph.push({
      type: s.type,
      name: s.name,
      ...(s.opts.parent ? { parent: names.get(s.opts.parent) ?? "?" } : {}),
      inputs: normalize(inputs.get(key(s.type, s.name)) ?? null),
      dependsOn: await s.deps,
      options,
    });
  }
  return graph.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type.localeCompare(b.type)));
}

async function resolveList(value: unknown): Promise<pulumi.Resource[]> {
  const resolved = pulumi.Output.isInstance(value) ? await new Promise<unknown>((resolve) => (value as pulumi.Output<unknown>).apply(resolve)) : await value;
  return ([] as unknown[]).concat(resolved ?? []) as pulumi.Resource[];
}

/** A ProgramConfig for `config` with the given secrets (each a Pulumi secret, as the program reads them). */
export function programConfig(config: ResolvedConfig, secrets: Partial<Record<Exclude<keyof ProgramConfig, "config">, unknown>> = {}): ProgramConfig {
  const wrapped = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, pulumi.secret(v)]));
  return { config, ...wrapped } as ProgramConfig;
}
