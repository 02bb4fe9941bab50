import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { StackInput } from "../../../components/config/schema";
import { CONTROL_CHARACTERS } from "../../../components/config/single-line";
import { loadStackConfig } from "../../../components/stack/load";
import { renderRestartScript, renderVerifyScript, rotationPhases } from "../../../components/encryption/render";
import { planCluster } from "../../../components/plan/node";
import { stdinScriptCommand } from "../../../components/shell/root";
import { postRegistrationLabelCommand } from "../../../components/cluster/component";
import { REPO, variant } from "../../helpers/samples";

/**
 * Hostile values in every string field that reaches a host script must never run as a command:
 * each value is validated, and when accepted, every script of every node is rendered and EXECUTED
 * in a throw-away sandbox (scratch root via K3S_PLATFORM_ROOT, stub binaries on PATH; as root the
 * scripts run as nobody, so an escape could only write where nobody may). A payload that runs
 * creates a marker file; the property is that no marker ever appears. Values with newlines or
 * control characters must be refused for these fields.
 */

const STUBS = join(REPO, "test", "helpers", "stubs");
const RUNS = Number(process.env.K3SP_PROPERTY_RUNS ?? 20);

type Setter = (raw: StackInput, value: string) => void;

/** String fields that reach a script, an env file or a K3s flag, as config edits. */
const FIELDS: Record<string, Setter> = {
  "nodes[0].name": (r, v) => (r.nodes[0]!.name = v),
  "nodes[1].host": (r, v) => (r.nodes[1]!.host = v),
  "nodes[1].nodeIp": (r, v) => (r.nodes[1]!.nodeIp = v),
  "nodes[1].labels value": (r, v) => (r.nodes[1]!.labels = { "node-role.kubernetes.io/worker": v }),
  "nodes[1].taints[0]": (r, v) => (r.nodes[1]!.taints = [v]),
  "ssh.user": (r, v) => (r.ssh = { ...r.ssh, user: v }),
  "k3s.version": (r, v) => (r.k3s!.version = v),
  "k3s.airgap.binaryPath": (r, v) => (r.k3s!.airgap = { enabled: true, binaryPath: v }),
  "k3s.airgap.installScriptPath": (r, v) => (r.k3s!.airgap = { enabled: true, installScriptPath: v }),
  "k3s.airgap.imagesDir": (r, v) => (r.k3s!.airgap = { enabled: true, imagesDir: v }),
  "k3s.installScriptUrl": (r, v) => (r.k3s!.installScriptUrl = v),
  "k3s.installScriptSha256": (r, v) => (r.k3s!.installScriptSha256 = v),
  "k3s.binarySha256": (r, v) => (r.k3s!.binarySha256 = v),
  "k3s.binarySha256.arm64": (r, v) => (r.k3s!.binarySha256 = { arm64: v }),
  "k3s.proxy.httpProxy": (r, v) => (r.k3s!.proxy = { httpProxy: v }),
  "k3s.proxy.noProxy[0]": (r, v) => (r.k3s!.proxy = { httpProxy: "http://proxy.example.com:3128", noProxy: [v] }),
  "k3s.proxy.containerdNoProxy[0]": (r, v) => (r.k3s!.proxy = { containerdHttpProxy: "http://proxy.example.com:3128", containerdNoProxy: [v] }),
  "k3s.registries.mirrors endpoint": (r, v) => (r.k3s!.registries = { mirrors: { "docker.io": { endpoint: [v] } } }),
  "k3s.registries.configs tls.caFile": (r, v) => (r.k3s!.registries = { configs: { "registry.example.com": { tls: { caFile: v } } } }),
  "k3s.tlsSan[0]": (r, v) => (r.k3s!.tlsSan = [v]),
  "k3s.apiEndpoint": (r, v) => (r.k3s!.apiEndpoint = v),
  "k3s.extraServerConfig value": (r, v) => (r.k3s!.extraServerConfig = { "etcd-snapshot-dir": v }),
  "k3s.extraAgentConfig key": (r, v) => (r.k3s!.extraAgentConfig = { [v]: "x" }),
  "k3s.firewall.apiServerSources[0]": (r, v) => (r.k3s!.firewall = { mode: "open", apiServerSources: [v] }),
  "encryption.custom.resources": (r, v) => (r.encryption = { mode: "custom", rotation: 1, custom: { resources: [{ resources: [v], providers: ["aescbc"] }] } }),
  "encryption.custom.kms.endpoint": (r, v) => (r.encryption = { mode: "custom", custom: { resources: [{ resources: ["secrets"], providers: ["kms"] }], kms: { name: "vault", endpoint: v } } }),
  "encryption.rotation": (r, v) => (r.encryption = { enabled: true, rotation: v }),
  "dns.upstreams[0]": (r, v) => (r.dns = { ...r.dns, upstreams: [v] }),
  // Issue 14: a pool name reaches the kubectl label command, a runtime name config.yaml.
  "k3s.serviceLb pool name": (r, v) => (r.k3s!.serviceLb = { pools: { [v]: ["dev-agent-1"] } }),
  "k3s.defaultRuntime": (r, v) => (r.k3s!.defaultRuntime = v),
  // Dual-stack values (one per family) reach config.yaml and the firewall rules.
  "k3s.clusterCidr[1]": (r, v) => (r.k3s!.clusterCidr = ["10.42.0.0/16", v]),
  "k3s.clusterDns[1]": (r, v) => (r.k3s!.clusterDns = ["10.43.0.10", v]),
  "nodes[1].nodeIp[1]": (r, v) => (r.nodes[1]!.nodeIp = ["192.0.2.20", v]),
  // Issue 27: a hook's arguments reach hooks.sh, run by apply.sh after the install.
  "hooks[0].command[1]": (r, v) => (r.hooks = [{ name: "h", at: "afterInstall", command: ["/bin/true", v] }]),
};

