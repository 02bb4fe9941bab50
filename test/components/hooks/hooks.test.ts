import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import type { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { HOOKS_SCRIPT, hooksDigest, renderHooksScript } from "../../../components/hooks/render";
import { hookSummary } from "../../../components/hooks/summary";
import { previewMarkdown } from "../../../tools/preview-markdown";
import { NodePlan, planNode } from "../../../components/plan/node";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { systemdHost } from "../../helpers/host-root";
import { REPO, sampleConfig, variant } from "../../helpers/samples";

const STUBS = join(REPO, "test", "helpers", "stubs");
type Hook = NonNullable<StackInput["hooks"]>[number];

const withHooks = (env: "dev" | "prod", hooks: Hook[], edit: (r: StackInput) => void = () => {}) =>
  variant(env, (r) => {
    r.hooks = hooks;
    edit(r);
  });
const issuesOf = (raw: StackInput) => {
  const r = parseStackConfig(raw);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
};
const warningsOf = (raw: StackInput) => parseStackConfig(raw).warnings.map((i) => `${i.path}: ${i.message}`);
const fileOf = (plan: NodePlan, name: string) => plan.files.find((f) => f.name === name)?.content;
const planOf = (config: ResolvedConfig, name: string) => planNode(config, config.nodes.find((n) => n.name === name)!);

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("hooks (issue 27)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3sp-hooks-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  describe("config", () => {
    it("prod refuses a hook without a reasoned exception naming its point and command; with one it is kept (and a changed command is refused again)", () => {
      const hook: Hook = { name: "mount-data", at: "beforeOsPrep", command: ["/usr/local/sbin/mount-data", "--fs", "xfs"], roles: ["agent"] };
      const refused = issuesOf(withHooks("prod", [hook]));
      const line = refused.find((i) => i.startsWith("k3s-platform:hooks[0] (mount-data): hook mount-data runs"));
      assert.ok(line, refused.join("\n"));
      assert.match(line!, /as root at beforeOsPrep on every agent/);
      const setting = /setting: "([^"]+)"/.exec(line!)![1]!;
      assert.match(setting, /^hooks\.mount-data#[0-9a-f]{16}$/);
      const excepted = (h: Hook) => withHooks("prod", [h], (r) => (r.k3s!.exceptions ??= []).push({ setting, reason: "mounts the data disk our images expect, reviewed in PLAT-123" }));
      assert.deepEqual(issuesOf(excepted(hook)), []);
      // Another command is another finding: the old exception covers nothing and the hook is refused.
      const changed = issuesOf(excepted({ ...hook, command: ["/usr/local/sbin/mount-data", "--fs", "ext4"] }));
      assert.ok(changed.some((i) => i.startsWith("k3s-platform:hooks[0] (mount-data): hook mount-data runs")), changed.join("\n"));
      // dev warns.
      assert.deepEqual(issuesOf(withHooks("dev", [hook])), []);
      assert.ok(warningsOf(withHooks("dev", [hook])).some((w) => w.startsWith("k3s-platform:hooks[0] (mount-data)")));
    });

    it("a credential in a hook's command is refused in every environment, without echoing it", () => {
      const cases: Array<[string[], number]> = [
        [["curl", "-H", "Authorization: Bearer s3cr3t-value", "https://inventory.example.com"], 2],
        [["/usr/local/bin/register", "--token", "s3cr3t-value"], 2],
        [["/usr/local/bin/register", "--password=s3cr3t-value"], 1],
        [["sh", "-c", "curl https://user:s3cr3t-value@inventory.example.com/"], 2],
        // review of issue 27: accepted (and echoed in the hook's own warning) before
        [["curl", "-u", "admin:s3cr3t-value", "https://inventory.example.com"], 2],
        [["sh", "-c", "curl --user admin:s3cr3t-value https://inventory.example.com"], 2],
        [["env", "MYSQL_PWD=s3cr3t-value", "mysql", "-e", "select 1"], 1],
        [["sh", "-c", "API_KEY='s3cr3t-value' /usr/local/bin/register"], 2],
        [["curl", "-H", "X-Api-Key: s3cr3t-value", "https://inventory.example.com"], 2],
        [["sh", "-c", "curl -H 'Private-Token: s3cr3t-value' https://gitlab.example.com/api"], 2],
      ];
      for (const [command, index] of cases) {
        const found = issuesOf(withHooks("dev", [{ name: "reg", at: "afterInstall", command }]));
        const hit = found.find((i) => i.startsWith(`k3s-platform:hooks[0] (reg).command[${index}]: hook reg: argument ${index} holds a credential in clear`));
        assert.ok(hit, `${JSON.stringify(command)}:\n${found.join("\n")}`);
        assert.ok(!found.some((i) => i.includes("s3cr3t-value")), "the value is never echoed");
        const prod = issuesOf(withHooks("prod", [{ name: "reg", at: "afterInstall", command }]));
        assert.ok(prod.some((i) => i.startsWith("k3s-platform:hooks[0] (reg): hook reg runs")), prod.join("\n"));
        assert.ok(!prod.some((i) => i.includes("s3cr3t-value")), "not in prod's refusal of the hook either");
      }
      // A file the hook reads on the host is how: no finding beyond the hook itself.
      assert.deepEqual(issuesOf(withHooks("dev", [{ name: "reg", at: "afterInstall", command: ["/usr/local/bin/register", "--token-file", "/etc/inventory/token"] }])), []);
      assert.deepEqual(issuesOf(withHooks("dev", [{ name: "reg", at: "afterInstall", command: ["/usr/local/bin/register", "--token", "/etc/inventory/token"] }])), []);
      // References are how: a file, a variable read on the host, a command substitution.
      for (const command of [
        ["sh", "-c", "curl -H \"X-Api-Key: $(cat /etc/inventory/key)\" https://inventory.example.com"],
        ["sh", "-c", "API_KEY=\"$(cat /etc/inventory/key)\" /usr/local/bin/register"],
        ["curl", "-u", "$INVENTORY_USER", "https://inventory.example.com"],
        ["env", "KUBECONFIG=/etc/rancher/k3s/k3s.yaml", "kubectl", "get", "nodes"],
        ["sh", "-c", "lbctl disable \"$K3S_PLATFORM_NODE\""],
      ]) assert.deepEqual(issuesOf(withHooks("dev", [{ name: "reg", at: "afterInstall", command }])), [], JSON.stringify(command));
    });

    it("selectors name what exists: unknown nodes and pools, duplicate names, unknown points are refused with their paths", () => {
      const found = issuesOf(
        withHooks("dev", [
          { name: "a", at: "afterInstall", command: ["true"], nodes: ["dev-agent-9"] },
          { name: "a", at: "afterInstall", command: ["true"], pools: ["gpu"] },
          { name: "b", at: "afterLunch" as Hook["at"], command: ["true"] },
          { name: "c", at: "afterInstall", command: [] },
        ]),
      );
      for (const want of [
        'k3s-platform:hooks[2] (b).at: one of beforeOsPrep, afterInstall, beforeUpgrade, afterUpgrade',
        "k3s-platform:hooks[3] (c).command: a command needs at least the program to run",
      ]) assert.ok(found.includes(want), `${want}\n--\n${found.join("\n")}`);
      const selectors = issuesOf(withHooks("dev", [
        { name: "a", at: "afterInstall", command: ["true"], nodes: ["dev-agent-9"] },
        { name: "a", at: "afterInstall", command: ["true"], pools: ["gpu"] },
      ]));
      for (const want of [
        'k3s-platform:hooks[0] (a).nodes[0]: no node named "dev-agent-9" in k3s-platform:nodes',
        'k3s-platform:hooks[1] (a).name: duplicate hook name "a" (also hooks[0])',
        'k3s-platform:hooks[1] (a).pools[0]: no pool "gpu" in k3s-platform:pools',
      ]) assert.ok(selectors.includes(want), `${want}\n--\n${selectors.join("\n")}`);
    });

    it("a pools selector resolves to the pool's members; roles and nodes select too; none selects every node", () => {
      const config = loadStackConfig(
        withHooks("dev", [
          { name: "p", at: "afterInstall", command: ["true"], pools: ["apps"] },
          { name: "r", at: "afterInstall", command: ["true"], roles: ["server"] },
          { name: "all", at: "afterInstall", command: ["true"] },
        ], (r) => {
          (r as Record<string, unknown>).pools = { apps: { role: "agent" } };
          r.nodes[1] = { name: "dev-agent-1", host: "192.0.2.20", pool: "apps" } as StackInput["nodes"][number];
        }),
      );
      assert.deepEqual(config.hooks![0]!.nodes, ["dev-agent-1"]);
      assert.ok(!("pools" in config.hooks![0]!));
      assert.match(fileOf(planOf(config, "dev-agent-1"), HOOKS_SCRIPT)!, /run_hook p 300 true\n\s+run_hook all 300 true/);
      assert.match(fileOf(planOf(config, "dev-server-1"), HOOKS_SCRIPT)!, /run_hook r 300 true\n\s+run_hook all 300 true/);
    });
  });

  describe("render and triggers", () => {
    const base = sampleConfig("dev");
    const hooked = (hooks: Hook[]) => loadStackConfig(withHooks("dev", hooks));

    it("a node without hooks renders byte-identically (no hooks.sh, same apply.sh and os-prep.sh, same triggers)", () => {
      const config = hooked([{ name: "x", at: "afterInstall", command: ["true"], nodes: ["dev-agent-1"] }]);
      const before = planOf(base, "dev-server-1");
      const after = planOf(config, "dev-server-1");
      assert.deepEqual(after.files, before.files);
      assert.deepEqual(after.hashes, before.hashes);
      assert.equal(fileOf(after, HOOKS_SCRIPT), undefined);
      assert.ok(fileOf(planOf(config, "dev-agent-1"), HOOKS_SCRIPT));
    });

    it("a hook's change re-runs only the step at its point, on the nodes it applies to", () => {
      const at = (point: Hook["at"], arg: string) => hooked([{ name: "h", at: point, command: ["/bin/echo", arg], roles: ["agent"] }]);
      const agent = (c: ResolvedConfig) => planOf(c, "dev-agent-1");
      const server = (c: ResolvedConfig) => planOf(c, "dev-server-1");
      for (const [point, step] of [["beforeOsPrep", "osPrep"], ["afterInstall", "apply"]] as const) {
        const a = agent(at(point, "one"));
        const b = agent(at(point, "two"));
        const other = step === "osPrep" ? "apply" : "osPrep";
        assert.notEqual(a.hashes[step], b.hashes[step], `${point}: ${step} re-runs`);
        assert.equal(a.hashes[other], b.hashes[other], `${point}: ${other} does not`);
        assert.notEqual(a.bundle.sha256, b.bundle.sha256, "the bundle carries the new hooks.sh");
        assert.deepEqual(server(at(point, "one")).hashes, server(at(point, "two")).hashes, "the server has no hook");
      }
      for (const point of ["beforeUpgrade", "afterUpgrade"] as const) {
        const a = agent(at(point, "one"));
        const b = agent(at(point, "two"));
        assert.deepEqual(a.hashes, b.hashes, `${point}: runs at the next upgrade; no step re-runs`);
        assert.notEqual(a.bundle.sha256, b.bundle.sha256);
      }
    });

    it("the apply step's timeout backstop grows by the hooks at apply's points (a slow hook is stopped by its own bound first)", () => {
      const base = planOf(sampleConfig("dev"), "dev-agent-1").applyBoundSeconds;
      const config = hooked([
        { name: "a", at: "afterInstall", command: ["true"], timeoutSeconds: 900 },
        { name: "b", at: "beforeUpgrade", command: ["true"], timeoutSeconds: 600 },
        { name: "c", at: "beforeOsPrep", command: ["true"], timeoutSeconds: 3600 },
      ]);
      assert.equal(planOf(config, "dev-agent-1").applyBoundSeconds, base + 1500);
    });

    it("shellcheck passes on hooks.sh and on apply.sh / os-prep.sh with every point in use", () => {
      const config = hooked(["beforeOsPrep", "afterInstall", "beforeUpgrade", "afterUpgrade"].map((at, i) => ({ name: `h${i}`, at: at as Hook["at"], command: ["/bin/echo", `it's "${at}" $(x)`] })));
      const dir = mkdtempSync(join(scratch, "lint-"));
      const paths: string[] = [];
      for (const node of config.nodes) {
        for (const name of [HOOKS_SCRIPT, "apply.sh", "os-prep.sh"]) {
          const path = join(dir, `${node.name}-${name}`);
          writeFileSync(path, fileOf(planNode(config, node), name)!);
          paths.push(path);
        }
      }
      const lint = run("shellcheck", ["--severity=style", ...paths]);
      assert.equal(lint.status, 0, lint.out);
    });

    it("preview:md names each hook added, changed or removed, what runs as root, where, and what re-runs", () => {
      const h = { name: "h", at: "afterInstall", command: ["/bin/echo", "a"], roles: ["agent"], timeoutSeconds: 300 };
      assert.deepEqual(hookSummary({}, { hooks: [h] }), ['hook h added: runs `["/bin/echo","a"]` as root at afterInstall on every agent: apply re-runs on those nodes']);
      assert.deepEqual(hookSummary({ hooks: [h] }, { hooks: [{ ...h, at: "beforeUpgrade" }] }), [
        'hook h changed: now runs `["/bin/echo","a"]` as root at beforeUpgrade on every agent (was `["/bin/echo","a"]` as root at afterInstall on every agent): runs at the next upgrade (the bundle is re-copied, no step re-runs)',
      ]);
      assert.deepEqual(hookSummary({ hooks: [h] }, {}), ['hook h removed: `["/bin/echo","a"]` as root at afterInstall on every agent no longer runs']);
      assert.deepEqual(hookSummary({ hooks: [h] }, { hooks: [h] }), []);
      // Through the Markdown a PR comment shows, from the K3sCluster component's registered config.
      const before = sampleConfig("dev");
      const after = loadStackConfig(withHooks("dev", [{ name: "h", at: "afterInstall", command: ["/bin/echo", "a"], roles: ["agent"] }]));
      const state = (config: ResolvedConfig) => ({ inputs: { config: JSON.parse(JSON.stringify(config)) as Record<string, unknown> } });
      const md = previewMarkdown(
        { steps: [{ op: "update", urn: "urn:pulumi:dev::k3s-platform::k3s-platform:index:K3sCluster::dev", oldState: state(before), newState: state(after), detailedDiff: { hooks: { kind: "add" } } }] },
        { stack: "dev" },
      );
      assert.match(md, /#### Operations\n\n- hook h added: runs `\["\/bin\/echo","a"\]` as root at afterInstall on every agent: apply re-runs on those nodes\n/);
    });
  });

  describe("on a host (sandbox)", () => {
    /** Stages a node's files with an install stand-in and its secret files in place, as the secrets step would. */
    function stageApply(plan: NodePlan, dir: string, root: string, installer: string) {
      const staging = mkdtempSync(join(dir, "staging-"));
      for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
      writeFileSync(join(staging, "install-k3s.sh"), installer, { mode: 0o755 });
      for (const secret of plan.secretFiles) {
        mkdirSync(dirname(join(root, secret.target)), { recursive: true });
        writeFileSync(join(root, secret.target), `${secret.name}: x\n`);
      }
      return { staging, env: { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: join(root, "systemctl.log"), PATH: `${STUBS}:${process.env.PATH}` } };
    }

    /** A scratch directory with a recorder and a host root apply.sh's preflight accepts. */
    function hostSandbox(name: string) {
      const dir = mkdtempSync(join(scratch, name));
      const root = join(dir, "root");
      mkdirSync(root);
      systemdHost(root);
      return { dir, root, ...recorder(dir) };
    }

    /** A recorder program: appends its arguments, NUL-separated, one record per run. */
    function recorder(dir: string): { program: string; log: string } {
      const program = join(dir, "record-args");
      const log = join(dir, "args.log");
      writeFileSync(program, `#!/usr/bin/env bash\nfor a in "$@"; do printf '%s\\0' "$a"; done >>${JSON.stringify(log)}\nprintf '\\n' >>${JSON.stringify(log)}\n`, { mode: 0o755 });
      return { program, log };
    }

    it("property: hostile hook arguments reach the program byte for byte and never run as shell", function () {
      this.timeout(120_000);
      const dir = mkdtempSync(join(scratch, "prop-"));
      const { program, log } = recorder(dir);
      const marker = join(dir, "marker");
      const touch = `touch ${marker}`;
      const hostile = fc.oneof(
        fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\0")),
        fc.constantFrom(`$(${touch})`, `\`${touch}\``, `'; ${touch}; '`, `"; ${touch}; "`, `\n${touch}\n`, `*`, `--`, "", `\\'`, `$IFS`, `%s`, `-e`),
      );
      fc.assert(
        fc.property(fc.array(fc.array(hostile, { minLength: 0, maxLength: 4 }), { minLength: 1, maxLength: 3 }), (argvs) => {
          rmSync(log, { force: true });
          const hooks = argvs.map((args, i) => ({ name: `h${i}`, at: "afterInstall" as const, command: [program, ...args], timeoutSeconds: 10 }));
          const script = join(dir, "hooks.sh");
          writeFileSync(script, renderHooksScript({ hooks }, { name: "n", role: "agent" } as ResolvedConfig["nodes"][number])!);
          const r = run("bash", [script, "afterInstall"], { K3S_PLATFORM_ROOT: dir });
          assert.equal(r.status, 0, r.out);
          // Each run's record: its arguments, each followed by NUL (an empty argument list writes none).
          const expected = argvs.map((args) => args.map((a) => `${Buffer.from(a, "utf8").toString("latin1")}\0`).join("")).join("\n") + "\n";
          assert.equal(readFileSync(log, "latin1"), expected);
          assert.ok(!existsSync(marker), "a hook argument ran as shell");
        }),
        { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 40) },
      );
    });

    it("apply.sh: afterInstall runs after the first install, not again when nothing changed, again (without a restart) when the hook changed, and a failed hook is retried without a restart", () => {
      const { dir, program, log, root } = hostSandbox("apply-");
      const config = (arg: string) => loadStackConfig(withHooks("dev", [{ name: "h", at: "afterInstall", command: [program, arg], roles: ["agent"] }]));
      const apply = (c: ResolvedConfig) => {
        const { staging, env } = stageApply(planOf(c, "dev-agent-1"), dir, root, "#!/usr/bin/env bash\n");
        return run("bash", [join(staging, "apply.sh")], env);
      };
      const runs = () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []);
      const restarts = () => (readFileSync(join(root, "systemctl.log"), "utf8").match(/^systemctl start --no-block k3s-agent$/gm) ?? []).length;

      let r = apply(config("one"));
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(runs(), ["one\0"]);
      assert.equal(restarts(), 1);
      r = apply(config("one"));
      assert.match(r.out, /up to date/);
      assert.deepEqual(runs(), ["one\0"], "nothing changed: the hook does not run again");
      r = apply(config("two"));
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(runs(), ["one\0", "two\0"], "the changed hook runs");
      assert.equal(restarts(), 1, "without restarting K3s");
      // A failing hook fails the step, naming it; the next run retries the hook only.
      const failing = loadStackConfig(withHooks("dev", [{ name: "h", at: "afterInstall", command: ["sh", "-c", `[ -f ${join(dir, "fixed")} ]`], roles: ["agent"] }]));
      r = apply(failing);
      assert.notEqual(r.status, 0);
      assert.match(r.out, /hook\[dev-agent-1\]: afterInstall: hook h failed with status 1/);
      writeFileSync(join(dir, "fixed"), "");
      r = apply(failing);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /afterInstall: h: done/);
      assert.equal(restarts(), 1, "the retry restarts nothing");
    });

    it("hooks.sh: --arm records an owed afterUpgrade, --if-armed runs it once with both versions", () => {
      const dir = mkdtempSync(join(scratch, "upgrade-"));
      const { program, log } = recorder(dir);
      const script = join(dir, "hooks.sh");
      writeFileSync(script, renderHooksScript({ hooks: [{ name: "u", at: "afterUpgrade", command: ["sh", "-c", `"$0" "$K3S_PLATFORM_UPGRADE_FROM" "$K3S_PLATFORM_UPGRADE_TO"`, program], timeoutSeconds: 10 }] }, { name: "n", role: "agent" } as ResolvedConfig["nodes"][number])!);
      const env = { K3S_PLATFORM_ROOT: dir };
      assert.equal(run("bash", [script, "afterUpgrade", "--if-armed"], env).status, 0);
      assert.ok(!existsSync(log), "not armed: nothing runs");
      assert.equal(run("bash", [script, "afterUpgrade", "--arm", "v1.36.2+k3s1", "v1.37.1+k3s1"], env).status, 0);
      assert.equal(run("bash", [script, "afterUpgrade", "--if-armed"], env).status, 0);
      assert.equal(readFileSync(log, "utf8"), "v1.36.2+k3s1\0v1.37.1+k3s1\0\n");
      assert.equal(run("bash", [script, "afterUpgrade", "--if-armed"], env).status, 0);
      assert.equal(readFileSync(log, "utf8").split("\n").length, 2, "ran once");
    });

    it("apply.sh on an agent being upgraded: beforeUpgrade before the install, afterUpgrade after it serves, both with the versions; a plain re-apply runs neither", () => {
      const { dir, program, log, root } = hostSandbox("upgrade-apply-");
      const args = ["sh", "-c", `"$0" "$K3S_PLATFORM_HOOK" "$K3S_PLATFORM_UPGRADE_FROM" "$K3S_PLATFORM_UPGRADE_TO"`, program];
      const config = loadStackConfig(withHooks("dev", [
        { name: "before", at: "beforeUpgrade", command: args, roles: ["agent"] },
        { name: "after", at: "afterUpgrade", command: args, roles: ["agent"] },
      ]));
      // The install stand-in logs when it runs, so the order is visible in the recorder's log.
      const { staging, env } = stageApply(planOf(config, "dev-agent-1"), dir, root, `#!/usr/bin/env bash\nprintf 'install\\n' >>${JSON.stringify(log)}\n`);
      // The node ran the previous minor (what the upgrade guard reads on an agent: the version record).
      mkdirSync(join(root, "var/lib/k3s-platform"), { recursive: true });
      writeFileSync(join(root, "var/lib/k3s-platform/k3s-version"), "v1.36.2+k3s1\n");
      let r = run("bash", [join(staging, "apply.sh")], env);
      assert.equal(r.status, 0, r.out);
      const to = config.k3s.version!;
      assert.equal(readFileSync(log, "utf8"), `beforeUpgrade\0v1.36.2+k3s1\0${to}\0\ninstall\nafterUpgrade\0v1.36.2+k3s1\0${to}\0\n`);
      r = run("bash", [join(staging, "apply.sh")], env);
      assert.equal(r.status, 0, r.out);
      assert.equal(readFileSync(log, "utf8").split("\n").length, 4, "nothing more ran");
    });

    it("a hook that runs over its timeout is stopped and fails its step, naming it", () => {
      const dir = mkdtempSync(join(scratch, "timeout-"));
      const script = join(dir, "hooks.sh");
      writeFileSync(script, renderHooksScript({ hooks: [{ name: "slow", at: "beforeOsPrep", command: ["sleep", "5"], timeoutSeconds: 1 }] }, { name: "n", role: "agent" } as ResolvedConfig["nodes"][number])!);
      const r = run("bash", [script, "beforeOsPrep"], { K3S_PLATFORM_ROOT: dir });
      assert.notEqual(r.status, 0);
      assert.match(r.out, /beforeOsPrep: hook slow ran over 1s and was stopped/);
    });

    it("os-prep.sh runs its beforeOsPrep hooks from beside it, before preparing anything", () => {
      const dir = mkdtempSync(join(scratch, "osprep-"));
      const { program, log } = recorder(dir);
      const config = loadStackConfig(withHooks("dev", [{ name: "pre", at: "beforeOsPrep", command: [program, "before"] }]));
      const plan = planOf(config, "dev-agent-1");
      const staging = join(dir, "staging");
      mkdirSync(staging);
      for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
      chmodSync(join(staging, "os-prep.sh"), 0o755);
      const root = join(dir, "root");
      mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
      writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n");
      const r = run("bash", [join(staging, "os-prep.sh")], { K3S_PLATFORM_ROOT: root, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}` });
      assert.equal(r.status, 0, r.out);
      assert.equal(readFileSync(log, "utf8"), "before\0\n");
      assert.ok(r.out.indexOf("hook[dev-agent-1]: beforeOsPrep: pre: running") < r.out.indexOf("os-prep["), r.out);
      assert.equal(hooksDigest(config.hooks!).length, 64);
    });
  });
});
