import { agentBatchOf } from "./order";
import { applyOf, Step } from "./step";

/**
 * The rollout as a Mermaid flowchart (issue 25), pure: steps in run order (clusterSteps) in, a
 * fenced ```mermaid block out. GitHub renders it in the PR comment (`preview:md`) and in
 * `operations/plan.md` (`render`). Waves as subgraphs: the first server, the other servers one at
 * a time, the agents (one box per upgrade batch, between its drain and uncordon), and the day-2
 * operations around them; arrows are the steps' `after` and `gates`, without the ones implied by
 * others (transitive reduction), so the picture shows the order, not every dependency.
 *
 * Names never reach Mermaid's syntax: ids are generated (`s0`, `b0`), and every label character
 * outside a small safe set is written as a Mermaid entity code (`#35;`), so a hostile name can
 * neither end a label nor add a directive (property test: test/components/operations/mermaid.test.ts).
 */

/** How a step shows: `run` (this preview changes it), `idle` (it does not), or plain (render: no preview). */
export type StepState = "run" | "idle";

/** Label text: characters outside [A-Za-z0-9 ,.:;()/_+-] as Mermaid entity codes (`#<code point>;`). */
export function mermaidText(text: string): string {
  return [...text].map((c) => (/^[A-Za-z0-9 ,.:;()/_+-]$/.test(c) ? c : `#${c.codePointAt(0)};`)).join("");
}

/** Agents named in a box before the rest is counted. */
const NAMED_AGENTS = 4;

interface Box {
  id: string;
  label: string;
  group?: string;
  restarts: boolean;
  state?: StepState;
}

export function rolloutMermaid(steps: readonly Step[], stateOf?: (step: Step) => StepState): string {
  const boxes: Box[] = [];
  const idOf = new Map<string, string>();
  const groups = new Map<string, string>(); // group key → title, in first-seen order
  const agentBoxes = new Map<string, { box: Box; agents: string[]; states: StepState[] }>();
  const firstServer = steps.find((s) => s.operation === "join" && s.host.role === "server")?.name;

  for (const s of steps) {
    const state = stateOf?.(s);
    if (s.operation === "join" && s.host.role === "agent") {
      // One box per batch: the batch's drain step names it (agents join after it), else all agents.
      const batch = s.after.map(agentBatchOf).find((b) => b !== undefined);
      const key = batch === undefined ? "agents" : `batch-${batch}`;
      let entry = agentBoxes.get(key);
      if (!entry) {
        const group = batch === undefined ? "agents" : `agent batch ${batch}`;
        groups.set(group, batch === undefined ? "agents" : `agent batch ${batch}: drain, install, uncordon`);
        entry = { box: { id: `b${agentBoxes.size}`, label: "", group, restarts: true }, agents: [], states: [] };
        agentBoxes.set(key, entry);
        boxes.push(entry.box);
      }
      entry.agents.push(s.name);
      if (state) entry.states.push(state);
      idOf.set(s.name, entry.box.id).set(applyOf(s.name), entry.box.id);
      continue;
    }
    const box: Box = { id: `s${boxes.length}`, label: "", restarts: s.restartsK3s, ...(state ? { state } : {}) };
    if (s.operation === "join") {
      box.group = s.name === firstServer ? "first server" : "servers";
      groups.set(box.group, box.group === "servers" ? "servers, one at a time" : "first server (initialises the cluster)");
      box.label = mermaidText(s.name);
    } else {
      const batch = agentBatchOf(s.name);
      if (batch !== undefined) {
        box.group = `agent batch ${batch}`;
        groups.set(box.group, `agent batch ${batch}: drain, install, uncordon`);
      }
      box.label = `${mermaidText(s.operation)}: ${mermaidText(s.name)}${s.runs === "on-delete" ? " (on removal)" : ""}`;
    }
    boxes.push(box);
    idOf.set(s.name, box.id);
    if (s.runs === "node") idOf.set(applyOf(s.name), box.id);
  }
  for (const { box, agents, states } of agentBoxes.values()) {
    const named = agents.slice(0, NAMED_AGENTS).map(mermaidText).join(", ");
    const more = agents.length > NAMED_AGENTS ? ` +${agents.length - NAMED_AGENTS} more` : "";
    box.label = `${agents.length} agent${agents.length === 1 ? "" : "s"}: ${named}${more}`;
    if (states.length) box.state = states.includes("run") ? "run" : "idle";
  }

  // Edges between boxes, then only those no longer path implies (the DAG is small: boxes ≤ steps).
  const edges = new Map<string, Set<string>>();
  const edge = (from: string | undefined, to: string | undefined) => {
    if (from === undefined || to === undefined || from === to) return;
    edges.set(from, (edges.get(from) ?? new Set()).add(to));
  };
  for (const s of steps) {
    // The engine deletes a resource before what it depends on: a teardown (on-delete) runs before its `after`.
    for (const ref of s.after) {
      if (s.runs === "on-delete") edge(idOf.get(s.name), idOf.get(ref));
      else edge(idOf.get(ref), idOf.get(s.name));
    }
    for (const g of s.gates ?? []) edge(idOf.get(s.name), idOf.get(g.node));
  }
  const reaches = (from: string, to: string, skip: string): boolean => {
    const seen = new Set<string>();
    const stack = [...(edges.get(from) ?? [])].filter((n) => n !== skip);
    while (stack.length) {
      const n = stack.pop()!;
      if (n === to) return true;
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(...(edges.get(n) ?? []));
    }
    return false;
  };
  const arrows: string[] = [];
  for (const b of boxes) {
    for (const to of edges.get(b.id) ?? []) if (!reaches(b.id, to, to)) arrows.push(`  ${b.id} --> ${to}`);
  }

  const line = (b: Box, indent: string) => `${indent}${b.id}["${b.label}"]`;
  const out = ["```mermaid", "flowchart TD"];
  for (const [group, title] of groups) {
    out.push(`  subgraph g${[...groups.keys()].indexOf(group)}["${mermaidText(title)}"]`, "    direction TB");
    for (const b of boxes.filter((x) => x.group === group)) out.push(line(b, "    "));
    out.push("  end");
  }
  for (const b of boxes.filter((x) => x.group === undefined)) out.push(line(b, "  "));
  out.push(...arrows);
  out.push("  classDef restart stroke:#d9822b,stroke-width:3px");
  const restarts = boxes.filter((b) => b.restarts).map((b) => b.id);
  if (restarts.length) out.push(`  class ${restarts.join(",")} restart`);
  if (stateOf) {
    out.push("  classDef idle opacity:0.45", "  classDef run fill:#fff3bf");
    for (const st of ["run", "idle"] as const) {
      const ids = boxes.filter((b) => b.state === st).map((b) => b.id);
      if (ids.length) out.push(`  class ${ids.join(",")} ${st}`);
    }
  }
  out.push("```");
  return out.join("\n");
}

/** The line under the diagram that explains its marks. */
export function rolloutLegend(preview: boolean): string {
  return preview
    ? "Orange border: restarts K3s on its host; filled: this preview runs it; faded: unchanged. Arrows: runs after."
    : "Orange border: restarts K3s on its host. Arrows: runs after.";
}
