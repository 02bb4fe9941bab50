import { strict as assert } from "node:assert";
import {
  compareReleases,
  embeddedEtcd,
  KNOWN_RELEASES,
  NEWEST_KNOWN,
  newestOnLine,
  RELEASE_LINES,
  releaseNumbers,
  SUPPORTED_LINES,
} from "../../../components/config/releases";
import { parseStackConfig } from "../../../components/stack/load";
import { firstReleaseWithEtcd, REQUIRED_PATCHES } from "../../../components/upgrade/paths";
import { variant } from "../../helpers/samples";

describe("the K3s release table (components/config/releases.ts)", () => {
  it("knows every minor line v1.30–v1.37, each with a dated highest patch release and a source", () => {
    assert.deepEqual(RELEASE_LINES.map((l) => l.minor), [30, 31, 32, 33, 34, 35, 36, 37]);
    for (const line of RELEASE_LINES) {
      const newest = newestOnLine(line.minor);
      assert.ok(newest, `v1.${line.minor} has a known release`);
      assert.match(newest.date, /\d{4}-\d{2}/, newest.version);
      assert.ok(line.source.length > 10 && newest.source.length > 10, newest.version);
    }
    for (const r of KNOWN_RELEASES) assert.ok(releaseNumbers(r.version), `${r.version} is v1.MINOR.PATCH+k3sN`);
  });

  it("every known release's etcd is on its line's etcd minor: 3.5 through v1.33, 3.6 from v1.34, 3.7 on v1.37", () => {
    assert.deepEqual(RELEASE_LINES.map((l) => l.etcdMinor), ["3.5", "3.5", "3.5", "3.5", "3.6", "3.6", "3.6", "3.7"]);
    for (const r of KNOWN_RELEASES.filter((k) => k.etcd)) {
      const line = RELEASE_LINES.find((l) => l.minor === releaseNumbers(r.version)!.minor)!;
      assert.ok(r.etcd!.startsWith(`${line.etcdMinor}.`), `${r.version} embeds etcd ${r.etcd}, line v1.${line.minor} says ${line.etcdMinor}`);
    }
  });

  it("the etcd 3.5.26 releases (k3s-io/k3s#13493, #13494): v1.33.7+k3s3 and v1.32.11+k3s3; older v1.33/v1.32 rows embed less", () => {
    assert.equal(firstReleaseWithEtcd(33, "3.5.26"), "v1.33.7+k3s3");
    assert.equal(firstReleaseWithEtcd(32, "3.5.26"), "v1.32.11+k3s3");
    assert.equal(embeddedEtcd("v1.33.7+k3s1"), "3.5.25");
    assert.equal(embeddedEtcd("v1.32.11+k3s1"), "3.5.25");
    assert.deepEqual(REQUIRED_PATCHES.map((r) => [r.fromMinor, r.minimum, r.etcdAtLeast]), [[33, "v1.33.7+k3s3", "3.5.26"], [36, "v1.36.2+k3s1", "3.6.11"]]);
  });

  it("etcd 3.6 → 3.7 (v1.36 → v1.37): members on 3.6.11+ first (etcd.io/docs/v3.7/upgrades/upgrade_3_7); v1.36.2+k3s1 is the first v1.36 release with it (etcd 3.6.12; v1.36.1 has 3.6.7)", () => {
    assert.equal(RELEASE_LINES.find((l) => l.minor === 36)!.etcdMinor, "3.6");
    assert.equal(RELEASE_LINES.find((l) => l.minor === 37)!.etcdMinor, "3.7");
    assert.equal(embeddedEtcd("v1.36.1+k3s1"), "3.6.7");
    assert.equal(embeddedEtcd("v1.36.2+k3s1"), "3.6.12");
    assert.equal(firstReleaseWithEtcd(36, "3.6.11"), "v1.36.2+k3s1");
    // Every line boundary where the etcd minor changes has a required-patch rule (and no other does).
    const steps = RELEASE_LINES.filter((l) => { const next = RELEASE_LINES.find((n) => n.minor === l.minor + 1); return next && next.etcdMinor !== l.etcdMinor; }).map((l) => l.minor);
    assert.deepEqual(REQUIRED_PATCHES.map((r) => r.fromMinor), steps);
  });

  it("supported: the newest three lines (v1.35, v1.36, v1.37); the newest known release is v1.37.1+k3s1 of 2026-09-30", () => {
    assert.deepEqual(SUPPORTED_LINES, [35, 36, 37]);
    assert.equal(NEWEST_KNOWN.version, "v1.37.1+k3s1");
    assert.equal(NEWEST_KNOWN.date, "2026-09-30");
    const sorted = [...KNOWN_RELEASES].sort((a, b) => compareReleases(releaseNumbers(b.version)!, releaseNumbers(a.version)!));
    assert.equal(sorted[0], NEWEST_KNOWN);
  });
});

