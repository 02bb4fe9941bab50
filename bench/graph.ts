import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { PolicyResource, ResourceValidationArgs, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { ResolvedConfig, StackInput } from "../components/config/schema";
import { readStackFile } from "../components/config/stack-file";
import { buildProgram } from "../components/program";
import { policies } from "../policies/policies";
import { mockId, mockState } from "../tools/harness/mock-providers";

/**
 * The bench's own minimal Pulumi mock setup (it must not depend on the test helpers; the mocked
 * providers' answers are shared with them through tools/harness/mock-providers.ts): runs the
 * whole program under `pulumi.runtime.setMocks`, records what the engine would see (type, name,
 * parent, dependsOn, inputs), and evaluates the policy pack on that graph once per policy.
 */

export const REPO = join(__dirname, "..");

/** The prod sample with its servers and `total - servers` copies of its first agent. */
export function prodWithNodes(total: number): StackInput {
  const raw = structuredClone(readStackFile(join(REPO, "Pulumi.prod.yaml")).raw) as StackInput;
  const template = raw.nodes.find((n) => n.role === "agent")!;
  const servers = raw.nodes.filter((n) => n.role === "server");
  const agents = Array.from({ length: total - servers.length }, (_, i) => ({
    ...structuredClone(template),
    name: `prod-agent-${i + 1}`,
    host: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  }));
  raw.nodes = [...servers, ...agents];
  const k3s = raw.k3s as { nodeNetworks?: string[]; clusterCidr?: string | string[] };
  // The agents' network joins the sample's node networks (validation: every node in one).
  if (k3s.nodeNetworks) k3s.nodeNetworks = [...k3s.nodeNetworks, "198.18.0.0/15"];
  // kube-controller-manager gives each node a /24 of the pod range, and validation refuses a range
  // with fewer blocks than nodes: past the sample's /16 (256 nodes), a range with room for all
  // below the sample's service range 10.43.0.0/16 (up to 8,192 nodes: 10.0.0.0/11).
  if (total > 256) k3s.clusterCidr = `10.0.0.0/${24 - Math.ceil(Math.log2(total))}`;
  return raw;
}

/** The stack without k3s.nodeNetworks: the firewall sources list every node address instead. */
export function withoutNodeNetworks(raw: StackInput): StackInput {
  delete (raw.k3s as { nodeNetworks?: string[] }).nodeNetworks;
  return raw;
}

/** The stack behind a proxy whose noProxy names every node address (how a stack without node networks keeps them off it). */
export function withNoProxyNamingEveryNode(raw: StackInput): StackInput {
  raw.k3s = { ...raw.k3s, proxy: { httpProxy: "http://proxy.example.com:3128", noProxy: raw.nodes.map((n) => n.host) } };
  return raw;
}

export interface BenchResource {
  type: string;
  name: string;
  urn: string;
  parent?: string;
  dependencies: string[];
  props: Record<string, unknown>;
  additionalSecretOutputs: string[];
}

const SIG = "4dabf18193072939515e22adb298388d";
const SECRET = "1b47061264138c4ac30d75fd1eb44270";

/** Secrets arrive at mocks in wire form; policies see plain values. */
function unwrap(value: unknown): unknown {
  if (value instanceof pulumi.asset.Asset) return value;
  if (Array.isArray(value)) return value.map(unwrap);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG] === SECRET) return unwrap(obj.value);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, unwrap(v)]));
  }
  return value;
}


