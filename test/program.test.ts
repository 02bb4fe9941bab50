import { strict as assert } from "node:assert";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../components/config/validate";
import { SAMPLE_KUBECONFIG } from "./helpers/pulumi-mocks";
import { REPO, sampleRaw } from "./helpers/samples";

/** Loads index.ts afresh under mocks with the given `k3s-platform:*` config; records registrations. */
function runProgram(config: Record<string, unknown>) {
  const types: string[] = [];
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        types.push(args.type);
        return { id: `${args.name}-id`, state: { ...args.inputs, stdout: args.name.endsWith("-kubeconfig") ? SAMPLE_KUBECONFIG : "", result: "generated" } };
      },
      call: (args) => args.inputs,
    },
    "k3s-platform",
    "dev",
    false,
  );
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([k, v]) => [`k3s-platform:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
  );
  const entry = join(REPO, "index.ts");
  delete require.cache[require.resolve(entry)];
  let module: Record<string, unknown> | undefined;
  let error: unknown;
  try {
    module = require(entry) as Record<string, unknown>;
  } catch (e) {
    error = e;
  }
  return { types, module, error };
}

describe("index.ts (the program)", () => {
  it("registers nothing and names the config path when validation fails", async () => {
    const raw = sampleRaw("dev");
    const bad = { ...raw, nodes: [{ ...raw.nodes[0], labels: { "kubernetes.io/role": "master" } }] };
    const { types, error } = runProgram(bad);
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.match(error.message, /k3s-platform:nodes\[0\]\.labels\["kubernetes\.io\/role"\]/);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(types, []);
  });

  it("requires the datastore endpoint secret for an external datastore", () => {
    const raw = sampleRaw("dev");
    const { error, types } = runProgram({ ...raw, k3s: { ...raw.k3s, datastore: { type: "external" } } });
    assert.match(String(error), /k3s-platform:datastoreEndpoint/);
    assert.deepEqual(types, []);
  });

  it("builds the dev sample and exports the kubeconfig as a secret", async () => {
    const { module, error } = runProgram(sampleRaw("dev"));
    assert.equal(error, undefined);
    const kubeconfig = module!.kubeconfig as pulumi.Output<string>;
    assert.equal(await pulumi.isSecret(kubeconfig), true);
    assert.deepEqual(module!.nodes, [
      { name: "dev-server-1", role: "first-server", host: "192.0.2.10" },
      { name: "dev-agent-1", role: "agent", host: "192.0.2.20" },
    ]);
  });
});
