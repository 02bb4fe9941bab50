import { childName, CLUSTER_CHILDREN, NODE_CHILDREN, nodeChildOf, nodeResourceName, parseUrn, TYPES } from "../components/names";
import { parseRelease, recordedChannel } from "../components/k3s/release";
import { hookSummary, HookView } from "../components/hooks/summary";
import { rolloutLegend, rolloutMermaid, StepState } from "../components/operations/mermaid";
import type { Step } from "../components/operations/step";
import { ClusterConfigView, upgradeSummary } from "../components/upgrade/summary";
import { lifecycleLines, NodeRoles, runOrderLines } from "./preview-lifecycle";
import type { PreviewStep, PropertyDiff } from "./preview-types";

/**
 * Turns `pulumi preview --json` output (a PreviewDigest) and, optionally, the engine event log
 * (`--event-log`, where policy violations are: the JSON digest drops them) into the Markdown a
 * reviewer reads in a pull request. Pure: text in, text out. Values are shown only when short and
 * not secret; secrets always print as [secret].
 */

// The step shapes live beside nothing else, so preview-lifecycle.ts reads them without importing this file.
export type { PreviewState, PreviewStep, PropertyDiff } from "./preview-types";

export interface PreviewDigest {
  steps?: PreviewStep[];
  diagnostics?: Array<{ urn?: string; message?: string; severity?: string }>;
  changeSummary?: Record<string, number>;
}

/** The engine's apitype.PolicyEvent, one per violation, in the event log. */
export interface PolicyEvent {
  resourceUrn?: string;
  message: string;
  policyName: string;
  policyPackName: string;
  enforcementLevel: string;
}

export const SECRET_MARK = "[secret]";
/** Pulumi's wire signatures (sdk/go/common/resource/sig): the key, and its secret/asset values. */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const NODE_TYPE = TYPES.node;
const CLUSTER_TYPE = TYPES.cluster;
/** K3sNode child names this summary explains. */
export const NODE_STEPS = { bundle: NODE_CHILDREN.bundle, secrets: NODE_CHILDREN.secrets } as const;
const REPLACING = new Set(["replace", "create-replacement", "delete-replaced"]);
const OP_ORDER = ["create", "update", "replace", "delete", "read", "import", "same"];

export { parseUrn };

/** Reads the engine event log (one JSON event per line) and keeps the policy violations. */
/**
 * A policy event's message as the engine writes it: `"<policy description>\n<violation>\n"`
 * (measured on pulumi 3.260 with @pulumi/policy 1.21). A message of one line is the violation.
 */
export function splitPolicyMessage(message: string): { description?: string; violation: string } {
  const lines = message.split("\n").map((l) => l.trim()).filter((l) => l);
  if (lines.length < 2) return { violation: lines[0] ?? "" };
  return { description: lines[0], violation: lines.slice(1).join(" ") };
}

export function policyEventsFromLog(jsonLines: string): PolicyEvent[] {
  return jsonLines
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { policyEvent?: PolicyEvent })
    .flatMap((e) => (e.policyEvent ? [e.policyEvent] : []));
}

/** Splits a detailedDiff key (`spec.hard["requests.cpu"]`, `triggers[0]`) into path segments. */
export function parsePropertyPath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g;
  for (const m of path.matchAll(re)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(`"${m[3]}"`) as string);
  }
  return out;
}

// The engine's JSON already prints secrets as "[secret]" (display.MassageSecrets); the wire form
// is handled too, for digests produced by other tools.
function isSecret(value: unknown): boolean {
  return value === SECRET_MARK || (!!value && typeof value === "object" && (value as Record<string, unknown>)[SIG_KEY] === SECRET_SIG);
}

function lookup(root: unknown, path: Array<string | number>): { found: boolean; secret: boolean; value?: unknown } {
  let cur: unknown = root;
  for (const seg of path) {
    if (isSecret(cur)) return { found: true, secret: true };
    if (cur === null || typeof cur !== "object") return { found: false, secret: false };
    cur = (cur as Record<string | number, unknown>)[seg];
    if (cur === undefined) return { found: false, secret: false };
  }
  return { found: true, secret: isSecret(cur), value: cur };
}

