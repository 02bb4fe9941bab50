/**
 * K3s release arithmetic for upgrades, pure. The same rules run on the host (render.ts renders
 * them as shell, so they hold whoever runs `up`), in the policy pack and in preview:md.
 *
 * Rules (Kubernetes version skew policy, kubernetes.io/releases/version-skew-policy: control planes
 * move one minor at a time; K3s upgrade docs: no downgrades, restore a snapshot instead):
 *  - never to an older release (minor, patch, then the `+k3sN` revision);
 *  - never past the next minor (v1.30.x → v1.32.y skips v1.31).
 */

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
 * Why going from `from` to `to` is refused, or undefined when it is allowed (same version or a
 * step of at most one minor forward). Messages name both versions; `node` is added by callers.
 */
export function upgradeProblem(from: string, to: string): string | undefined {
  const f = parseK3sVersion(from);
  const t = parseK3sVersion(to);
  if (!f || !t) return `cannot compare ${from} and ${to} (expected v1.MINOR.PATCH+k3sN)`;
  if (compareVersions(t, f) < 0) return `${from} → ${to} is a downgrade (K3s does not support downgrades; restore an etcd snapshot instead)`;
  if (t.minor > f.minor + 1) return `${from} → ${to} skips ${t.minor - f.minor - 1} minor version(s); upgrade to v1.${f.minor + 1} first`;
  return undefined;
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
