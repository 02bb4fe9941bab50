import type { NodeConfig, ResolvedConfig, ResolvedHook, StackConfig } from "./schema";
import type { HookPoint } from "./schema/hooks";

/**
 * Hooks (docs/hooks.md) in config terms: which nodes a hook applies to, the selector checks, and
 * the pools selector resolved into node names before `pools` is dropped (validate.ts
 * resolveDefaults), so renderers never need pool membership. Pure.
 */

type Report = (path: ReadonlyArray<string | number>, message: string) => void;

/** Selector names that match nothing in the config: unknown nodes or pools, duplicate hook names. */
export function hookSelectorChecks(config: StackConfig, report: Report): void {
  const names = new Set(config.nodes.map((n) => n.name));
  const pools = Object.keys(config.pools ?? {});
  const seen = new Map<string, number>();
  (config.hooks ?? []).forEach((hook, i) => {
    const first = seen.get(hook.name);
    if (first !== undefined) report(["hooks", i, "name"], `duplicate hook name "${hook.name}" (also hooks[${first}])`);
    else seen.set(hook.name, i);
    hook.nodes?.forEach((name, j) => {
      if (!names.has(name)) report(["hooks", i, "nodes", j], `no node named "${name}" in k3s-platform:nodes`);
    });
    hook.pools?.forEach((pool, j) => {
      if (!pools.includes(pool)) report(["hooks", i, "pools", j], `no pool "${pool}" in k3s-platform:pools${pools.length ? ` (pools: ${pools.join(", ")})` : ""}`);
    });
  });
}

/** Hooks with `pools` turned into the names of their members (in config order), added to `nodes`. */
export function resolveHookPools(config: StackConfig): ResolvedHook[] | undefined {
  if (!config.hooks) return undefined;
  return config.hooks.map(({ pools, ...hook }) => {
    if (!pools) return hook;
    const members = config.nodes.filter((n) => n.pool !== undefined && pools.includes(n.pool)).map((n) => n.name);
    return { ...hook, nodes: [...new Set([...(hook.nodes ?? []), ...members])] };
  });
}

/** Whether a hook runs on a node: it names the node or its role, or selects nothing (every node). */
export function hookApplies(hook: ResolvedHook, node: Pick<NodeConfig, "name" | "role">): boolean {
  if (!hook.nodes && !hook.roles) return true;
  return (hook.nodes ?? []).includes(node.name) || (hook.roles ?? []).includes(node.role);
}

/** A node's hooks at one point, in config order. */
export function hooksAt(config: Pick<ResolvedConfig, "hooks">, node: Pick<NodeConfig, "name" | "role">, point: HookPoint): ResolvedHook[] {
  return (config.hooks ?? []).filter((h) => h.at === point && hookApplies(h, node));
}
