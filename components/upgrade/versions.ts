/**
 * K3s release arithmetic for upgrades, pure. The same rules run on the host (render.ts renders
 * them as shell, so they hold whoever runs `up`), in the policy pack and in preview:md.
 *
 * Rules: the table in paths.ts (UPGRADE_RULES): no downgrade, one minor at a time, and the
 * required patch releases (an embedded-etcd member leaves v1.33 only from a release with etcd
 * 3.5.26+, v1.33.7+k3s3).
 */

import { REQUIRED_PATCHES, UPGRADE_RULES, type UpgradeRule } from "./paths";

type RequiredPatch = Extract<UpgradeRule, { kind: "required-patch" }>;

export interface K3sVersion {
  minor: number;
  patch: number;
  /** The `N` of `+k3sN`. */
  revision: number;
  text: string;
}

const VERSION = /^v1\.(\d+)\.(\d+)\+k3s(\d+)$/;

export function parseK3sVersion(text: string): K3sVersion | undefined {
  const m = VERSION.exec(text);
  return m ? { minor: Number(m[1]), patch: Number(m[2]), revision: Number(m[3]), text } : undefined;
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: K3sVersion, b: K3sVersion): number {
  return a.minor - b.minor || a.patch - b.patch || a.revision - b.revision;
}

/**
 * Why going from `from` to `to` is refused, or undefined when it is allowed, by the rules of
 * paths.ts UPGRADE_RULES (`etcd`: the node is an embedded-etcd member, so the required etcd patch
 * releases apply). Messages name both versions; `node` is added by callers.
 */
export function upgradeProblem(from: string, to: string, etcd = false): string | undefined {
  const f = parseK3sVersion(from);
  const t = parseK3sVersion(to);
  if (!f || !t) return `cannot compare ${from} and ${to} (expected v1.MINOR.PATCH+k3sN)`;
  for (const rule of UPGRADE_RULES) {
    switch (rule.kind) {
      case "no-downgrade":
        if (compareVersions(t, f) < 0) return `${from} → ${to} is a downgrade (K3s does not support downgrades; restore an etcd snapshot instead)`;
        break;
      case "one-minor":
        if (t.minor > f.minor + 1) return `${from} → ${to} skips ${t.minor - f.minor - 1} minor version(s); upgrade to v1.${f.minor + 1} first`;
        break;
      case "required-patch": {
        const first = requiredFirst(rule, f, t, etcd);
        if (first) return `${from} → ${to}: upgrade to ${first.minimum} (or a later v1.${rule.fromMinor} release) first: ${first.why}`;
        break;
      }
    }
  }
  return undefined;
}

/** The required-patch rule `from → to` breaks, if any. */
function requiredFirst(rule: RequiredPatch, f: K3sVersion, t: K3sVersion, etcd: boolean): RequiredPatch | undefined {
  if (!etcd || f.minor !== rule.fromMinor || t.minor <= rule.fromMinor) return undefined;
  return compareVersions(f, parseK3sVersion(rule.minimum)!) < 0 ? rule : undefined;
}

/**
 * The path preview prints for an allowed or refused move: the release to go through first, if a
 * required-patch rule asks for one (`v1.33.3 → v1.33.7+k3s3 first: etcd 3.5.26 is needed before etcd 3.6 …`).
 */
export function intermediateStep(from: string, to: string, etcd: boolean): string | undefined {
  const f = parseK3sVersion(from);
  const t = parseK3sVersion(to);
  if (!f || !t) return undefined;
  for (const rule of REQUIRED_PATCHES) {
    const first = requiredFirst(rule, f, t, etcd);
    // `v1.33.7+k3s1` keeps its revision when the release to go through is another revision of the same patch (`v1.33.7+k3s3`).
    if (first) return `${shortFrom(from, first.minimum)} → ${first.minimum} first: ${first.why}`;
  }
  return undefined;
}

/** `from` without its `+k3sN` revision, unless `via` is the same patch (then only the revision tells them apart). */
function shortFrom(from: string, via: string): string {
  const short = from.replace(/\+k3s\d+$/, "");
  return short === via.replace(/\+k3s\d+$/, "") ? from : short;
}

/** `v1.31.4+k3s1 → v1.31.5+k3s1` printed as `v1.31.4 → v1.31.5` when the K3s revisions match. */
export function shortTransition(from: string, to: string): string {
  const f = parseK3sVersion(from);
  const t = parseK3sVersion(to);
  if (f && t && f.revision === t.revision) return `${from.replace(/\+k3s\d+$/, "")} → ${to.replace(/\+k3s\d+$/, "")}`;
  return `${from} → ${to}`;
}

/** The etcd snapshot / datastore copy name: `pre-upgrade-<from>-to-<to>` (`+` is not allowed in K3s snapshot object names). */
export function snapshotName(from: string, to: string): string {
  return `pre-upgrade-${from}-to-${to}`.replace(/\+/g, "-");
}

/**
 * `upgrade.maxUnavailable` as a count of agents: an integer as is, a percentage of the agents
 * rounded down (as Kubernetes rounds a Deployment's maxUnavailable), never below 1.
 */
export function maxUnavailableCount(maxUnavailable: number | string, agents: number): number {
  const n = typeof maxUnavailable === "number" ? maxUnavailable : Math.floor((agents * Number(maxUnavailable.slice(0, -1))) / 100);
  return Math.max(1, Math.min(n, Math.max(agents, 1)));
}

/** Agents in upgrade batches of at most maxUnavailable, in config order. */
export function agentBatches<T>(agents: T[], maxUnavailable: number | string): T[][] {
  const size = maxUnavailableCount(maxUnavailable, agents.length);
  const out: T[][] = [];
  for (let i = 0; i < agents.length; i += size) out.push(agents.slice(i, i + size));
  return out;
}