/** A value fit for a table cell: short scalars verbatim, secrets masked, the rest summarised. */
export function showValue(v: { found: boolean; secret: boolean; value?: unknown }): string {
  if (!v.found) return "∅";
  if (v.secret) return SECRET_MARK;
  const value = v.value;
  if (typeof value === "string") return value.length <= 48 && !value.includes("\n") ? `\`${value}\`` : `(${value.length} chars)`;
  if (typeof value === "number" || typeof value === "boolean") return `\`${value}\``;
  if (Array.isArray(value)) return `(${value.length} items)`;
  if (value && typeof value === "object") {
    if (SIG_KEY in value) return "(file content)"; // an asset or archive
    return `(${Object.keys(value).length} keys)`;
  }
  return String(value);
}

/** What changed in one property, with old → new where that is safe and useful. */
function describeChange(step: PreviewStep, key: string, diff: PropertyDiff): string {
  const path = parsePropertyPath(key);
  const before = showValue(lookup(step.oldState?.inputs, path));
  const after = showValue(lookup(step.newState?.inputs, path));
  const replace = diff.kind.endsWith("-replace") ? " **(forces replacement)**" : "";
  if (diff.kind.startsWith("add")) return `\`${key}\` added: ${after}${replace}`;
  if (diff.kind.startsWith("delete")) return `\`${key}\` removed (was ${before})${replace}`;
  return `\`${key}\`: ${before} → ${after}${replace}`;
}

/** Why a node step runs, in the reviewer's terms, from the keys that differ. */
function why(stepName: string, keys: string[]): string {
  const has = (prefix: string) => keys.some((k) => k === prefix || k.startsWith(`${prefix}.`) || k.startsWith(`${prefix}[`));
  const reasons: string[] = [];
  if (stepName === NODE_CHILDREN.apply) {
    if (keys.includes("triggers[0]")) reasons.push("a file K3s reads changed");
    if (keys.includes("triggers[1]")) reasons.push(`a secret it reads changed (${SECRET_MARK})`);
  } else if (stepName === NODE_CHILDREN.osPrep && has("triggers")) reasons.push("os-prep.sh changed");
  else if (stepName === NODE_STEPS.bundle && (has("source") || has("triggers"))) reasons.push("a staged file changed");
  else if (stepName === NODE_STEPS.secrets && has("stdin")) reasons.push(`secret content changed (${SECRET_MARK})`);
  // The command provider marks the whole `connection` secret, so the engine's diff shows only
  // that it changed, never which host or setting: say so instead of guessing.
  if (has("connection")) reasons.push(`SSH connection changed (${SECRET_MARK}: the provider keeps all of it secret, so the diff cannot show which host or setting)`);
  if (has("create") || has("update")) reasons.push("the command itself changed");
  return reasons.join("; ");
}

function opOf(step: PreviewStep): string {
  return REPLACING.has(step.op) ? "replace" : step.op;
}

/**
 * Leaf property paths whose values differ between two inputs, in the engine's path syntax. The
 * real engine gives component resources (K3sCluster, TenantNamespaces, …) neither a detailedDiff
 * nor diffReasons (measured with pulumi 3.260: `"detailedDiff": null`), only old and new inputs.
 */
