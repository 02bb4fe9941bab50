// Loads the policy pack the way the engine's policy-pack host does (@pulumi/pulumi
// cmd/run-policy-pack, started in the pack's directory by the analyzer plugin
// scripts/bin/pulumi-analyzer-policy-nodejs): `node …/run-policy-pack <engine> <pack dir>`, which
// registers ts-node (type-checking) for every Node.js pack and then requires the pack. Two things
// are replaced: PolicyPack records its policies instead of serving them to an engine, and ts-node's
// compile is counted. Plain JavaScript on purpose: it loads no TypeScript loader of its own.
// Writes { policies, tsNodeCompiled } as JSON to PROBE_OUT when the process exits.
"use strict";
const { writeFileSync } = require("node:fs");
const { dirname } = require("node:path");

const host = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", { paths: [process.cwd()] });
const policies = [];
const tsNodeCompiled = [];

// The PolicyPack the pack constructs: record, do not serve.
const policyPath = require.resolve("@pulumi/policy", { paths: [process.cwd()] });
const real = require(policyPath);
require.cache[policyPath].exports = {
  ...real,
  PolicyPack: class {
    constructor(name, args) {
      for (const p of args.policies) policies.push(p.name);
    }
  },
};

// The ts-node the host registers (resolved as @pulumi/pulumi's tsutils does): count what it compiles.
const tsNode = require(require.resolve("ts-node", { paths: [dirname(require.resolve("@pulumi/pulumi/tsutils", { paths: [process.cwd()] }))] }));
const register = tsNode.register;
tsNode.register = (...args) => {
  const service = register(...args);
  const compile = service.compile;
  service.compile = (code, fileName, ...rest) => {
    tsNodeCompiled.push(fileName);
    return compile.call(service, code, fileName, ...rest);
  };
  return service;
};

process.on("exit", () => writeFileSync(process.env.PROBE_OUT, JSON.stringify({ policies, tsNodeCompiled })));
process.argv = [process.argv[0], host, "127.0.0.1:0", "."];
require(host);
