import { strict as assert } from "node:assert";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { loadStackConfig } from "../../../components/stack/load";
import { renderRestartScript, renderVerifyScript, rotationPhases } from "../../../components/encryption/render";
import { PATHS } from "../../../components/k3s/paths";
import { customTimeouts, stepBounds } from "../../../components/k3s/timeouts";
import { planCluster, planNode } from "../../../components/plan/node";
import { releaseFromApplyStdout } from "../../../tools/preview-markdown";
import { parseRelease, renderReleaseScript } from "../../../components/k3s/release";
import { fakeBinary, hostRoot, INSTALL_STANDIN } from "../../helpers/host-root";
import { ENVS, fixtureRaw, REPO, sampleConfig, variant } from "../../helpers/samples";

const STUBS = join(REPO, "test", "helpers", "stubs");

/** Configs that together exercise every branch of the script templates. */
function scriptVariants(): Array<[string, ResolvedConfig]> {
  const edits: Array<[string, (raw: StackInput) => void]> = [
    ["dev: raspberry pi, selinux, firewall disabled, channel", (r) => {
      Object.assign(r.k3s!, { version: undefined, channel: "stable", selinux: true, firewall: { mode: "disable" } });
      r.nodes[1]!.raspberryPi = true;
    }],
    ["dev: Kubernetes 1.35 (cgroup v2 required), install script and binary digests", (r) => {
      Object.assign(r.k3s!, { version: "v1.35.1+k3s1", installScriptSha256: "0".repeat(64), binarySha256: { amd64: "1".repeat(64), arm64: "2".repeat(64) } });
    }],
    ["dev: air-gap with selinux, wireguard, firewall ignored", (r) => {
      Object.assign(r.k3s!, { airgap: { enabled: true }, selinux: true, flannelBackend: "wireguard-native", firewall: { mode: "ignore" } });
    }],
  ];
  return [
    ...ENVS.map((env): [string, ResolvedConfig] => [env, sampleConfig(env)]),
    ...edits.map(([label, edit]): [string, ResolvedConfig] => [label, loadStackConfig(variant("dev", edit))]),
  ];
}

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

