import { strict as assert } from "node:assert";
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { ResolvedConfig } from "../../components/config/schema";
import { loadStackConfig } from "../../components/stack/load";
import { lifecycleLines } from "../../tools/preview-lifecycle";
import { PreviewStep, previewMarkdown } from "../../tools/preview-markdown";
import { policies, TYPES } from "../../policies/policies";
import { collectGraph, GraphResource, policySettings, resourceArgs, runResourcePolicy, runStackPolicy, stackArgs } from "../helpers/policy-harness";
import { sampleConfig, variant } from "../helpers/samples";

/** Lifecycle in the policy pack and in preview:md (issue 13, "Visible and safe"). */

const byName = (name: string) => policies.find((p) => p.name === name)!;
const cluster = (config: ResolvedConfig) => ({ type: TYPES.cluster, name: config.environment, props: { config } as Record<string, unknown> });
const resourcePolicy = async (name: string, config: ResolvedConfig) => {
  const policy = byName(name) as ResourceValidationPolicy;
  return runResourcePolicy(policy, resourceArgs(cluster(config), policySettings(policy).config));
};

describe("policy pack: lifecycle guards", () => {
  it("decommission-keeps-quorum: passes an agent's removal, reports two of three servers at once and an even count left in prod", async () => {
    const edited = (edit: (c: ResolvedConfig) => void) => {
      const c = structuredClone(sampleConfig("prod"));
      edit(c);
      return c;
    };
    assert.deepEqual(await resourcePolicy("decommission-keeps-quorum", edited((c) => (c.nodes[4]!.decommission = true))), []);
    const two = await resourcePolicy("decommission-keeps-quorum", edited((c) => (c.nodes[0]!.decommission = c.nodes[1]!.decommission = true)));
    assert.ok(two.some((m) => /2 of 3 servers are decommissioned at once/.test(m)), JSON.stringify(two));
    // Arming one of three stops nothing: the count is judged when its entry goes (prod-server-quorum).
    assert.deepEqual(await resourcePolicy("decommission-keeps-quorum", edited((c) => (c.nodes[2]!.decommission = true))), []);
  });

  describe("replacing a prod server: the quorum rules judge the whole change (issue 23)", () => {
    const prodSample = () => structuredClone(sampleConfig("prod"));
    const newServer = (c: ResolvedConfig) => ({ ...structuredClone(c.nodes[0]!), name: "prod-server-4", host: "203.0.113.14" });
    const verdict = async (config: ResolvedConfig) => [
      ...(await resourcePolicy("prod-server-quorum", config)),
      ...(await resourcePolicy("decommission-keeps-quorum", config)),
    ];
    it("the path that passes: arm the old server alone (3 still run), then add the new one and delete the old entry in one change (3 after the up)", async () => {
      const armed = prodSample();
      armed.nodes[2]!.decommission = true;
      assert.deepEqual(await verdict(armed), []);
      const swapped = prodSample();
      swapped.nodes.splice(2, 1, newServer(swapped));
      assert.deepEqual(await verdict(swapped), []);
    });
    it("adding first leaves 4 running (an armed server runs until its entry is deleted); the message names the path that passes", async () => {
      const added = prodSample();
      added.nodes.push(newServer(added));
      const plain = await resourcePolicy("prod-server-quorum", added);
      assert.equal(plain.length, 1, JSON.stringify(plain));
      assert.match(plain[0]!, /^prod has 4 servers after this up; use an odd number so etcd keeps quorum: to replace a server, arm the old one alone \(decommission: true, pulumi up: three keep running\), then add the new server and delete the old entry in one change/);
      added.nodes[2]!.decommission = true;
      const armedToo = await resourcePolicy("prod-server-quorum", added);
      assert.equal(armedToo.length, 1, JSON.stringify(armedToo));
      assert.match(armedToo[0]!, /^prod has 4 servers after this up \(counting prod-server-3: armed, it keeps running until its entry is deleted\); use an odd number/);
    });
    it("deleting the armed entry without a replacement leaves 2: refused, naming the replacement path", async () => {
      const removed = prodSample();
      removed.nodes.splice(2, 1);
      const messages = await resourcePolicy("prod-server-quorum", removed);
      assert.equal(messages.length, 2, JSON.stringify(messages));
      assert.match(messages[0]!, /^prod has 2 server\(s\) after this up; at least 3 are required: if a server's entry was deleted, add its replacement in this same change/);
      assert.match(messages[1]!, /^prod has 2 servers after this up; use an odd number/);
    });
    it("a 5 -> 3 shrink: two of five armed passes (5 run), deleting both entries passes (3); three of five at once is refused", async () => {
      const five = prodSample();
      five.nodes.splice(3, 0, { ...newServer(five) }, { ...newServer(five), name: "prod-server-5", host: "203.0.113.15" });
      assert.deepEqual(await verdict(five), []);
      five.nodes[3]!.decommission = five.nodes[4]!.decommission = true;
      assert.deepEqual(await verdict(five), []);
      const three = structuredClone(five);
      three.nodes[0]!.decommission = true;
      assert.ok((await verdict(three)).some((m) => /3 of 5 servers are decommissioned at once; etcd keeps quorum with at most 2/.test(m)));
      five.nodes.splice(3, 2);
      assert.deepEqual(await verdict(five), []);
    });
  });

  it("servers-restart-one-at-a-time covers certificate rotation: chained after the encryption restarts, a parallel step is reported", async () => {
    const config = loadStackConfig(variant("prod", (r) => {
      r.certificates = { rotation: 1 };
      r.encryption = { ...(r.encryption ?? {}), rotation: 1 };
    }));
    const graph: GraphResource[] = await collectGraph(config, "prod");
    const policy = byName("servers-restart-one-at-a-time") as StackValidationPolicy;
    const run = (g: GraphResource[]) => runStackPolicy(policy, stackArgs(g, policySettings(policy).config));
    assert.ok(graph.some((r) => r.name === "prod-prod-server-2-rotate-certificates"));
    assert.deepEqual(await run(graph), []);
    const parallel = graph.map((r) => (r.name === "prod-prod-server-3-rotate-certificates" ? { ...r, dependencies: [] } : r));
    const messages = await run(parallel);
    assert.ok(messages.some((m) => /prod-prod-server-3-rotate-certificates/.test(m)), JSON.stringify(messages));
  });
});

describe("certificate rotation waits for every node's own apply", () => {
  it("an agent's rotate step (stop, rotate, start) never overlaps that agent's apply (install, restart) in the same up", async () => {
    const config = loadStackConfig(variant("prod", (r) => (r.certificates = { rotation: 1 })));
    const graph = await collectGraph(config, "prod");
    const byUrn = new Map(graph.map((r) => [r.urn, r]));
    const reaches = (from: GraphResource, name: string): boolean => {
      const seen = new Set<string>();
      const todo = [...from.dependencies];
      while (todo.length) {
        const u = todo.pop()!;
        if (seen.has(u)) continue;
        seen.add(u);
        const r = byUrn.get(u);
        if (!r) continue;
        if (r.name === name) return true;
        todo.push(...r.dependencies);
      }
      return false;
    };
    const rotateSteps = graph.filter((r) => r.name.endsWith("-rotate-certificates"));
    assert.ok(rotateSteps.length >= 4, rotateSteps.map((r) => r.name).join());
    for (const node of config.nodes) {
      const step = graph.find((r) => r.name === `prod-${node.name}-rotate-certificates`)!;
      assert.ok(step, node.name);
      assert.ok(reaches(step, `prod-${node.name}-apply`), `${step.name} waits for prod-${node.name}-apply`);
    }
  });
});

describe("preview:md: one line per lifecycle phase", () => {
  const urn = (type: string, name: string, parent = "k3s-platform:index:K3sCluster") => `urn:pulumi:prod::k3s-platform::${parent}$${type}::${name}`;
  const node = (name: string, role: string, op = "same"): PreviewStep => ({ op, urn: urn("k3s-platform:index:K3sNode", `prod-${name}`), newState: { inputs: { role } }, oldState: { inputs: { role } } });
  const cmd = (name: string, op: string): PreviewStep => ({ op, urn: urn("command:remote:Command", `prod-${name}`) });
  const base = [node("prod-server-1", "first-server"), node("prod-server-2", "server"), node("prod-server-3", "server"), node("prod-agent-1", "agent")];

  it("arming, running and skipping a decommission", () => {
    assert.deepEqual(lifecycleLines([...base, cmd("prod-agent-2-decommission-uninstall", "create"), cmd("prod-agent-2-decommission-drain", "create"), node("prod-agent-2", "agent", "delete")], "prod"), [
      "arm decommission prod-agent-2: nothing changes on it now; deleting its entry drains, deletes the node and uninstalls K3s",
    ]);
    assert.deepEqual(lifecycleLines([...base, cmd("prod-agent-2-decommission-drain", "delete"), cmd("prod-agent-2-decommission-uninstall", "delete")], "prod"), [
      "decommission prod-agent-2: drain, delete node, uninstall",
    ]);
    assert.deepEqual(lifecycleLines([...base, node("prod-agent-2", "agent", "create"), cmd("prod-agent-2-decommission-drain", "delete")], "prod"), [
      "⚠️ prod-agent-2 stays in the config but its armed teardown is dropped: this up will fail at its drain (refused on the server; nothing is removed). Set `decommission: false` to cancel, or delete the whole entry to remove it (docs/removing-and-replacing-nodes.md)",
    ]);
    assert.deepEqual(lifecycleLines([...base, node("prod-agent-3", "agent", "delete")], "prod"), [
      "⚠️ remove prod-agent-3 without decommission: K3s stays installed and running on the host (docs/removing-and-replacing-nodes.md)",
    ]);
  });

  it("uninstall on destroy armed or turned off; protection on or off (issue 23)", () => {
    assert.deepEqual(lifecycleLines([...base, cmd("destroy-begin", "create"), cmd("prod-agent-1-destroy-uninstall", "create"), cmd("prod-server-1-destroy-uninstall", "create")], "prod"), [
      "arm uninstall on destroy: pulumi destroy will uninstall K3s from 2 nodes, agents first, servers last, one at a time; nothing changes on a host now",
    ]);
    assert.deepEqual(lifecycleLines([...base, cmd("destroy-begin", "delete"), cmd("prod-agent-1-destroy-uninstall", "delete")], "prod"), [
      "uninstall on destroy turned off: its steps are dropped and uninstall nothing (they run only on nodes destroy-begin marked)",
    ]);
    const guard = (op: string, from: boolean | undefined, to: boolean): PreviewStep => ({
      op,
      urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:DestroyGuard::prod-destroy-guard",
      ...(from === undefined ? {} : { oldState: { protect: from } }),
      newState: { protect: to },
    });
    assert.deepEqual(lifecycleLines([...base, guard("update", true, false)], "prod"), ["⚠️ protect: false: after this up, pulumi destroy deletes the stack (docs/destroy.md)"]);
    assert.deepEqual(lifecycleLines([...base, guard("create", undefined, true)], "prod"), ["protected: pulumi destroy deletes nothing until an up with protect: false (docs/destroy.md)"]);
    assert.deepEqual(lifecycleLines([...base, guard("same", true, true)], "prod"), []);
  });

  it("a rebuild: the forget step runs (join-only on the first server); the only server warns", () => {
    assert.deepEqual(lifecycleLines([...base, cmd("prod-server-1-rebuild-forget", "create"), cmd("prod-agent-1-rebuild-forget", "replace")], "prod"), [
      "rebuild prod-server-1: forget the old node, re-run every step (join-only)",
      "rebuild prod-agent-1: forget the old node, re-run every step",
    ]);
    assert.deepEqual(lifecycleLines([...base, cmd("prod-server-1-rebuild-forget", "same"), cmd("prod-server-1-rebuild-forget", "update")], "prod"), [], "done, or an SSH change: nothing to say");
    const stage = (triggers: string[]): PreviewStep => ({
      op: "replace",
      urn: urn("command:remote:Command", "prod-prod-server-1-stage", "k3s-platform:index:K3sCluster$k3s-platform:index:K3sNode"),
      newState: { inputs: { triggers } },
    });
    const only = [node("prod-server-1", "first-server"), node("prod-agent-1", "agent")];
    assert.deepEqual(lifecycleLines([...only, stage(["/var/lib/k3s-platform/staging", "1"])], "prod"), [
      "⚠️ rebuild prod-server-1: re-run every step on the only server: a new, empty cluster unless a snapshot is restored first (docs/rebuilding.md)",
    ]);
    assert.deepEqual(lifecycleLines([...only, stage(["/var/lib/k3s-platform/staging"])], "prod"), [], "a stage replaced for another reason is no rebuild");
  });

  it("token, certificate and encryption-key rotation, with the rollout", () => {
    const lines = lifecycleLines(
      [
        ...base,
        cmd("token-rotate", "replace"),
        cmd("token-rotate", "create-replacement"),
        cmd("token-rotate", "delete-replaced"),
        cmd("prod-server-1-rotate-certificates", "create"),
        { op: "replace", urn: urn("command:remote:Command", "prod-encryption-rotate-keys", "k3s-platform:index:K3sCluster$k3s-platform:index:SecretsEncryption") },
      ],
      "prod",
    );
    assert.deepEqual(lines, [
      "rotate token: 3 servers one at a time, then 1 agent",
      "rotate certificates: stop, rotate, start; 3 servers one at a time, then 1 agent",
      "rotate encryption keys (rotate-keys): after each phase 3 servers restart one at a time",
    ]);
    // Real `pulumi preview --json` leaves unchanged K3sNodes out: the config's roles count then.
    const rotationOnly = [{ op: "replace", urn: urn("command:remote:Command", "prod-encryption-rotate-keys", "k3s-platform:index:K3sCluster$k3s-platform:index:SecretsEncryption") }];
    assert.deepEqual(lifecycleLines(rotationOnly, "prod", { servers: 3, agents: 2 }), ["rotate encryption keys (rotate-keys): after each phase 3 servers restart one at a time"]);
    assert.deepEqual(lifecycleLines([cmd("prod-server-1-rotate-certificates", "replace")], "prod", { servers: 3, agents: 2 }), ["rotate certificates: stop, rotate, start; 3 servers one at a time, then 2 agents"]);
    // On the up that creates the cluster the same steps are recorded, not run (one-shot baseline).
    const created = [node("prod-server-1", "first-server", "create"), node("prod-server-2", "server", "create"), node("prod-agent-1", "agent", "create")];
    assert.deepEqual(
      lifecycleLines(
        [
          ...created,
          cmd("prod-server-1-rotate-certificates", "create"),
          cmd("prod-agent-1-rebuild-forget", "create"),
          { op: "create", urn: urn("command:remote:Command", "prod-encryption-rotate-keys", "k3s-platform:index:K3sCluster$k3s-platform:index:SecretsEncryption") },
        ],
        "prod",
      ),
      ["new cluster: rebuild prod-agent-1, certificate rotation, encryption key rotation recorded as done, nothing runs (nothing to rotate yet); a later value runs it"],
    );
    const md = previewMarkdown({ steps: [...base, cmd("token-rotate", "replace")] }, { stack: "prod" });
    assert.match(md, /#### Operations\n\n- rotate token: 3 servers one at a time, then 1 agent\n/);
    assert.doesNotMatch(previewMarkdown({ steps: base }, { stack: "prod" }), /Operations/);
  });
});
