/**
 * The K3s releases k3s-platform knows: every minor line from v1.30 to v1.37, the patch releases
 * known on each line (at least the highest, with its date and embedded etcd), the etcd minor each
 * line embeds, and which lines K3s still supports. Pure data plus lookups; the version rules that
 * use it live in flags.ts (features), validate.ts (unknown / unsupported releases) and
 * components/upgrade/paths.ts (upgrade paths).
 *
 * Sources (named on each entry): the K3s release-notes pages https://docs.k3s.io/release-notes/v1.3X.X
 * (k3s-io/docs `docs/release-notes/v1.3X.X.md`: one table row per release with its date and the
 * embedded etcd / containerd / Traefik versions) and the GitHub release pages
 * https://github.com/k3s-io/k3s/releases/tag/<version> ("Embedded Component Versions").
 *
 * How the list is kept current (docs/upgrading.md "Supported K3s releases and upgrade paths"): when K3s publishes a release,
 * add its row to KNOWN_RELEASES (version, date, etcd, source); when a new minor line appears, add
 * the line to RELEASE_LINES; SUPPORTED_LINES follows (the newest three lines). A pinned release
 * newer than the newest known one is a validation warning naming NEWEST_KNOWN, so a stale table
 * shows on the next preview rather than silently.
 */

/** One K3s patch release, as its release notes give it. */
export interface KnownRelease {
  /** `v1.33.7+k3s3` */
  version: string;
  /** ISO date (`2026-02-03`); the month (`2026-06`) when the source gives only the backport cycle; `before …` when only a later release names it. */
  date: string;
  /** Embedded etcd, without the `-k3sN` suffix (`3.5.26`); undefined when the source does not say. */
  etcd?: string;
  source: string;
}

/** One K3s minor line. */
export interface ReleaseLine {
  minor: number;
  /** The etcd minor K3s embeds on this line (`3.5`, `3.6`, `3.7`). */
  etcdMinor: string;
  source: string;
}

const NOTES = (minor: number) => `docs.k3s.io/release-notes/v1.${minor}.X`;
const GH = (version: string) => `github.com/k3s-io/k3s/releases/tag/${version} (Embedded Component Versions)`;

/**
 * etcd minor per line: 3.5 through v1.33, 3.6 from v1.34 (v1.34.1+k3s1 embeds v3.6.4-k3s3, the
 * first release of the line: docs.k3s.io/release-notes/v1.34.X; the v1.32.11+k3s3 notes: "K3s v1.34
 * and higher include etcd 3.6"), 3.7 on v1.37 (v1.37.0+k3s1 embeds v3.7.1-k3s1: docs.k3s.io/release-notes/v1.37.X).
 */
export const RELEASE_LINES: readonly ReleaseLine[] = [
  { minor: 30, etcdMinor: "3.5", source: NOTES(30) },
  { minor: 31, etcdMinor: "3.5", source: NOTES(31) },
  { minor: 32, etcdMinor: "3.5", source: NOTES(32) },
  { minor: 33, etcdMinor: "3.5", source: NOTES(33) },
  { minor: 34, etcdMinor: "3.6", source: `${NOTES(34)} (v1.34.1+k3s1: etcd v3.6.4-k3s3); ${NOTES(32)} v1.32.11+k3s3 "K3s v1.34 Upgrade Warning"` },
  { minor: 35, etcdMinor: "3.6", source: GH("v1.35.5+k3s1") },
  { minor: 36, etcdMinor: "3.6", source: NOTES(36) },
  { minor: 37, etcdMinor: "3.7", source: `${NOTES(37)} (v1.37.0+k3s1: etcd v3.7.1-k3s1)` },
];