describe("validation of the pinned release against the table", () => {
  const withVersion = (env: "dev" | "staging" | "prod", version: string, reason?: string) =>
    parseStackConfig(
      variant(env, (raw) => {
        raw.k3s!.version = version;
        if (reason !== undefined) (raw.k3s as Record<string, unknown>).unsupportedReleaseReason = reason;
      }),
    );

  it("a release newer than the newest known one is a warning naming v1.37.1+k3s1, in every environment", () => {
    for (const env of ["dev", "prod"] as const) {
      const r = withVersion(env, "v1.38.0+k3s1");
      assert.ok(r.ok, env);
      const w = r.warnings.find((x) => x.path === "k3s-platform:k3s.version");
      assert.ok(w, `${env}: ${JSON.stringify(r.warnings)}`);
      assert.match(w.message, /^v1\.38\.0\+k3s1 is newer than the newest K3s release k3s-platform knows \(v1\.37\.1\+k3s1, 2026-09-30\)/);
    }
    const known = withVersion("dev", "v1.37.1+k3s1");
    assert.ok(known.ok && !known.warnings.some((w) => /newer than the newest/.test(w.message)));
  });

  it("a line past end of support: refused in prod naming the config path and the supported lines, a warning in dev/staging", () => {
    const prod = withVersion("prod", "v1.34.9+k3s1");
    assert.ok(!prod.ok);
    const issue = prod.issues.find((i) => i.path === "k3s-platform:k3s.version");
    assert.ok(issue, JSON.stringify(prod.issues));
    assert.match(issue.message, /K3s v1\.34 is past end of support \(K3s supports the newest three lines: v1\.35, v1\.36, v1\.37;.*the last v1\.34 release was v1\.34\.9\+k3s1/);
    assert.match(issue.message, /set k3s\.unsupportedReleaseReason/);
    for (const env of ["dev", "staging"] as const) {
      const r = withVersion(env, "v1.34.9+k3s1");
      assert.ok(r.ok, env);
      assert.ok(r.warnings.some((w) => w.path === "k3s-platform:k3s.version" && /past end of support/.test(w.message)), env);
    }
    assert.ok(withVersion("prod", "v1.35.6+k3s1").ok, "v1.35 is supported");
  });

  it("prod runs an unsupported line only with a typed reason of at least 20 characters; a reason on a supported line is a warning", () => {
    const ok = withVersion("prod", "v1.34.9+k3s1", "vendor appliance certified on v1.34 only; until 2027-03");
    assert.ok(ok.ok, ok.ok ? "" : JSON.stringify(ok.issues));
    assert.ok(ok.warnings.some((w) => w.path === "k3s-platform:k3s.version" && /accepted: k3s\.unsupportedReleaseReason/.test(w.message)));
    const short = withVersion("prod", "v1.34.9+k3s1", "because");
    assert.ok(!short.ok);
    assert.ok(short.issues.some((i) => i.path === "k3s-platform:k3s.unsupportedReleaseReason" && /at least 20 characters/.test(i.message)), JSON.stringify(short.issues));
    const stale = withVersion("prod", "v1.37.1+k3s1", "vendor appliance certified on v1.34 only");
    assert.ok(stale.ok);
    assert.ok(stale.warnings.some((w) => w.path === "k3s-platform:k3s.unsupportedReleaseReason" && /remove the acknowledgement/.test(w.message)));
  });

  it("a channel naming an old line is checked too", () => {
    const r = parseStackConfig(variant("dev", (raw) => ((raw.k3s!.version = undefined), (raw.k3s!.channel = "v1.33"))));
    assert.ok(r.ok);
    assert.ok(r.warnings.some((w) => w.path === "k3s-platform:k3s.channel" && /K3s v1\.33 is past end of support/.test(w.message)));
  });
});
