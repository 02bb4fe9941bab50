import { strict as assert } from "node:assert";
import { OPERATIONS, operationOf, operationSteps, runOrder } from "../../../components/operations";
import { sshUserOf } from "../../../components/operations/step";
import type { Operation, Step } from "../../../components/operations/step";
import { DRAIN_STDIN, stdinScriptCommand } from "../../../components/shell/root";
import { planCluster } from "../../../components/plan/node";
import { ENVS, fixtureConfig, sampleConfig } from "../../helpers/samples";
import { innerCommand } from "../../helpers/report";
import { ancestors, day2 } from "./helpers";

const configs = () => [...ENVS.map((env) => [env, sampleConfig(env)] as const), ["dualstack", fixtureConfig("dualstack")] as const, ["day2", day2()] as const];

describe("operations: one ordered list, one run order (issue 23)", () => {
  it("each operation has a unique name and tags its own steps with it; step names are unique", () => {
    assert.equal(new Set(OPERATIONS.map((o) => o.name)).size, OPERATIONS.length);
    for (const [label, config] of configs()) {
      const plan = planCluster(config);
      for (const op of OPERATIONS) for (const s of op.steps(config, plan)) assert.equal(s.operation, op.name, `${label}: ${s.name}`);
      const names = operationSteps(config, plan).map((s) => s.name);
      assert.equal(new Set(names).size, names.length, label);
    }
  });

  it("every command of a step with a stdin reads all of it: a stdin script or one that drains it (an early exit fails the step with EOF)", () => {
    // pulumi-command's SSH client writes stdin after the command starts; a command that exits
    // before reading it makes the write, and the step, fail with "EOF" (shell/root.ts DRAIN_STDIN).
    for (const [label, config] of configs()) {
      for (const s of operationSteps(config, planCluster(config))) {
        if (s.runs === "node" || s.stdin === undefined) continue;
        const script = stdinScriptCommand(sshUserOf(config, s.host));
        for (const [kind, cmd] of [["create", s.create], ["update", s.update], ["delete", s.delete]] as const) {
          if (cmd === undefined) continue;
          // Inside the form that reports a failure (shell/report.ts; test/components/shell/report.test.ts).
          const inner = innerCommand(cmd) ?? cmd;
          assert.ok(inner === script || inner === DRAIN_STDIN || inner.startsWith(`${DRAIN_STDIN}; `), `${label}: ${s.name}'s ${kind} (${JSON.stringify(inner.slice(0, 60))}) may exit before reading its stdin`);
        }
      }
    }
  });

  it("run order: every step after each step it waits for and each step that gates it", () => {
    for (const [label, config] of configs()) {
      const steps = operationSteps(config, planCluster(config));
      const order = runOrder(steps);
      assert.equal(order.length, steps.length, label);
      const position = new Map(order.flatMap((s, i) => (s.runs === "node" ? [[s.name, i] as const, [`${s.name}-apply`, i] as const] : [[s.name, i] as const])));
      for (const s of order) {
        for (const ref of s.after) assert.ok(position.get(ref)! < position.get(s.name)!, `${label}: ${s.name} before ${ref}`);
        for (const g of s.gates ?? []) assert.ok(position.get(s.name)! < position.get(g.node)!, `${label}: ${g.node} before its gate ${s.name}`);
      }
    }
  });

  it("no two steps that restart K3s on a server can run at once (each pair is ordered)", () => {
    for (const [label, config] of configs()) {
      const steps = operationSteps(config, planCluster(config));
      const restarts = steps.filter((s) => s.restartsK3s && s.host.role === "server" && s.runs !== "on-delete");
      assert.ok(restarts.length >= config.nodes.filter((n) => n.role === "server" && n.decommission !== true).length, label);
      for (let i = 0; i < restarts.length; i++) {
        for (let j = i + 1; j < restarts.length; j++) {
          const [a, b] = [restarts[i]!, restarts[j]!];
          assert.ok(ancestors(steps, a.name).has(b.name) || ancestors(steps, b.name).has(a.name), `${label}: ${a.name} and ${b.name} may restart servers at once`);
        }
      }
    }
  });

  it("appending an operation changes no step before it; a reference to an undeclared step or a cycle fails naming the step", () => {
    const config = day2();
    const plan = planCluster(config);
    const extra: Operation = {
      name: "extra",
      description: "a test operation",
      steps: (_c, p) => [{ name: "extra-step", operation: "extra", host: p.nodes[0]!.node, parent: "cluster", runs: "on-change", restartsK3s: false, summary: "x", after: ["kubeconfig"] }],
    };
    const before = runOrder(operationSteps(config, plan));
    const after = runOrder(operationSteps(config, plan, [...OPERATIONS, extra]));
    // Same steps, same inputs (render functions compared by what they render for one set of facts).
    const view = (s: Step) => JSON.stringify(s, (_k, v: unknown) => (typeof v === "object" && v !== null && "render" in v ? (v as { render: (f: object) => unknown }).render({ baseline: {}, token: "t", tokenSalt: "s", encryptionKeys: {}, restoreToken: "" }) : v));
    assert.deepEqual(after.slice(0, before.length).map(view), before.map(view));
    assert.equal(after[after.length - 1]!.name, "extra-step");
    const step = (name: string, waits: string[]): Step => ({ name, operation: "t", host: plan.nodes[0]!.node, parent: "cluster", runs: "on-change", restartsK3s: false, summary: "", after: waits });
    assert.throws(() => runOrder([step("a", ["nowhere"])]), /step a waits for nowhere, which no operation declares/);
    assert.throws(() => runOrder([step("a", ["b"]), step("b", ["a"])]), /cycle: a, b/);
  });
});

describe("operations: names without the config (operationOf, for preview:md)", () => {
  it("every command step is owned by exactly its own operation", () => {
    for (const [label, config] of configs()) {
      for (const s of operationSteps(config, planCluster(config)).filter((x) => x.runs !== "node")) {
        assert.deepEqual(OPERATIONS.filter((o) => o.owns?.(s.name)).map((o) => o.name), [s.operation], `${label}: ${s.name}`);
        assert.equal(operationOf(s.name)?.name, s.operation);
      }
    }
    assert.equal(operationOf("prod-server-1-apply"), undefined, "a node's own step belongs to no day-2 operation");
    assert.equal(operationOf("agent-batch-x-drain"), undefined);
  });
});