/** Known patch releases, newest first on each line. Not every patch of old lines is listed: the highest is. */
export const KNOWN_RELEASES: readonly KnownRelease[] = [
  { version: "v1.30.14+k3s2", date: "2025-07-26", etcd: "3.5.21", source: NOTES(30) },
  { version: "v1.31.14+k3s1", date: "2025-11-20", etcd: "3.5.21", source: NOTES(31) },

  { version: "v1.32.11+k3s3", date: "2026-02-03", etcd: "3.5.26", source: `${NOTES(32)} (etcd bumped by k3s-io/k3s#13494)` },
  { version: "v1.32.11+k3s1", date: "2025-12-19", etcd: "3.5.25", source: NOTES(32) },
  { version: "v1.32.10+k3s1", date: "2025-11-20", etcd: "3.5.21", source: NOTES(32) },

  // v1.33.7+k3s3 carries etcd 3.5.26: k3s-io/k3s#13493 ([release-1.33] Bump etcd to v3.5.26,
  // merged for the January 2026 releases; the v1.32.11+k3s3 notes: "The January releases of K3s
  // v1.32 and v1.33 will include etcd v3.5.26"); k3s-io/k3s discussion #14908 ("v1.33.7+k3s3 (etcd
  // 3.5.26)"). The day is not in the stored sources: the month of its v1.32 sibling is given.
  { version: "v1.33.7+k3s3", date: "2026-02", etcd: "3.5.26", source: "k3s-io/k3s#13493; k3s-io/k3s discussion #14908; docs.k3s.io/release-notes/v1.32.X (v1.32.11+k3s3 upgrade warning)" },
  { version: "v1.33.7+k3s1", date: "2025-12-19", etcd: "3.5.25", source: NOTES(33) },
  { version: "v1.33.6+k3s1", date: "2025-11-20", etcd: "3.5.21", source: NOTES(33) },
  { version: "v1.33.5+k3s1", date: "2025-09-22", etcd: "3.5.21", source: NOTES(33) },
  { version: "v1.33.4+k3s1", date: "2025-08-25", etcd: "3.5.21", source: NOTES(33) },
  { version: "v1.33.3+k3s1", date: "2025-07-26", etcd: "3.5.21", source: NOTES(33) },
  { version: "v1.33.2+k3s1", date: "2025-06-30", etcd: "3.5.21", source: NOTES(33) },
  { version: "v1.33.1+k3s1", date: "2025-05-23", etcd: "3.5.21", source: NOTES(33) },
  { version: "v1.33.0+k3s1", date: "2025-05-08", etcd: "3.5.21", source: NOTES(33) },

  { version: "v1.34.9+k3s1", date: "2026-06", etcd: "3.6.12", source: `${GH("v1.34.9+k3s1")}: "Backports for 2026-06"` },
  { version: "v1.34.2+k3s1", date: "2025-11-20", etcd: "3.6.5", source: NOTES(34) },
  { version: "v1.34.1+k3s1", date: "2025-09-22", etcd: "3.6.4", source: NOTES(34) },

  { version: "v1.35.6+k3s1", date: "2026-06", etcd: "3.6.12", source: `${GH("v1.35.6+k3s1")}: "Backports for 2026-06"` },
  { version: "v1.35.5+k3s1", date: "2026-05", etcd: "3.6.7", source: `${GH("v1.35.5+k3s1")}: "Backports for 2026-05"` },
  { version: "v1.35.4+k3s1", date: "2026-04-27", etcd: "3.6.7", source: NOTES(35) },
  { version: "v1.35.3+k3s1", date: "2026-03-28", etcd: "3.6.7", source: NOTES(35) },
  { version: "v1.35.2+k3s1", date: "2026-03-04", etcd: "3.6.7", source: NOTES(35) },
  { version: "v1.35.1+k3s1", date: "2026-02-12", etcd: "3.6.7", source: NOTES(35) },
  { version: "v1.35.0+k3s3", date: "2026-02-03", etcd: "3.6.7", source: NOTES(35) },
  { version: "v1.35.0+k3s1", date: "2025-12-23", etcd: "3.6.6", source: NOTES(35) },

  // v1.36.3+k3s1: named by the v1.37.0+k3s1 notes ("Changes since v1.36.3+k3s1", "Update stable
  // channel to v1.36.3+k3s1", k3s-io/k3s#14492); its own row is not in the stored release notes.
  { version: "v1.36.3+k3s1", date: "before 2026-09-14", source: `${NOTES(37)} (v1.37.0+k3s1 changes since v1.36.3+k3s1; k3s-io/k3s#14492)` },
  // The first v1.36 release with etcd 3.6.11+, required before etcd 3.7 (upgrade/paths.ts), and
  // with the Traefik chart v40 (config/packaged.ts).
  { version: "v1.36.2+k3s1", date: "2026-06-24", etcd: "3.6.12", source: NOTES(36) },
  { version: "v1.36.1+k3s1", date: "2026-05-20", etcd: "3.6.7", source: NOTES(36) },
  { version: "v1.36.0+k3s1", date: "2026-05-06", etcd: "3.6.7", source: NOTES(36) },

  { version: "v1.37.1+k3s1", date: "2026-09-30", etcd: "3.7.1", source: NOTES(37) },
  { version: "v1.37.0+k3s1", date: "2026-09-14", etcd: "3.7.1", source: NOTES(37) },
];

