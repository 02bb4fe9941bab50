// The policy pack's entry point. The engine's policy-pack host (@pulumi/pulumi
// cmd/run-policy-pack) registers ts-node for every Node.js pack, and ts-node's CommonJS emit binds
// some names differently from tsx, the loader every test suite uses (.mocharc.json). Registering
// tsx here, before any TypeScript is loaded, makes the code the engine runs the code the tests run
// (tsx's hook then takes .ts files; ts-node compiles nothing: test/policies/pack-load-path.test.ts).
"use strict";
require("tsx/cjs");
module.exports = require("./index.ts");
