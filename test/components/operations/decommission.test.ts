import { strict as assert } from "node:assert";
import { decommission } from "../../../components/operations/decommission";
import { sample, stepsOf } from "./helpers";

describe("operation decommission", () => {
  it("an armed entry: an uninstall on the node and a drain on the first server, both run on delete, drain first; no triggers", () => {
    const { steps } = stepsOf(decommission, sample("prod", (r) => (r.nodes[5]!.decommission = true)));
    assert.deepEqual(steps.map((s) => [s.name, s.host.name, s.runs, s.after]), [
      ["prod-agent-3-decommission-uninstall", "prod-agent-3", "on-delete", []],
      ["prod-agent-3-decommission-drain", "prod-server-1", "on-delete", ["prod-agent-3-decommission-uninstall"]],
    ]);
    for (const s of steps) {
      assert.equal(s.triggers, undefined, "a trigger change would run the delete");
      assert.ok(s.delete && s.script && s.delete.includes("bash -c"));
    }
    assert.equal(steps[0]!.create, undefined, "arming never connects to the node");
  });

  it("no entry sets decommission: no step", () => {
    assert.deepEqual(stepsOf(decommission, sample("prod")).steps, []);
  });
});
