import { TEARDOWN_CHILDREN } from "../decommission/render";
import type { PreviewStep } from "./markdown";

/**
 * Day-2 operations in a preview, one line per phase, in the words of README "Removing a node" /
 * "Rotating the token / certificates" (issue 13, "Visible and safe"). Pure: steps in, lines out.
 * Reads resource names and ops only (plus K3sNode roles), never values: the interesting values
 * (token, connection) are secret in the digest anyway.
 */

const NODE_TYPE = "k3s-platform:index:K3sNode";
const REPLACING = new Set(["replace", "create-replacement", "delete-replaced"]);

function nameOf(urn: string): { type: string; name: string } {
  const parts = urn.split("::");
  const chain = (parts[2] ?? "").split("$");
  return { type: chain[chain.length - 1] ?? "", name: parts.slice(3).join("::") };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function lifecycleLines(steps: PreviewStep[], stack: string): string[] {
  const lines: string[] = [];
  const strip = (name: string) => (name.startsWith(`${stack}-`) ? name.slice(stack.length + 1) : name);
  const named = steps.map((s) => ({ ...nameOf(s.urn), op: REPLACING.has(s.op) ? "replace" : s.op, step: s }));

  // Nodes the program still declares (any op but delete), by role.
  const nodes = named.filter((s) => s.type === NODE_TYPE);
  const roleOf = (s: (typeof nodes)[number]) => String((s.step.newState?.inputs ?? s.step.oldState?.inputs)?.role ?? "");
  const kept = nodes.filter((s) => s.op !== "delete");
  const servers = kept.filter((s) => roleOf(s) !== "agent").length;
  const agents = kept.filter((s) => roleOf(s) === "agent").length;
  const rollout = () => `${plural(servers, "server")} one at a time${agents ? `, then ${plural(agents, "agent")}` : ""}`;

  // ---- removal
  const teardown = (suffix: string) => named.filter((s) => s.name.endsWith(`-${suffix}`));
  const nodeOfTeardown = (name: string) => strip(name).slice(0, -`-${TEARDOWN_CHILDREN.drain}`.length);
  const arming = new Set<string>();
  for (const s of teardown(TEARDOWN_CHILDREN.drain)) {
    const node = nodeOfTeardown(s.name);
    if (s.op === "delete") lines.push(`decommission ${node}: drain, delete node, uninstall`);
    else if (s.op === "create") {
      arming.add(node);
      lines.push(`arm decommission ${node}: nothing changes on it now; deleting its entry drains, deletes the node and uninstalls K3s`);
    } else if (s.op === "update" && (s.step.diffReasons ?? Object.keys(s.step.detailedDiff ?? {})).includes("delete")) {
      lines.push(`decommission ${node}: teardown armed or disarmed (the \`delete\` it runs on removal changed)`);
    }
  }
  for (const s of nodes.filter((n) => n.op === "delete")) {
    const node = strip(s.name);
    if (!arming.has(node) && !named.some((t) => t.op === "delete" && t.name === `${s.name}-${TEARDOWN_CHILDREN.drain}`)) {
      lines.push(`⚠️ remove ${node} without decommission: K3s stays installed and running on the host (README: Removing a node)`);
    }
  }

  // ---- rotation
  if (named.some((s) => s.op === "replace" && strip(s.name) === "token-rotate")) lines.push(`rotate token: ${rollout()}`);
  const certs = named.filter((s) => s.name.endsWith("-rotate-certificates") && (s.op === "create" || s.op === "replace"));
  if (certs.length) lines.push(`rotate certificates: stop, rotate, start; ${rollout()}`);
  const keyPhases = named.filter((s) => /-encryption-(rotate-keys|prepare|rotate|reencrypt)$/.test(s.name) && (s.op === "create" || s.op === "replace"));
  if (keyPhases.length) {
    const phases = keyPhases.map((s) => s.name.replace(/^.*-encryption-/, ""));
    lines.push(`rotate encryption keys (${phases.join(", ")}): after each phase ${plural(servers, "server")} restart one at a time`);
  }
  return lines;
}