/** Every file below `root` with its mode and content, to compare trees between runs. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else out.set(path.slice(root.length), `${(st.mode & 0o777).toString(8)} ${readFileSync(path, "utf8")}`);
    }
  };
  walk(root);
  return out;
}

describe("generated shell", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3s-platform-shell-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("passes bash -n and shellcheck for every node of every variant", function () {
    const dir = join(scratch, "lint");
    mkdirSync(dir);
    const files: string[] = [];
    for (const [label, config] of scriptVariants()) {
      for (const nodePlan of planCluster(config).nodes) {
        for (const f of nodePlan.files.filter((x) => x.name.endsWith(".sh"))) {
          const path = join(dir, `${label.replace(/\W+/g, "_")}__${nodePlan.node.name}__${f.name}`);
          writeFileSync(path, f.content);
          files.push(path);
          const syntax = run("bash", ["-n", path]);
          assert.equal(syntax.status, 0, `bash -n ${path}: ${syntax.out}`);
        }
      }
    }
    // The secrets-encryption lifecycle scripts run over SSH too.
    const encryptionVariants = [
      sampleConfig("prod"),
      loadStackConfig(variant("staging", (r) => (r.encryption = { enabled: true, rotation: 1 }))),
      loadStackConfig(variant("staging", (r) => Object.assign(r, { k3s: { ...r.k3s, version: "v1.30.4+k3s1" }, encryption: { enabled: true, rotation: 1 } }))),
      loadStackConfig(variant("prod", (r) => (r.encryption = { mode: "custom", custom: { resources: [{ resources: ["secrets"], providers: ["kms", "identity"] }], kms: { name: "vault", endpoint: "unix:///run/kms.sock" } } }))),
    ];
    encryptionVariants.forEach((config, i) => {
      const scripts = [renderVerifyScript(config, "0".repeat(64)), renderRestartScript("srv"), ...rotationPhases(config).map((p) => p.script)];
      scripts.forEach((script, j) => {
        const path = join(dir, `encryption_${i}_${j}.sh`);
        writeFileSync(path, script);
        files.push(path);
      });
    });
    assert.ok(files.length >= 40, `expected many scripts, got ${files.length}`);
    const lint = run("shellcheck", ["--severity=style", ...files]);
    assert.equal(lint.status, 0, lint.out);
  });

  it("every apply step's customTimeouts sit above the sum of its script's own bounded waits (issue 28)", () => {
    // Read from the rendered scripts, not from the budget: each bound a script declares, summed.
    const waits = (script: string) =>
      [
        /READY_TIMEOUT:-(\d+)/g,
        /\btimeout (\d+) /g,
        /--max-time (\d+)/g,
        /\bdeadline=\$\(\(SECONDS \+ (\d+)\)\)/g,
        /^VIP_WAIT=(\d+)$/gm,
        /drain_for_upgrade "\$NODE" (\d+)/g,
        /wait_ready_version "\$NODE" "\$(?:TARGET_VERSION|cordoned_for)" (\d+)/g,
      ].reduce((sum, re) => sum + [...script.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0), 0);
    const minutes = (t: string | undefined) => Number(/^(\d+)m$/.exec(t ?? "")?.[1]) * 60;
    let checked = 0;
    for (const [label, config] of scriptVariants()) {
      for (const nodePlan of planCluster(config).nodes) {
        const script = nodePlan.files.find((f) => f.name === "apply.sh")!.content;
        const bound = waits(script);
        assert.ok(bound >= 300, `${label} ${nodePlan.node.name}: the readiness wait is found (${bound})`);
        const t = customTimeouts(nodePlan.applyBoundSeconds);
        for (const op of [t.create, t.update, t.delete]) assert.ok(minutes(op) > bound, `${label} ${nodePlan.node.name}: ${op} is not above ${bound}s`);
        checked++;
      }
    }
    assert.ok(checked >= 10);
    const restart = waits(renderRestartScript("srv"));
    assert.ok(restart > 0 && minutes(customTimeouts(stepBounds().encryptionRestart).update) > restart);
  });

  it("the repository's own shell (scripts, CI, test hosts, stand-ins, stubs) passes shellcheck", () => {
    const tracked = spawnSync("git", ["ls-files"], { cwd: REPO, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    const shell = tracked.filter((f) => {
      if (f.startsWith("test/golden/")) return false; // generated: checked above from the renderers
      if (f.endsWith(".sh") || f === ".ci/run") return true;
      const path = join(REPO, f);
      return statSync(path).isFile() && /^#!.*\b(ba)?sh\b/.test(readFileSync(path, "utf8").split("\n", 1)[0]!);
    });
    assert.ok(shell.length >= 20, `expected the project's scripts, found ${shell.length}`);
    const lint = spawnSync("shellcheck", ["-x", "--severity=style", ...shell], { cwd: REPO, encoding: "utf8" });
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  });

  describe("os-prep.sh is idempotent", () => {
    interface Scenario {
      label: string;
      config: ResolvedConfig;
      node: number;
      /** Sets up the scratch root the way the host looks before the first run. */
      host: (root: string) => void;
      /** A substring the first run's stub log must contain. */
      firstRunDoes: string[];
    }
    const cgroup2 = (root: string) => {
      mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
      writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "cpuset cpu io memory pids\n");
    };
    const scenarios: Scenario[] = [
      {
        label: "prod server: CIS sysctls, firewalld opened",
        config: sampleConfig("prod"),
        node: 0,
        host: (root) => {
          cgroup2(root);
          mkdirSync(join(root, "run/active"), { recursive: true });
          writeFileSync(join(root, "run/active/firewalld"), "");
        },
        firstRunDoes: [
          "modprobe br_netfilter",
          "sysctl -w kernel.panic=10",
          // prod states its apiServerSources: the API only from them (and the nodes); etcd only from the servers.
          `--add-rich-rule=rule family="ipv4" source address="192.0.2.0/24" port port="6443" protocol="tcp" accept`,
          `--add-rich-rule=rule family="ipv4" source address="203.0.113.12" port port="2379-2380" protocol="tcp" accept`,
          // Flannel from the node network (k3s.nodeNetworks), not from each node (issue 26).
          `--add-rich-rule=rule family="ipv4" source address="203.0.113.0/24" port port="8472" protocol="udp" accept`,
          "--add-source=10.42.0.0/16",
          "firewall-cmd --reload",
        ],
      },
      {
        label: "staging agent: ufw opened",
        config: sampleConfig("staging"),
        node: 1,
        host: (root) => {
          cgroup2(root);
          mkdirSync(join(root, "ufw"), { recursive: true });
          writeFileSync(join(root, "ufw/active"), "");
        },
        firstRunDoes: [
          "ufw allow proto udp from 198.51.100.10 to any port 8472",
          "ufw allow proto tcp from 10.52.0.0/16 to any port 10250",
          "ufw allow from 10.52.0.0/16 to any",
          "sysctl -w net.ipv4.ip_forward=1",
        ],
      },
      {
        label: "dev agent: firewall disabled, SELinux packages installed",
        config: loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { selinux: true, firewall: { mode: "disable" } }))),
        node: 1,
        host: (root) => {
          cgroup2(root);
          mkdirSync(join(root, "run/active"), { recursive: true });
          writeFileSync(join(root, "run/active/firewalld"), "");
          writeFileSync(join(root, "selinux"), "Enforcing\n");
        },
        firstRunDoes: ["systemctl disable --now firewalld", "dnf install -y container-selinux"],
      },
    ];

    for (const s of scenarios) {
      it(s.label, () => {
        const root = mkdtempSync(join(scratch, "root-"));
        const log = join(root, "..", `${root.split("/").pop()}.log`);
        writeFileSync(log, "");
        s.host(root);
        const plan = planNode(s.config, s.config.nodes[s.node]!);
        const script = join(scratch, `${root.split("/").pop()}-os-prep.sh`);
        writeFileSync(script, plan.files.find((f) => f.name === "os-prep.sh")!.content);
        const env = { K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` };

        const first = run("bash", [script], env);
        assert.equal(first.status, 0, first.out);
        const firstLog = readFileSync(log, "utf8");
        for (const expected of s.firstRunDoes) assert.ok(firstLog.includes(expected), `first run should ${expected}; log:\n${firstLog}`);
        assert.doesNotMatch(first.out, /done, 0 change/);
        const before = snapshot(root);

        writeFileSync(log, "");
        const second = run("bash", [script], env);
        assert.equal(second.status, 0, second.out);
        assert.match(second.out, /done, 0 change\(s\)/);
        assert.equal(readFileSync(log, "utf8"), "", "second run must call no changing command");
        assert.deepEqual(snapshot(root), before, "second run must not touch a file");
      });
    }

    it("Raspberry Pi: fixes the kernel command line, asks for a reboot, then converges", () => {
      const config = loadStackConfig(variant("dev", (r) => (r.nodes[1]!.raspberryPi = true)));
      const root = mkdtempSync(join(scratch, "pi-"));
      mkdirSync(join(root, "boot/firmware"), { recursive: true });
      writeFileSync(join(root, "boot/firmware/cmdline.txt"), "console=serial0 root=/dev/mmcblk0p2 rootwait\n");
      const script = join(root, "..", "pi-os-prep.sh");
      writeFileSync(script, planNode(config, config.nodes[1]!).files.find((f) => f.name === "os-prep.sh")!.content);
      const env = { K3S_PLATFORM_ROOT: root, STUB_LOG: join(root, "..", "pi.log"), PATH: `${STUBS}:${process.env.PATH}` };

      const first = run("bash", [script], env);
      assert.notEqual(first.status, 0);
      assert.match(first.out, /reboot dev-agent-1/);
      assert.match(readFileSync(join(root, "boot/firmware/cmdline.txt"), "utf8"), /rootwait cgroup_memory=1 cgroup_enable=memory\n$/);

      // "After the reboot" the memory controller is there.
      mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
      writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "memory pids\n");
      assert.equal(run("bash", [script], env).status, 0);
      const third = run("bash", [script], env);
      assert.equal(third.status, 0, third.out);
      assert.match(third.out, /done, 0 change/);
      assert.equal((readFileSync(join(root, "boot/firmware/cmdline.txt"), "utf8").match(/cgroup_memory=1/g) ?? []).length, 1);
    });

    it("fails before touching anything when a K3s port is taken", () => {
      const config = sampleConfig("dev");
      const root = mkdtempSync(join(scratch, "port-"));
      mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
      writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "memory\n");
      mkdirSync(join(root, "listen"));
      writeFileSync(join(root, "listen/6443"), "");
      const script = join(root, "..", "port-os-prep.sh");
      writeFileSync(script, planNode(config, config.nodes[0]!).files.find((f) => f.name === "os-prep.sh")!.content);
      const res = run("bash", [script], { K3S_PLATFORM_ROOT: root, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}` });
      assert.notEqual(res.status, 0);
      assert.match(res.out, /TCP port 6443 is already in use/);
      assert.equal(snapshot(root).has("/etc/sysctl.d/90-k3s-platform.conf"), false);
    });
  });

  describe("apply.sh", () => {
    /** A scratch root (hostRoot) and staging directory holding `plan`'s files, `installer` as install-k3s.sh, and (with `secrets`) its secret files placed. */
    function stageApply(config: ResolvedConfig, plan: ReturnType<typeof planNode>, label: string, installer?: string, secrets = true) {
      const root = mkdtempSync(join(scratch, `${label}-`));
      const staging = mkdtempSync(join(scratch, "staging-"));
      hostRoot(root, config);
      for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
      if (installer !== undefined) {
        writeFileSync(join(staging, "install-k3s.sh"), installer);
        chmodSync(join(staging, "install-k3s.sh"), 0o755);
      }
      for (const secret of secrets ? plan.secretFiles : []) {
        mkdirSync(dirname(join(root, secret.target)), { recursive: true });
        writeFileSync(join(root, secret.target), `${secret.name}: x\n`);
      }
      return { root, staging };
    }

    it("installs once, does nothing on a second run, and re-installs when config.yaml changes", () => {
      const config = sampleConfig("prod");
      const plan = planNode(config, config.nodes[0]!);
      const root = mkdtempSync(join(scratch, "apply-"));
      const staging = mkdtempSync(join(scratch, "staging-"));
      hostRoot(root, config);
      const log = join(staging, "install.log");
      for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
      // Stand-in for the K3s install script: records the run (marked from a file: apply.sh runs it under env -i); it starts the unit only without
      // INSTALL_K3S_SKIP_START=true (install.sh service_enable_and_start), so the restart is apply's own.
      writeFileSync(
        join(staging, "install-k3s.sh"),
        `#!/usr/bin/env bash\necho "install $(cat "${join(staging, "mark")}")" >>"${log}"\nif [ "\${INSTALL_K3S_SKIP_START:-}" != true ]; then mkdir -p "$K3S_PLATFORM_ROOT/run/active" && touch "$K3S_PLATFORM_ROOT/run/active/k3s"; fi\n`,
      );
      chmodSync(join(staging, "install-k3s.sh"), 0o755);
      for (const secret of plan.secretFiles) {
        mkdirSync(dirname(join(root, secret.target)), { recursive: true });
        writeFileSync(join(root, secret.target), `${secret.name}: x\n`);
      }
      const env = { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}` };
      const mark = (n: string) => writeFileSync(join(staging, "mark"), n);

      mark("1");
      const first = run("bash", [join(staging, "apply.sh")], env);
      assert.equal(first.status, 0, first.out);
      assert.equal(readFileSync(join(root, PATHS.configYaml), "utf8"), plan.files.find((f) => f.name === "config.yaml")!.content);
      assert.equal(statSync(join(root, PATHS.configYaml)).mode & 0o777, 0o600);
      assert.ok(statSync(join(root, PATHS.psaYaml)).isFile(), "CIS psa.yaml is placed on servers");
      assert.ok(statSync(join(root, PATHS.auditLogDir)).isDirectory(), "audit log directory exists");
      // The state directory is the staging directory's parent: the SSH user must still traverse it.
      assert.equal(statSync(join(root, "var/lib/k3s-platform")).mode & 0o777, 0o755);

      mark("2");
      const second = run("bash", [join(staging, "apply.sh")], env);
      assert.equal(second.status, 0, second.out);
      assert.match(second.out, /up to date/);

      writeFileSync(join(staging, "config.yaml"), plan.files.find((f) => f.name === "config.yaml")!.content + "debug: true\n");
      mark("3");
      const third = run("bash", [join(staging, "apply.sh")], env);
      assert.equal(third.status, 0, third.out);
      assert.equal(readFileSync(log, "utf8"), "install 1\ninstall 3\n");
    });

    it("a node that never gets ready: apply fails within its readiness timeout, naming the node; no start blocks (issue 28)", () => {
      // K3s' unit is Type=notify with TimeoutStartSec=0: a blocking `systemctl restart` of a K3s
      // that never reports ready never returns (the systemctl stub blocks STUB_BLOCK_SECONDS, then fails).
      const config = sampleConfig("dev");
      const { root, staging } = stageApply(config, planNode(config, config.nodes[1]!), "never-ready", `#!/usr/bin/env bash\n[ "\${INSTALL_K3S_SKIP_START:-}" = true ] || systemctl restart k3s-agent\n`);
      mkdirSync(join(root, "run"), { recursive: true });
      writeFileSync(join(root, "run/never-ready"), "");
      const log = join(root, "systemctl.log");
      const res = spawnSync("bash", [join(staging, "apply.sh")], {
        encoding: "utf8",
        timeout: 60_000,
        env: { ...process.env, K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}`, K3S_PLATFORM_READY_TIMEOUT: "3", STUB_BLOCK_SECONDS: "20" },
      });
      const out = `${res.stdout}${res.stderr}`;
      assert.notEqual(res.status, 0, out);
      assert.match(out, new RegExp(`apply\\[dev-agent-1\\]: host ${config.nodes[1]!.host.replace(/\./g, "\\.")}, step start: k3s-agent not ready after 3s`));
      const calls = readFileSync(log, "utf8");
      assert.match(calls, /^systemctl start --no-block k3s-agent$/m);
      assert.doesNotMatch(calls, /^systemctl (restart|start) (?!--no-block)/m, "a start that blocks");
    });

    describe("against the install script stand-in (issue 28)", () => {
      /**
       * A host for `config.nodes[index]` with the plan's own install-k3s.sh: air-gapped, the install
       * script stand-in (install-standin.sh) is pre-staged; downloading, a curl stub serves it.
       * `channels/<name>` holds the release a channel resolves to. `installed` makes K3s look
       * installed at that release (unit, version record, binary, active unit).
       */
      function standinHost(config: ResolvedConfig, index: number, label: string, installed?: string) {
        const plan = planNode(config, config.nodes[index]!);
        const { root, staging } = stageApply(config, plan, label);
        const service = plan.role === "server" ? "k3s" : "k3s-agent";
        const bin = join(root, "..", `${label}-bin`);
        // Under the sandbox root: apply.sh runs the install under env -i (install-standin.sh).
        const channels = join(root, "var/lib/k3sp-stub/channels");
        mkdirSync(bin);
        mkdirSync(channels, { recursive: true });
        // curl -sfL ... -o FILE URL: the install script's download, served from the stand-in. With
        // -w '%{url_effective}' on a channel URL: the redirect target, the release tag (install.sh
        // get_release_version; the k3s-release step resolves a channel so).
        writeFileSync(
          join(bin, "curl"),
          `#!/bin/sh\nw=0; url=""; out=""\nwhile [ "$#" -gt 0 ]; do case "$1" in -o) out="$2"; shift ;; -w) w=1; shift ;; http*) url="$1" ;; esac; shift; done\nif [ "$w" = 1 ]; then printf 'https://github.com/k3s-io/k3s/releases/tag/%s' "$(cat "${channels}/\${url##*/}")"; elif [ -n "$out" ] && [ "$out" != /dev/null ]; then cp "${INSTALL_STANDIN}" "$out"; fi\n`,
        );
        chmodSync(join(bin, "curl"), 0o755);
        if (installed) {
          const binary = config.k3s.airgap.enabled ? config.k3s.airgap.binaryPath : "/usr/local/bin/k3s";
          fakeBinary(root, binary, installed);
          mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
          writeFileSync(join(root, `etc/systemd/system/${service}.service`), "[Service]\n");
          mkdirSync(join(root, "var/lib/k3s-platform"), { recursive: true });
          writeFileSync(join(root, "var/lib/k3s-platform/k3s-version"), `${installed}\n`);
          mkdirSync(join(root, "run/active"), { recursive: true });
          writeFileSync(join(root, `run/active/${service}`), "");
        }
        const logs = { stub: join(root, "..", `${label}-stub.log`), installs: join(root, "var/log/k3sp/install.log") };
        const env = {
          K3S_PLATFORM_ROOT: root,
          K3S_PLATFORM_STAGING: staging,
          STUB_LOG: logs.stub,
          PATH: `${bin}:${STUBS}:${process.env.PATH}`,
        };
        const apply = (extra: Record<string, string> = {}) => run("bash", ["-c", 'umask 077 && exec bash "$1"', "apply", join(staging, "apply.sh")], { ...env, ...extra });
        const read = (path: string) => { try { return readFileSync(path, "utf8"); } catch { return ""; } };
        /** The k3s-release step (operations/release.ts) run on this host: its stdout, as the engine keeps it. */
        const releaseStep = () => run("bash", ["-c", renderReleaseScript(config, config.nodes[index]!)], env);
        /** apply with the cluster's release of a channel stack, as the node's apply command passes it. */
        const applyWith = (release: string, extra: Record<string, string> = {}) => apply({ K3S_PLATFORM_CLUSTER_RELEASE: release, ...extra });
        return { plan, root, staging, channels, service, logs, env, apply, applyWith, releaseStep, read };
      }
      const upgraded = (env: "prod" | "staging", edit: (k3s: Record<string, unknown>) => void = () => {}) =>
        loadStackConfig(variant(env, (r) => { Object.assign(r.k3s!, { version: "v1.37.1+k3s1" }); edit(r.k3s as Record<string, unknown>); }));


      /** Apply with the planned install script over the legacy NO_PROXY: kept (carried over), no install, no restart. */
      function movesWithoutRestart(h: ReturnType<typeof standinHost>, planned: string, name: string, counts: () => number[]): void {
        const before = counts();
        writeFileSync(join(h.staging, "install-k3s.sh"), planned);
        const moved = h.apply();
        assert.equal(moved.status, 0, moved.out);
        assert.match(moved.out, /NO_PROXY here lists entries the planned value covers/, name);
        assert.match(moved.out, /K3s is up to date/, name);
        assert.deepEqual(counts(), before, `${name}: no install, 0 restarts`);
      }
      it("air-gap upgrade without the new release: fails in preflight naming host and file; nothing placed, no snapshot, no cordon", () => {
        const config = upgraded("prod");
        const h = standinHost(config, 1, "no-release", "v1.37.0+k3s1");
        const before = snapshot(h.root);
        const res = h.apply();
        assert.notEqual(res.status, 0, res.out);
        const host = config.nodes[1]!.host;
        assert.ok(res.out.includes(`preflight on host ${host}: the air-gap binary for v1.37.1+k3s1 is missing`), res.out);
        assert.ok(res.out.includes(`${config.k3s.airgap.binaryPath}-v1.37.1+k3s1 is absent`), res.out);
        assert.deepEqual(snapshot(h.root), before, "the host is as the last apply left it");
        assert.doesNotMatch(h.read(h.logs.stub), /etcd-snapshot|cordon|drain|systemctl/);
      });

      it("air-gap upgrade refused for a missing release keeps the applied record: reverting k3s.version restarts nothing (real install.sh run, issue 28)", () => {
        const running = upgraded("prod");
        const h = standinHost(running, 3, "bump-revert");
        assert.equal(h.apply().status, 0);
        const stage = (config: ResolvedConfig) => { for (const f of planNode(config, config.nodes[3]!).files) writeFileSync(join(h.staging, f.name), f.content); };
        const stops = () => (h.read(h.logs.stub).match(/^systemctl stop /gm) ?? []).length;
        assert.equal(stops(), 1);
        const before = snapshot(h.root);
        stage(upgraded("prod", (k3s) => { k3s.version = "v1.37.2+k3s1"; }));
        const refused = h.apply();
        assert.notEqual(refused.status, 0, refused.out);
        assert.match(refused.out, /the air-gap binary for v1\.37\.2\+k3s1 is missing/);
        assert.deepEqual(snapshot(h.root), before, "nothing changed, the applied record included");
        stage(running);
        const reverted = h.apply();
        assert.equal(reverted.status, 0, reverted.out);
        assert.match(reverted.out, /K3s is up to date/);
        assert.equal(stops(), 1, "no restart");
      });

      it("air-gap: a release staged beside the running one is checked and swapped in by the upgrade only", () => {
        const config = upgraded("prod");
        const binary = config.k3s.airgap.binaryPath;
        const h = standinHost(config, 3, "staged", "v1.37.0+k3s1");
        fakeBinary(h.root, `${binary}-v1.37.1+k3s1`, "v1.37.1+k3s1");
        const res = h.apply();
        assert.equal(res.status, 0, res.out);
        assert.match(h.read(join(h.root, binary)), /k3s version v1\.37\.1\+k3s1/);
        assert.match(h.read(h.logs.installs), /^install version=v1\.37\.1\+k3s1/m);

        // A digest that does not match the staged release: refused before anything changes.
        const pinned = upgraded("prod", (k3s) => { k3s.version = "v1.37.2+k3s1"; (k3s.airgap as Record<string, unknown>).binarySha256 = "0".repeat(64); });
        const g = standinHost(pinned, 3, "staged-digest", "v1.37.1+k3s1");
        fakeBinary(g.root, `${binary}-v1.37.2+k3s1`, "v1.37.2+k3s1");
        const before = snapshot(g.root);
        const refused = g.apply();
        assert.notEqual(refused.status, 0, refused.out);
        assert.ok(refused.out.includes(`${binary}-v1.37.2+k3s1 has sha256`), refused.out);
        assert.deepEqual(snapshot(g.root), before);
      });

      it("refuses, naming the host, an OpenRC host, a host without systemd, cgroup v1 under Kubernetes 1.35, a full disk; nothing placed", () => {
        const dev = sampleConfig("dev");
        const k135 = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: "v1.35.1+k3s1" })));
        const channel = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));
        const cases: Array<[string, ResolvedConfig, (root: string) => void, RegExp, Record<string, string>?]> = [
          ["openrc", dev, (root) => { mkdirSync(join(root, "sbin"), { recursive: true }); writeFileSync(join(root, "sbin/openrc-run"), ""); chmodSync(join(root, "sbin/openrc-run"), 0o755); }, /OpenRC/],
          ["no-systemd", dev, (root) => rmSync(join(root, "run/systemd"), { recursive: true }), /systemd is not running/],
          ["cgroup-v1", k135, (root) => rmSync(join(root, "sys/fs/cgroup/cgroup.controllers")), /cgroup v1 .*v1\.35\.1\+k3s1/],
          ["disk", dev, () => {}, /MiB free/, { K3S_PLATFORM_MIN_FREE_MIB: String(Number.MAX_SAFE_INTEGER) }],
          // A channel stack: the cluster's release (k3s-release step) decides, the same hard check (issue 28).
          ["cgroup-v1-channel", channel, (root) => rmSync(join(root, "sys/fs/cgroup/cgroup.controllers")), /cgroup v1 .*the cluster's release v1\.35\.1\+k3s1 \(channel stable\)/, { K3S_PLATFORM_CLUSTER_RELEASE: "v1.35.1+k3s1" }],
        ];
        for (const [label, config, breakHost, why, extra] of cases) {
          const h = standinHost(config, 1, label);
          breakHost(h.root);
          const before = snapshot(h.root);
          const res = h.apply(extra);
          assert.notEqual(res.status, 0, `${label}: ${res.out}`);
          assert.ok(res.out.includes(`preflight on host ${config.nodes[1]!.host}`), `${label}: ${res.out}`);
          assert.match(res.out, why, label);
          assert.deepEqual(snapshot(h.root), before, `${label}: nothing placed`);
          assert.equal(h.read(h.logs.installs), "", `${label}: no install`);
        }
        // The same host, unbroken, installs: the checks refuse only what they name.
        const ok = standinHost(k135, 1, "k135-ok");
        const res = ok.apply();
        assert.equal(res.status, 0, res.out);
        // A channel stack whose release predates v1.35 runs on cgroup v1 (no refusal).
        const v134 = standinHost(channel, 1, "channel-v134-cgroup-v1");
        rmSync(join(v134.root, "sys/fs/cgroup/cgroup.controllers"));
        const older = v134.applyWith("v1.34.2+k3s1");
        assert.equal(older.status, 0, older.out);
      });

      it("cgroup v1 under Kubernetes 1.35 with the kubelet opt-out fail-cgroupv1=false: a warning naming the host, not a refusal (KEP-5573)", () => {
        const optedOut = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: "v1.35.1+k3s1", extraAgentConfig: { "kubelet-arg": ["fail-cgroupv1=false"] } })));
        assert.equal(optedOut.nodes[1]!.role, "agent");
        const h = standinHost(optedOut, 1, "cgroup-v1-opt-out");
        rmSync(join(h.root, "sys/fs/cgroup/cgroup.controllers"));
        const res = h.apply();
        assert.equal(res.status, 0, res.out);
        assert.ok(res.out.includes(`warning: ${optedOut.nodes[1]!.host} runs cgroup v1; kubelet-arg fail-cgroupv1=false`), res.out);
      });

      it("an agent's preflight.sh (run before its batch's drain) refuses a missing release naming the host, and changes nothing either way", () => {
        const config = upgraded("prod");
        const h = standinHost(config, 3, "agent-preflight", "v1.37.0+k3s1");
        const script = join(h.staging, "preflight.sh");
        const before = snapshot(h.root);
        const refused = run("bash", [script], { K3S_PLATFORM_ROOT: h.root, PATH: `${STUBS}:${process.env.PATH}` });
        assert.notEqual(refused.status, 0, refused.out);
        assert.ok(refused.out.includes(`preflight on host ${config.nodes[3]!.host}: the air-gap binary for v1.37.1+k3s1 is missing`), refused.out);
        fakeBinary(h.root, `${config.k3s.airgap.binaryPath}-v1.37.1+k3s1`, "v1.37.1+k3s1");
        const staged = snapshot(h.root);
        const ok = run("bash", [script], { K3S_PLATFORM_ROOT: h.root, PATH: `${STUBS}:${process.env.PATH}` });
        assert.equal(ok.status, 0, ok.out);
        // Its apply.sh's dry run (issue 26): an upgrade restarts K3s; the batch's drain reads the answer.
        assert.match(ok.out, /^apply\[prod-agent-1\]: dry run: restarts K3s: yes$/m);
        assert.deepEqual(snapshot(h.root), staged, "read-only");
        assert.notDeepEqual(before, staged);
      });

      it("download mode, k3s.binarySha256 (issue 24): checked against the release's sha256sum-<arch>.txt before the snapshot and cordon, and on the installed binary before the restart", () => {
        // The stand-in install script writes this binary for the release (install-standin.sh).
        const standinBinary = (release: string) => `#!/bin/sh\necho "k3s version ${release} (stand-in)"\n`;
        const sha = (text: string) => spawnSync("sha256sum", { input: text, encoding: "utf8" }).stdout.split(" ")[0]!;
        const real = sha(standinBinary("v1.37.1+k3s1"));
        /** A host whose curl serves the install script, and `listed` as the k3s line of the release's checksum file (install.sh download_hash). */
        const host = (label: string, pin: string, listed: string) => {
          const config = upgraded("staging", (k3s) => { k3s.binarySha256 = pin; });
          // An agent: its cordon and drain run in its batch's steps on the first server, not in its apply.
          const h = standinHost(config, config.nodes.findIndex((n) => n.role === "agent"), label, "v1.37.0+k3s1");
          const urls = join(h.root, "..", `${label}-urls.log`);
          writeFileSync(
            join(h.root, "..", `${label}-bin`, "curl"),
            `#!/bin/sh\nout=""; url=""\nwhile [ "$#" -gt 0 ]; do case "$1" in -o) out="$2"; shift ;; http*) url="$1" ;; esac; shift; done\necho "$url" >>${urls}\ncase "$url" in */sha256sum-amd64.txt) printf '%s  k3s\\n%s  k3s-airgap-images-amd64.tar.zst\\n' ${listed} ${"e".repeat(64)} >"$out" ;; *) cp "${INSTALL_STANDIN}" "$out" ;; esac\n`,
            { mode: 0o755 },
          );
          return { h, config, urls: () => h.read(urls) };
        };
        if (spawnSync("uname", ["-m"], { encoding: "utf8" }).stdout.trim() !== "x86_64") return; // the stubbed checksum file is amd64's

        const ok = host("binpin-ok", real, real);
        const res = ok.h.apply();
        assert.equal(res.status, 0, res.out);
        assert.match(ok.urls(), /^https:\/\/github\.com\/k3s-io\/k3s\/releases\/download\/v1\.37\.1\+k3s1\/sha256sum-amd64\.txt$/m);
        assert.match(ok.h.read(ok.h.logs.installs), /^install version=v1\.37\.1\+k3s1/m);

        // The release's checksum file lists another binary than the pin: refused before anything is disrupted.
        const wrong = host("binpin-wrong", "0".repeat(64), real);
        const refused = wrong.h.apply();
        assert.notEqual(refused.status, 0, refused.out);
        assert.ok(refused.out.includes(`preflight on host ${wrong.config.nodes.find((n) => n.role === "agent")!.host}: ${"https://github.com/k3s-io/k3s/releases/download/v1.37.1+k3s1/sha256sum-amd64.txt"} lists sha256 '${real}' for k3s, not ${"0".repeat(64)} (k3s.binarySha256)`), refused.out);
        assert.doesNotMatch(wrong.h.read(wrong.h.logs.stub), /etcd-snapshot|cordon|drain|systemctl stop/);
        assert.equal(wrong.h.read(wrong.h.logs.installs), "");
        // The agent's own preflight step (before its batch's drain on the first server) refuses it too.
        const early = run("bash", [join(wrong.h.staging, "preflight.sh")], { K3S_PLATFORM_ROOT: wrong.h.root, PATH: `${join(wrong.h.root, "..", "binpin-wrong-bin")}:${STUBS}:${process.env.PATH}` });
        assert.notEqual(early.status, 0, early.out);
        assert.match(early.out, /lists sha256 '[0-9a-f]{64}' for k3s, not 0{64} \(k3s\.binarySha256\)/);

        // The checksum file agrees with the pin, but the binary put in place does not: K3s is not restarted.
        const other = "f".repeat(64);
        const swapped = host("binpin-swapped", other, other);
        const stopped = swapped.h.apply();
        assert.notEqual(stopped.status, 0, stopped.out);
        assert.match(stopped.out, /step install: \/usr\/local\/bin\/k3s has sha256 [0-9a-f]{64}, not f{64} \(k3s\.binarySha256\); K3s was not restarted/);
        assert.doesNotMatch(swapped.h.read(swapped.h.logs.stub), /systemctl (stop|start)/);
      });

      it("download mode: a wrong install script digest stops the upgrade before its snapshot and cordon", () => {
        const config = upgraded("staging", (k3s) => { k3s.installScriptSha256 = "0".repeat(64); });
        const h = standinHost(config, 0, "digest", "v1.37.0+k3s1");
        const res = h.apply();
        assert.notEqual(res.status, 0, res.out);
        assert.ok(res.out.includes(`preflight on host ${config.nodes[0]!.host}: the install script from`), res.out);
        assert.doesNotMatch(h.read(h.logs.stub), /etcd-snapshot|cordon|drain/);
        assert.equal(h.read(h.logs.installs), "");
      });

      it("the install runs under env -i: K3S_*, K3S_PLATFORM_* and proxy variables of the caller's environment never reach the unit's env file; the planned ones do (issue 28)", () => {
        // install.sh create_env_file copies every K3S_*, CONTAINERD_* and (any case) *_PROXY variable
        // it sees: a login shell's export would end up in the unit.
        const config = sampleConfig("staging");
        const h = standinHost(config, 1, "hostile-env");
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        const hostile = {
          K3S_TOKEN: "hostile-token",
          K3S_URL: "https://evil.example:6443",
          K3S_PLATFORM_READY_TIMEOUT: "20",
          CONTAINERD_HOSTILE: "1",
          https_proxy: "http://evil.example:3128",
          NO_PROXY: "evil.example",
        };
        const res = h.apply(hostile);
        assert.equal(res.status, 0, res.out);
        const envFile = h.read(join(h.root, `etc/systemd/system/${h.service}.service.env`));
        for (const [name, value] of Object.entries(hostile)) {
          assert.ok(!envFile.includes(name === "NO_PROXY" ? value : `${name}=`), `${name} reached the env file:\n${envFile}`);
        }
        assert.doesNotMatch(envFile, /K3S_PLATFORM|STUB_LOG/);
        // The planned proxy (Pulumi.staging.yaml k3s.proxy) is there, as install-k3s.sh exports it.
        assert.match(envFile, /^HTTPS_PROXY='http:\/\/proxy\.example\.com:3128'$/m);
        assert.match(envFile, /^NO_PROXY='127\.0\.0\.0\/8,/m);
      });

      it("unit files: written 0644 under bundle.sh's umask 077; a hand edit (unit, env file, /etc/default) is corrected by the next apply", () => {
        const config = sampleConfig("dev");
        const h = standinHost(config, 1, "drift");
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        const unit = join(h.root, `etc/systemd/system/${h.service}.service`);
        const envFile = `${unit}.env`;
        assert.equal(h.apply().status, 0);
        assert.equal(statSync(unit).mode & 0o777, 0o644, "unit mode");
        assert.equal(statSync(envFile).mode & 0o777, 0o600, "env file mode (install.sh chmod 0600)");
        const installed = readFileSync(unit, "utf8");
        const installs = () => h.read(h.logs.installs).split("\n").filter(Boolean).length;
        assert.match(h.apply().out, /up to date/);
        assert.equal(installs(), 1);

        writeFileSync(unit, installed.replace("TimeoutStartSec=0", "TimeoutStartSec=0\nEnvironment=HAND=edit"));
        const fixed = h.apply();
        assert.equal(fixed.status, 0, fixed.out);
        assert.equal(installs(), 2, "a hand-edited unit re-runs the install");
        assert.equal(readFileSync(unit, "utf8"), installed);

        writeFileSync(envFile, "K3S_HAND=edit\n");
        assert.equal(h.apply().status, 0);
        assert.equal(installs(), 3, "a hand-edited env file re-runs the install");

        mkdirSync(join(h.root, "etc/default"), { recursive: true });
        writeFileSync(join(h.root, `etc/default/${h.service}`), "K3S_HAND=edit\n");
        assert.equal(h.apply().status, 0);
        assert.equal(installs(), 4, "an /etc/default override re-runs the install");
        assert.equal(statSync(join(h.root, `etc/default/${h.service}`), { throwIfNoEntry: false }), undefined, "moved aside");

        // A host applied before the unit record existed adopts its files: no restart.
        rmSync(join(h.root, "var/lib/k3s-platform/applied-unit"));
        writeFileSync(unit, `${installed}# unrecorded\n`);
        assert.match(h.apply().out, /up to date/);
        assert.equal(installs(), 4);
      });

      it("a change to apply.sh alone (its messages now name docs pages; issue 25) re-runs it and restarts nothing", () => {
        const config = sampleConfig("dev");
        const h = standinHost(config, 0, "messages");
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        const script = join(h.staging, "apply.sh");
        const current = readFileSync(script, "utf8");
        assert.ok(current.includes("docs/backup-and-restore.md"));
        // apply.sh as 0.1 rendered it: the same steps, messages naming README sections.
        writeFileSync(script, current.replaceAll("docs/backup-and-restore.md", 'README runbook ("Backups and restore")'));
        assert.equal(h.apply().status, 0);
        const stops = () => (h.read(h.logs.stub).match(/^systemctl stop /gm) ?? []).length;
        assert.equal(stops(), 1, "the first install starts K3s");
        writeFileSync(script, current);
        const res = h.apply();
        assert.equal(res.status, 0, res.out);
        assert.match(res.out, /K3s is up to date/);
        assert.equal(h.read(h.logs.installs).split("\n").filter(Boolean).length, 1, "the install script did not run again");
        assert.equal(stops(), 1, "nothing restarted");
      });

      it("NO_PROXY moving from every node address to the networks that cover them restarts nothing; a real NO_PROXY change restarts (issue 26)", () => {
        const config = sampleConfig("staging");
        const index = config.nodes.findIndex((n) => n.role === "agent");
        const h = standinHost(config, index, "noproxy");
        const planned = h.plan.files.find((f) => f.name === "install-k3s.sh")!.content;
        const line = planned.split("\n").find((l) => l.startsWith("export NO_PROXY="))!;
        // Before issue 26 every node address was listed ahead of the user's entries (install.ts noProxyList).
        const addresses = config.nodes.flatMap((n) => [n.host, ...(n.nodeIp ?? []), ...(n.externalIp ?? [])]);
        assert.ok(addresses.length >= 3 && addresses.every((a) => a.startsWith("198.51.100.")), addresses.join(","));
        const legacy = (extra: string[]) => planned.replace(line, line.replace("198.51.100.0/24", [...extra, "198.51.100.0/24"].join(",")));
        const installs = () => h.read(h.logs.installs).split("\n").filter(Boolean).length;
        const envFile = join(h.root, "etc/systemd/system/k3s-agent.service.env");
        writeFileSync(join(h.staging, "install-k3s.sh"), legacy(addresses));
        assert.equal(h.apply().status, 0);
        assert.equal(installs(), 1);
        assert.match(readFileSync(envFile, "utf8"), new RegExp(`NO_PROXY=.*${addresses[0]!.replace(/\./g, "\\.")}`));
        const restarts = () => (h.read(h.logs.stub).match(/^systemctl stop k3s-agent$/gm) ?? []).length;
        const restartsBefore = restarts();

        // The new plan: the env file still lists the addresses, which 198.51.100.0/24 covers.
        writeFileSync(join(h.staging, "install-k3s.sh"), planned);
        const moved = h.apply();
        assert.equal(moved.status, 0, moved.out);
        assert.match(moved.out, /NO_PROXY here lists entries the planned value covers/);
        assert.match(moved.out, /up to date/);
        assert.equal(installs(), 1, "no install");
        assert.equal(restarts(), restartsBefore, "no restart");
        // The real install script writes the value single-quoted (install.sh create_env_file: `sh -c export`).
        // The stand-in writes it that way too (issue 28); quoted here either way, and never twice.
        writeFileSync(envFile, readFileSync(envFile, "utf8").replace(/^NO_PROXY='?([^'\n]*)'?$/m, "NO_PROXY='$1'"));
        rmSync(join(h.root, "var/lib/k3s-platform/applied-unit")); // adopted as they are, as after an older apply
        const quoted = h.apply();
        assert.equal(quoted.status, 0, quoted.out);
        assert.match(quoted.out, /NO_PROXY here lists entries the planned value covers/);
        assert.equal(installs(), 1, "no install");
        // Another change restarts K3s with the planned value, and records what it installed: the
        // next apply finds it up to date (the kept value is no longer on the host).
        const configYaml = h.plan.files.find((f) => f.name === "config.yaml")!.content;
        writeFileSync(join(h.staging, "config.yaml"), `${configYaml}debug: true\n`);
        const other = h.apply();
        assert.equal(other.status, 0, other.out);
        assert.equal(installs(), 2, "installed for the other change");
        assert.doesNotMatch(readFileSync(envFile, "utf8"), new RegExp(addresses[0]!.replace(/\./g, "\\.") + "(,|$)", "m"), "the planned NO_PROXY is on the host now");
        const settled = h.apply();
        assert.match(settled.out, /K3s is up to date/);
        assert.doesNotMatch(settled.out, /NO_PROXY here lists/);
        assert.equal(installs(), 2, "nothing more");
        writeFileSync(join(h.staging, "config.yaml"), configYaml);
        assert.equal(h.apply().status, 0);
        assert.equal(installs(), 3, "config.yaml back as planned");

        // An uncovered address dropped (203.0.113.7 is outside every planned entry): a real change.
        const h2 = standinHost(config, index, "noproxy-uncovered");
        writeFileSync(join(h2.staging, "install-k3s.sh"), legacy([...addresses, "203.0.113.7"]));
        assert.equal(h2.apply().status, 0);
        writeFileSync(join(h2.staging, "install-k3s.sh"), planned);
        const changed = h2.apply();
        assert.equal(changed.status, 0, changed.out);
        assert.doesNotMatch(changed.out, /up to date/);
        assert.equal(h2.read(h2.logs.installs).split("\n").filter(Boolean).length, 2, "re-installed");
        assert.doesNotMatch(readFileSync(join(h2.root, "etc/systemd/system/k3s-agent.service.env"), "utf8"), /203\.0\.113\.7/);

        // An entry added to the planned value (a new noProxy domain): a real change as well.
        const added = loadStackConfig(variant("staging", (r) => r.k3s!.proxy!.noProxy!.push(".corp.example.net")));
        writeFileSync(join(h.staging, "install-k3s.sh"), planNode(added, added.nodes[index]!).files.find((f) => f.name === "install-k3s.sh")!.content);
        const grown = h.apply();
        assert.equal(grown.status, 0, grown.out);
        assert.equal(installs(), 4, "re-installed");
        assert.match(readFileSync(envFile, "utf8"), /\.corp\.example\.net/);
      });

      it("an agent's dry run (K3S_PLATFORM_APPLY_DRY_RUN, its preflight) says it restarts K3s exactly when the apply that follows does, and writes nothing on the host (issue 26)", () => {
        const config = sampleConfig("staging");
        const index = config.nodes.findIndex((n) => n.role === "agent");
        const h = standinHost(config, index, "dry-run");
        const planned = h.plan.files.find((f) => f.name === "install-k3s.sh")!.content;
        const configYaml = h.plan.files.find((f) => f.name === "config.yaml")!.content;
        const line = planned.split("\n").find((l) => l.startsWith("export NO_PROXY="))!;
        // The NO_PROXY the host was applied with: the planned one, with a generated address more that
        // a planned node network covers (198.51.100.0/24) or that none does, or without a planned entry.
        const octet = fc.integer({ min: 1, max: 254 });
        const previous = (kind: string, n: number): string =>
          kind === "same"
            ? planned
            : kind === "missing"
              ? planned.replace(line, line.replace(",.svc,", ","))
              : planned.replace(line, line.replace("198.51.100.0/24", `${kind === "covered" ? "198.51.100" : "203.0.113"}.${n},198.51.100.0/24`));
        const restarts = () => (h.read(h.logs.stub).match(/^systemctl stop k3s-agent$/gm) ?? []).length;
        const unit = join(h.root, "etc/systemd/system/k3s-agent.service");
        // Every NO_PROXY kind with each drift alone (a config.yaml change, a stopped unit, a hand-edited unit) and with none.
        const drifts = [{}, { config: true }, { stopped: true }, { unitEdited: true }] as Array<{ config?: boolean; stopped?: boolean; unitEdited?: boolean }>;
        const cases = ["same", "covered", "uncovered", "missing"].flatMap((noProxy) => drifts.map((d) => ({ noProxy, n: fc.sample(octet, 1)[0]!, ...d })));
        const seen = new Set<string>();
        for (const c of cases) {
          // The host as an earlier apply left it, then the drift this case adds.
          writeFileSync(join(h.staging, "install-k3s.sh"), previous(c.noProxy, c.n));
          writeFileSync(join(h.staging, "config.yaml"), configYaml);
          assert.equal(h.apply().status, 0);
          writeFileSync(join(h.staging, "install-k3s.sh"), planned);
          if (c.config) writeFileSync(join(h.staging, "config.yaml"), `${configYaml}debug: true\n`);
          if (c.stopped) rmSync(join(h.root, "run/active/k3s-agent"), { force: true });
          if (c.unitEdited) writeFileSync(unit, `${readFileSync(unit, "utf8")}# edited by hand\n`);
          const host = snapshot(h.root);
          const dry = h.apply({ K3S_PLATFORM_APPLY_DRY_RUN: "1" });
          assert.equal(dry.status, 0, dry.out);
          const verdict = /dry run: restarts K3s: (yes|no)$/m.exec(dry.out)?.[1];
          assert.ok(verdict, dry.out);
          assert.deepEqual(snapshot(h.root), host, `${JSON.stringify(c)}: the dry run wrote nothing`);
          const before = restarts();
          const res = h.apply();
          assert.equal(res.status, 0, res.out);
          assert.equal(verdict === "yes", restarts() > before, `${JSON.stringify(c)}: dry run said ${verdict}\n${dry.out}\n---\n${res.out}`);
          seen.add(verdict);
        }
        assert.deepEqual([...seen].sort(), ["no", "yes"], "both answers were tried");
      });

      it("a dual-stack cluster moves to node networks with 0 restarts: the IPv6 node addresses NO_PROXY listed are covered by the IPv6 network; an uncovered IPv6 address still restarts (issue 26)", () => {
        // Before the fix apply.sh's carry-over knew IPv4 CIDRs only: each node's old IPv6 address
        // counted as dropped, and every dual-stack node restarted once on the move.
        const networks = ["192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32"];
        const raw = fixtureRaw("dualstack");
        raw.k3s!.proxy = { httpProxy: "http://proxy.example.com:3128", noProxy: [] };
        raw.k3s!.nodeNetworks = networks;
        const config = loadStackConfig(raw);
        for (const index of config.nodes.keys()) {
          const node = config.nodes[index]!;
          const h = standinHost(config, index, `noproxy-ds-${index}`);
          const planned = h.plan.files.find((f) => f.name === "install-k3s.sh")!.content;
          const line = planned.split("\n").find((l) => l.startsWith("export NO_PROXY="))!;
          // As before issue 26: every node address (both families, canonical text) ahead of the networks.
          const addresses = [...new Set(config.nodes.flatMap((n) => [n.host, ...(n.nodeIp ?? []), ...(n.externalIp ?? [])]))];
          assert.ok(addresses.some((a) => a.includes(":")) && addresses.some((a) => a.includes(".")), addresses.join(","));
          const legacy = (extra: string[]) => planned.replace(line, line.replace(networks[0]!, [...extra, networks[0]!].join(",")));
          assert.notEqual(legacy(addresses), planned);
          const service = node.role === "server" ? "k3s" : "k3s-agent";
          const installs = () => h.read(h.logs.installs).split("\n").filter(Boolean).length;
          const restarts = () => (h.read(h.logs.stub).match(new RegExp(`^systemctl (stop|restart) ${service}$`, "gm")) ?? []).length;
          writeFileSync(join(h.staging, "install-k3s.sh"), legacy(addresses));
          assert.equal(h.apply().status, 0);
          assert.match(readFileSync(join(h.root, `etc/systemd/system/${service}.service.env`), "utf8"), /NO_PROXY=.*2001:db8::20/);
          movesWithoutRestart(h, planned, node.name, () => [installs(), restarts()]);
          assert.match(h.apply().out, /K3s is up to date/, "a second run too");

          // An IPv6 address outside every planned entry dropped: a real change, K3s restarts.
          const h2 = standinHost(config, index, `noproxy-ds-uncovered-${index}`);
          writeFileSync(join(h2.staging, "install-k3s.sh"), legacy([...addresses, "2001:db9::7"]));
          assert.equal(h2.apply().status, 0);
          writeFileSync(join(h2.staging, "install-k3s.sh"), planned);
          const changed = h2.apply();
          assert.equal(changed.status, 0, changed.out);
          assert.doesNotMatch(changed.out, /up to date/);
          assert.equal(h2.read(h2.logs.installs).split("\n").filter(Boolean).length, 2, "re-installed");
        }
      });

      it("a cluster whose node hosts are DNS names moves to node networks with 0 restarts: each host name NO_PROXY listed before its covered node IP is dropped safely; any other dropped name still restarts (issue 26)", () => {
        // Before the fix a dropped host name counted as an uncovered entry: every node of a
        // DNS-name cluster restarted once on the move.
        const config = loadStackConfig(
          variant("staging", (r) => {
            for (const n of r.nodes) Object.assign(n, { nodeIp: [n.host], host: `${n.name}.nodes.corp.internal` });
          }),
        );
        for (const index of config.nodes.keys()) {
          const node = config.nodes[index]!;
          const h = standinHost(config, index, `noproxy-dns-${index}`);
          const planned = h.plan.files.find((f) => f.name === "install-k3s.sh")!.content;
          const line = planned.split("\n").find((l) => l.startsWith("export NO_PROXY="))!;
          // Nodes join the first server at its node IP (topology.ts): no host name is listed.
          assert.doesNotMatch(line, /\.nodes\.corp\.internal/);
          // As before issue 26: each node's host, then its node IPs, ahead of the user's entries.
          const addresses = config.nodes.flatMap((n) => [n.host, ...(n.nodeIp ?? []), ...(n.externalIp ?? [])]);
          const legacy = (entries: string[]) => planned.replace(line, line.replace("198.51.100.0/24", [...entries, "198.51.100.0/24"].join(",")));
          const service = node.role === "server" ? "k3s" : "k3s-agent";
          const installs = (host = h) => host.read(host.logs.installs).split("\n").filter(Boolean).length;
          const restarts = () => (h.read(h.logs.stub).match(new RegExp(`^systemctl (stop|restart) ${service}$`, "gm")) ?? []).length;
          writeFileSync(join(h.staging, "install-k3s.sh"), legacy(addresses));
          assert.equal(h.apply().status, 0);
          assert.match(readFileSync(join(h.root, `etc/systemd/system/${service}.service.env`), "utf8"), /NO_PROXY=.*stg-agent-2\.nodes\.corp\.internal,198\.51\.100\.21/);
          movesWithoutRestart(h, planned, node.name, () => [installs(), restarts()]);

          // A dropped name not right before a covered node address (a host without nodeIp, a name
          // the user dropped from noProxy) is a real change: K3s restarts with the planned value.
          for (const [i, stray] of [["old-node.nodes.corp.internal"], ["gone.nodes.corp.internal", "203.0.113.7"], ["mirror.corp.internal", "198.51.100.20"]].entries()) {
            const h2 = standinHost(config, index, `noproxy-dns-stray-${index}-${i}`);
            // The last: its address stays listed as the user wrote it, so the name was no node's host entry.
            const withStray = stray.includes("198.51.100.20") ? legacy([...addresses.filter((a) => a !== "198.51.100.20"), ...stray]).replace(",198.51.100.0/24", ",198.51.100.0/24,198.51.100.20") : legacy([...addresses, ...stray]);
            const plannedHere = stray.includes("198.51.100.20") ? planned.replace(",198.51.100.0/24", ",198.51.100.0/24,198.51.100.20") : planned;
            writeFileSync(join(h2.staging, "install-k3s.sh"), withStray);
            assert.equal(h2.apply().status, 0);
            writeFileSync(join(h2.staging, "install-k3s.sh"), plannedHere);
            const changed = h2.apply();
            assert.equal(changed.status, 0, changed.out);
            assert.doesNotMatch(changed.out, /up to date/, `${node.name}: ${stray.join(",")}`);
            assert.equal(installs(h2), 2, `${node.name}: re-installed without ${stray[0]}`);
          }
        }
      });

      it("channel stack: one release for the cluster, resolved once; a config change after the channel moved keeps it; a node added after the move installs the recorded release; a node on another release is refused (issue 28)", () => {
        const config = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));
        const server = standinHost(config, 0, "channel-server");
        writeFileSync(join(server.channels, "stable"), "v1.31.4+k3s1\n");
        const step = server.releaseStep();
        assert.equal(step.status, 0, step.out);
        const release = parseRelease(step.out)!;
        assert.equal(release, "v1.31.4+k3s1", "the channel's release at the first up");
        assert.equal(server.applyWith(release).status, 0);

        // The channel moves on; a config change on the server and a new agent, after the move.
        writeFileSync(join(server.channels, "stable"), "v1.32.1+k3s1\n");
        writeFileSync(join(server.staging, "config.yaml"), `${server.plan.files.find((f) => f.name === "config.yaml")!.content}debug: true\n`);
        const changed = server.applyWith(release);
        assert.equal(changed.status, 0, changed.out);
        assert.deepEqual(server.read(server.logs.installs).split("\n").filter(Boolean), ["install version=v1.31.4+k3s1 channel=stable", "install version=v1.31.4+k3s1 channel=stable"]);
        const agent = standinHost(config, 1, "channel-agent-added");
        writeFileSync(join(agent.channels, "stable"), "v1.32.1+k3s1\n");
        const added = agent.applyWith(release);
        assert.equal(added.status, 0, added.out);
        assert.deepEqual(agent.read(agent.logs.installs).split("\n").filter(Boolean), ["install version=v1.31.4+k3s1 channel=stable"], "the recorded release, not the channel's v1.32.1");
        assert.match(agent.read(join(agent.root, "usr/local/bin/k3s")), /v1\.31\.4\+k3s1/);
        assert.match(added.out, /K3s v1\.31\.4\+k3s1 is running \(channel stable: the cluster's release\)/);
        // The step created again (a channel stack switched back from k3s.version) adopts what the first server runs.
        assert.equal(parseRelease(server.releaseStep().out), "v1.31.4+k3s1");

        // A node that runs another release (added by hand, or before this record): refused in preflight, nothing changed.
        const other = standinHost(config, 1, "channel-other-release", "v1.32.1+k3s1");
        const before = snapshot(other.root);
        const refused = other.applyWith(release);
        assert.notEqual(refused.status, 0, refused.out);
        assert.ok(refused.out.includes(`preflight on host ${config.nodes[1]!.host}: it runs K3s 'v1.32.1+k3s1', the cluster's release (channel stable, recorded at the first up) is v1.31.4+k3s1`), refused.out);
        assert.deepEqual(snapshot(other.root), before);
        // Without a release (an apply command not rendered from the k3s-release step): refused too.
        const missing = agent.apply();
        assert.notEqual(missing.status, 0, missing.out);
        assert.match(missing.out, /no cluster release for channel stable/);
      });

      it("channel stack: a changed k3s.channel value restarts no node, the release stays; a node applied while install-k3s.sh still exported the channel is adopted, not restarted (review of issue 28)", () => {
        const onChannel = (channel: string) => loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: undefined, channel })));
        const stable = onChannel("stable");
        const h = standinHost(stable, 1, "channel-changed");
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        writeFileSync(join(h.channels, "latest"), "v1.33.0+k3s1\n");
        const release = parseRelease(h.releaseStep().out)!;
        assert.equal(h.applyWith(release).status, 0);
        const installs = () => h.read(h.logs.installs).split("\n").filter(Boolean).length;
        assert.equal(installs(), 1);
        // The next up with channel latest stages its bundle; the k3s-release step ignores the change.
        for (const f of planNode(onChannel("latest"), stable.nodes[1]!).files) writeFileSync(join(h.staging, f.name), f.content);
        const changed = h.applyWith(release);
        assert.equal(changed.status, 0, changed.out);
        assert.match(changed.out, /K3s is up to date \(v1\.31\.4\+k3s1\)/);
        assert.equal(installs(), 1, "no re-install, no restart: the channel value is not what the node installs");
        assert.match(h.read(join(h.root, "usr/local/bin/k3s")), /v1\.31\.4\+k3s1/);

        // A node whose record was taken over the older install-k3s.sh, which exported INSTALL_K3S_CHANNEL
        // (INSTALL_K3S_VERSION, the cluster's release, always won over it): the same install, adopted.
        const old = standinHost(stable, 1, "channel-legacy-record");
        writeFileSync(join(old.channels, "stable"), "v1.31.4+k3s1\n");
        const planned = old.plan.files.find((f) => f.name === "install-k3s.sh")!.content;
        assert.doesNotMatch(planned, /INSTALL_K3S_CHANNEL/, "the channel is not exported: the cluster's release is");
        writeFileSync(join(old.staging, "install-k3s.sh"), planned.replace(/^export INSTALL_K3S_EXEC=agent$/m, "$&\nexport INSTALL_K3S_CHANNEL=stable"));
        assert.equal(old.applyWith(release).status, 0);
        writeFileSync(join(old.staging, "install-k3s.sh"), planned);
        const adopted = old.applyWith(release);
        assert.equal(adopted.status, 0, adopted.out);
        assert.match(adopted.out, /recorded the install as planned[\s\S]*K3s is up to date/);
        assert.equal(old.read(old.logs.installs).split("\n").filter(Boolean).length, 1, "adopted: no restart on the first up of this k3s-platform");
        assert.match(old.applyWith(release).out, /K3s is up to date/, "and from then on");
        // A real change still restarts it.
        writeFileSync(join(old.staging, "config.yaml"), `${old.plan.files.find((f) => f.name === "config.yaml")!.content}debug: true\n`);
        assert.equal(old.applyWith(release).status, 0);
        assert.equal(old.read(old.logs.installs).split("\n").filter(Boolean).length, 2);
      });

      it("channel stack pinned to its own release (k3s.version = the recorded release) restarts no node; pinned to another, it upgrades (review of issue 28)", () => {
        const stable = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));
        const pinnedTo = (version: string) => loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version, channel: undefined })));
        const installs = (h: ReturnType<typeof standinHost>) => h.read(h.logs.installs).split("\n").filter(Boolean);
        const onChannel = (label: string, legacyLine: boolean) => {
          const h = standinHost(stable, 1, label);
          writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
          const release = parseRelease(h.releaseStep().out)!;
          // legacyLine: applied by a k3s-platform whose install-k3s.sh still exported the channel.
          const script = h.plan.files.find((f) => f.name === "install-k3s.sh")!.content;
          if (legacyLine) writeFileSync(join(h.staging, "install-k3s.sh"), script.replace(/^export INSTALL_K3S_EXEC=agent$/m, "$&\nexport INSTALL_K3S_CHANNEL=stable"));
          assert.equal(h.applyWith(release).status, 0);
          return { h, release };
        };
        for (const legacyLine of [false, true]) {
          const { h, release } = onChannel(`pin-same-${legacyLine}`, legacyLine);
          for (const f of planNode(pinnedTo(release), stable.nodes[1]!).files) writeFileSync(join(h.staging, f.name), f.content);
          const pinned = h.apply();
          assert.equal(pinned.status, 0, pinned.out);
          assert.match(pinned.out, /recorded the install as planned[\s\S]*K3s is up to date \(v1\.31\.4\+k3s1\)/);
          assert.equal(installs(h).length, 1, `legacy line ${legacyLine}: no re-install, no restart`);
          assert.equal(h.read(h.logs.stub).match(/systemctl stop/g)?.length, 1, "stopped once: at the first install");
        }
        // Pinned to a newer release: the upgrade flow installs it, the adoption does not skip it.
        const { h } = onChannel("pin-newer", false);
        writeFileSync(join(h.channels, "stable"), "v1.31.5+k3s1\n");
        for (const f of planNode(pinnedTo("v1.31.5+k3s1"), stable.nodes[1]!).files) writeFileSync(join(h.staging, f.name), f.content);
        const upgraded = h.apply();
        assert.equal(upgraded.status, 0, upgraded.out);
        assert.doesNotMatch(upgraded.out, /recorded the install as planned/);
        assert.deepEqual(installs(h).map((l) => l.split(" ")[1]), ["version=v1.31.4+k3s1", "version=v1.31.5+k3s1"]);
      });

      const channelStack = () => loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));

      it("channel stack on a host with a read-only /usr/local/bin: the pin finds the binary where the unit runs it (/opt/bin; issue 28)", () => {
        const config = channelStack();
        const h = standinHost(config, 1, "opt-bin");
        // install.sh setup_env: root cannot write /usr/local/bin (here: not a directory) and /opt/bin exists.
        mkdirSync(join(h.root, "usr/local"), { recursive: true });
        writeFileSync(join(h.root, "usr/local/bin"), "");
        mkdirSync(join(h.root, "opt/bin"), { recursive: true });
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        const release = parseRelease(h.releaseStep().out)!;
        const first = h.applyWith(release);
        assert.equal(first.status, 0, first.out);
        assert.match(h.read(join(h.root, "opt/bin/k3s")), /v1\.31\.4\+k3s1/);
        // Found against the real install.sh: the first install's binary is where the unit now runs it.
        assert.match(first.out, /K3s v1\.31\.4\+k3s1 is running/);
        writeFileSync(join(h.channels, "stable"), "v1.32.1+k3s1\n");
        writeFileSync(join(h.staging, "config.yaml"), `${h.plan.files.find((f) => f.name === "config.yaml")!.content}debug: true\n`);
        // The k3s-release step is never re-run; re-run here, it adopts the running release from /opt/bin.
        assert.equal(parseRelease(h.releaseStep().out), "v1.31.4+k3s1");
        const res = h.applyWith(release);
        assert.equal(res.status, 0, res.out);
        assert.match(h.read(join(h.root, "opt/bin/k3s")), /v1\.31\.4\+k3s1/, "the channel did not upgrade it");
        assert.match(res.out, /K3s v1\.31\.4\+k3s1 is running \(channel stable: the cluster's release\)/);
        // preview:md reads the release from this stdout (recorded by the engine as the apply step's output).
        assert.equal(releaseFromApplyStdout(res.out), "v1.31.4+k3s1");
        assert.equal(releaseFromApplyStdout(h.applyWith(release).out), "v1.31.4+k3s1", "up to date says it too");
      });

      it("a binary replaced outside k3s-platform is drift: downloaded, the install restores the release; air-gapped, refused naming host and file (issue 28)", () => {
        const installs = (h: ReturnType<typeof standinHost>) => h.read(h.logs.installs).split("\n").filter(Boolean).length;
        const d = standinHost(channelStack(), 1, "swap-download");
        writeFileSync(join(d.channels, "stable"), "v1.31.4+k3s1\n");
        assert.equal(d.applyWith("v1.31.4+k3s1").status, 0);
        const release = d.read(join(d.root, "usr/local/bin/k3s"));
        writeFileSync(join(d.root, "usr/local/bin/k3s"), `${release}# swapped\n`);
        const fixed = d.applyWith("v1.31.4+k3s1");
        assert.equal(fixed.status, 0, fixed.out);
        assert.match(fixed.out, /\/usr\/local\/bin\/k3s changed outside k3s-platform \(sha256 [0-9a-f]{64}, recorded [0-9a-f]{64}\): re-installing the release/);
        assert.equal(installs(d), 2);
        assert.equal(d.read(join(d.root, "usr/local/bin/k3s")), release, "the release's binary is back");
        assert.match(d.applyWith("v1.31.4+k3s1").out, /K3s is up to date \(v1\.31\.4\+k3s1\)/);

        const config = upgraded("prod");
        const a = standinHost(config, 3, "swap-airgap");
        assert.equal(a.apply().status, 0);
        const binary = join(a.root, config.k3s.airgap.binaryPath);
        writeFileSync(binary, `${readFileSync(binary, "utf8")}# swapped\n`);
        const stops = () => (a.read(a.logs.stub).match(/^systemctl stop /gm) ?? []).length;
        const refused = a.apply();
        assert.notEqual(refused.status, 0, refused.out);
        assert.ok(refused.out.includes(`host ${config.nodes[3]!.host}: ${config.k3s.airgap.binaryPath} changed outside k3s-platform`), refused.out);
        assert.equal(stops(), 1, "not restarted onto it");
        rmSync(join(a.root, "var/lib/k3s-platform/applied-binary"));
        const adopted = a.apply();
        assert.equal(adopted.status, 0, adopted.out);
        assert.match(adopted.out, /recorded the sha256 of/);
        assert.match(adopted.out, /K3s is up to date/);
        assert.equal(stops(), 1);
      });

      it("a host applied before the binary record existed adopts its binary: no restart", () => {
        const config = sampleConfig("dev");
        const h = standinHost(config, 1, "binary-adopt");
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        assert.equal(h.apply().status, 0);
        rmSync(join(h.root, "var/lib/k3s-platform/applied-binary"));
        const res = h.apply();
        assert.match(res.out, /recorded the sha256 of \/usr\/local\/bin\/k3s\napply\[dev-agent-1\]: K3s is up to date/);
        assert.equal(h.read(h.logs.installs).split("\n").filter(Boolean).length, 1);
      });

      it("install.sh rewrites iptables only when it starts K3s itself; apply never lets it (INSTALL_K3S_SKIP_START=true): no rewrite on a forced restart (issue 28)", () => {
        const config = sampleConfig("dev");
        const h = standinHost(config, 0, "xtables");
        writeFileSync(join(h.channels, "stable"), "v1.31.4+k3s1\n");
        const xtables = mkdtempSync(join(h.root, "..", "xtables-"));
        for (const tool of ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"]) {
          writeFileSync(join(xtables, tool), "#!/bin/sh\n");
          chmodSync(join(xtables, tool), 0o755);
        }
        const path = { PATH: `${xtables}:${h.env.PATH}` };
        assert.equal(h.apply(path).status, 0);
        writeFileSync(join(h.staging, "config.yaml"), `${h.plan.files.find((f) => f.name === "config.yaml")!.content}debug: true\n`);
        const restart = h.apply(path);
        assert.equal(restart.status, 0, restart.out);
        assert.equal(h.read(h.logs.installs).split("\n").filter((l) => l.startsWith("install ")).length, 2, "installed twice");
        assert.doesNotMatch(h.read(h.logs.installs), /xtables/);
        // The stand-in does model the rewrite: the same script, let start K3s itself, runs it.
        const direct = spawnSync("sh", [INSTALL_STANDIN], { encoding: "utf8", env: { ...process.env, ...h.env, ...path, INSTALL_K3S_FORCE_RESTART: "true" } });
        assert.equal(direct.status, 0, direct.stderr);
        assert.match(h.read(h.logs.installs), /^xtables iptables\nxtables ip6tables$/m);
      });
    });

    it("refuses to install when the secret drop-in was not written", () => {
      const config = sampleConfig("dev");
      const { root, staging } = stageApply(config, planNode(config, config.nodes[1]!), "nosecret", undefined, false);
      const res = run("bash", [join(staging, "apply.sh")], { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, PATH: `${STUBS}:${process.env.PATH}` });
      assert.notEqual(res.status, 0);
      assert.match(res.out, /50-k3s-platform-secrets\.yaml is missing/);
    });
  });
});
