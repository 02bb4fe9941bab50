import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { loadStackConfig } from "../../../components/stack/load";
import { renderRestartScript, renderVerifyScript, rotationPhases } from "../../../components/encryption/render";
import { PATHS } from "../../../components/k3s/paths";
import { planCluster, planNode } from "../../../components/plan/node";
import { ENVS, REPO, sampleConfig, variant } from "../../helpers/samples";

const STUBS = join(REPO, "test", "helpers", "stubs");
/** The install script stand-in that follows install.sh (test/helpers/install-standin.sh). */
const INSTALL_STANDIN = join(REPO, "test", "helpers", "install-standin.sh");

/** Configs that together exercise every branch of the script templates. */
function scriptVariants(): Array<[string, ResolvedConfig]> {
  const edits: Array<[string, (raw: StackInput) => void]> = [
    ["dev: raspberry pi, selinux, firewall disabled, channel", (r) => {
      Object.assign(r.k3s!, { version: undefined, channel: "stable", selinux: true, firewall: { mode: "disable" } });
      r.nodes[1]!.raspberryPi = true;
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
          // prod sets no apiServerSources: the API stays open to any source; etcd only to the servers.
          "--add-port=6443/tcp",
          `--add-rich-rule=rule family="ipv4" source address="203.0.113.12" port port="2379-2380" protocol="tcp" accept`,
          `--add-rich-rule=rule family="ipv4" source address="203.0.113.23" port port="8472" protocol="udp" accept`,
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
    /**
     * `root` as a host apply.sh's preflight accepts: systemd running (/run/systemd/system),
     * cgroup v2 (/sys/fs/cgroup/cgroup.controllers) and, air-gapped, the pinned binary (a script
     * reporting `binary`, default the pinned release) and the install script stand-in in place.
     */
    function hostRoot(root: string, config: ResolvedConfig, binary = config.k3s.version ?? "") {
      mkdirSync(join(root, "run/systemd/system"), { recursive: true });
      mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
      writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n");
      if (config.k3s.airgap.enabled) {
        fakeBinary(root, config.k3s.airgap.binaryPath, binary);
        mkdirSync(dirname(join(root, config.k3s.airgap.installScriptPath)), { recursive: true });
        writeFileSync(join(root, config.k3s.airgap.installScriptPath), readFileSync(INSTALL_STANDIN, "utf8"));
      }
    }
    /** A stand-in k3s binary at `path` under `root` that reports `version`, as `k3s --version` does. */
    function fakeBinary(root: string, path: string, version: string) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), `#!/bin/sh\necho "k3s version ${version} (stand-in)"\n`);
      chmodSync(join(root, path), 0o755);
    }

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
      // Stand-in for the K3s install script: records the run; it starts the unit only without
      // INSTALL_K3S_SKIP_START=true (install.sh service_enable_and_start), so the restart is apply's own.
      writeFileSync(
        join(staging, "install-k3s.sh"),
        `#!/usr/bin/env bash\necho "install $INSTALL_MARK" >>"${log}"\nif [ "\${INSTALL_K3S_SKIP_START:-}" != true ]; then mkdir -p "$K3S_PLATFORM_ROOT/run/active" && touch "$K3S_PLATFORM_ROOT/run/active/k3s"; fi\n`,
      );
      chmodSync(join(staging, "install-k3s.sh"), 0o755);
      for (const secret of plan.secretFiles) {
        mkdirSync(dirname(join(root, secret.target)), { recursive: true });
        writeFileSync(join(root, secret.target), `${secret.name}: x\n`);
      }
      const env = { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}`, INSTALL_MARK: "1" };

      const first = run("bash", [join(staging, "apply.sh")], env);
      assert.equal(first.status, 0, first.out);
      assert.equal(readFileSync(join(root, PATHS.configYaml), "utf8"), plan.files.find((f) => f.name === "config.yaml")!.content);
      assert.equal(statSync(join(root, PATHS.configYaml)).mode & 0o777, 0o600);
      assert.ok(statSync(join(root, PATHS.psaYaml)).isFile(), "CIS psa.yaml is placed on servers");
      assert.ok(statSync(join(root, PATHS.auditLogDir)).isDirectory(), "audit log directory exists");
      // The state directory is the staging directory's parent: the SSH user must still traverse it.
      assert.equal(statSync(join(root, "var/lib/k3s-platform")).mode & 0o777, 0o755);

      const second = run("bash", [join(staging, "apply.sh")], { ...env, INSTALL_MARK: "2" });
      assert.equal(second.status, 0, second.out);
      assert.match(second.out, /up to date/);

      writeFileSync(join(staging, "config.yaml"), plan.files.find((f) => f.name === "config.yaml")!.content + "debug: true\n");
      const third = run("bash", [join(staging, "apply.sh")], { ...env, INSTALL_MARK: "3" });
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

    it("refuses to install when the secret drop-in was not written", () => {
      const config = sampleConfig("dev");
      const { root, staging } = stageApply(config, planNode(config, config.nodes[1]!), "nosecret", undefined, false);
      const res = run("bash", [join(staging, "apply.sh")], { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, PATH: `${STUBS}:${process.env.PATH}` });
      assert.notEqual(res.status, 0);
      assert.match(res.out, /50-k3s-platform-secrets\.yaml is missing/);
    });
  });
});
