import { strict as assert } from "node:assert";
import { tokenRotation } from "../../../components/operations/token-rotation";
import type { FromFacts } from "../../../components/operations/step";
import { sample, stepsOf } from "./helpers";

describe("operation token-rotation", () => {
  const facts = (token: string, tokenSalt = "salt") => ({ baseline: {}, token, tokenSalt, encryptionKeys: {}, restoreToken: "" });

  it("on the first server, before every node's secrets write; stdin and trigger secret, from the token and its salt", () => {
    const { steps, plan } = stepsOf(tokenRotation, sample("prod"));
    const [step] = steps;
    assert.equal(step!.host.name, plan.nodes[0]!.node.name);
    assert.deepEqual(step!.gates, plan.nodes.map((n) => ({ node: n.node.name, steps: "secrets" })));
    assert.deepEqual(step!.secretInputs, ["stdin", "triggers"]);
    assert.deepEqual(step!.secretOutputs, ["stdin"]);
    const triggers = step!.triggers as FromFacts<string[]>;
    const [a] = triggers.render(facts("token-a"));
    assert.notEqual(a, triggers.render(facts("token-b"))[0], "a new token replaces the step");
    assert.notEqual(a, triggers.render(facts("token-a", "other-salt"))[0], "salted");
    assert.ok(!a!.includes("token-a"));
    assert.match((step!.stdin as FromFacts<string>).render(facts("token-a")), /token-a/);
  });
});
