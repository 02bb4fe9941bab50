import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { renderReencryptScript, renderRestartScript, renderVerifyScript, rotationPhases } from "../../../components/encryption/render";
import { K3S_IMAGES_DIR, renderInstallScript } from "../../../components/k3s/install";
import { renderOperations } from "../../../components/operations/render";
import { PATHS } from "../../../components/k3s/paths";
import { NodePlan, planCluster, planNode } from "../../../components/plan/node";
import { postRegistrationLabelCommand } from "../../../components/cluster/component";
import { inboundPorts, kernelModules } from "../../../components/os-prep/render";
import { raw, sh } from "../../../components/shell/sh";
import { systemdHost } from "../../helpers/host-root";
import { ENVS, fixtureConfig, fixtureRaw, REPO, sampleConfig, variant } from "../../helpers/samples";
import { pageAnchors } from "../../helpers/markdown";

const STUBS = join(REPO, "test", "helpers", "stubs");

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

const file = (plan: NodePlan, name: string) => plan.files.find((f) => f.name === name)!.content;

/** A pipe into a consumer that may exit before reading everything (grep -q/-l/-m, head, sed Nq). */
export const EARLY_EXIT_PIPE = /(?<!\|)\|(?!\|)\s*(grep\b[^|;&\n]*\s-[A-Za-z]*[qlm]|grep\b[^|;&\n]*--(quiet|silent|max-count|files-with-matches)|head\b|sed\b[^|;&\n]*\b\d+q\b)/;

/** Every script the program can send to a host, for the given configs. */
function allGeneratedScripts(configs: Array<[string, ResolvedConfig]>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [label, config] of configs) {
    const plan = planCluster(config);
    for (const n of plan.nodes) {
      for (const f of n.files.filter((x) => x.name.endsWith(".sh"))) out.push([`${label}/${n.node.name}/${f.name}`, f.content]);
      for (const [k, v] of Object.entries(n.commands)) out.push([`${label}/${n.node.name}/command-${k}`, v]);
    }
    out.push([`${label}/kubeconfig`, plan.kubeconfigCommand]);
    const labels = postRegistrationLabelCommand(plan);
    if (labels) out.push([`${label}/labels`, labels]);
    const rotating = { ...config, encryption: { ...config.encryption, enabled: true, rotation: 1 } };
    out.push([`${label}/verify`, renderVerifyScript(rotating, "0".repeat(64))], [`${label}/restart`, renderRestartScript("n")]);
    rotationPhases(rotating).forEach((p) => out.push([`${label}/rotation-${p.name}`, p.script]));
  }
  return out;
}

function variants(): Array<[string, ResolvedConfig]> {
  return [
    ...ENVS.map((env): [string, ResolvedConfig] => [env, sampleConfig(env)]),
    ["dualstack", fixtureConfig("dualstack")],
    // Issue 27: Cilium under CIS, flannel across networks, a Tailscale mesh.
    ["cilium", fixtureConfig("cilium")],
    ["wireguard", fixtureConfig("wireguard")],
    ["vpn", loadStackConfig(variant("dev", (r) => (r.k3s!.vpn = { provider: "tailscale" })))],
    ["pi+selinux+disable", loadStackConfig(variant("dev", (r) => {
      Object.assign(r.k3s!, { version: undefined, channel: "stable", selinux: true, firewall: { mode: "disable" } });
      r.nodes[1]!.raspberryPi = true;
    }))],
    ["airgap+wireguard+custom-images", loadStackConfig(variant("dev", (r) => {
      Object.assign(r.k3s!, { airgap: { enabled: true, binaryPath: "/opt/k3s/bin/k3s", imagesDir: "/opt/k3s/images" }, flannelBackend: "wireguard-native", firewall: { apiServerSources: ["192.0.2.0/24"] } });
    }))],
    ["custom-encryption-wildcards", loadStackConfig(variant("prod", (r) => {
      r.encryption = { mode: "custom", rotation: 1, custom: { resources: [{ resources: ["secrets", "configmaps", "*.apps"], providers: ["aescbc", "identity"] }] } };
    }))],
  ];
}

