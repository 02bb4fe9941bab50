import { strict as assert } from "node:assert";
import { BASELINE_CREATED, ONE_SHOT_KEYS, parseBaseline } from "../../../components/operations/once";
import { rebuild } from "../../../components/operations/rebuild";
import type { FromFacts } from "../../../components/operations/step";
import { day2, sample, stepsOf } from "./helpers";

describe("operation rebuild", () => {
  it("one forget per rebuilt node, gating every step of that node; none without rebuild or for the only server", () => {
    const { steps } = stepsOf(rebuild, day2());
    assert.deepEqual(steps.map((s) => s.gates), [[{ node: "d2-server-1", steps: "all" }], [{ node: "d2-agent-1", steps: "all" }]]);
    assert.deepEqual(stepsOf(rebuild, sample("prod")).steps, []);
    assert.deepEqual(stepsOf(rebuild, sample("dev", (r) => (r.nodes[0]!.rebuild = 1))).steps, [], "dev's only server: nobody survives to forget it");
  });

  it("the first server is forgotten by the next server without waiting for anything; any other node by the first server after its apply", () => {
    const [first, agent] = stepsOf(rebuild, day2()).steps;
    assert.equal(first!.host.name, "d2-server-2");
    assert.deepEqual(first!.after, []);
    assert.equal(agent!.host.name, "d2-server-1");
    assert.deepEqual(agent!.after, ["d2-server-1-apply"]);
  });

  it("one-shot: the rebuild value is the only trigger; the script records without running a value the cluster was created with", () => {
    const config = day2();
    const [step] = stepsOf(rebuild, config).steps;
    assert.deepEqual(step!.triggers, [String(config.nodes[0]!.rebuild)]);
    assert.equal(step!.runs, "once");
    const stdin = step!.stdin as FromFacts<string>;
    assert.deepEqual(stdin.needs, ["baseline"]);
    const created = parseBaseline(`${BASELINE_CREATED} ${JSON.stringify({ [ONE_SHOT_KEYS.rebuild("d2-server-1")]: "1" })}`);
    const facts = { baseline: {}, token: "", tokenSalt: "", encryptionKeys: {}, restoreToken: "" };
    assert.doesNotMatch(stdin.render(facts), /the cluster was created with trigger/);
    assert.match(stdin.render({ ...facts, baseline: created }), /the cluster was created with trigger/);
  });
});
