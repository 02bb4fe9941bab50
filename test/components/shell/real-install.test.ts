import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolvedConfig } from "../../../components/config/schema";
import { parseRelease, renderReleaseScript } from "../../../components/k3s/release";
import { planNode } from "../../../components/plan/node";
import { loadStackConfig } from "../../../components/stack/load";
import { REPO, sampleConfig, variant } from "../../helpers/samples";

/**
 * The rendered apply scripts against K3s' real install script (issue 28), when
 * K3SP_REAL_INSTALL_SH names a copy of it (install.sh of k3s-io/k3s, kept outside the repository;
 * never committed). Needs root, unshare and overlayfs: each host is a private mount namespace whose
 * /etc, /usr/local, /usr/sbin, /opt, /var/lib and /run are overlays writing into a directory of
 * its own, with stub systemctl, k3s and curl (test/helpers/stubs; the channel server and GitHub
 * served from files). Without the variable no test is declared: CI runs the same checks against
 * the stand-in (shell.test.ts "against the install script stand-in").
 */
const REAL = process.env.K3SP_REAL_INSTALL_SH;
const STUBS = join(REPO, "test", "helpers", "stubs");

/**
 * The stubs' settings, for a stub run by install.sh: apply.sh runs the install under `env -i`
 * (issue 28), so STUB_LOG, CHANNELS and REAL_INSTALL_SH come from the file the sandbox writes.
 */
const STUB_ENV = `[ -n "\${STUB_LOG:-}" ] || . /run/k3sp-stub.env`;
const CURL = `#!/bin/bash
${STUB_ENV}
# /ping answers; get.k3s.io serves the real script; the channel server redirects to the release in
# $CHANNELS/<channel>; GitHub serves a stand-in binary per release and its sha256sum file.
out=""; url=""; effective=0
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift ;; -w) effective=1; shift ;; --max-time|--retry|--proto|-H) shift ;; http*) url="$1" ;; esac
  shift
done
fake() { printf '#!/bin/sh\\necho "k3s version %s (stand-in)"\\n' "$1"; }
case "$url" in
  */ping) ;;
  https://get.k3s.io*) cp "$REAL_INSTALL_SH" "$out" ;;
  */v1-release/channels/*) if [ "$effective" = 1 ]; then printf 'https://github.com/k3s-io/k3s/releases/tag/%s' "$(cat "$CHANNELS/\${url##*/}")"; fi ;;
  */sha256sum-amd64.txt) rel="\${url%/*}"; printf '%s  k3s\\n' "$(fake "\${rel##*/}" | sha256sum | cut -d' ' -f1)" >"$out" ;;
  */k3s) rel="\${url%/*}"; fake "\${rel##*/}" >"$out"; chmod 0755 "$out" ;;
  *) exit 22 ;;
esac
`;
const XTABLES = `#!/bin/sh\n${STUB_ENV}\necho "$(basename "$0")" >>"$STUB_LOG"\n`;
const SANDBOX = `set -e
host="$1"; shift
ov() { mkdir -p "$host/$2.upper" "$host/$2.work"; mount -t overlay overlay -o "lowerdir=$1,upperdir=$host/$2.upper,workdir=$host/$2.work" "$1"; }
mkdir -p /opt
ov /etc etc; ov /usr/local usr-local; ov /usr/sbin usr-sbin; ov /var/lib var-lib; ov /run run; ov /opt opt
mount -t tmpfs cgroup /sys/fs/cgroup
[ -n "\${CGROUP_V1:-}" ] || echo "cpu memory pids" >/sys/fs/cgroup/cgroup.controllers
mkdir -p /run/systemd/system
printf 'STUB_LOG=%q\\nCHANNELS=%q\\nREAL_INSTALL_SH=%q\\n' "$STUB_LOG" "$CHANNELS" "$REAL_INSTALL_SH" >/run/k3sp-stub.env
exec "$@"`;