export function inputDiffPaths(before: unknown, after: unknown, prefix = ""): string[] {
  if (isSecret(before) || isSecret(after)) return isSecret(before) && isSecret(after) ? [] : [prefix];
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object";
  if (isObj(before) && isObj(after) && Array.isArray(before) === Array.isArray(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => {
      const seg = Array.isArray(before) ? `[${k}]` : /^[A-Za-z_$][\w$/-]*$/.test(k) ? `${prefix ? "." : ""}${k}` : `[${JSON.stringify(k)}]`;
      return inputDiffPaths(before[k], after[k], `${prefix}${seg}`);
    });
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [prefix];
}

function changedKeys(step: PreviewStep): string[] {
  if (Object.keys(step.detailedDiff ?? {}).length) return Object.keys(step.detailedDiff ?? {});
  if (step.diffReasons?.length) return step.diffReasons;
  return step.op === "update" ? inputDiffPaths(step.oldState?.inputs ?? {}, step.newState?.inputs ?? {}) : [];
}

const ICON: Record<string, string> = { create: "🟢 create", update: "🟡 update", replace: "🔴 replace", delete: "🔴 delete" };
const LEVEL_ICON: Record<string, string> = { mandatory: "🛑 mandatory", advisory: "⚠️ advisory", warning: "⚠️ advisory", remediate: "🔧 remediate" };

export interface MarkdownOptions {
  stack: string;
  policyEvents?: PolicyEvent[];
  /**
   * The stack's nodes by role, from its config: `pulumi preview --json` leaves unchanged
   * resources out, so a rotation-only preview has no K3sNode step to count them from.
   */
  roles?: NodeRoles;
  /** Rows listed per table before the rest is folded into a count. */
  maxRows?: number;
  /** The stack's steps in run order (clusterSteps of its config): drawn as the rollout diagram. */
  rollout?: readonly Step[];
  /** `k3s.channel` of a stack without `k3s.version` (from its config): the release line says so. */
  channel?: string;
}

/** The release an apply step's stdout reports (apply.sh: "K3s <release> is running" / "K3s is up to date (<release>)"). */
export function releaseFromApplyStdout(stdout: string): string | undefined {
  const found = [...stdout.matchAll(/K3s (v1\.\d+\.\d+\+k3s\d+) is running|K3s is up to date \((v1\.\d+\.\d+\+k3s\d+)/g)];
  const last = found[found.length - 1];
  return last?.[1] ?? last?.[2];
}

/**
 * The releases the hosts ran at the last `up`, from each `<node>-apply` step's recorded stdout
 * (the preview needs no network and no host: a channel is not asked at preview). A channel stack
 * (issue 28) says that the channel resolved only at the first install and stays pinned.
 */
export function releaseLines(steps: PreviewStep[], stack: string, channel?: string): string[] {
  const byRelease = new Map<string, string[]>();
  for (const s of steps) {
    const { type, name } = parseUrn(s.urn);
    const stdout = s.oldState?.outputs?.stdout;
    if (type !== TYPES.command || !name.endsWith(`-${NODE_CHILDREN.apply}`) || typeof stdout !== "string") continue;
    const release = releaseFromApplyStdout(stdout);
    if (!release) continue;
    const node = name.slice(`${stack}-`.length, -`-${NODE_CHILDREN.apply}`.length);
    byRelease.set(release, [...(byRelease.get(release) ?? []), node]);
  }
  const ran = [...byRelease].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true })).map(([release, nodes]) => `${release} (${nodes.sort().join(", ")})`).join("; ");
  if (!channel) return ran ? [`K3s on the hosts at the last up: ${ran}`] : [];
  // The cluster's release, recorded once by the k3s-release step (components/k3s/release.ts).
  const recorded = steps.find((s) => s.urn.endsWith(`::${stack}-${CLUSTER_CHILDREN.k3sRelease}`));
  const old = recorded?.oldState;
  const release = parseRelease(typeof old?.outputs?.stdout === "string" ? old.outputs.stdout : undefined);
  if (!release) return [`channel ${channel}: resolved once, on the first server before its first install (\`${stack}-${CLUSTER_CHILDREN.k3sRelease}\`; preview asks no channel); every node installs that release, nodes added later included${ran ? `; the hosts ran ${ran}` : ""}`];
  // A changed `channel` value is ignored by the step (operations/release.ts): say so, not silently.
  const was = recordedChannel(old?.inputs?.stdin ?? old?.outputs?.stdin, old?.outputs?.stdout);
  const changed = was !== undefined && was !== channel ? ` (k3s.channel changed from ${was}: that moves nothing, the release stays)` : "";
  return [`channel ${channel}${changed}: the cluster's release is ${release} (recorded at its first up); every node installs it, nodes added later included; this up keeps it${ran ? ` (the hosts ran ${ran})` : ""}; to move the cluster, set k3s.version (the upgrade flow)`];
}

/**
 * Whether this preview runs a step: any of its resources is created, replaced or updated (a node
 * step: the K3sNode or one of its children; a day-2 step: the command `<stack>-…-<name>`). A
 * `once` or `once-per-stack` step's update is its no-op (operations/once.ts NO_OP_UPDATE: only a
 * trigger runs it), e.g. an agent batch's drain whose script reads a preflight's new answer.
 */