/** `v1.MINOR.PATCH+k3sREVISION` as numbers. */
export interface ReleaseNumbers {
  minor: number;
  patch: number;
  revision: number;
}

export function releaseNumbers(version: string): ReleaseNumbers | undefined {
  const m = /^v1\.(\d+)\.(\d+)\+k3s(\d+)$/.exec(version);
  return m ? { minor: Number(m[1]), patch: Number(m[2]), revision: Number(m[3]) } : undefined;
}

/** Negative when a < b, 0 when equal, positive when a > b (minor, patch, then the `+k3sN` revision). */
export function compareReleases(a: ReleaseNumbers, b: ReleaseNumbers): number {
  return a.minor - b.minor || a.patch - b.patch || a.revision - b.revision;
}

function newestFirst(list: readonly KnownRelease[]): KnownRelease[] {
  return [...list].sort((a, b) => compareReleases(releaseNumbers(b.version)!, releaseNumbers(a.version)!));
}

/** The newest release the table knows (today v1.37.1+k3s1). */
export const NEWEST_KNOWN: KnownRelease = newestFirst(KNOWN_RELEASES)[0]!;

/** The highest known patch release of a line. */
export function newestOnLine(minor: number): KnownRelease | undefined {
  return newestFirst(KNOWN_RELEASES.filter((r) => releaseNumbers(r.version)!.minor === minor))[0];
}

export function releaseLine(minor: number): ReleaseLine | undefined {
  return RELEASE_LINES.find((l) => l.minor === minor);
}

/**
 * The lines K3s supports: the newest three minors. K3s follows the Kubernetes project, which
 * "maintains release branches for the most recent three minor releases" (kubernetes.io/releases);
 * the K3s release notes show patch releases only on those lines (the newest v1.32 row is
 * v1.32.11+k3s3 of 2026-02, after v1.35 shipped). Today (2026-12): v1.35, v1.36, v1.37.
 */
export const SUPPORTED_LINES: readonly number[] = RELEASE_LINES.map((l) => l.minor)
  .sort((a, b) => b - a)
  .slice(0, 3)
  .sort((a, b) => a - b);

export const SUPPORTED_LINES_TEXT = SUPPORTED_LINES.map((m) => `v1.${m}`).join(", ");

/** Whether a minor line is still supported by K3s (undefined line numbers newer than the table count as supported: they are newer than every known line). */
export function isSupportedLine(minor: number): boolean {
  return SUPPORTED_LINES.includes(minor) || minor > Math.max(...SUPPORTED_LINES);
}

/** The etcd version a known release embeds (`3.5.26`), or undefined when the table does not say. */
export function embeddedEtcd(version: string): string | undefined {
  return KNOWN_RELEASES.find((r) => r.version === version)?.etcd;
}

/** Whether `version` is newer than every release in the table. */
export function newerThanKnown(version: string): boolean {
  const n = releaseNumbers(version);
  return !!n && compareReleases(n, releaseNumbers(NEWEST_KNOWN.version)!) > 0;
}
