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
 * etcd 3.5 → 3.6 (K3s v1.33 → v1.34): "the ONLY safe upgrade path is from 3.5.26" (etcd.io/blog/2025/zombie_members_upgrade,
 * quoted in k3s-io/k3s PR #13493 "[release-1.33] Bump etcd to v3.5.26 for zombie member fix"); otherwise
 * removed members come back as "zombie members" and the cluster can lose quorum (k3s-io/k3s#13485,
 * #13271; docs.k3s.io/release-notes/v1.32.X, v1.32.11+k3s3 "K3s v1.34 Upgrade Warning": "All users
 * should plan on upgrading to this patch release, prior to upgrading to v1.34 and v1.35").
 * First releases with etcd 3.5.26: v1.33.7+k3s3 and v1.32.11+k3s3 (releases.ts).
 */
const ETCD_36_FROM = "3.5.26";
const ETCD_36_SOURCE = "etcd.io/blog/2025/zombie_members_upgrade; k3s-io/k3s#13493 (v1.33), #13494 (v1.32); k3s-io/k3s#13485, #13271";

function etcdStep(fromMinor: number): UpgradeRule {
  const minimum = firstReleaseWithEtcd(fromMinor, ETCD_36_FROM);
  if (!minimum) throw new Error(`releases.ts: no known v1.${fromMinor} release embeds etcd ${ETCD_36_FROM}`);
  const to = releaseLine(fromMinor + 1)?.etcdMinor ?? "3.6";
  return {
    kind: "required-patch",
    datastore: "etcd",
    fromMinor,
    etcdAtLeast: ETCD_36_FROM,
    minimum,
    why: `etcd ${ETCD_36_FROM} is needed before etcd ${to} (removed etcd members come back as "zombie members" otherwise)`,
    source: ETCD_36_SOURCE,
  };
}

export const UPGRADE_RULES: readonly UpgradeRule[] = [
  { kind: "no-downgrade", source: "docs.k3s.io/upgrades: K3s does not support downgrades; restore an etcd snapshot instead" },
  { kind: "one-minor", source: "kubernetes.io/releases/version-skew-policy: control planes move one minor at a time" },
  // Only the line before the etcd 3.6 line: with one minor at a time, v1.33 → v1.34 is the one step
  // that crosses etcd 3.5 → 3.6.
  etcdStep(33),
];

export const REQUIRED_PATCHES = UPGRADE_RULES.filter((r): r is Extract<UpgradeRule, { kind: "required-patch" }> => r.kind === "required-patch");