function rolloutState(steps: PreviewStep[], stack: string): (step: Step) => StepState {
  const changed = steps.filter((s) => s.op !== "same" && s.op !== "read");
  const names = (ops: PreviewStep[]) => ops.map((s) => parseUrn(s.urn).name);
  const all = names(changed);
  const run = names(changed.filter((s) => s.op !== "update"));
  return (step) => {
    const runs = step.runs === "node"
      ? all.some((n) => n === nodeResourceName(stack, step.name) || nodeChildOf(n, nodeResourceName(stack, step.name)) !== undefined)
      : (step.runs === "once" || step.runs === "once-per-stack" ? run : all).some((n) => n.startsWith(`${stack}-`) && (n === childName(stack, step.name) || n.endsWith(`-${step.name}`)));
    return runs ? "run" : "idle";
  };
}

export function previewMarkdown(digest: PreviewDigest, options: MarkdownOptions): string {
  // The engine reports a replacement as replace + create-replacement + delete-replaced: show it
  // once, as the replace step when there is one.
  const all = digest.steps ?? [];
  const replaced = new Set(all.filter((s) => s.op === "replace").map((s) => s.urn));
  const shown = new Set<string>();
  const steps = all.filter((s) => {
    if (!REPLACING.has(s.op)) return true;
    if ((replaced.has(s.urn) && s.op !== "replace") || shown.has(s.urn)) return false;
    shown.add(s.urn);
    return true;
  });
  const changing = steps.filter((s) => s.op !== "same" && s.op !== "read");
  const maxRows = options.maxRows ?? 60;
  const lines: string[] = [`<!-- k3s-platform-preview:${options.stack} -->`, `### Pulumi preview · \`${options.stack}\``, ""];

  // ---- counts
  const summary = digest.changeSummary ?? {};
  const counts = Object.entries(summary)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => (OP_ORDER.indexOf(a) + 100 * Number(!OP_ORDER.includes(a))) - (OP_ORDER.indexOf(b) + 100 * Number(!OP_ORDER.includes(b))))
    .map(([op, n]) => `${n} ${op === "same" ? "unchanged" : `to ${op}`}`);
  lines.push(counts.length ? `**${counts.join(" · ")}**` : "**No changes.**", "");

  // ---- day-2 operations, one line per phase: upgrades (components/upgrade/summary.ts), then
  // decommission and rotations (tools/preview-lifecycle.ts)
  const operations = [
    ...steps
      .filter((s) => parseUrn(s.urn).type === CLUSTER_TYPE && s.op === "update")
      .flatMap((s) => [
        ...upgradeSummary(s.oldState?.inputs?.config as ClusterConfigView | undefined, s.newState?.inputs?.config as ClusterConfigView | undefined),
        ...hookSummary(s.oldState?.inputs?.config as { hooks?: HookView[] } | undefined, s.newState?.inputs?.config as { hooks?: HookView[] } | undefined),
      ]),
    ...lifecycleLines(all, options.stack, options.roles),
    ...runOrderLines(all, options.stack),
    ...releaseLines(all, options.stack, options.channel),
  ];
  if (operations.length) lines.push("#### Operations", "", ...operations.map((l) => `- ${l}`), "");

  // ---- the rollout as a picture (GitHub renders ```mermaid), when this preview changes something
  if (options.rollout?.length && changing.length) {
    lines.push("#### Rollout", "", rolloutMermaid(options.rollout, rolloutState(all, options.stack)), "", rolloutLegend(true), "");
  }

  // ---- replacements first: they are the dangerous part
  const replacements = steps.filter((s) => REPLACING.has(s.op));
  if (replacements.length) {
    // A replaced command runs its `create` again (a `triggers` change replaces; it never updates),
    // and the old one's `delete`, if it has one.
    lines.push(`> [!WARNING]`, `> **${replacements.length} replacement(s)**: a new resource is created and the old one deleted (a command's create runs again).`);
    for (const s of replacements) {
      const { type, name } = parseUrn(s.urn);
      lines.push(`> - \`${name}\` (${type}) because ${(s.replaceReasons ?? []).map((r) => `\`${r}\``).join(", ") || "its provider requires it"}`);
    }
    lines.push("");
  }

  // ---- per node
  const nodeNames = steps.filter((s) => parseUrn(s.urn).type === NODE_TYPE).map((s) => parseUrn(s.urn).name).sort((a, b) => b.length - a.length);
  // Exact parse against each K3sNode's name (names.ts): `<node>-<one of NODE_CHILDREN>`.
  const nodeOf = (name: string) => nodeNames.find((n) => nodeChildOf(name, n) !== undefined);
  const nodeRows: Array<[string, string]> = [];
  const otherRows: string[] = [];
  for (const s of changing) {
    const { type, name } = parseUrn(s.urn);
    if (type === NODE_TYPE) continue;
    const node = nodeOf(name);
    const keys = changedKeys(s);
    const detail = (k: string) => describeChange(s, k, s.detailedDiff?.[k] ?? { kind: "update" });
    if (node) {
      const stepName = NODE_CHILDREN[nodeChildOf(name, node)!];
      // Hashes, file contents and secrets are what `why` explains; other keys get their values.
      const explained = /^(triggers|source|stdin)\b/;
      const details = stepName === NODE_STEPS.secrets ? [] : keys.filter((k) => !explained.test(k)).map(detail);
      const reason = [why(stepName, keys), ...details].filter(Boolean).join("<br>");
      const nodeLabel = node.replace(`${options.stack}-`, "");
      nodeRows.push([nodeLabel, `| \`${nodeLabel}\` | \`${stepName}\` | ${ICON[opOf(s)] ?? opOf(s)} | ${reason || "—"} |`]);
    } else {
      const details = keys.map(detail);
      otherRows.push(`| \`${name}\` | ${type.split(":").pop()} | ${ICON[opOf(s)] ?? opOf(s)} | ${details.join("<br>") || "—"} |`);
    }
  }
  const table = (title: string, head: string, rows: string[]) => {
    if (!rows.length) return;
    lines.push(`#### ${title}`, "", head, head.replace(/[^|]+/g, "---"), ...rows.slice(0, maxRows));
    if (rows.length > maxRows) lines.push(`| … | ${rows.length - maxRows} more | | |`);
    lines.push("");
  };
  const byNode = nodeRows.map((r, i) => ({ r, i })).sort((a, b) => a.r[0].localeCompare(b.r[0]) || a.i - b.i).map(({ r }) => r[1]);
  table("Nodes", "| node | step | op | why |", byNode);
  table("Cluster and Kubernetes objects", "| resource | kind | op | what changes |", otherRows);

  // ---- policy
  const events = options.policyEvents ?? [];
  if (events.length) {
    const mandatory = events.filter((e) => e.enforcementLevel === "mandatory").length;
    lines.push(`#### Policy violations (${events.length}${mandatory ? `, ${mandatory} mandatory: this change cannot be applied` : ""})`, "");
    lines.push("| level | policy | resource | message |", "|---|---|---|---|");
    const sorted = [...events].sort((a, b) => Number(b.enforcementLevel === "mandatory") - Number(a.enforcementLevel === "mandatory"));
    for (const e of sorted) {
      const resource = e.resourceUrn ? `\`${parseUrn(e.resourceUrn).name}\`` : "(stack)";
      lines.push(`| ${LEVEL_ICON[e.enforcementLevel] ?? e.enforcementLevel} | \`${e.policyName}\` | ${resource} | ${splitPolicyMessage(e.message).violation.replace(/\|/g, "\\|")} |`);
    }
    lines.push("");
  } else if (options.policyEvents) {
    lines.push("#### Policy", "", "No policy violations.", "");
  }

  const errors = (digest.diagnostics ?? []).filter((d) => d.severity === "error");
  if (errors.length) {
    lines.push("#### Errors", "", ...errors.map((d) => `- ${d.urn ? `\`${parseUrn(d.urn).name}\`: ` : ""}${(d.message ?? "").trim().split("\n")[0]}`), "");
  }
  return lines.join("\n").trimEnd() + "\n";
}
