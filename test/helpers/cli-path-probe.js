// Runs the program the way the Pulumi Node.js language host does (pulumi/pulumi
// sdk/nodejs/cmd/pulumi-language-nodejs, RunRequest): `node <nodeargs> @pulumi/pulumi/cmd/run
// <flags> <program>` in the project directory, PULUMI_NODEJS_TYPESCRIPT=true unless the
// `typescript` option is off (then run.js registers ts-node), PULUMI_CONFIG holding the stack's
// config. Only the engine is replaced, by Pulumi mocks. Plain JavaScript on purpose: it loads no
// TypeScript loader of its own, so the program is compiled only by what Pulumi.yaml sets up.
// Writes the registrations as JSON to PROBE_OUT when the process exits.
"use strict";
const { writeFileSync } = require("node:fs");
const pulumi = require("@pulumi/pulumi");

const answers = JSON.parse(process.env.PROBE_ANSWERS); // MOCK_ANSWERS (tools/harness/mock-providers.ts)
const resources = [];

/** The inputs with each asset's text (a promise under mocks) in place, so JSON keeps it. */
async function resolveAssets(value) {
  if (value instanceof pulumi.asset.Asset) return { asset: await value.text };
  if (Array.isArray(value)) return Promise.all(value.map(resolveAssets));
  if (value && typeof value === "object") {
    const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolveAssets(v)]));
    return Object.fromEntries(entries);
  }
  return value;
}
pulumi.runtime.setMocks(
  {
    newResource(args) {
      // As mockState in tools/harness/mock-providers.ts.
      const answer = answers[args.type] || {};
      const bySuffix = Object.entries(answer.bySuffix || {}).find(([suffix]) => args.name.endsWith(suffix));
      const entry = { type: args.type, name: args.name, inputs: undefined };
      resources.push(entry);
      resolveAssets(args.inputs).then((inputs) => (entry.inputs = inputs));
      return { id: `${args.name}-id`, state: { ...args.inputs, ...answer.all, ...(bySuffix && bySuffix[1]) } };
    },
    call: (args) => args.inputs,
  },
  process.env.PROBE_PROJECT,
  process.env.PROBE_STACK,
  false,
  // The organization the file backend reports (StackReference names are <organization>/<project>/<stack>).
  "organization",
);
process.on("exit", () => writeFileSync(process.env.PROBE_OUT, JSON.stringify({ resources })));

// The arguments the language host passes (constructArguments); the mocks answer the monitor.
const run = require.resolve("@pulumi/pulumi/cmd/run");
process.argv = [process.argv[0], run, "--monitor=mocked", `--project=${process.env.PROBE_PROJECT}`, `--stack=${process.env.PROBE_STACK}`, `--pwd=${process.cwd()}`, "."];
require(run);
