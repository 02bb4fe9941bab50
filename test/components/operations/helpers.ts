import { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { operationSteps } from "../../../components/operations";
import type { Operation, Step } from "../../../components/operations/step";
import { ClusterPlan, planCluster } from "../../../components/plan/node";
import { loadStackConfig } from "../../../components/stack/load";
import { fixtureRaw, variant } from "../../helpers/samples";
import type { Environment } from "../../../components/config/schema";

/** A config, its plan, and one operation's steps (or every operation's). */
export function stepsOf(operation: Operation | undefined, config: ResolvedConfig): { config: ResolvedConfig; plan: ClusterPlan; steps: Step[] } {
  const plan = planCluster(config);
  return { config, plan, steps: operation ? operation.steps(config, plan) : operationSteps(config, plan) };
}

export const day2 = (): ResolvedConfig => loadStackConfig(fixtureRaw("day2"));
export const sample = (env: Environment, edit: (raw: StackInput) => void = () => {}): ResolvedConfig => loadStackConfig(variant(env, edit));

/** Every step a step waits for, directly or through others (its `after`, by name; `<node>-apply` is the node step). */
export function ancestors(steps: readonly Step[], name: string): Set<string> {
  const byName = new Map(steps.flatMap((s) => (s.runs === "node" ? [[s.name, s] as const, [`${s.name}-apply`, s] as const] : [[s.name, s] as const])));
  const gatedBy = new Map<string, string[]>();
  for (const s of steps) for (const g of s.gates ?? []) gatedBy.set(g.node, [...(gatedBy.get(g.node) ?? []), s.name]);
  const seen = new Set<string>();
  const walk = (n: string) => {
    const s = byName.get(n);
    if (!s) return;
    for (const d of [...s.after, ...(s.runs === "node" ? (gatedBy.get(s.name) ?? []) : [])]) {
      const target = byName.get(d)?.name ?? d;
      if (!seen.has(target)) {
        seen.add(target);
        walk(target);
      }
    }
  };
  walk(name);
  return seen;
}