function hostile(marker: string): fc.Arbitrary<string> {
  const touch = `touch ${marker}`;
  const payloads = [
    `$(${touch})`, `\`${touch}\``, `"; ${touch}; echo "`, `'; ${touch}; echo '`, `;${touch}`, `|${touch}`,
    ` && ${touch}`, `\n${touch}\n`, `\r\n${touch}`, `$(touch\${IFS}${marker})`, `"$(${touch})"`, `'$(${touch})'`,
    `\${IFS}$(${touch})`, `*`, `?`, `[a-z]*`, ` -rf /`, `--help`, `\\`, `\u2028${touch}`, `\u0000${touch}`, `é🙂`,
  ];
  const prefixes = ["", "node-1", "/usr/local/bin/k3s", "/opt/k3s/bin/k3s", "https://get.k3s.io/", "http://proxy.example.com:3128", "10.0.0.1", "v1.31.4+k3s1", "-", "secrets"];
  return fc.tuple(fc.constantFrom(...prefixes), fc.constantFrom(...payloads), fc.constantFrom("", "/k3s", "x", "'", '"')).map(([a, b, c]) => a + b + c);
}

describe("property: hostile config values never run on a host", function () {
  this.timeout(600_000);
  const base = mkdtempSync(join(tmpdir(), "k3sp-inject-"));
  chmodSync(base, 0o777);
  const asRoot = process.getuid?.() === 0;
  after(() => rmSync(base, { recursive: true, force: true }));

  /** Extra stand-ins for this sandbox: sudo runs the command as is, curl "downloads" a no-op. */
  const bin = join(base, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "sudo"), `#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n`, { mode: 0o755 });
  writeFileSync(join(bin, "curl"), `#!/bin/sh\nwhile [ "$#" -gt 0 ] && [ "$1" != -o ]; do shift; done\ncp ${join(base, "installer")} "$2"\n`, { mode: 0o755 });
  chmodSync(bin, 0o755);
  // The install script stand-in "starts" both units, so apply.sh's readiness wait ends at once.
  const INSTALLER = `#!/bin/sh\nmkdir -p "$K3S_PLATFORM_ROOT/run/active" && touch "$K3S_PLATFORM_ROOT/run/active/k3s" "$K3S_PLATFORM_ROOT/run/active/k3s-agent"\n`;
  writeFileSync(join(base, "installer"), INSTALLER, { mode: 0o755 });

  /** Runs one shell command in the sandbox; returns its status (failures are fine, escapes are not). */
  function sandboxed(root: string, script: string, stdin?: string): number | null {
    const env = { PATH: `${bin}:${STUBS}:/usr/local/bin:/usr/bin:/bin`, K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: join(root, "staging"), STUB_LOG: "/dev/null", HOME: root };
    const argv = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "bash", "-c", script] : ["bash", "-c", script];
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: root, env, input: stdin ?? "", encoding: "utf8", timeout: 20_000 });
    return r.status;
  }

  const marker = join(base, "marker");

  it("the sandbox lets an unquoted value run (so the property below can see an escape)", () => {
    const root = mkdtempSync(join(base, "canary-"));
    chmodSync(root, 0o777);
    sandboxed(root, `echo "binary /opt/k3s$(touch ${marker}) is missing"`);
    assert.ok(existsSync(marker), "the canary payload did not create the marker: the property would prove nothing");
    rmSync(marker);
  });

  it(`${Object.keys(FIELDS).length} fields: control characters refused; accepted hostile values never run (${RUNS} executed cases)`, () => {
    let refused = 0;
    let scripts = 0;
    const started = Date.now();
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(FIELDS)), hostile(marker), (field, value) => {
        let config;
        try {
          config = loadStackConfig(variant("dev", (r) => FIELDS[field]!(r, value)));
        } catch {
          refused++;
          fc.pre(false); // refused with an error: fine; only accepted values count as runs
          return;
        }
        assert.ok(!CONTROL_CHARACTERS.test(value), `${field}: a value with a control character was accepted: ${JSON.stringify(value)}`);
        const root = mkdtempSync(join(base, "root-"));
        chmodSync(root, 0o777);
        const staging = join(root, "staging");
        mkdirSync(staging, { mode: 0o777 });
        chmodSync(staging, 0o777);
        // A host os-prep accepts (cgroup v2 with memory), so every section of it runs.
        mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
        writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n");
        const plan = planCluster(config);
        const airgap = config.k3s.airgap;
        if (airgap.enabled) {
          try {
            mkdirSync(dirname(join(root, airgap.binaryPath)), { recursive: true });
            writeFileSync(join(root, airgap.binaryPath), `#!/bin/sh\necho "k3s version ${config.k3s.version} (x)"\n`, { mode: 0o755 });
            mkdirSync(dirname(join(root, airgap.installScriptPath)), { recursive: true });
            writeFileSync(join(root, airgap.installScriptPath), INSTALLER, { mode: 0o755 });
            mkdirSync(join(root, airgap.imagesDir), { recursive: true });
          } catch {
            /* an odd path: the script fails early, which is fine */
          }
        }
        for (const node of plan.nodes) {
          for (const f of node.files) writeFileSync(join(staging, f.name), f.content, { mode: 0o666 });
          for (const s of node.secretFiles) {
            mkdirSync(dirname(join(root, s.target)), { recursive: true });
            writeFileSync(join(root, s.target), "x: y\n", { mode: 0o666 });
          }
          spawnSync("chmod", ["-R", "a+rwX", root]);
          for (const script of ["os-prep.sh", "install-k3s.sh", "apply.sh"]) {
            sandboxed(root, `bash "$K3S_PLATFORM_STAGING"/${script}`);
            scripts++;
          }
          for (const command of Object.values(node.commands)) sandboxed(root, command);
        }
        const labels = postRegistrationLabelCommand(plan);
        if (labels) sandboxed(root, labels);
        sandboxed(root, plan.kubeconfigCommand);
        if (config.encryption.enabled) {
          const lifecycle = [renderVerifyScript(config, "0".repeat(64)), renderRestartScript(plan.nodes[0]!.node.name), ...rotationPhases(config).map((p) => p.script)];
          for (const s of lifecycle) sandboxed(root, stdinScriptCommand("root"), s);
        }
        rmSync(root, { recursive: true, force: true });
        assert.ok(!existsSync(marker), `${field}: ${JSON.stringify(value)} ran as a command`);
      }),
      { numRuns: RUNS, maxSkipsPerRun: 1000 },
    );
    const seconds = (Date.now() - started) / 1000;
    // Printed so CI logs show the cost of the property (keep it bounded: K3SP_PROPERTY_RUNS).
    console.log(`      ${RUNS} accepted hostile values executed (${scripts} script runs), ${refused} refused, in ${seconds.toFixed(1)} s`);
  });
});
