import { strict as assert } from "node:assert";
import { upgradeBatches } from "../../../components/operations/upgrade-batches";
import { sample, stepsOf } from "./helpers";

describe("operation upgrade-batches", () => {
  it("a drain and an uncordon per batch of maxUnavailable agents, drains chained (the wait for the batch before is on the host, issue 26); the version is the only trigger", () => {
    const config = sample("prod", (r) => (r.upgrade = { maxUnavailable: 2 }));
    const { steps } = stepsOf(upgradeBatches, config);
    // 3 agents in batches of 2: two batches.
    assert.deepEqual(steps.map((s) => s.name), ["agent-batch-1-drain", "agent-batch-1-uncordon", "agent-batch-2-drain", "agent-batch-2-uncordon"]);
    assert.deepEqual(steps[0]!.after, ["prod-server-3-apply"]);
    assert.deepEqual(steps[1]!.after, ["prod-agent-1-apply", "prod-agent-2-apply"]);
    assert.deepEqual(steps[2]!.after, ["prod-server-3-apply", "agent-batch-1-drain"]);
    // The second drain's bound covers the wait for the first batch: its installs and its Ready waits.
    assert.ok(steps[2]!.timeoutSeconds! > steps[0]!.timeoutSeconds! + 2 * config.upgrade.readyTimeout, String(steps[2]!.timeoutSeconds));
    for (const s of steps) {
      assert.deepEqual(s.triggers, [config.k3s.version]);
      assert.equal(s.host.name, "prod-server-1");
      assert.equal(s.update, "true");
    }
  });

  it("no batch steps without a pinned version", () => {
    assert.deepEqual(stepsOf(upgradeBatches, sample("staging", (r) => ((r.k3s!.version = undefined), (r.k3s!.channel = "stable")))).steps, []);
  });
});
