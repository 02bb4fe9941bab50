import * as pulumi from "@pulumi/pulumi";
import { MOCK_GENERATED, mockId, mockState, SAMPLE_KUBECONFIG } from "../../tools/harness/mock-providers";

// The mocked providers' answers live in tools/harness/ so bench/ uses the same ones (it must not import test helpers).
export { MOCK_GENERATED, mockId, mockState, SAMPLE_KUBECONFIG };

/** What the program registered, as the engine would see it, plus the options mocks don't show. */
export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** Names of the resources in `dependsOn`. */
  dependsOn: string[];
  /** Name of the parent resource, if any. */
  parent?: string;
  /** Top-level input properties (and connection.privateKey) that are Pulumi secrets. */
  secretProps: Set<string>;
  additionalSecretOutputs: string[];
}

/** The marker key Pulumi's wire format uses for secret values (sdk/nodejs/runtime/rpc). */
export const SPECIAL_SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/**
 * Mocks see secrets in wire form; tests want the plain values (secretness is checked elsewhere),
 * as @pulumi/policy's deserializer gives them to policies. Assets stay assets.
 */
export function unwrapSecrets(value: unknown): unknown {
  if (value instanceof pulumi.asset.Asset) return value;
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SPECIAL_SIG] === SECRET_SIG) return unwrapSecrets(obj.value);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/**
 * Installs Pulumi mocks and returns a recorder; pass `recorder.transformation` in the component's
 * `transformations` option so every child's options are seen, then `await recorder.settle()`.
 * (The older `transformations` hook is used because it hands over the resource object, which is
 * how dependsOn entries are mapped back to names.)
 */
export function installMocks(stack: string) {
  const registered = new Map<string, Registered>();
  const names = new WeakMap<pulumi.Resource, string>();
  const pending: Promise<unknown>[] = [];

  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const entry = registered.get(args.name);
        if (entry) entry.inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
        return { id: `${args.name}-id`, state: mockState(args) };
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
    const entry: Registered = {
      type: args.type,
      name: args.name,
      inputs: {},
      dependsOn: [],
      parent: args.opts.parent ? names.get(args.opts.parent) : undefined,
      secretProps: new Set(),
      additionalSecretOutputs: (args.opts as pulumi.CustomResourceOptions).additionalSecretOutputs ?? [],
    };
    registered.set(args.name, entry);
    // dependsOn may be a promise of resources (K3sCluster.ready; the SDK turns it into an
    // Output when it merges options): named once it resolves.
    const deps = args.opts.dependsOn as unknown;
    const named = (list: unknown) => (([] as unknown[]).concat(list ?? []) as pulumi.Resource[]).map((d) => names.get(d) ?? "?");
    if (isThenable(deps) || pulumi.Output.isInstance(deps)) pending.push(settled(deps).then((list) => (entry.dependsOn = named(list))));
    else entry.dependsOn = named(deps);
    const check = (label: string, value: unknown) => {
      if (pulumi.Output.isInstance(value)) {
        pending.push(pulumi.isSecret(value).then((s) => s && entry.secretProps.add(label)));
      }
    };
    for (const [key, value] of Object.entries(args.props)) check(key, value);
    const connection = args.props.connection as Record<string, unknown> | undefined;
    if (connection) check("connection.privateKey", connection.privateKey);
    return undefined;
  };

  return {
    registered,
    transformation,
    async settle(...outputs: pulumi.Output<unknown>[]) {
      await Promise.all(outputs.map((o) => new Promise((resolve) => o.apply(resolve))));
      // Let every mock registration finish.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      await Promise.all(pending);
    },
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return !!value && typeof (value as { then?: unknown }).then === "function";
}

function settled(value: unknown): Promise<unknown> {
  return pulumi.Output.isInstance(value) ? new Promise((resolve) => (value as pulumi.Output<unknown>).apply(resolve)) : Promise.resolve(value);
}
