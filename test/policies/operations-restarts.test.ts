import { strict as assert } from "node:assert";
import type { StackValidationPolicy } from "@pulumi/policy";
import { loadStackConfig } from "../../components/stack/load";
import { policies } from "../../policies/policies";
import { collectGraph, GraphResource, policySettings, runStackPolicy, stackArgs } from "../helpers/policy-harness";
import { variant } from "../helpers/samples";

/**
 * servers-restart-one-at-a-time reads which steps restart a server from the operations list
 * (components/operations, issue 23), not from a list of name patterns: every day-2 step that
 * restarts a server (encryption restarts, certificate rotations) is checked.
 */
describe("policy servers-restart-one-at-a-time: the restarting steps come from the operations list", () => {
  const policy = policies.find((p) => p.name === "servers-restart-one-at-a-time") as StackValidationPolicy;
  const run = (graph: GraphResource[]) => runStackPolicy(policy, stackArgs(graph, policySettings(policy).config));
  let graph: GraphResource[];
  before(async function () {
    this.timeout(120_000);
    graph = await collectGraph(loadStackConfig(variant("prod", (r) => ((r.certificates = { rotation: 2 }), (r.encryption = { ...r.encryption, rotation: 2 })))), "prod");
  });
  const unchain = (name: string) => graph.map((r) => (r.name === name ? { ...r, dependencies: [] } : r));

  it("passes the program's own graph", async () => {
    assert.deepEqual(await run(graph), []);
  });

  it("reports a certificate rotation and an encryption restart that no longer wait for the server before them", async () => {
    const rotation = await run(unchain("prod-prod-server-2-rotate-certificates"));
    assert.ok(rotation.some((m) => m.includes("prod-prod-server-2-rotate-certificates")), JSON.stringify(rotation));
    const restart = await run(unchain("prod-encryption-reencrypt-restart-prod-server-3"));
    assert.ok(restart.some((m) => m.includes("prod-encryption-reencrypt-restart-prod-server-3")), JSON.stringify(restart));
  });

  it("an agent's rotation is no server restart: unchained, it is not reported", async () => {
    assert.deepEqual(await run(unchain("prod-prod-agent-1-rotate-certificates")), []);
  });
});
