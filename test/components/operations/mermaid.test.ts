import { strict as assert } from "node:assert";
import fc from "fast-check";
import type { NodeConfig } from "../../../components/config/schema";
import { clusterSteps } from "../../../components/operations";
import { mermaidText, rolloutMermaid } from "../../../components/operations/mermaid";
import { applyOf, Step } from "../../../components/operations/step";
import { planCluster } from "../../../components/plan/node";
import { sample } from "./helpers";

/** Every line the renderer may write: a label is safe characters and entity codes only. */
const LABEL = String.raw`"(?:[A-Za-z0-9 ,.:;()/_+-]|#\d+;|<br/>)*"`;
const GRAMMAR = [
  /^```mermaid$/, /^flowchart TD$/, /^```$/,
  new RegExp(String.raw`^  subgraph g\d+\[${LABEL}\]$`), /^    direction TB$/, /^  end$/,
  new RegExp(String.raw`^ {2,4}[sb]\d+\[${LABEL}\]$`),
  /^  [sb]\d+ --> [sb]\d+$/,
  /^  classDef (restart|idle|run) [a-z-]+:[#0-9a-z.]+(,[a-z-]+:[#0-9a-z.]+)*$/,
  /^  class [sb]\d+(,[sb]\d+)* (restart|run|idle)$/,
];

const decode = (label: string) => label.replace(/#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)));
const labels = (diagram: string) => [...diagram.matchAll(/\["((?:[^"])*)"\]/g)].map((m) => decode(m[1]!));

/** A Step as the operations build it, for names no config would accept. */
function step(name: string, operation: string, role: "server" | "agent", after: string[], runs: Step["runs"] = "node", restartsK3s = runs === "node"): Step {
  return { name, operation, host: { name, role } as NodeConfig, parent: "cluster", runs, restartsK3s, summary: "", after };
}

describe("operations: the rollout as a Mermaid flowchart (issue 25)", () => {
  it("prod: first server, servers one at a time, one box per agent batch between its drain and uncordon, operations after", () => {
    const config = sample("prod");
    const steps = clusterSteps(config, planCluster(config));
    const d = rolloutMermaid(steps);
    const id = (label: string) => new RegExp(String.raw`([sb]\d+)\["${label.replace(/[.+]/g, "\\$&")}"\]`).exec(d)?.[1];
    const [s1, s2, s3] = ["prod-server-1", "prod-server-2", "prod-server-3"].map(id);
    assert.ok(s1 && s2 && s3, d);
    assert.match(d, new RegExp(`subgraph g\\d+\\["first server \\(initialises the cluster\\)"\\]\\n    direction TB\\n    ${s1}\\[`));
    assert.match(d, new RegExp(`subgraph g\\d+\\["servers, one at a time"\\]\\n    direction TB\\n    ${s2}\\["prod-server-2"\\]\\n    ${s3}\\["prod-server-3"\\]\\n  end`));
    assert.match(d, new RegExp(`  ${s1} --> ${s2}\\n`));
    assert.match(d, new RegExp(`  ${s2} --> ${s3}\\n`));
    for (const [i, agent] of ["prod-agent-1", "prod-agent-2", "prod-agent-3"].entries()) {
      const drain = id(`upgrade-batches: agent-batch-${i + 1}-drain`);
      const uncordon = id(`upgrade-batches: agent-batch-${i + 1}-uncordon`);
      const box = id(`1 agent: ${agent}`);
      assert.ok(drain && uncordon && box, `${agent}\n${d}`);
      assert.match(d, new RegExp(`subgraph g\\d+\\["agent batch ${i + 1}: drain, install, uncordon"\\]\\n    direction TB\\n    ${drain}\\[[^\\n]*\\n    ${box}\\[[^\\n]*\\n    ${uncordon}\\[`));
      assert.match(d, new RegExp(`  ${drain} --> ${box}\\n`));
      assert.match(d, new RegExp(`  ${box} --> ${uncordon}\\n`));
    }
    // Restarts: every node step and the encryption restarts, never a drain or a read-only step.
    const restart = /^  class (\S+) restart$/m.exec(d)![1]!.split(",");
    for (const s of steps) {
      const box = s.runs === "node" ? (s.host.role === "agent" ? id(`1 agent: ${s.name}`) : id(s.name)) : id(`${s.operation}: ${s.name}`);
      assert.equal(restart.includes(box!), s.restartsK3s, s.name);
    }
    // Transitive arrows are left out: the first server reaches the last agent only through the chain.
    assert.doesNotMatch(d, new RegExp(`  ${s1} --> ${s3}\\n`));
  });

  it("agents of one batch share a box; more than four are counted", () => {
    const steps = [
      step("s", "join", "server", []),
      ...["a1", "a2", "a3", "a4", "a5", "a6"].map((a) => step(a, "join", "agent", [applyOf("s")])),
      step("labels", "node-labels", "server", ["a1-apply", "a6-apply"], "on-change"),
    ];
    const d = rolloutMermaid(steps);
    assert.match(d, /b0\["6 agents: a1, a2, a3, a4 \+2 more"\]/);
    assert.match(d, /subgraph g\d+\["agents"\]/);
    assert.match(d, /s0 --> b0\n {2}b0 --> s\d+\n/);
  });

  it("a teardown's steps point the way they run: the engine deletes a resource before what it depends on", () => {
    const steps = [
      step("s", "join", "server", []),
      step("x-uninstall", "decommission", "server", [], "on-delete"),
      step("x-drain", "decommission", "server", ["x-uninstall"], "on-delete"),
    ];
    const d = rolloutMermaid(steps);
    assert.match(d, /s2\["decommission: x-drain \(on removal\)"\]/);
    assert.match(d, /^ {2}s2 --> s1$/m);
    assert.doesNotMatch(d, /^ {2}s1 --> s2$/m);
  });

  it("a preview marks the steps it runs and fades the rest", () => {
    const steps = [step("s1", "join", "server", []), step("s2", "join", "server", ["s1-apply"]), step("kubeconfig", "kubeconfig", "server", ["s1-apply"], "on-change")];
    const d = rolloutMermaid(steps, (s) => (s.name === "s2" ? "run" : "idle"));
    assert.match(d, /^ {2}class s1 run$/m);
    assert.match(d, /^ {2}class s0,s2 idle$/m);
  });

  it("hostile names cannot break the diagram: every line is of its grammar, and the labels carry the names back", () => {
    const name = fc.oneof(
      fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" }),
      fc.constantFrom('a"]-->x', "end", "```", "x\nclick s0 call alert()", "%%{init: {}}%%", "a;b", "#35;", "<b>x</b>", "subgraph", "a|b", "`x`", "[x]", "{x}"),
    );
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 4, maxLength: 4 }), ([first, second, agent, op]) => {
        const steps = [
          step(first!, "join", "server", []),
          step(second!, "join", "server", [applyOf(first!)]),
          step("agent-batch-1-drain", "upgrade-batches", "server", [applyOf(second!)], "once", false),
          step(agent!, "join", "agent", ["agent-batch-1-drain"]),
          step(op!, op!, "server", [applyOf(agent!)], "on-change", false),
        ];
        const d = rolloutMermaid(steps, () => "run");
        for (const line of d.split("\n")) assert.ok(GRAMMAR.some((g) => g.test(line)), JSON.stringify(line));
        const text = labels(d);
        for (const n of [first!, second!]) assert.ok(text.includes(n), `${JSON.stringify(n)} in ${JSON.stringify(text)}`);
        assert.ok(text.includes(`1 agent: ${agent}`), JSON.stringify(text));
        assert.ok(text.includes(`${op}: ${op}`), JSON.stringify(text));
      }),
      { numRuns: 300 },
    );
  });

  it("mermaidText keeps safe characters and encodes every other one", () => {
    assert.equal(mermaidText("dev-server-1"), "dev-server-1");
    assert.equal(mermaidText('a"b#'), "a#34;b#35;");
    assert.equal(mermaidText("ü😀"), "#252;#128512;");
  });
});
