import { strict as assert } from "node:assert";
import { upgradeBatches } from "../../../components/operations/upgrade-batches";
import { isFromFacts, Step } from "../../../components/operations/step";
import { sample, stepsOf } from "./helpers";

describe("operation upgrade-batches", () => {
  it("a drain and an uncordon per batch of maxUnavailable agents, drains chained (the wait for the batches before is on the host, issue 26); triggered by the version and the batch's K3s inputs", () => {
    const config = sample("prod", (r) => (r.upgrade = { maxUnavailable: 2 }));
    const { steps } = stepsOf(upgradeBatches, config);
    // 3 agents in batches of 2: two batches.
    assert.deepEqual(steps.map((s) => s.name), ["agent-batch-1-drain", "agent-batch-1-uncordon", "agent-batch-2-drain", "agent-batch-2-uncordon"]);
    assert.deepEqual(steps[0]!.after, ["prod-server-3-apply"]);
    assert.deepEqual(steps[1]!.after, ["prod-agent-1-apply", "prod-agent-2-apply"]);
    assert.deepEqual(steps[2]!.after, ["prod-server-3-apply", "agent-batch-1-drain"]);
    // The second drain's bound covers the wait for the first batch: its installs and its Ready waits.
    assert.ok(steps[2]!.timeoutSeconds! > steps[0]!.timeoutSeconds! + 2 * config.upgrade.readyTimeout, String(steps[2]!.timeoutSeconds));
    // A batch's two steps share the trigger; another batch's agents have other inputs.
    assert.deepEqual(steps[0]!.triggers, steps[1]!.triggers);
    assert.notDeepEqual(steps[0]!.triggers, steps[2]!.triggers);
    for (const s of steps) {
      const triggers = s.triggers as string[];
      assert.equal(triggers.length, 2);
      assert.equal(triggers[0], config.k3s.version);
      assert.match(triggers[1]!, /^[0-9a-f]{64}$/);
      assert.equal(s.host.name, "prod-server-1");
      assert.equal(s.update, "true");
    }
  });

  it("a channel stack has the batches of a pinned one (issue 26): same steps, order, waits and bounds; its scripts run at the release its k3s-release step recorded", () => {
    const pinned = stepsOf(upgradeBatches, sample("staging", (r) => (r.upgrade = { maxUnavailable: 1 }))).steps;
    const { steps } = stepsOf(upgradeBatches, sample("staging", (r) => ((r.k3s!.version = undefined), (r.k3s!.channel = "stable"), (r.upgrade = { maxUnavailable: 1 }))));
    const shape = (s: Step) => ({ name: s.name, after: s.after, awaits: s.awaits, host: s.host.name, runs: s.runs, timeoutSeconds: s.timeoutSeconds, update: s.update });
    assert.equal(pinned.length, 4, "2 agents, batches of 1");
    assert.deepEqual(steps.map(shape), pinned.map(shape));
    // Each drain waits for its agents' preflight (the release check among them: k3s/agent-preflight.ts).
    assert.deepEqual(steps[0]!.awaits, ["stg-agent-1-preflight"]);
    for (const s of steps) {
      assert.ok(isFromFacts(s.stdin), `${s.name}: its script needs the recorded release`);
      assert.deepEqual(s.stdin.needs, ["clusterRelease"]);
      const script = s.stdin.render({ baseline: {}, token: "", tokenSalt: "", encryptionKeys: {}, restoreToken: "", clusterRelease: "v1.36.3+k3s1" });
      assert.match(script, /^TARGET_VERSION=v1\.36\.3\+k3s1$/m);
      assert.equal((s.triggers as string[])[0], "", "the release never moves: only the K3s inputs trigger them");
    }
  });
});
