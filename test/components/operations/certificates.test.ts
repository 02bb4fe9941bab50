import { strict as assert } from "node:assert";
import { certificates } from "../../../components/operations/certificates";
import { ENCRYPTION_VERIFY } from "../../../components/operations/encryption";
import { joinedRefs } from "../../../components/operations/order";
import { sample, stepsOf } from "./helpers";

describe("operation certificates", () => {
  it("rotation after every node joined and the encryption steps; servers one at a time, then agents; checks after the last", () => {
    const { steps, config, plan } = stepsOf(certificates, sample("prod", (r) => (r.certificates = { rotation: 2 })));
    const rotations = steps.filter((s) => s.runs === "once");
    assert.deepEqual(rotations[0]!.after, [...joinedRefs(config, plan), ENCRYPTION_VERIFY]);
    assert.deepEqual(rotations.map((s) => s.host.name), ["prod-server-1", "prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-2", "prod-agent-3"]);
    assert.ok(rotations.every((s) => s.restartsK3s));
    const agents = rotations.filter((s) => s.host.role === "agent");
    assert.ok(agents.every((s) => s.after.join() === "prod-server-3-rotate-certificates"));
    const checks = steps.filter((s) => s.runs === "on-change");
    assert.deepEqual(checks.map((s) => s.host.name), ["prod-server-1", "prod-server-2", "prod-server-3"]);
    for (const c of checks) assert.deepEqual([...c.after].sort(), agents.map((a) => a.name).sort());
  });

  it("without a rotation only the checks, after every node joined (and verify when encryption is on)", () => {
    const { steps, config, plan } = stepsOf(certificates, sample("dev"));
    assert.deepEqual(steps.map((s) => s.runs), ["on-change"]);
    assert.deepEqual(steps[0]!.after, joinedRefs(config, plan));
  });
});