if (REAL) {
  describe("apply.sh against the real install.sh (K3SP_REAL_INSTALL_SH, issue 28)", function () {
    this.timeout(120_000);
    const scratch = mkdtempSync(join(tmpdir(), "k3sp-real-"));
    const bin = join(scratch, "bin");
    mkdirSync(bin);
    for (const [name, text] of [["curl", CURL], ["iptables-save", XTABLES], ["iptables-restore", XTABLES], ["ip6tables-save", XTABLES], ["ip6tables-restore", XTABLES]]) {
      writeFileSync(join(bin, name!), text!);
      chmodSync(join(bin, name!), 0o755);
    }
    after(() => rmSync(scratch, { recursive: true, force: true }));

    /** A host for `config.nodes[index]`: `run` runs a command in it, `apply` the node's current plan. */
    function host(config: ResolvedConfig, index: number, label: string) {
      const dir = join(scratch, label);
      const staging = join(scratch, `${label}-staging`);
      const channels = join(scratch, `${label}-channels`);
      for (const d of [dir, staging, channels]) mkdirSync(d);
      const log = join(dir, "..", `${label}.log`);
      writeFileSync(log, "");
      const run = (cmd: string, env: Record<string, string> = {}) => {
        const r = spawnSync("unshare", ["-m", "--propagation", "private", "bash", "-c", SANDBOX, "sandbox", dir, "bash", "-c", cmd], {
          encoding: "utf8",
          env: { ...process.env, ...env, STUB_LOG: log, CHANNELS: channels, REAL_INSTALL_SH: REAL!, PATH: `${bin}:${STUBS}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin` },
        });
        return { status: r.status, out: `${r.stdout}${r.stderr}` };
      };
      const stage = (c: ResolvedConfig) => {
        const plan = planNode(c, c.nodes[index]!);
        for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
        return plan;
      };
      const plan = stage(config);
      const setup = [
        config.k3s.airgap.enabled ? `install -D -m 0755 "$REAL_INSTALL_SH" ${config.k3s.airgap.installScriptPath}` : "true",
        ...plan.secretFiles.map((s) => `install -d -m 0700 "$(dirname ${s.target})" && echo '${s.name}: x' >${s.target}`),
      ];
      assert.equal(run(setup.join(" && ")).status, 0);
      const apply = (env: Record<string, string> = {}) => run('umask 077 && exec bash "$K3S_PLATFORM_STAGING/apply.sh"', { ...env, K3S_PLATFORM_STAGING: staging, K3S_PLATFORM_READY_TIMEOUT: "20" });
      const binary = (path: string, release: string) => run(`mkdir -p "$(dirname ${path})" && printf '#!/bin/sh\\necho "k3s version %s (stand-in)"\\n' ${release} >${path} && chmod 0755 ${path}`);
      const stops = () => (readFileSync(log, "utf8").match(/^systemctl stop /gm) ?? []).length;
      // What apply and the install script wrote on the host: the overlays' upper directories (/run aside: the stubs' state).
      const files = () => spawnSync("bash", ["-c", 'cd "$1" && find etc.upper usr-local.upper usr-sbin.upper var-lib.upper opt.upper -type f -print0 | sort -z | xargs -0r sha256sum', "files", dir], { encoding: "utf8" }).stdout;
      /** The k3s-release step (operations/release.ts) on this host: the release it records. */
      const releaseStep = () => run(renderReleaseScript(config, config.nodes[index]!));
      return { run, apply, stage, binary, stops, files, channels, log, releaseStep };
    }

    it("air-gap: first install, nothing on a second run, one restart on a config change; unit 0644, env 0600; no iptables rewrite", () => {
      const config = sampleConfig("prod");
      const h = host(config, 0, "airgap");
      h.binary(config.k3s.airgap.binaryPath, config.k3s.version!);
      const first = h.apply();
      assert.equal(first.status, 0, first.out);
      assert.match(first.out, /systemd: Creating service file \/etc\/systemd\/system\/k3s\.service/);
      assert.match(h.run("stat -c %a /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env").out, /^644\n600\n$/);
      assert.match(h.apply().out, /K3s is up to date \(v1\.37\.1\+k3s1\)/);
      assert.equal(h.stops(), 1);
      const changed = loadStackConfig(variant("prod", (r) => (r.k3s!.clusterDomain = "other.local")));
      h.stage(changed);
      assert.equal(h.apply().status, 0);
      assert.equal(h.stops(), 2, "one restart");
      assert.doesNotMatch(readFileSync(h.log, "utf8"), /tables-(save|restore)/, "install.sh's iptables rewrite never ran");

      // A hand edit of the unit is corrected, with one restart.
      h.run("sed -i 's/^TimeoutStartSec=0/TimeoutStartSec=0\\nEnvironment=HAND=edit/' /etc/systemd/system/k3s.service");
      const fixed = h.apply();
      assert.match(fixed.out, /changed outside k3s-platform: re-installing/);
      assert.equal(h.run("grep -c HAND /etc/systemd/system/k3s.service || true").out.trim(), "0");
      assert.equal(h.stops(), 3);
    });

    it("air-gap version bump: refused without the staged release, the host as it was; staged, swapped in by the upgrade", () => {
      const running = loadStackConfig(variant("prod", () => {}));
      const h = host(running, 3, "bump");
      h.binary(running.k3s.airgap.binaryPath, running.k3s.version!);
      assert.equal(h.apply().status, 0);
      const before = h.files();
      h.stage(loadStackConfig(variant("prod", (r) => (r.k3s!.version = "v1.37.2+k3s1"))));
      const refused = h.apply();
      assert.notEqual(refused.status, 0);
      assert.match(refused.out, /preflight on host .*the air-gap binary for v1\.37\.2\+k3s1 is missing/);
      assert.equal(h.files(), before);
      h.binary(`${running.k3s.airgap.binaryPath}-v1.37.2+k3s1`, "v1.37.2+k3s1");
      const upgraded = h.apply();
      assert.equal(upgraded.status, 0, upgraded.out);
      assert.match(upgraded.out, /K3s v1\.37\.2\+k3s1 is running/);
    });

    it("channel stack (download mode): one release, recorded once; a config change after the channel moved keeps it; a node added after the move installs the recorded release; a node on another release is refused; cgroup v1 refused for a v1.35+ release", () => {
      const channelConfig = (edit: (k3s: Record<string, unknown>) => void = () => {}) =>
        loadStackConfig(variant("dev", (r) => { Object.assign(r.k3s!, { version: undefined, channel: "stable" }); edit(r.k3s as Record<string, unknown>); }));
      const config = channelConfig();
      const h = host(config, 0, "channel");
      writeFileSync(join(h.channels, "stable"), "v1.36.3+k3s1\n");
      const step = h.releaseStep();
      assert.equal(step.status, 0, step.out);
      const release = parseRelease(step.out)!;
      assert.equal(release, "v1.36.3+k3s1");
      const withRelease = { K3S_PLATFORM_CLUSTER_RELEASE: release };
      assert.equal(h.apply(withRelease).status, 0);
      writeFileSync(join(h.channels, "stable"), "v1.37.1+k3s1\n");
      h.stage(channelConfig((k3s) => (k3s.clusterDomain = "other.local")));
      const res = h.apply(withRelease);
      assert.equal(res.status, 0, res.out);
      assert.match(res.out, /K3s v1\.36\.3\+k3s1 is running \(channel stable: the cluster's release\)/);
      // A changed channel value (review of issue 28): nothing K3s reads changed, no restart.
      writeFileSync(join(h.channels, "latest"), "v1.37.1+k3s1\n");
      h.stage(channelConfig((k3s) => Object.assign(k3s, { clusterDomain: "other.local", channel: "latest" })));
      const moved = h.apply(withRelease);
      assert.equal(moved.status, 0, moved.out);
      assert.match(moved.out, /K3s is up to date \(v1\.36\.3\+k3s1\)/);

      // An agent added after the channel moved: the real install.sh downloads the recorded release.
      const agent = host(config, 1, "channel-agent");
      writeFileSync(join(agent.channels, "stable"), "v1.37.1+k3s1\n");
      const added = agent.apply(withRelease);
      assert.equal(added.status, 0, added.out);
      assert.match(agent.run("/usr/local/bin/k3s --version").out, /^k3s version v1\.36\.3\+k3s1 /);

      // A node that runs another release: refused before anything is written.
      const other = host(config, 1, "channel-other");
      other.binary("/usr/local/bin/k3s", "v1.37.1+k3s1");
      other.run("mkdir -p /etc/systemd/system && printf '[Service]\\nExecStart=/usr/local/bin/k3s agent\\n' >/etc/systemd/system/k3s-agent.service");
      const before = other.files();
      const refused = other.apply(withRelease);
      assert.notEqual(refused.status, 0, refused.out);
      assert.match(refused.out, /it runs K3s 'v1\.37\.1\+k3s1', the cluster's release \(channel stable, recorded at the first up\) is v1\.36\.3\+k3s1/);
      assert.equal(other.files(), before);

      // cgroup v1 with a v1.35+ cluster release: the same hard preflight check as a pinned stack.
      const v1 = host(config, 1, "channel-cgroup-v1");
      const cgroupBefore = v1.files();
      const cgroup = v1.apply({ ...withRelease, CGROUP_V1: "1" });
      assert.notEqual(cgroup.status, 0, cgroup.out);
      assert.match(cgroup.out, /preflight on host .*cgroup v1 .*the cluster's release v1\.36\.3\+k3s1 \(channel stable\)/);
      assert.equal(v1.files(), cgroupBefore);
    });

    it("the caller's K3S_*, K3S_PLATFORM_* and proxy variables never reach the unit's env file (env -i); the planned proxy does", () => {
      const config = loadStackConfig(variant("staging", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));
      const h = host(config, 1, "hostile-env");
      writeFileSync(join(h.channels, "stable"), "v1.36.3+k3s1\n");
      // K3S_PLATFORM_CLUSTER_RELEASE (the channel stack's release, on apply's command line) is a K3S_* variable too.
      const res = h.apply({ K3S_PLATFORM_CLUSTER_RELEASE: "v1.36.3+k3s1", K3S_TOKEN: "hostile-token", K3S_URL: "https://evil.example:6443", CONTAINERD_HOSTILE: "1", https_proxy: "http://evil.example:3128" });
      assert.equal(res.status, 0, res.out);
      const envFile = h.run("cat /etc/systemd/system/k3s-agent.service.env").out;
      assert.doesNotMatch(envFile, /hostile|evil|K3S_PLATFORM|STUB_LOG/, envFile);
      assert.match(envFile, /^HTTPS_PROXY='http:\/\/proxy\.example\.com:3128'$/m);
    });

    it("OpenRC host: refused in preflight, nothing written", () => {
      const config = sampleConfig("prod");
      const h = host(config, 0, "openrc");
      h.binary(config.k3s.airgap.binaryPath, config.k3s.version!);
      h.run("printf '#!/bin/sh\\n' >/usr/sbin/openrc-run && chmod 0755 /usr/sbin/openrc-run");
      const before = h.files();
      const res = h.apply();
      assert.notEqual(res.status, 0);
      assert.match(res.out, /the host has OpenRC/);
      assert.equal(h.files(), before);
    });
  });
}
