import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { serializeProperties } from "@pulumi/pulumi/runtime/rpc";
import * as gstruct from "google-protobuf/google/protobuf/struct_pb";
import type {
  EnforcementLevel,
  PolicyResource,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { ResolvedConfig } from "../../components/config/schema";
import { buildProgram } from "../../components/program";
import { policies } from "../../policies/policies";
import { PolicyConfigFile, policySettings } from "../../tools/pack-check";
import { installMocks } from "./pulumi-mocks";
import { REPO } from "./samples";

/** A registered resource the way a policy sees it. */
export interface GraphResource {
  type: string;
  name: string;
  urn: string;
  props: Record<string, unknown>;
  parent?: string;
  dependencies: string[];
  additionalSecretOutputs: string[];
}

export function urnOf(stack: string, type: string, name: string): string {
  return `urn:pulumi:${stack}::k3s-platform::${type}::${name}`;
}

/** Runs the program for `config` under Pulumi mocks and returns every registered resource. */
export async function collectGraph(config: ResolvedConfig, stack: string): Promise<GraphResource[]> {
  const recorder = installMocks(stack);
  const outputs = buildProgram(
    { config, token: pulumi.secret("cluster-token"), sshPrivateKey: pulumi.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n") },
    stack,
    { transformations: [recorder.transformation] },
  );
  await recorder.settle(outputs.kubeconfig, outputs.registered);
  const byName = recorder.registered;
  const urn = (name: string) => urnOf(stack, byName.get(name)!.type, name);
  return [...byName.values()].map((r) => ({
    type: r.type,
    name: r.name,
    urn: urn(r.name),
    props: r.inputs,
    parent: r.parent ? urn(r.parent) : undefined,
    dependencies: r.dependsOn.filter((d) => byName.has(d)).map(urn),
    additionalSecretOutputs: r.additionalSecretOutputs,
  }));
}

export type { PolicyConfigFile };
// The engine's reading of a pack config, shared with `npm run render` (tools/pack-check.ts).
export { policySettings };

export function readPolicyConfig(env: string): PolicyConfigFile {
  return JSON.parse(readFileSync(join(REPO, "policies", "config", `${env}.json`), "utf8")) as PolicyConfigFile;
}

class NotApplicable extends Error {}

/**
 * @pulumi/policy's own deserialiser and proxy: its analyzer server (server.js, analyze and
 * analyzeStack) turns the engine's protobuf Struct into `props` with
 * `unknownCheckingProxy(deserializeProperties(struct, false))`. Not in its typings (internal).
 */
const policySdk = {
  deserializeProperties: (require("@pulumi/policy/deserialize") as { deserializeProperties(s: gstruct.Struct, proxySecrets: boolean): Record<string, unknown> }).deserializeProperties,
  unknownCheckingProxy: (require("@pulumi/policy/proxy") as { unknownCheckingProxy<T>(v: T): T }).unknownCheckingProxy,
};

/**
 * Hands `props` over the way the real engine does: serialised to the wire form by the Pulumi SDK
 * (assets become {sig, text}), carried as a protobuf Struct, then rebuilt by @pulumi/policy's
 * deserialiser and wrapped in its unknown-checking proxies. Plain objects would hide what that
 * does (e.g. a StringAsset's `text` becomes a proxied Promise that cannot be awaited).
 */
export async function asPolicySdkProps(props: Record<string, unknown>): Promise<Record<string, unknown>> {
  const wire = await serializeProperties("policy-harness", props as pulumi.Inputs);
  const struct = gstruct.Struct.fromJavaScript(wire as Record<string, gstruct.JavaScriptValue>);
  return policySdk.unknownCheckingProxy(policySdk.deserializeProperties(struct, false));
}

export function resourceArgs(resource: Pick<GraphResource, "type" | "name" | "props"> & Partial<GraphResource>, config: Record<string, unknown> = {}): ResourceValidationArgs {
  return {
    type: resource.type,
    name: resource.name,
    urn: resource.urn ?? urnOf("test", resource.type, resource.name),
    props: resource.props,
    opts: {
      protect: false,
      ignoreChanges: [],
      aliases: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
      additionalSecretOutputs: resource.additionalSecretOutputs ?? [],
      parent: resource.parent,
    },
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
}

export function stackArgs(resources: GraphResource[], config: Record<string, unknown> = {}): StackValidationArgs {
  const byUrn = new Map<string, PolicyResource>();
  for (const r of resources) {
    byUrn.set(r.urn, {
      type: r.type,
      name: r.name,
      urn: r.urn,
      props: r.props,
      opts: resourceArgs(r).opts,
      dependencies: [],
      propertyDependencies: {},
      isType: () => false,
      asType: () => undefined,
    } as unknown as PolicyResource);
  }
  for (const r of resources) {
    const pr = byUrn.get(r.urn)! as { dependencies: PolicyResource[]; parent?: PolicyResource };
    pr.dependencies = r.dependencies.map((u) => byUrn.get(u)!).filter(Boolean);
    if (r.parent) pr.parent = byUrn.get(r.parent);
  }
  return {
    resources: [...byUrn.values()],
    stackTags: new Map(),
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
}

export interface Violation {
  policy: string;
  level: EnforcementLevel;
  message: string;
  urn?: string;
}

export async function runResourcePolicy(policy: ResourceValidationPolicy, plainArgs: ResourceValidationArgs): Promise<string[]> {
  const messages: string[] = [];
  const args = { ...plainArgs, props: await asPolicySdkProps(plainArgs.props) };
  const validations = ([] as Array<typeof policy.validateResource>).concat(policy.validateResource).flat();
  try {
    for (const v of validations) await (v as (a: ResourceValidationArgs, r: (m: string) => void) => unknown)(args, (m) => messages.push(m));
  } catch (e) {
    if (!(e instanceof NotApplicable)) throw e;
  }
  return messages;
}

export async function runStackPolicy(policy: StackValidationPolicy, plainArgs: StackValidationArgs): Promise<string[]> {
  const messages: string[] = [];
  // Same objects (parents and dependencies point at them), props through the policy SDK.
  const resources = plainArgs.resources.map((r) => Object.assign(Object.create(Object.getPrototypeOf(r) as object) as PolicyResource, r));
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  for (const r of resources) {
    (r as { props: Record<string, unknown> }).props = await asPolicySdkProps(r.props);
    r.dependencies = r.dependencies.map((d) => byUrn.get(d.urn) ?? d);
    if (r.parent) (r as { parent?: PolicyResource }).parent = byUrn.get(r.parent.urn) ?? r.parent;
  }
  const args = { ...plainArgs, resources };
  try {
    await policy.validateStack(args, (m) => messages.push(m));
  } catch (e) {
    if (!(e instanceof NotApplicable)) throw e;
  }
  return messages;
}

/** Evaluates the whole pack on a graph with one environment's policy config. */
export async function evaluatePack(resources: GraphResource[], env: string): Promise<Violation[]> {
  const file = readPolicyConfig(env);
  const out: Violation[] = [];
  for (const policy of policies) {
    const { level, config } = policySettings(policy, file);
    if (level === "disabled") continue;
    if ("validateResource" in policy) {
      for (const r of resources) {
        for (const message of await runResourcePolicy(policy, resourceArgs(r, config))) out.push({ policy: policy.name, level, message, urn: r.urn });
      }
    } else {
      for (const message of await runStackPolicy(policy as StackValidationPolicy, stackArgs(resources, config))) out.push({ policy: policy.name, level, message });
    }
  }
  return out;
}
