import { strict as assert } from "node:assert";
import { encryption, ENCRYPTION_VERIFY } from "../../../components/operations/encryption";
import { joinedRefs } from "../../../components/operations/order";
import type { FromFacts } from "../../../components/operations/step";
import { sample, stepsOf } from "./helpers";

describe("operation encryption", () => {
  it("none when encryption is off", () => {
    assert.deepEqual(stepsOf(encryption, sample("dev")).steps, []);
  });

  it("after every node joined: each phase on the first server, then every server restarted one after another, then verify", () => {
    const { steps, config, plan } = stepsOf(encryption, sample("prod", (r) => (r.encryption = { ...r.encryption, rotation: 4 })));
    const servers = config.nodes.filter((n) => n.role === "server").map((n) => n.name);
    assert.deepEqual(steps[0]!.after, joinedRefs(config, plan));
    assert.ok(steps.every((s) => s.parent === "encryption"));
    // The chain: each step waits for exactly the one before it.
    steps.slice(1).forEach((s, i) => assert.deepEqual(s.after, [steps[i]!.name], s.name));
    const restarts = steps.filter((s) => s.restartsK3s);
    assert.deepEqual(restarts.map((s) => s.host.name), servers);
    assert.equal(steps[steps.length - 1]!.name, ENCRYPTION_VERIFY);
    for (const s of steps.slice(0, -1)) assert.deepEqual(s.triggers, ["4"], s.name);
  });

  it("custom mode: verify is rendered from the keys (secret); K3s mode needs no fact", () => {
    const custom = stepsOf(encryption, sample("prod")).steps.find((s) => s.name === ENCRYPTION_VERIFY)!;
    assert.deepEqual((custom.stdin as FromFacts<string>).needs, ["encryptionKeys"]);
    assert.deepEqual(custom.secretInputs, ["stdin"]);
    const k3s = stepsOf(encryption, sample("staging")).steps.find((s) => s.name === ENCRYPTION_VERIFY)!;
    assert.deepEqual((k3s.stdin as FromFacts<string>).needs, []);
  });
});