/** Runs the program for `config` under mocks; resolves once the mock engine has seen every resource. */
export async function buildGraph(config: ResolvedConfig, stack: string): Promise<BenchResource[]> {
  const byName = new Map<string, { type: string; parent?: string; deps: string[]; aso: string[]; inputs: Record<string, unknown> }>();
  const names = new WeakMap<pulumi.Resource, string>();
  const pending: Promise<unknown>[] = [];
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const entry = byName.get(args.name);
        if (entry) entry.inputs = args.inputs as Record<string, unknown>;
        const state = mockState(args);
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
  const transformation: pulumi.ResourceTransformation = (args) => {
    names.set(args.resource, args.name);
    const entry = {
      type: args.type,
      parent: args.opts.parent ? names.get(args.opts.parent) : undefined,
      deps: [] as string[],
      aso: (args.opts as pulumi.CustomResourceOptions).additionalSecretOutputs ?? [],
      inputs: {},
    };
    byName.set(args.name, entry);
    // dependsOn may be a promise of resources (K3sCluster.ready; the SDK turns it into an
    // Output when it merges options): named once it resolves.
    const deps = args.opts.dependsOn as unknown;
    const named = (list: unknown) => (([] as unknown[]).concat(list ?? []) as pulumi.Resource[]).map((d) => names.get(d) ?? "?");
    if (isThenable(deps) || pulumi.Output.isInstance(deps)) pending.push(settled(deps).then((list) => (entry.deps = named(list))));
    else entry.deps = named(deps);
    return undefined;
  };
  const outputs = buildProgram(
    { config, token: pulumi.secret("bench-token"), sshPrivateKey: pulumi.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n") },
    stack,
    { transformations: [transformation] },
  );
  await Promise.all([outputs.kubeconfig, outputs.registered].map((o) => new Promise((resolve) => (o as pulumi.Output<unknown>).apply(resolve))));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await Promise.all(pending);

  const urn = (name: string) => `urn:pulumi:${stack}::k3s-platform::${byName.get(name)!.type}::${name}`;
  return [...byName].map(([name, r]) => ({
    type: r.type,
    name,
    urn: urn(name),
    parent: r.parent ? urn(r.parent) : undefined,
    dependencies: r.deps.filter((d) => byName.has(d)).map(urn),
    props: unwrap(r.inputs) as Record<string, unknown>,
    additionalSecretOutputs: r.aso,
  }));
}

class NotApplicable extends Error {}

/** Evaluates every policy of the pack on the graph with policies/config/<env>.json; returns the violations. */
export async function runPack(resources: BenchResource[], env: string): Promise<string[]> {
  const file = JSON.parse(readFileSync(join(REPO, "policies", "config", `${env}.json`), "utf8")) as Record<string, unknown>;
  const notApplicable = (reason?: string): never => {
    throw new NotApplicable(reason);
  };
  const opts = (r: BenchResource) => ({
    protect: false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: r.additionalSecretOutputs,
    parent: r.parent,
  });
  const byUrn = new Map<string, PolicyResource>();
  for (const r of resources) {
    byUrn.set(r.urn, { type: r.type, name: r.name, urn: r.urn, props: r.props, opts: opts(r), dependencies: [], propertyDependencies: {}, isType: () => false, asType: () => undefined } as unknown as PolicyResource);
  }
  for (const r of resources) {
    const pr = byUrn.get(r.urn)! as { dependencies: PolicyResource[]; parent?: PolicyResource };
    pr.dependencies = r.dependencies.map((u) => byUrn.get(u)!).filter(Boolean);
    if (r.parent) pr.parent = byUrn.get(r.parent);
  }
  const all = [...byUrn.values()];
  const out: string[] = [];
  for (const policy of policies) {
    const entry = file[policy.name];
    const level = (typeof entry === "string" ? entry : (entry as { enforcementLevel?: string } | undefined)?.enforcementLevel) ?? policy.enforcementLevel;
    if (level === "disabled") continue;
    const defaults = Object.fromEntries(Object.entries(policy.configSchema?.properties ?? {}).map(([k, s]) => [k, (s as { default?: unknown }).default]));
    const config = { ...defaults, ...(typeof entry === "object" ? (entry as object) : {}) };
    const report = (m: string) => out.push(`${policy.name}: ${m}`);
    const guarded = async (run: () => unknown) => {
      try {
        await run();
      } catch (e) {
        if (!(e instanceof NotApplicable)) throw e;
      }
    };
    if ("validateResource" in policy) {
      const validate = policy.validateResource as (a: ResourceValidationArgs, r: (m: string) => void) => unknown;
      for (const r of resources) {
        const args = { type: r.type, name: r.name, urn: r.urn, props: r.props, opts: opts(r), stackTags: new Map(), isType: () => false, asType: () => undefined, getConfig: () => config, notApplicable } as unknown as ResourceValidationArgs;
        await guarded(() => validate(args, report));
      }
    } else {
      const args = { resources: all, stackTags: new Map(), getConfig: () => config, notApplicable } as unknown as StackValidationArgs;
      await guarded(() => (policy as StackValidationPolicy).validateStack(args, report));
    }
  }
  return out;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return !!value && typeof (value as { then?: unknown }).then === "function";
}

function settled(value: unknown): Promise<unknown> {
  return pulumi.Output.isInstance(value) ? new Promise((resolve) => (value as pulumi.Output<unknown>).apply(resolve)) : Promise.resolve(value);
}
