import { compareReleases, KNOWN_RELEASES, releaseLine, releaseNumbers } from "../config/releases";

/**
 * Upgrade paths as data: the one table of rules every check reads. versions.ts upgradeProblem
 * applies it in TypeScript (validation, preview:md, the policy pack); render.ts renders the same
 * table as the host guard's shell (check_transition), tested to agree.
 */

export type UpgradeRule =
  /** Never to an older release (minor, patch, then the `+k3sN` revision). */
  | { kind: "no-downgrade"; source: string }
  /** Never past the next minor. */
  | { kind: "one-minor"; source: string }
  /**
   * Leaving line `fromMinor` for a line with another etcd minor, an embedded-etcd member must
   * first run a release whose etcd is at least `etcdAtLeast`; `minimum` is the first such release
   * on the line (derived from the release table).
   */
  | { kind: "required-patch"; datastore: "etcd"; fromMinor: number; etcdAtLeast: string; minimum: string; why: string; source: string };

/** Numeric compare of dotted versions (`3.5.26` vs `3.5.25`). */
function compareDotted(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The first known release on a line that embeds etcd `etcdAtLeast` or later. Releases the table
 * lacks sit between known ones, and K3s never moves etcd backwards on a line, so the first known
 * one is the first one.
 */
export function firstReleaseWithEtcd(minor: number, etcdAtLeast: string): string | undefined {
  return KNOWN_RELEASES.filter((r) => releaseNumbers(r.version)!.minor === minor && r.etcd !== undefined && compareDotted(r.etcd, etcdAtLeast) >= 0)
    .sort((a, b) => compareReleases(releaseNumbers(a.version)!, releaseNumbers(b.version)!))[0]?.version;
}

/**
 * An etcd minor step and the etcd patch its members must run first.
 *
 * etcd 3.5 → 3.6 (K3s v1.33 → v1.34): "the ONLY safe upgrade path is from 3.5.26" (etcd.io/blog/2025/zombie_members_upgrade,
 * quoted in k3s-io/k3s PR #13493 "[release-1.33] Bump etcd to v3.5.26 for zombie member fix"); otherwise
 * removed members come back as "zombie members" and the cluster can lose quorum (k3s-io/k3s#13485,
 * #13271; docs.k3s.io/release-notes/v1.32.X, v1.32.11+k3s3 "K3s v1.34 Upgrade Warning": "All users
 * should plan on upgrading to this patch release, prior to upgrading to v1.34 and v1.35").
 * First releases with etcd 3.5.26: v1.33.7+k3s3 and v1.32.11+k3s3 (releases.ts).
 *
 * etcd 3.6 → 3.7 (K3s v1.36 → v1.37, releases.ts RELEASE_LINES): "Before upgrading to 3.7, make
 * sure that all of your 3.6 members are updated to 3.6.11 or later. Earlier 3.6 patch releases
 * may not be compatible with a rolling upgrade to 3.7" (etcd.io/docs/v3.7/upgrades/upgrade_3_7,
 * "Upgrade checklists"). First v1.36 release with etcd 3.6.11+: v1.36.2+k3s1 (etcd v3.6.12-k3s1,
 * docs.k3s.io/release-notes/v1.36.X; v1.36.1+k3s1 has v3.6.7). No K3s release note names this
 * step; the etcd upgrade guide is the source.
 */
const ETCD_STEPS: ReadonlyArray<{ fromMinor: number; etcdAtLeast: string; why: string; source: string }> = [
  {
    fromMinor: 33,
    etcdAtLeast: "3.5.26",
    why: 'removed etcd members come back as "zombie members" otherwise',
    source: "etcd.io/blog/2025/zombie_members_upgrade; k3s-io/k3s#13493 (v1.33), #13494 (v1.32); k3s-io/k3s#13485, #13271",
  },
  {
    fromMinor: 36,
    etcdAtLeast: "3.6.11",
    why: "earlier 3.6 patch releases may not be compatible with a rolling upgrade to 3.7",
    source: "etcd.io/docs/v3.7/upgrades/upgrade_3_7 (Upgrade checklists: 'Update 3.6'); docs.k3s.io/release-notes/v1.36.X (v1.36.2+k3s1: etcd v3.6.12)",
  },
];

function etcdStep(step: (typeof ETCD_STEPS)[number]): UpgradeRule {
  const { fromMinor, etcdAtLeast } = step;
  const minimum = firstReleaseWithEtcd(fromMinor, etcdAtLeast);
  if (!minimum) throw new Error(`releases.ts: no known v1.${fromMinor} release embeds etcd ${etcdAtLeast}`);
  const from = releaseLine(fromMinor)?.etcdMinor;
  const to = releaseLine(fromMinor + 1)?.etcdMinor;
  if (!from || !to || from === to) throw new Error(`releases.ts: v1.${fromMinor} → v1.${fromMinor + 1} is no etcd minor step (${from} → ${to})`);
  return {
    kind: "required-patch",
    datastore: "etcd",
    fromMinor,
    etcdAtLeast,
    minimum,
    why: `etcd ${etcdAtLeast} is needed before etcd ${to} (${step.why})`,
    source: step.source,
  };
}

export const UPGRADE_RULES: readonly UpgradeRule[] = [
  { kind: "no-downgrade", source: "docs.k3s.io/upgrades: K3s does not support downgrades; restore an etcd snapshot instead" },
  { kind: "one-minor", source: "kubernetes.io/releases/version-skew-policy: control planes move one minor at a time" },
  // The lines before an etcd minor step: with one minor at a time, v1.33 → v1.34 is the one step
  // that crosses etcd 3.5 → 3.6, v1.36 → v1.37 the one that crosses 3.6 → 3.7.
  ...ETCD_STEPS.map(etcdStep),
];

export const REQUIRED_PATCHES = UPGRADE_RULES.filter((r): r is Extract<UpgradeRule, { kind: "required-patch" }> => r.kind === "required-patch");
