import { HOOK_POINTS } from "../config/schema/hooks";

/**
 * Hook changes for preview:md (docs/hooks.md), pure: from the K3sCluster component's config
 * before and after (its registered input, hooks resolved). One line per hook added, changed or
 * removed, saying what runs as root, where, and which step re-runs for it.
 */

/** The parts of a registered hook this reads. */
export interface HookView {
  name?: string;
  at?: string;
  command?: string[];
  nodes?: string[];
  roles?: string[];
  timeoutSeconds?: number;
}

function where(h: HookView): string {
  if (!h.nodes && !h.roles) return "every node";
  const parts = [...(h.nodes ?? []), ...(h.roles ?? []).map((r) => `every ${r}`)];
  return parts.length ? parts.join(", ") : "no node";
}

function effect(h: HookView): string {
  const point = HOOK_POINTS.find((p) => p.name === h.at);
  if (!point) return "";
  return point.rerunsOnChange ? `: ${point.step} re-runs on those nodes` : ": runs at the next upgrade (the bundle is re-copied, no step re-runs)";
}

const describe = (h: HookView) => `\`${JSON.stringify(h.command ?? [])}\` as root at ${h.at} on ${where(h)}`;

export function hookSummary(before: { hooks?: HookView[] } | undefined, after: { hooks?: HookView[] } | undefined): string[] {
  const old = new Map((before?.hooks ?? []).map((h) => [h.name, h]));
  const now = new Map((after?.hooks ?? []).map((h) => [h.name, h]));
  const lines: string[] = [];
  for (const [name, h] of now) {
    const was = old.get(name);
    if (!was) lines.push(`hook ${name} added: runs ${describe(h)}${effect(h)}`);
    else if (JSON.stringify(was) !== JSON.stringify(h)) lines.push(`hook ${name} changed: now runs ${describe(h)} (was ${describe(was)})${effect(h)}`);
  }
  for (const [name, h] of old) if (!now.has(name)) lines.push(`hook ${name} removed: ${describe(h)} no longer runs`);
  return lines;
}