describe("host scripts", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3sp-host-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  describe("sh: the one quoting path", () => {
    it("quotes every value and inserts only Shell fragments as they are", () => {
      const hostile = `a'b"c$(touch /x)\`id\`;*\n-rf`;
      const s = sh`echo ${hostile} ${["x y", 3]} ${raw("$HOME")}`.text;
      const out = run("bash", ["-c", s.replace(/^echo /, "printf '%s|' ")]);
      assert.equal(out.out, `${hostile}|x y|3|${process.env.HOME}|`);
    });

    it("refuses undefined, null, non-finite numbers and objects: a type hole never reaches a host as text (issue 21)", () => {
      // The values a misspelt field or a missing optional gives at run time, where tsx does not type-check.
      const holes: unknown[] = [undefined, null, NaN, Infinity, {}, ["ok", undefined], true, () => "x"];
      for (const hole of holes) {
        const values = (Array.isArray(hole) ? hole : [hole]) as Array<string | number>;
        assert.throws(() => sh`IMAGES_DIR=${values}`, /^Error: sh: .* interpolated after "IMAGES_DIR="; only strings/, String(hole));
      }
      assert.throws(() => raw(undefined as unknown as string), /raw\(\) takes a string, not undefined/);
      assert.equal(sh`X=${""} Y=${0}`.text, "X='' Y=0", "an empty string and zero are values");
    });

    it("refuses a value inside quotes, where quoting would not make it one word", () => {
      assert.throws(() => sh`echo "node ${"x"} is missing"`, /inside double quotes/);
      assert.throws(() => sh`echo 'node ${"x"}'`, /inside single quotes/);
      assert.throws(() => sh`x="$(cat "$ROOT"${"/etc"} ${"y"})"`.text.length && sh`echo "$(date) ${"v"}"`, /inside double quotes/);
      // Inside $( ) inside "..." a value is a word again.
      assert.equal(sh`x="$(cat "$ROOT"${"/a b"})"`.text, `x="$(cat "$ROOT"'/a b')"`);
    });

    it("every script and command under components/ is written with sh (no other template builds shell)", () => {
      const tracked = spawnSync("git", ["ls-files", "components", "tools"], { cwd: REPO, encoding: "utf8" }).stdout.split("\n").filter((f) => f.endsWith(".ts"));
      const shellStarts = /(?<!sh)`(#!\/|sudo -n|bash |sh -c|umask |k3s kubectl|cat \/)/;
      for (const f of tracked.filter((f) => !f.startsWith("components/shell/"))) {
        const bad = readFileSync(join(REPO, f), "utf8").split("\n").find((l) => shellStarts.test(l));
        assert.equal(bad, undefined, `${f}: shell built outside sh\`\`: ${bad}`);
        assert.doesNotMatch(readFileSync(join(REPO, f), "utf8"), /\bshellQuote\(/, `${f}: quote through sh, not shellQuote directly`);
      }
    });

    it("keeps a value in a comment from ending the comment", () => {
      assert.equal(sh`# node ${"a\ntouch /x"}\ntrue`.text, "# node a?touch /x\ntrue");
    });
  });

  describe("no pipe into an early-exit consumer (SIGPIPE under pipefail)", () => {
    it("the pattern is recognised", () => {
      for (const bad of ["k3s --version | grep -qF v1", "x | grep -q y", "x |grep -m1 y", "x | head -n1", "x | grep --quiet y", "x | sed 1q"]) assert.match(bad, EARLY_EXIT_PIPE, bad);
      for (const ok of ["grep -q y <<<\"$x\"", "a || grep -q y f", "x | grep -E y", "x | sort | cut -d' ' -f1"]) assert.doesNotMatch(ok, EARLY_EXIT_PIPE, ok);
    });

    it("no generated script (every sample and variant, every node, every lifecycle step) has it", () => {
      const scripts = allGeneratedScripts(variants());
      assert.ok(scripts.length >= 60, `${scripts.length} scripts`);
      for (const [name, text] of scripts) {
        const line = text.split("\n").find((l) => EARLY_EXIT_PIPE.test(l.replace(/(^|\s)#.*$/, "")));
        assert.equal(line, undefined, `${name}: ${line}`);
      }
    });

    it("no generated step starts K3s with a blocking systemctl, or restarts it (issue 28)", () => {
      // K3s' unit is Type=notify with TimeoutStartSec=0: a blocking start may never return. A queued
      // restart lets the old process answer the readiness check; so: stop, then start --no-block.
      const unit = String.raw`(\bk3s\b|\bk3s-agent\b|"?\$\{?SERVICE\}?"?)`;
      const blocking = new RegExp(String.raw`\bsystemctl\s+(restart\b[^\n]*|start\b(?![^\n]*--no-block)[^\n]*)` + unit);
      for (const bad of ["systemctl restart k3s", "systemctl restart --no-block k3s", 'systemctl start "$SERVICE"', "  systemctl start k3s-agent || true"]) assert.match(bad, blocking, bad);
      for (const ok of ['systemctl start --no-block "$SERVICE"', "systemctl start --no-block k3s", "systemctl restart firewalld"]) assert.doesNotMatch(ok, blocking, ok);
      const scripts = allGeneratedScripts(variants());
      assert.ok(scripts.some(([, text]) => /systemctl start --no-block/.test(text)), "the scripts start K3s somewhere");
      for (const [name, text] of scripts) {
        const line = text.split("\n").find((l) => blocking.test(l.replace(/(^|\s)#.*$/, "")));
        assert.equal(line, undefined, `${name}: ${line}`);
      }
    });

    it("every generated script of these variants (air-gap images copy, wireguard, wildcards, guard) passes shellcheck", () => {
      const dir = mkdtempSync(join(scratch, "lint-"));
      const paths = allGeneratedScripts(variants())
        .filter(([name]) => !/command-|kubeconfig|labels/.test(name))
        .map(([name, text], i) => {
          const path = join(dir, `${i}-${name.replace(/\W+/g, "_")}.sh`);
          writeFileSync(path, text);
          return path;
        });
      const lint = run("shellcheck", ["--severity=style", ...paths]);
      assert.equal(lint.status, 0, lint.out);
    });

    it("no repository shell script (scripts, CI, test hosts, stand-ins, stubs) has it", () => {
      const tracked = spawnSync("git", ["ls-files"], { cwd: REPO, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
      const shell = tracked.filter((f) => {
        if (f.startsWith("test/golden/")) return true; // generated output is checked here too
        const path = join(REPO, f);
        if (!existsSync(path) || !statSync(path).isFile()) return false;
        return f.endsWith(".sh") || f === ".ci/run" || /^#!.*\b(ba|da)?sh\b/.test(readFileSync(path, "utf8").split("\n", 1)[0]!);
      });
      assert.ok(shell.length >= 20, `${shell.length} files`);
      for (const f of shell) {
        const bad = readFileSync(join(REPO, f), "utf8").split("\n").find((l) => EARLY_EXIT_PIPE.test(l.replace(/(^|\s)#.*$/, "")));
        assert.equal(bad, undefined, `${f}: ${bad}`);
      }
    });

    it("secrets encryption verify passes and prints JSON, 15 times in a row", () => {
      // The verify step used to pipe `secrets-encrypt status` into grep -q and failed at random.
      const config = sampleConfig("staging");
      const root = mkdtempSync(join(scratch, "verify-"));
      mkdirSync(join(root, "run/active"), { recursive: true });
      writeFileSync(join(root, "run/active/k3s"), "");
      mkdirSync(join(root, "encryption"));
      writeFileSync(join(root, "encryption/status"), "Enabled\n");
      const script = join(root, "verify.sh");
      writeFileSync(script, renderVerifyScript({ ...config, encryption: { ...config.encryption, enabled: true, mode: "k3s" } }));
      for (let i = 0; i < 15; i++) {
        const r = run("bash", [script], { K3S_PLATFORM_ROOT: root, PATH: `${STUBS}:${process.env.PATH}` });
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /"enable":true/);
      }
    });
  });

  describe("messages and comments name docs pages that exist (issue 25)", () => {
    it("no generated script names a README section (the README is the front door; its old sections moved to docs/)", () => {
      for (const [name, text] of everyScript()) assert.doesNotMatch(text, /\bREADME\b/, name);
    });

    /** Node scripts and every operation's script, with removal and rebuild armed. */
    function everyScript(): Array<[string, string]> {
      const facts = { baseline: {}, token: "<token>", tokenSalt: "<salt>", encryptionKeys: { secretbox: [{ name: "k", secret: "<key>" }], aescbc: [{ name: "k", secret: "<key>" }] }, restoreToken: "" };
      const armed = loadStackConfig(variant("prod", (r) => { r.nodes[3]!.rebuild = 1; r.nodes[4]!.decommission = true; }));
      const configs = [...variants(), ["prod+rebuild+decommission", armed] as [string, ResolvedConfig]];
      const ops = configs.flatMap(([label, config]) => [...renderOperations(config, planCluster(config), facts)].filter(([path]) => path.endsWith(".sh")).map(([path, text]): [string, string] => [`${label}/${path}`, text]));
      return [...allGeneratedScripts(configs), ...ops];
    }

    it("every docs/<page>.md[#anchor] a generated script names is a page with that heading", () => {
      const seen = new Set<string>();
      for (const [name, text] of everyScript()) {
        for (const m of text.matchAll(/docs\/([a-z0-9-]+\.md)(?:#([a-z0-9-]+))?/g)) {
          seen.add(m[0]);
          const page = join(REPO, "docs", m[1]!);
          assert.ok(existsSync(page), `${name}: ${m[0]}: no such page`);
          if (m[2] === undefined) continue;
          const anchors = pageAnchors(page);
          assert.ok(anchors.includes(m[2]), `${name}: ${m[0]}: no such heading (${anchors.join(", ")})`);
        }
      }
      // The test reads what it means to: the messages that named README sections now name these.
      for (const link of ["docs/backup-and-restore.md", "docs/rebuilding.md", "docs/removing-and-replacing-nodes.md#removing-a-node", "docs/in-cluster.md#secrets-encryption-at-rest-k3s-platformencryption"]) {
        assert.ok(seen.has(link), `${link} is named somewhere (${[...seen].join(", ")})`);
      }
    });
  });

  describe("apply.sh", () => {
    /** Stages a node's files with an install stand-in that records its environment. */
    function stage(plan: NodePlan, root: string) {
      const staging = mkdtempSync(join(scratch, "staging-"));
      systemdHost(root);
      for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
      writeFileSync(
        join(staging, "install-k3s.sh"),
        // It starts the unit only without INSTALL_K3S_SKIP_START=true (install.sh service_enable_and_start).
        `#!/usr/bin/env bash\necho "install skip_start=\${INSTALL_K3S_SKIP_START:-}" >>"$K3S_PLATFORM_ROOT/install.log"\nif [ "\${INSTALL_K3S_SKIP_START:-}" != true ]; then mkdir -p "$K3S_PLATFORM_ROOT/run/active" && touch "$K3S_PLATFORM_ROOT/run/active/${plan.node.role === "server" ? "k3s" : "k3s-agent"}"; fi\n`,
      );
      chmodSync(join(staging, "install-k3s.sh"), 0o755);
      for (const secret of plan.secretFiles) {
        mkdirSync(dirname(join(root, secret.target)), { recursive: true });
        writeFileSync(join(root, secret.target), `${secret.name}: x\n`);
      }
      return { staging, env: { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: join(root, "systemctl.log"), PATH: `${STUBS}:${process.env.PATH}` } };
    }
    /** The K3s restarts apply asked systemd for (the systemctl stub's log). */
    const restarts = (root: string) => (readFileSync(join(root, "systemctl.log"), "utf8").match(/^systemctl stop k3s(-agent)?\nsystemctl start --no-block k3s(-agent)?$/gm) ?? []).length;

    it("a registries.yaml change restarts K3s, which the install script alone would skip (it only writes the unit)", () => {
      const config = sampleConfig("dev");
      const root = mkdtempSync(join(scratch, "restart-"));
      const first = stage(planNode(config, config.nodes[1]!), root);
      assert.equal(run("bash", [join(first.staging, "apply.sh")], first.env).status, 0);
      const mirrored = loadStackConfig(variant("dev", (r) => (r.k3s!.registries = { mirrors: { "docker.io": { endpoint: ["https://mirror.example.com:5000"] } } })));
      const second = stage(planNode(mirrored, mirrored.nodes[1]!), root);
      const r = run("bash", [join(second.staging, "apply.sh")], second.env);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /updated \/etc\/rancher\/k3s\/registries\.yaml/);
      assert.equal(readFileSync(join(root, "install.log"), "utf8"), "install skip_start=true\ninstall skip_start=true\n");
      assert.equal(restarts(root), 2, "one restart per install, asked without blocking");
      assert.match(run("bash", [join(second.staging, "apply.sh")], second.env).out, /up to date/);
      assert.equal(restarts(root), 2, "nothing changed: no restart");
    });

    it("removes a secret file the plan no longer has (registryAuth removed), and only files it placed", () => {
      const config = sampleConfig("dev");
      const root = mkdtempSync(join(scratch, "manifest-"));
      const withAuth = planNode(config, config.nodes[1]!, { hasRegistryAuth: true });
      assert.ok(withAuth.secretFiles.some((s) => s.target === PATHS.registriesYaml));
      const a = stage(withAuth, root);
      assert.equal(run("bash", [join(a.staging, "apply.sh")], a.env).status, 0);
      mkdirSync(join(root, "etc/rancher/k3s/config.yaml.d"), { recursive: true });
      writeFileSync(join(root, "etc/rancher/k3s/config.yaml.d/99-operator.yaml"), "debug: true\n");

      const without = planNode(config, config.nodes[1]!);
      const b = stage(without, root);
      rmSync(join(root, "install.log"));
      const r = run("bash", [join(b.staging, "apply.sh")], b.env);
      assert.equal(r.status, 0, r.out);
      assert.ok(!existsSync(join(root, PATHS.registriesYaml)), "the credentials left the host");
      assert.match(r.out, /removed \/etc\/rancher\/k3s\/registries\.yaml/);
      assert.ok(existsSync(join(root, "etc/rancher/k3s/config.yaml.d/99-operator.yaml")), "a file it never placed stays");
      assert.equal(readFileSync(join(root, "install.log"), "utf8"), "install skip_start=true\n");
      assert.equal(restarts(root), 2, "K3s restarts to drop the file");
    });

    it("refuses to turn encryption off (or switch mode) on a running cluster unless a migration was recorded", () => {
      const on = loadStackConfig(variant("staging", (r) => (r.encryption = { enabled: true })));
      const off = loadStackConfig(variant("staging", (r) => (r.encryption = { enabled: false })));
      const root = mkdtempSync(join(scratch, "enc-guard-"));
      const a = stage(planNode(on, on.nodes[0]!), root);
      assert.equal(run("bash", [join(a.staging, "apply.sh")], a.env).status, 0);
      const configBefore = readFileSync(join(root, PATHS.configYaml), "utf8");
      assert.match(configBefore, /secrets-encryption: true/);

      const b = stage(planNode(off, off.nodes[0]!), root);
      const refused = run("bash", [join(b.staging, "apply.sh")], b.env);
      assert.notEqual(refused.status, 0);
      assert.match(refused.out, /encryption on this running cluster is k3s; the config asks for off/);
      assert.match(refused.out, /echo off > \/var\/lib\/k3s-platform\/encryption-migrated/);
      assert.equal(readFileSync(join(root, PATHS.configYaml), "utf8"), configBefore, "nothing was placed");

      writeFileSync(join(root, "var/lib/k3s-platform/encryption-migrated"), "off\n");
      const migrated = run("bash", [join(b.staging, "apply.sh")], b.env);
      assert.equal(migrated.status, 0, migrated.out);
      assert.doesNotMatch(readFileSync(join(root, PATHS.configYaml), "utf8"), /secrets-encryption: true/);
    });
  });

  describe("install-k3s.sh", () => {
    it("air-gap: passes INSTALL_K3S_BIN_DIR and copies imagesDir tarballs to the K3s images directory, idempotently", () => {
      const config = loadStackConfig(variant("dev", (r) => {
        Object.assign(r.k3s!, { airgap: { enabled: true, binaryPath: "/opt/k3s/bin/k3s", imagesDir: "/opt/k3s/images", installScriptPath: "/opt/k3s/install.sh" } });
      }));
      const root = mkdtempSync(join(scratch, "airgap-"));
      mkdirSync(join(root, "opt/k3s/bin"), { recursive: true });
      mkdirSync(join(root, "opt/k3s/images"), { recursive: true });
      writeFileSync(join(root, "opt/k3s/bin/k3s"), `#!/bin/sh\necho "k3s version ${config.k3s.version} (abc)"; echo "go version go1.22"\n`, { mode: 0o755 });
      writeFileSync(join(root, "opt/k3s/install.sh"), `#!/bin/sh\necho "bin_dir=$INSTALL_K3S_BIN_DIR" >>"$K3S_PLATFORM_ROOT/install.log"\n`);
      writeFileSync(join(root, "opt/k3s/images/k3s-airgap-images-amd64.tar.zst"), "images");
      writeFileSync(join(root, "opt/k3s/images/notes.txt"), "not an image");
      const script = join(root, "install-k3s.sh");
      writeFileSync(script, renderInstallScript(config, config.nodes[0]!));
      const env = { K3S_PLATFORM_ROOT: root };
      const first = run("bash", [script], env);
      assert.equal(first.status, 0, first.out);
      assert.equal(readFileSync(join(root, "install.log"), "utf8"), "bin_dir=/opt/k3s/bin\n");
      assert.equal(readFileSync(join(root, K3S_IMAGES_DIR, "k3s-airgap-images-amd64.tar.zst"), "utf8"), "images");
      assert.ok(!existsSync(join(root, K3S_IMAGES_DIR, "notes.txt")));
      const second = run("bash", [script], env);
      assert.doesNotMatch(second.out, /copied/);

      writeFileSync(join(root, "opt/k3s/bin/k3s"), `#!/bin/sh\necho "k3s version ${config.k3s.version}1 (abc)"\n`, { mode: 0o755 });
      const wrong = run("bash", [script], env);
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.out, /\/opt\/k3s\/bin\/k3s is not v1\.\d+\.\d+\+k3s\d+ /);
    });

    it("checks installScriptSha256 before running the downloaded script", () => {
      const body = "#!/bin/sh\necho ran >>\"$K3S_PLATFORM_ROOT/ran\"\n";
      const sha = spawnSync("sha256sum", { input: body, encoding: "utf8" }).stdout.split(" ")[0]!;
      const root = mkdtempSync(join(scratch, "sha-"));
      const bin = join(root, "bin");
      mkdirSync(bin);
      writeFileSync(join(root, "payload.sh"), body);
      // Stand-in for curl: "downloads" the payload to the -o path.
      writeFileSync(join(bin, "curl"), `#!/bin/sh\nwhile [ "$1" != -o ]; do shift; done\ncp ${join(root, "payload.sh")} "$2"\n`, { mode: 0o755 });
      for (const [want, ok] of [[sha, true], ["0".repeat(64), false]] as const) {
        const config = loadStackConfig(variant("dev", (r) => (r.k3s!.installScriptSha256 = want)));
        const script = join(root, "install.sh");
        writeFileSync(script, renderInstallScript(config, config.nodes[0]!));
        rmSync(join(root, "ran"), { force: true });
        const r = run("bash", [script], { K3S_PLATFORM_ROOT: root, PATH: `${bin}:${process.env.PATH}` });
        assert.equal(r.status === 0, ok, r.out);
        assert.equal(existsSync(join(root, "ran")), ok, ok ? "ran" : "a script with the wrong hash never runs");
        if (!ok) assert.match(r.out, /not 0{64} \(k3s\.installScriptSha256\)/);
      }
    });
  });

  describe("os-prep.sh: what the features need", () => {
    it("Raspberry Pi: patches only the FIRST line of cmdline.txt (flags on a later line do not count)", () => {
      const config = loadStackConfig(variant("dev", (r) => (r.nodes[1]!.raspberryPi = true)));
      const root = mkdtempSync(join(scratch, "pi2-"));
      mkdirSync(join(root, "boot"), { recursive: true });
      writeFileSync(join(root, "boot/cmdline.txt"), "console=serial0 rootwait\ncgroup_memory=1 cgroup_enable=memory\n");
      const script = join(root, "os-prep.sh");
      writeFileSync(script, file(planNode(config, config.nodes[1]!), "os-prep.sh"));
      const r = run("bash", [script], { K3S_PLATFORM_ROOT: root, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}` });
      assert.notEqual(r.status, 0);
      assert.match(r.out, /reboot dev-agent-1/);
      const lines = readFileSync(join(root, "boot/cmdline.txt"), "utf8").split("\n");
      assert.equal(lines[0], "console=serial0 rootwait cgroup_memory=1 cgroup_enable=memory");
      assert.equal(lines[1], "cgroup_memory=1 cgroup_enable=memory", "the rest is left alone");
    });

    it("derives modules and ports from the flannel backend, datastore and role", () => {
      const wg = loadStackConfig(variant("dev", (r) => (r.k3s!.flannelBackend = "wireguard-native")));
      assert.deepEqual(kernelModules(wg).map((m) => m.name), ["br_netfilter", "overlay", "wireguard"]);
      // 51821/udp is WireGuard's IPv6 port, opened only when the cluster uses IPv6 (docs.k3s.io
      // installation/requirements "Inbound Rules"; issue 27): dev is IPv4-only.
      assert.deepEqual(inboundPorts(wg, wg.nodes[1]!).map((p) => `${p.port}/${p.proto}`), ["10250/tcp", "51820/udp"]);
      const hostGw = loadStackConfig(variant("dev", (r) => (r.k3s!.flannelBackend = "host-gw")));
      assert.deepEqual(kernelModules(hostGw).map((m) => m.name), ["br_netfilter", "overlay"]);
      assert.deepEqual(inboundPorts(hostGw, hostGw.nodes[0]!).map((p) => p.port), ["6443", "2379-2380", "10250"]);
      const sqlite = loadStackConfig(variant("dev", (r) => (r.k3s!.datastore = { type: "sqlite" })));
      assert.ok(!inboundPorts(sqlite, sqlite.nodes[0]!).some((p) => p.port === "2379-2380"), "no etcd port without embedded etcd");
      const wgScript = file(planNode(wg, wg.nodes[0]!), "os-prep.sh");
      assert.match(wgScript, /load_module wireguard 'flannel-backend wireguard-native needs the wireguard module: kernel >= 5\.6, or install wireguard-dkms'/);
    });

    it("firewall open: intra-cluster ports only from the nodes, the API from apiServerSources", () => {
      const config = loadStackConfig(variant("prod", (r) => (r.k3s!.firewall = { mode: "open", apiServerSources: ["192.0.2.0/24"] })));
      const servers = config.nodes.filter((n) => n.role === "server").map((n) => n.host);
      // Without k3s.nodeNetworks, "the nodes" are each node's address.
      const unnetworked = loadStackConfig(variant("prod", (r) => {
        r.k3s!.firewall = { mode: "open", apiServerSources: ["192.0.2.0/24"] };
        delete r.k3s!.nodeNetworks;
      }));
      const all = unnetworked.nodes.map((n) => n.host);
      const portsOf = (c: typeof config, node = c.nodes[0]!) => (port: string) => inboundPorts(c, node).find((p) => p.port === port)!.sources;
      const each = portsOf(unnetworked);
      assert.deepEqual(each("2379-2380"), servers);
      assert.deepEqual(each("8472"), all);
      assert.deepEqual(each("10250"), [...all, ...config.k3s.clusterCidr]);
      assert.deepEqual(each("6443"), ["192.0.2.0/24", ...all, ...config.k3s.clusterCidr]);
      // With them (the prod sample declares 203.0.113.0/24), the networks: etcd stays the servers'.
      const by = portsOf(config);
      assert.deepEqual(config.k3s.nodeNetworks, ["203.0.113.0/24"]);
      assert.deepEqual(by("2379-2380"), servers);
      assert.deepEqual(by("8472"), ["203.0.113.0/24"]);
      assert.deepEqual(by("10250"), ["203.0.113.0/24", ...config.k3s.clusterCidr]);
      assert.deepEqual(by("6443"), ["192.0.2.0/24", "203.0.113.0/24", ...config.k3s.clusterCidr]);
      // Issue 26: an agent added or removed changes no other node's firewall (nor its os-prep step).
      const grown = loadStackConfig(variant("prod", (r) => {
        r.k3s!.firewall = { mode: "open", apiServerSources: ["192.0.2.0/24"] };
        r.nodes.push({ ...structuredClone(r.nodes[5]!), name: "prod-agent-9", host: "203.0.113.29" });
      }));
      for (const node of config.nodes) {
        assert.deepEqual(inboundPorts(grown, grown.nodes.find((n) => n.name === node.name)!), inboundPorts(config, node), node.name);
        assert.equal(planNode(grown, grown.nodes.find((n) => n.name === node.name)!).hashes.osPrep, planNode(config, node).hashes.osPrep, node.name);
      }
      // Without apiServerSources (staging states none) the API stays open to any source.
      assert.equal(inboundPorts(sampleConfig("staging"), sampleConfig("staging").nodes[0]!).find((p) => p.port === "6443")!.sources, "any");

      // A host opened by an older version (8472/udp to any) gets that rule closed, then scoped ones.
      const root = mkdtempSync(join(scratch, "fw-"));
      mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
      writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "memory\n");
      mkdirSync(join(root, "run/active"), { recursive: true });
      writeFileSync(join(root, "run/active/firewalld"), "");
      mkdirSync(join(root, "fw"));
      writeFileSync(join(root, "fw/rules"), "port 8472/udp\nport 6443/tcp\n");
      const log = join(root, "stub.log");
      writeFileSync(log, "");
      const script = join(root, "os-prep.sh");
      writeFileSync(script, file(planNode(config, config.nodes[0]!), "os-prep.sh"));
      const r = run("bash", [script], { K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` });
      assert.equal(r.status, 0, r.out);
      const rules = readFileSync(join(root, "fw/rules"), "utf8").split("\n");
      assert.ok(!rules.includes("port 8472/udp") && !rules.includes("port 6443/tcp"), rules.join("\n"));
      assert.ok(rules.includes(`rich rule family="ipv4" source address="192.0.2.0/24" port port="6443" protocol="tcp" accept`));
      assert.ok(!rules.some((l) => l.includes('port="2379-2380"') && l.includes("203.0.113.21")), "agents do not reach etcd");
    });
  });

  /** A node's os-prep.sh in a sandbox root with the stubs; `bin` (first on PATH) takes more stand-ins. */
  function osPrepSandbox(prefix: string, config: ResolvedConfig, nodeIndex: number) {
    const root = mkdtempSync(join(scratch, prefix));
    mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
    writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "memory\n");
    const log = join(root, "stub.log");
    writeFileSync(log, "");
    const bin = join(root, "bin");
    mkdirSync(bin);
    const script = join(root, "os-prep.sh");
    writeFileSync(script, file(planNode(config, config.nodes[nodeIndex]!), "os-prep.sh"));
    const env = { K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${bin}:${STUBS}:${process.env.PATH}` };
    return { root, bin, run: () => run("bash", [script], env) };
  }

  describe("nodes across networks (issue 27)", () => {
    it("k3s.vpn: os-prep stops before K3s when the tailscale client is missing, and passes with it", () => {
      const config = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { vpn: { provider: "tailscale" }, firewall: { mode: "ignore" } })));
      const { bin, run: osPrep } = osPrepSandbox("vpn-", config, 1);
      const without = osPrep();
      assert.notEqual(without.status, 0);
      assert.match(without.out, /tailscale client is not installed/);
      writeFileSync(join(bin, "tailscale"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      const withIt = osPrep();
      assert.equal(withIt.status, 0, withIt.out);
    });
  });

  describe("IPv6 forwarding and router advertisements (review of issue 27)", () => {
    // os-prep turns IPv6 forwarding on; the kernel then ignores router advertisements unless
    // accept_ra is 2, so a default route learned from them expires (docs.k3s.io "Single-stack IPv6
    // Networking"). The `ip` stand-in prints what `ip -6 route show default proto ra` prints on a
    // host with SLAAC on eth0 and a VLAN eth0.100 (iproute2 ip-route(8) output format).
    function osPrepRun(config: ResolvedConfig, routes: string) {
      const { root, bin, run: again } = osPrepSandbox("ra-", config, 0);
      writeFileSync(join(bin, "ip"), `#!/bin/sh\n[ "$*" = "-6 route show default proto ra" ] || { echo "ip stand-in: unexpected $*" >&2; exit 2; }\nprintf '%s' '${routes}'\n`, { mode: 0o755 });
      return { root, again, first: again() };
    }
    const dualStack = () => {
      const raw = structuredClone(fixtureRaw("dualstack"));
      raw.k3s!.firewall = { mode: "ignore" };
      return loadStackConfig(raw);
    };
    const ra = "default via fe80::1 dev eth0 proto ra metric 1024 expires 1790sec hoplimit 64 pref medium\ndefault via fe80::2 dev eth0.100 proto ra metric 1025 expires 1790sec pref medium\n";

    it("keeps accepting advertisements (accept_ra 2, persisted) on the interfaces whose default route came from one, once", () => {
      const { root, first, again } = osPrepRun(dualStack(), ra);
      assert.equal(first.status, 0, first.out);
      assert.equal(readFileSync(join(root, "proc/sys/net/ipv6/conf/all/forwarding"), "utf8").trim(), "1");
      for (const dev of ["eth0", "eth0/100"]) assert.equal(readFileSync(join(root, `proc/sys/net/ipv6/conf/${dev}/accept_ra`), "utf8").trim(), "2", dev);
      assert.equal(readFileSync(join(root, "etc/sysctl.d/91-k3s-platform-accept-ra.conf"), "utf8"), "net.ipv6.conf.eth0.accept_ra = 2\nnet.ipv6.conf.eth0/100.accept_ra = 2\n");
      const second = again();
      assert.equal(second.status, 0, second.out);
      assert.doesNotMatch(second.out, /accept_ra/, "idempotent: nothing changes on the second run");
    });

    it("leaves hosts with static routes, and clusters without IPv6, untouched", () => {
      const staticHost = osPrepRun(dualStack(), "");
      assert.equal(staticHost.first.status, 0, staticHost.first.out);
      assert.ok(!existsSync(join(staticHost.root, "etc/sysctl.d/91-k3s-platform-accept-ra.conf")));
      const v4 = loadStackConfig(variant("dev", (r) => Object.assign(r.k3s!, { firewall: { mode: "ignore" } })));
      assert.doesNotMatch(file(planNode(v4, v4.nodes[0]!), "os-prep.sh"), /accept_ra|proto ra/);
    });
  });

  describe("encryption re-encrypt (custom mode)", () => {
    it("re-writes every resource type the configuration names, wildcards expanded", () => {
      const config = loadStackConfig(variant("prod", (r) => {
        r.encryption = { mode: "custom", rotation: 1, custom: { resources: [{ resources: ["secrets", "configmaps"], providers: ["aescbc"] }, { resources: ["*.apps", "none"], providers: ["aescbc", "identity"] }] } };
      }));
      const root = mkdtempSync(join(scratch, "reencrypt-"));
      mkdirSync(join(root, "run/active"), { recursive: true });
      writeFileSync(join(root, "run/active/k3s"), "");
      const log = join(root, "stub.log");
      writeFileSync(log, "");
      const script = join(root, "reencrypt.sh");
      writeFileSync(script, renderReencryptScript(config.encryption));
      const r = run("bash", [script], { K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` });
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), ["secrets", "configmaps", "deployments.apps", "statefulsets.apps"].map((k) => `k3s replace ${k}`));
      assert.match(r.out, /no none to re-write/);

      const all = loadStackConfig(variant("prod", (r) => {
        r.encryption = { mode: "custom", rotation: 1, custom: { resources: [{ resources: ["*.*"], providers: ["aescbc"] }] } };
      }));
      writeFileSync(log, "");
      writeFileSync(script, renderReencryptScript(all.encryption));
      assert.equal(run("bash", [script], { K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` }).status, 0);
      assert.equal(readFileSync(log, "utf8").trim().split("\n").length, 4, "every listed type of every group");
    });
  });

  describe("validation of values that reach a host", () => {
    const refuse = (edit: (r: StackInput) => void, path: RegExp) => assert.throws(() => loadStackConfig(variant("dev", edit)), path);
    it("refuses newlines and control characters (proxy, noProxy, paths, extra flags)", () => {
      refuse((r) => (r.k3s!.proxy = { httpProxy: "http://p.example.com:3128", noProxy: ["a.example.com\nK3S_CLUSTER_RESET=true"] }), /k3s\.proxy\.noProxy\[0\]: must be a single line/);
      refuse((r) => (r.k3s!.airgap = { enabled: true, installScriptPath: "/opt/i.sh\ntouch /x" }), /k3s\.airgap\.installScriptPath: must be a single line/);
      refuse((r) => (r.k3s!.extraAgentConfig = { "node-label": ["a=b\ncluster-reset: true"] }), /k3s\.extraAgentConfig.*single line/);
      refuse((r) => (r.k3s!.registries = { configs: { "r.example.com": { tls: { caFile: "/a\u0085b" } } } }), /caFile: must be a single line/);
      // z.url() strips newlines before later checks see them (found by the property test).
      refuse((r) => (r.k3s!.installScriptUrl = "https://get.k3s.io/\ntouch /tmp/x\n"), /installScriptUrl: must be a single line/);
    });
    it("refuses an install script that is not https, and a binary not named k3s", () => {
      refuse((r) => (r.k3s!.installScriptUrl = "http://get.k3s.io"), /installScriptUrl: the install script runs as root: it must come over https/);
      refuse((r) => (r.k3s!.installScriptUrl = "file:///tmp/install.sh"), /installScriptUrl/);
      refuse((r) => (r.k3s!.airgap = { enabled: true, binaryPath: "/opt/k3s/bin/k3s-v1.31" }), /binaryPath: the binary must be named k3s/);
    });
    it("k3s.binarySha256 (issue 24): download mode with a pinned release only; one digest or one per architecture", () => {
      const pinned = (edit: (k3s: Record<string, unknown>) => void) => parseStackConfig(variant("dev", (r) => edit(r.k3s as Record<string, unknown>)));
      assert.ok(pinned((k) => (k.binarySha256 = "a".repeat(64))).ok);
      assert.ok(pinned((k) => (k.binarySha256 = { amd64: "a".repeat(64), arm64: "b".repeat(64) })).ok);
      const bad = (edit: (k3s: Record<string, unknown>) => void, message: RegExp) => {
        const r = pinned(edit);
        assert.ok(!r.ok && r.issues.some((i) => i.path.startsWith("k3s-platform:k3s.binarySha256") && message.test(i.message)), JSON.stringify(r));
      };
      bad((k) => (k.binarySha256 = "A".repeat(64)), /64 lowercase hex/);
      bad((k) => (k.binarySha256 = { riscv64: "a".repeat(64) }), /./);
      bad((k) => Object.assign(k, { binarySha256: "a".repeat(64), airgap: { enabled: true } }), /k3s\.airgap\.binarySha256/);
      bad((k) => Object.assign(k, { binarySha256: "a".repeat(64), version: undefined, channel: "stable" }), /pin k3s\.version/);
    });

    it("requires installScriptSha256 in prod unless air-gapped", () => {
      assert.throws(() => loadStackConfig(variant("prod", (r) => (r.k3s!.airgap = { enabled: false }))), /k3s\.installScriptSha256: .*prod/);
      loadStackConfig(variant("prod", (r) => Object.assign(r.k3s!, { airgap: { enabled: false }, installScriptSha256: "a".repeat(64) })));
    });
  });
});
