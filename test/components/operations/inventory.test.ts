import { strict as assert } from "node:assert";
import { inventory } from "../../../components/operations/inventory";
import { sample, stepsOf } from "./helpers";

describe("operation inventory", () => {
  it("after every node's apply on the first server; arming an entry changes its trigger (it re-runs before any delete)", () => {
    const [step] = stepsOf(inventory, sample("prod")).steps;
    assert.equal(step!.host.name, "prod-server-1");
    assert.equal(step!.after.length, 6);
    const [armed] = stepsOf(inventory, sample("prod", (r) => (r.nodes[5]!.decommission = true))).steps;
    assert.notDeepEqual(armed!.triggers, step!.triggers);
    assert.equal(armed!.after.length, 5, "an armed entry has no apply");
  });
});
