import { strict as assert } from "node:assert";
import { nodeLabels } from "../../../components/operations/node-labels";
import { sample, stepsOf } from "./helpers";

describe("operation node-labels", () => {
  it("after every node's apply, on the first server; re-labels a rebuilt node (its value joins the trigger)", () => {
    const config = sample("prod");
    const [step] = stepsOf(nodeLabels, config).steps;
    assert.deepEqual([...step!.after].sort(), config.nodes.map((n) => `${n.name}-apply`).sort());
    assert.equal(step!.host.name, "prod-server-1");
    const [rebuilt] = stepsOf(nodeLabels, sample("prod", (r) => (r.nodes[4]!.rebuild = 7))).steps;
    assert.deepEqual((rebuilt!.triggers as string[]).slice(1), ["prod-agent-2=7"]);
    assert.equal((step!.triggers as string[]).length, 1);
  });

  it("no step when no node carries a label to set or remove", () => {
    const config = sample("dev", (r) => r.nodes.forEach((n) => delete n.labels));
    assert.deepEqual(stepsOf(nodeLabels, config).steps, []);
  });
});
