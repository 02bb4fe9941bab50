import { strict as assert } from "node:assert";
import { baseline } from "../../../components/operations/baseline";
import { day2, sample, stepsOf } from "./helpers";

describe("operation baseline", () => {
  it("one step on the first server, before every step of it, taken once per stack: every input but its trigger ignored", () => {
    const { steps, plan } = stepsOf(baseline, sample("prod"));
    assert.equal(steps.length, 1);
    const [step] = steps;
    assert.equal(step!.host.name, plan.nodes[0]!.node.name);
    assert.deepEqual(step!.gates, [{ node: plan.nodes[0]!.node.name, steps: "all" }]);
    assert.equal(step!.runs, "once-per-stack");
    const inputs = ["connection", "create", "update", "stdin", "triggers", "addPreviousOutputInEnv"];
    assert.deepEqual([...step!.ignoreChanges!].sort(), inputs.filter((i) => i !== "triggers").sort());
  });

  it("a first server rebuilt with other servers joins a running cluster: the trigger says so and nothing is checked on the host", () => {
    const [joining] = stepsOf(baseline, day2()).steps;
    const [own] = stepsOf(baseline, sample("prod")).steps;
    assert.notDeepEqual(joining!.triggers, own!.triggers);
    assert.match(String(joining!.stdin), /the cluster exists/);
    assert.match(String(own!.stdin), /server\/token/);
  });
});
