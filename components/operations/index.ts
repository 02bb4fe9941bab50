import type { ResolvedConfig } from "../config/schema";
import type { ClusterPlan } from "../plan/node";
import { baseline } from "./baseline";
import { certificates } from "./certificates";
import { decommission } from "./decommission";
import { destroy } from "./destroy";
import { encryption } from "./encryption";
import { inventory } from "./inventory";
import { join } from "./join";
import { kubeconfig } from "./kubeconfig";
import { maintenance } from "./maintenance";
import { nodeLabels } from "./node-labels";
import { rebuild } from "./rebuild";
import { release } from "./release";
import { restore } from "./restore";
import { restoreAbandoned } from "./restore-abandoned";
import { reportFailure } from "../shell/report";
import { applyOf, isFromFacts, Operation, Step } from "./step";
import { tokenRotation } from "./token-rotation";
import { upgradeBatches } from "./upgrade-batches";

/**
 * The operations a cluster's steps come from, in the order they run (the day-2 counterpart of
 * plan/concerns.ts). Each is a pure `steps(config, plan)` in its own file; operations/run.ts
 * turns every step into a resource in one loop, in `runOrder`; `npm run render` writes them under
 * `operations/`; the policy pack and `preview:md` read names, order and restarts from here. A new
 * operation is its file and one line below. Appending one changes no step before it.
 */
export const OPERATIONS: readonly Operation[] = [
  // Before the node steps: forget a rebuilt node, take the baseline, rotate the token.
  rebuild,
  baseline,
  release,
  tokenRotation,
  join,
  upgradeBatches,
  nodeLabels,
  // After every node joined: each restarts servers one at a time, never together (issue 21).
  encryption,
  certificates,
  // Restore: every server stops at once (the K3s procedure), after every other restart.
  restore,
  // While no restore is armed: converge one that was removed before it finished.
  restoreAbandoned,
  // Rolling maintenance: servers one at a time, then agent batches, after the restore.
  maintenance,
  kubeconfig,
  // Removal runs on delete (after every create and update); the inventory writes the list it checks.
  decommission,
  inventory,
  // Run only by pulumi destroy (uninstallOnDestroy): destroy-begin, then the nodes one at a time.
  destroy,
];

/** The operation a command step of this name (without the stack prefix) belongs to, for readers without the config. */
export function operationOf(name: string, operations: readonly Operation[] = OPERATIONS): Operation | undefined {
  return operations.find((o) => o.owns?.(name));
}

/**
 * Every step of every operation `config` arms, in list order (not yet in run order). Each
 * command (create, update, delete) is in the form that ends a failure with a line naming node,
 * host and step (shell/report.ts reportFailure): the one place every step passes, so the
 * program, render, the policy pack and the e2e run the same text.
 */
export function operationSteps(config: ResolvedConfig, plan: ClusterPlan, operations: readonly Operation[] = OPERATIONS): Step[] {
  return operations.flatMap((o) => o.steps(config, plan).map(reportingFailure));
}

/** `s` with each of its commands in the reporting form (shell/report.ts); a node step has none. */
function reportingFailure(s: Step): Step {
  if (s.create === undefined && s.update === undefined && s.delete === undefined) return s;
  const site = { node: s.host.name, host: s.host.host, step: s.name };
  return {
    ...s,
    ...(s.create !== undefined ? { create: reportFailure(site, s.create) } : {}),
    ...(s.update !== undefined ? { update: reportFailure(site, s.update) } : {}),
    ...(s.delete !== undefined ? { delete: reportFailure(site, s.delete) } : {}),
  };
}

/**
 * The steps in the order they are declared and run: a step after everything it waits for (its
 * `after`, and the steps that gate it), otherwise in list order. Fails naming the step when a
 * reference names no step, or when steps wait on each other in a cycle.
 */
export function runOrder(steps: readonly Step[]): Step[] {
  const byName = new Map<string, number>();
  steps.forEach((s, i) => {
    if (byName.has(s.name)) throw new Error(`two day-2 steps are named ${s.name}`);
    byName.set(s.name, i);
    if (s.runs === "node") byName.set(applyOf(s.name), i);
  });
  const waits: number[][] = steps.map(() => []);
  steps.forEach((s, i) => {
    for (const ref of s.after) {
      const j = byName.get(ref);
      if (j === undefined) throw new Error(`step ${s.name} waits for ${ref}, which no operation declares`);
      waits[i]!.push(j);
    }
    for (const gate of s.gates ?? []) {
      const j = byName.get(gate.node);
      if (j === undefined) throw new Error(`step ${s.name} gates node ${gate.node}, which has no node step`);
      waits[j]!.push(i);
    }
    // A step rendered from the baseline is declared after the step that takes it (it reads its stdout).
    if (needsBaseline(s)) {
      const j = byName.get(baselineStepName(steps));
      if (j !== undefined && j !== i) waits[i]!.push(j);
    }
  });
  const blocking = waits.map((w) => new Set(w).size);
  const unblocks: number[][] = steps.map(() => []);
  waits.forEach((w, i) => new Set(w).forEach((j) => unblocks[j]!.push(i)));
  // Kept sorted: the lowest list index first, so list order wherever dependencies allow.
  const ready = steps.map((_, i) => i).filter((i) => blocking[i] === 0);
  const insert = (k: number) => {
    let lo = 0;
    for (let hi = ready.length; lo < hi; ) {
      const mid = (lo + hi) >> 1;
      if (ready[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    ready.splice(lo, 0, k);
  };
  const order: Step[] = [];
  while (ready.length) {
    const i = ready.shift()!;
    order.push(steps[i]!);
    for (const k of unblocks[i]!) if (--blocking[k]! === 0) insert(k);
  }
  if (order.length !== steps.length) {
    const placed = new Set(order);
    const stuck = steps.filter((s) => !placed.has(s)).map((s) => s.name);
    throw new Error(`day-2 steps wait on each other in a cycle: ${stuck.join(", ")}`);
  }
  return order;
}

function needsBaseline(s: Step): boolean {
  return [s.stdin, s.triggers].some((v) => isFromFacts<unknown>(v) && v.needs.includes("baseline"));
}

function baselineStepName(steps: readonly Step[]): string {
  return steps.find((s) => s.operation === baseline.name)?.name ?? "";
}

/** The steps of a cluster in run order: what the component declares and render writes. */
export function clusterSteps(config: ResolvedConfig, plan: ClusterPlan): Step[] {
  return runOrder(operationSteps(config, plan));
}
