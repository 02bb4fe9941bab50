import { strict as assert } from "node:assert";
import { NO_OP_UPDATE } from "../../../components/operations/once";
import { createHash, createHmac } from "node:crypto";
import * as fc from "fast-check";
import { upgradeBatches } from "../../../components/operations/upgrade-batches";
import { Facts, isFromFacts, Step, StepValue } from "../../../components/operations/step";
import type { NodeSecrets } from "../../../components/config/secrets";
import { planCluster, renderSecretsDocument } from "../../../components/plan/node";
import { agentSecretInputs } from "../../../components/plan/restart";
import { sample, stepsOf } from "./helpers";

const FACTS: Facts = { baseline: {}, token: "", tokenSalt: "", encryptionKeys: {}, restoreToken: "" };
const SALT = "Zq3v8PxR2mLk7NwT4bYc9HdJ6fGs1aUe";

/** A step value as the engine resolves it from these facts. */
function resolve<T>(value: StepValue<T> | undefined, facts: Facts): T | undefined {
  return isFromFacts(value) ? value.render(facts) : value;
}

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
    const facts = { ...FACTS, secretInputs: agentSecretInputs(planCluster(config), { token: "t" }, SALT) };
    const triggers = (s: Step) => resolve(s.triggers, facts)!;
    assert.deepEqual(triggers(steps[0]!), triggers(steps[1]!));
    assert.notDeepEqual(triggers(steps[0]!), triggers(steps[2]!));
    for (const s of steps) {
      assert.equal(triggers(s).length, 3);
      assert.equal(triggers(s)[0], config.k3s.version);
      // The digests of the agents' restart inputs and of their keyed secret digests (issue 26).
      assert.match(triggers(s)[1]!, /^[0-9a-f]{64}$/);
      assert.match(triggers(s)[2]!, /^[0-9a-f]{64}$/);
      assert.equal(s.host.name, "prod-server-1");
      assert.equal(s.update, NO_OP_UPDATE);
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
      // A drain also reads its agents' preflight answers (issue 26: does the apply restart K3s?).
      assert.deepEqual(s.stdin.needs, ["clusterRelease", "secretInputs", ...(s.name.endsWith("-drain") ? ["restartVerdicts"] : [])]);
      const script = s.stdin.render({ ...FACTS, clusterRelease: "v1.36.3+k3s1" });
      assert.match(script, /^TARGET_VERSION=v1\.36\.3\+k3s1$/m);
      assert.equal(resolve(s.triggers, FACTS)![0], "", "the release never moves: only the K3s inputs trigger them");
    }
  });

  describe("secret files (issue 26): a change of their content drains the agents that read them, batch by batch", () => {
    // Three agents, one per batch; registryAuth makes registries.yaml a secret file on every node,
    // k3s.vpn puts vpnAuthKey in every node's secrets drop-in (else the property below checks no vpn key).
    const config = sample("prod", (r) => {
      r.upgrade = { maxUnavailable: 1 };
      r.k3s = { ...r.k3s, vpn: { provider: "tailscale" } };
    });
    const plan = planCluster(config, { hasRegistryAuth: true });
    const steps = upgradeBatches.steps(config, plan);
    const base: NodeSecrets = { token: "cluster-token", etcdS3SecretKey: "s3-one", registryAuth: { "registry.example.com": { username: "ci", password: "first-password" } } };
    const run = (secrets: NodeSecrets) => {
      const facts = { ...FACTS, secretInputs: agentSecretInputs(plan, secrets, SALT) };
      return steps.map((s) => ({ name: s.name, triggers: JSON.stringify(resolve(s.triggers, facts)), stdin: resolve(s.stdin, facts)! }));
    };
    const moved = (a: NodeSecrets, b: NodeSecrets) => {
      const [before, after] = [run(a), run(b)];
      return after.filter((s, i) => s.triggers !== before[i]!.triggers).map((s) => s.name);
    };

    it("a registryAuth password change moves every batch (every agent reads registries.yaml); a server-only secret moves none", () => {
      assert.equal(plan.nodes.filter((n) => n.node.role === "agent").length, 3);
      const password = { ...base, registryAuth: { "registry.example.com": { username: "ci", password: "second-password" } } };
      assert.deepEqual(moved(base, password), steps.map((s) => s.name), "each batch's drain and uncordon run, one batch after another (the drains' host-side wait)");
      // The drain compares each agent's new keyed digest with the one its Node records.
      const [before, after] = [run(base), run(password)];
      for (const [i, s] of after.entries()) {
        const line = (text: string) => /^SECRET_INPUTS=\((.*)\)$/m.exec(text)![1]!;
        assert.notEqual(line(s.stdin), line(before[i]!.stdin), s.name);
        assert.match(line(s.stdin), /^[0-9a-f]{64}$/, "one agent per batch, its digest");
      }
      // etcd's S3 secret key is in the servers' drop-in only: no agent restarts, no batch runs.
      assert.deepEqual(moved(base, { ...base, etcdS3SecretKey: "s3-two" }), []);
      // The same secrets give the same digests: a second up runs nothing.
      assert.deepEqual(moved(base, { ...base }), []);
    });

    it("an agentToken moves every agent's batch; the server token then moves none (agents do not read it)", () => {
      const withAgentToken = { ...base, agentToken: "agent-token-1" };
      assert.deepEqual(moved(base, withAgentToken), steps.map((s) => s.name));
      assert.deepEqual(moved(withAgentToken, { ...withAgentToken, token: "cluster-token-2" }), []);
      assert.deepEqual(moved(withAgentToken, { ...withAgentToken, agentToken: "agent-token-2" }), steps.map((s) => s.name));
    });

    it("a vpnAuthKey moves every agent's batch (each reads it in its drop-in)", () => {
      assert.deepEqual(moved({ ...base, vpnAuthKey: "tskey-auth-one" }, { ...base, vpnAuthKey: "tskey-auth-two" }), steps.map((s) => s.name));
    });

    it("a low-entropy secret's digest cannot be checked without the stack's key: another key gives another digest, and none is an unkeyed hash of the secret files", () => {
      const weak: NodeSecrets = { ...base, vpnAuthKey: "a", registryAuth: { "registry.example.com": { username: "ci", password: "a" } } };
      const agent = plan.nodes.find((n) => n.node.role === "agent")!;
      const digest = agentSecretInputs(plan, weak, SALT)[agent.node.name]!;
      assert.notEqual(digest, agentSecretInputs(plan, weak, `${SALT}x`)[agent.node.name], "keyed by the salt");
      const document = renderSecretsDocument(agent, weak);
      const unkeyed = [createHash("sha256").update(document).digest("hex"), createHmac("sha256", "").update(document).digest("hex"), createHmac("sha256", SALT).update(document).digest("hex")];
      assert.ok(!unkeyed.includes(digest), "not a plain or salt-only hash of what the secrets step writes");
    });

    it("property: no secret reaches a batch script, a trigger or the annotation value (fast-check over secret strings)", () => {
      // 12+ characters: a shorter string may occur in any 64-digit hex digest by chance.
      const secret = fc.string({ minLength: 12, maxLength: 64 }).filter((v) => v.trim() === v && v.length >= 12);
      fc.assert(
        fc.property(secret, secret, secret, (password, token, vpn) => {
          const secrets: NodeSecrets = { token, vpnAuthKey: vpn, registryAuth: { "registry.example.com": { username: "ci", password } } };
          const digests = agentSecretInputs(plan, secrets, SALT);
          const text = JSON.stringify([run(secrets), digests]);
          for (const v of [password, token, vpn]) {
            assert.ok(!text.includes(v), `secret ${JSON.stringify(v)} reached a script, trigger or annotation`);
            assert.ok(!text.includes(JSON.stringify(v).slice(1, -1)), "not even escaped");
            assert.ok(!text.includes(Buffer.from(v).toString("base64").slice(0, 16)), "not even base64");
          }
          for (const d of Object.values(digests)) assert.match(d, /^[0-9a-f]{64}$/, "the annotation's value: a hex digest");
        }),
        { numRuns: 60 },
      );
    });
  });
});
