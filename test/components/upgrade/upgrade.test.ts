import { strict as assert } from "node:assert";
import { NO_OP_UPDATE } from "../../../components/operations/once";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as fc from "fast-check";
import * as pulumi from "@pulumi/pulumi";
import { restoreRunbook } from "../../../components/backup/runbook";
import { K3sCluster } from "../../../components/cluster/component";
import { ResolvedConfig } from "../../../components/config/schema";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";
import { PATHS } from "../../../components/k3s/paths";
import { NodePlan, planCluster, planNode } from "../../../components/plan/node";
import { agentSecretInputs, batchInputs } from "../../../components/plan/restart";
import { previewMarkdown } from "../../../tools/preview-markdown";
import { renderTree } from "../../../tools/tree";
import { parseRestartVerdict } from "../../../components/k3s/agent-preflight";
import { renderAgentBatchDrain, renderAgentBatchUncordon, upgradeBatches, upgradeGuard, VERSION_RECORD, VERSION_RULES } from "../../../components/upgrade/render";
import { upgradeSummary } from "../../../components/upgrade/summary";
import { agentBatches, intermediateStep, maxUnavailableCount, snapshotName, upgradeProblem } from "../../../components/upgrade/versions";
import { installMocks, MOCK_GENERATED } from "../../helpers/pulumi-mocks";
import { systemdHost } from "../../helpers/host-root";
import { REPO, sampleConfig, variant } from "../../helpers/samples";
import { innerCommand } from "../../helpers/report";

const STUBS = join(REPO, "test", "helpers", "stubs");
const BACKUP_STUBS = join(REPO, "test", "helpers", "stubs-backup");

function run(cmd: string, args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, input });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

describe("upgrades (components/upgrade)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3sp-upgrade-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  describe("version rules", () => {
    it("allows a patch, a revision or one minor forward; refuses downgrades and skipped minors, naming both versions", () => {
      for (const [from, to] of [["v1.31.4+k3s1", "v1.31.5+k3s1"], ["v1.31.4+k3s1", "v1.31.4+k3s2"], ["v1.30.9+k3s1", "v1.31.0+k3s1"], ["v1.31.4+k3s1", "v1.31.4+k3s1"]]) {
        assert.equal(upgradeProblem(from!, to!), undefined, `${from} → ${to}`);
      }
      assert.match(upgradeProblem("v1.31.5+k3s1", "v1.31.4+k3s1")!, /v1\.31\.5\+k3s1 → v1\.31\.4\+k3s1 is a downgrade/);
      assert.match(upgradeProblem("v1.31.4+k3s2", "v1.31.4+k3s1")!, /downgrade/);
      assert.match(upgradeProblem("v1.29.9+k3s1", "v1.31.4+k3s1")!, /skips 1 minor version\(s\); upgrade to v1\.30 first/);
      assert.equal(snapshotName("v1.31.4+k3s1", "v1.31.5+k3s1"), "pre-upgrade-v1.31.4-k3s1-to-v1.31.5-k3s1");
      // The etcd 3.5 → 3.6 step applies to embedded-etcd members only, and names the release to go through.
      assert.match(upgradeProblem("v1.33.6+k3s1", "v1.34.2+k3s1", true)!, /upgrade to v1\.33\.7\+k3s3 \(or a later v1\.33 release\) first: etcd 3\.5\.26 is needed before etcd 3\.6/);
      assert.match(upgradeProblem("v1.33.7+k3s1", "v1.34.2+k3s1", true)!, /v1\.33\.7\+k3s3/);
      assert.equal(upgradeProblem("v1.33.6+k3s1", "v1.34.2+k3s1", false), undefined);
      assert.equal(upgradeProblem("v1.33.7+k3s3", "v1.34.2+k3s1", true), undefined);
      assert.equal(upgradeProblem("v1.33.6+k3s1", "v1.33.7+k3s3", true), undefined);
      assert.equal(upgradeProblem("v1.32.11+k3s1", "v1.33.7+k3s3", true), undefined, "v1.32 → v1.33 stays on etcd 3.5");
      // etcd 3.6 → 3.7 (etcd.io/docs/v3.7/upgrades/upgrade_3_7: 3.6 members on 3.6.11+ first).
      assert.match(upgradeProblem("v1.36.1+k3s1", "v1.37.1+k3s1", true)!, /upgrade to v1\.36\.2\+k3s1 \(or a later v1\.36 release\) first: etcd 3\.6\.11 is needed before etcd 3\.7/);
      assert.equal(upgradeProblem("v1.36.2+k3s1", "v1.37.1+k3s1", true), undefined);
      assert.equal(upgradeProblem("v1.36.1+k3s1", "v1.37.1+k3s1", false), undefined, "not an embedded-etcd member");
      assert.equal(upgradeProblem("v1.35.6+k3s1", "v1.36.1+k3s1", true), undefined, "v1.35 → v1.36 stays on etcd 3.6");
    });

    it("the path preview prints keeps the revision when the release to go through is the same patch (v1.33.7+k3s1 → v1.33.7+k3s3)", () => {
      assert.match(intermediateStep("v1.33.7+k3s1", "v1.34.2+k3s1", true)!, /^v1\.33\.7\+k3s1 → v1\.33\.7\+k3s3 first: etcd 3\.5\.26/);
      assert.match(intermediateStep("v1.33.3+k3s1", "v1.34.2+k3s1", true)!, /^v1\.33\.3 → v1\.33\.7\+k3s3 first/);
      assert.equal(intermediateStep("v1.33.7+k3s3", "v1.34.2+k3s1", true), undefined);
    });

    it("the host's shell rules (check_transition) agree with the TypeScript rules on random versions", () => {
      const version = fc.tuple(fc.integer({ min: 28, max: 40 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 3 })).map(([m, p, r]) => `v1.${m}.${p}+k3s${r}`);
      // Around the etcd steps (v1.33 → v1.34: 3.5 → 3.6; v1.36 → v1.37: 3.6 → 3.7) densely, so each required-patch rule is tried both ways.
      const nearEtcd = fc.oneof(fc.integer({ min: 32, max: 35 }), fc.integer({ min: 35, max: 38 })).chain((m) => fc.tuple(fc.constant(m), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 3 }))).map(([m, p, r]) => `v1.${m}.${p}+k3s${r}`);
      const pairs = [
        ...fc.sample(fc.tuple(version, version, fc.boolean()), { numRuns: 80, seed: 1313 }),
        ...fc.sample(fc.tuple(nearEtcd, nearEtcd, fc.boolean()), { numRuns: 240, seed: 1314 }),
      ];
      const script = `${VERSION_RULES.text}\nwhile read -r from to etcd; do if check_transition n "$from" "$to" "$etcd" 2>/dev/null; then echo ok; else echo refused; fi; done\n`;
      const r = run("bash", ["-c", script], {}, pairs.map(([a, b, etcd]) => `${a} ${b} ${etcd ? "etcd" : "-"}`).join("\n") + "\n");
      assert.equal(r.status, 0, r.out);
      const shell = r.stdout.trim().split("\n");
      assert.equal(shell.length, pairs.length);
      pairs.forEach(([from, to, etcd], i) => assert.equal(shell[i], upgradeProblem(from, to, etcd) ? "refused" : "ok", `${from} → ${to} etcd=${etcd}`));
      for (const minor of [33, 36]) {
        assert.ok(
          pairs.some(([from, to, etcd], i) => etcd && from.startsWith(`v1.${minor}.`) && shell[i] === "refused" && !upgradeProblem(from, to, false)),
          `the v1.${minor} required-patch rule refused some pair`,
        );
      }
      assert.ok(shell.includes("ok") && shell.includes("refused"), "both outcomes were tried");
    });

    it("maxUnavailable: a count as is, a percentage rounded down, at least 1, at most every agent", () => {
      assert.equal(maxUnavailableCount("10%", 2), 1);
      assert.equal(maxUnavailableCount("10%", 107), 10);
      assert.equal(maxUnavailableCount("50%", 3), 1);
      assert.equal(maxUnavailableCount("100%", 6), 6);
      assert.equal(maxUnavailableCount(3, 2), 2);
      assert.equal(maxUnavailableCount(1, 0), 1);
      assert.deepEqual(agentBatches(["a", "b", "c", "d", "e"], 2), [["a", "b"], ["c", "d"], ["e"]]);
    });
  });

  describe("config", () => {
    it("k3s.previousVersion is refused with a message saying it is no longer needed", () => {
      const r = parseStackConfig(variant("prod", (raw) => ((raw.k3s as Record<string, unknown>).previousVersion = "v1.31.3+k3s1")));
      assert.ok(!r.ok);
      assert.deepEqual(r.issues.map((i) => i.path), ["k3s-platform:k3s.previousVersion"]);
      assert.match(r.issues[0]!.message, /no longer needed: each host reads the version it runs/);
    });

    it("types upgrade: defaults, and refuses bad maxUnavailable and drain values with their paths", () => {
      const config = sampleConfig("dev");
      assert.deepEqual(config.upgrade, { maxUnavailable: "10%", readyTimeout: 600, drain: { timeout: 300, deleteEmptyDirData: true, ignoreDaemonSets: true, disableEviction: false } });
      for (const [value, path] of [
        [{ maxUnavailable: 0 }, "k3s-platform:upgrade.maxUnavailable"],
        [{ maxUnavailable: "0%" }, "k3s-platform:upgrade.maxUnavailable"],
        [{ maxUnavailable: "150%" }, "k3s-platform:upgrade.maxUnavailable"],
        [{ maxUnavailable: "two" }, "k3s-platform:upgrade.maxUnavailable"],
        [{ drain: { timeout: 0 } }, "k3s-platform:upgrade.drain.timeout"],
        [{ drain: { force: true } }, "k3s-platform:upgrade.drain"],
      ] as const) {
        const r = parseStackConfig(variant("dev", (raw) => ((raw as Record<string, unknown>).upgrade = value)));
        assert.ok(!r.ok, JSON.stringify(value));
        assert.deepEqual(r.issues.map((i) => i.path), [path], JSON.stringify(value));
      }
    });
  });

  describe("apply.sh guard on a host", () => {
    /** Stages a node's files with an install stand-in, as host-scripts.test.ts does. */
    function stage(plan: NodePlan, root: string) {
      const staging = mkdtempSync(join(scratch, "staging-"));
      systemdHost(root);
      for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
      writeFileSync(join(staging, "install-k3s.sh"), `#!/usr/bin/env bash\necho install >>"$K3S_PLATFORM_ROOT/install.log"\nmkdir -p "$K3S_PLATFORM_ROOT/run/active" && touch "$K3S_PLATFORM_ROOT/run/active/k3s-agent"\n`);
      chmodSync(join(staging, "install-k3s.sh"), 0o755);
      for (const secret of plan.secretFiles) {
        mkdirSync(dirname(join(root, secret.target)), { recursive: true });
        writeFileSync(join(root, secret.target), `${secret.name}: x\n`);
      }
      return { staging, env: { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}` } };
    }
    const agentOf = (version: string) => {
      const config = loadStackConfig(variant("dev", (raw) => (raw.k3s!.version = version)));
      return planNode(config, config.nodes.find((n) => n.role === "agent")!);
    };

    it("an agent records the version it installed, refuses a downgrade and a skipped minor before placing anything, and upgrades one minor", () => {
      const root = mkdtempSync(join(scratch, "guard-"));
      const first = stage(agentOf("v1.31.5+k3s1"), root);
      const installed = run("bash", [join(first.staging, "apply.sh")], first.env);
      assert.equal(installed.status, 0, installed.out);
      assert.equal(readFileSync(join(root, VERSION_RECORD), "utf8"), "v1.31.5+k3s1\n");
      const configBefore = readFileSync(join(root, PATHS.configYaml), "utf8");

      for (const [version, message] of [
        ["v1.31.4+k3s1", /refusing to downgrade dev-agent-1 from v1\.31\.5\+k3s1 to v1\.31\.4\+k3s1/],
        ["v1.33.1+k3s1", /refusing to skip a minor version on dev-agent-1: it runs v1\.31\.5\+k3s1, k3s\.version asks for v1\.33\.1\+k3s1; upgrade to v1\.32\.x first/],
      ] as const) {
        const plan = agentOf(version);
        plan.files.find((f) => f.name === "config.yaml")!.content += "# changed\n";
        const s = stage(plan, root);
        const r = run("bash", [join(s.staging, "apply.sh")], s.env);
        assert.notEqual(r.status, 0, version);
        assert.match(r.out, message);
        assert.equal(readFileSync(join(root, PATHS.configYaml), "utf8"), configBefore, "nothing placed");
      }
      assert.equal(readFileSync(join(root, "install.log"), "utf8"), "install\n", "no install after a refusal");

      const up = stage(agentOf("v1.32.0+k3s1"), root);
      const r = run("bash", [join(up.staging, "apply.sh")], up.env);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /upgrade\[dev-agent-1\]: upgrading from v1\.31\.5\+k3s1 to v1\.32\.0\+k3s1/);
      assert.match(r.out, /now runs v1\.32\.0\+k3s1 \(was v1\.31\.5\+k3s1\)/);
      assert.match(r.out, /k3s-agent serves after \d+s/);
      assert.equal(readFileSync(join(root, VERSION_RECORD), "utf8"), "v1.32.0+k3s1\n");
    });
  });

  describe("upgrade paths (paths.ts) in the rendered host guard, run in a sandbox", () => {
    /**
     * Runs a node's rendered upgradeGuard with a scratch root whose version record says the node
     * runs `running` (the stub k3s answers no API, so the guard falls back to the record).
     */
    function guard(target: string, running: string, opts: { role?: "server" | "agent"; datastore?: "etcd" | "sqlite" } = {}) {
      const config = loadStackConfig(
        variant("dev", (raw) => {
          raw.k3s!.version = target;
          if (opts.datastore === "sqlite") {
            raw.k3s!.datastore = { type: "sqlite" };
            raw.k3s!.etcdSnapshots = undefined;
          }
        }),
      );
      const node = config.nodes.find((n) => n.role === (opts.role ?? "server"))!;
      const root = mkdtempSync(join(scratch, "paths-"));
      mkdirSync(dirname(join(root, VERSION_RECORD)), { recursive: true });
      writeFileSync(join(root, VERSION_RECORD), `${running}\n`);
      const script = `set -euo pipefail\nROOT="$K3S_PLATFORM_ROOT"\nNODE=${node.name}\nSTATE="$ROOT/state"\n${upgradeGuard(config, node).text}\necho "guard passed: UPGRADING=$UPGRADING"\n`;
      return run("bash", ["-c", script], { K3S_PLATFORM_ROOT: root, STUB_LOG: "/dev/null", PATH: `${STUBS}:${process.env.PATH}` });
    }

    it("refuses a skipped minor and a downgrade, naming the node and both versions", () => {
      const skip = guard("v1.37.1+k3s1", "v1.35.6+k3s1");
      assert.notEqual(skip.status, 0);
      assert.match(skip.out, /upgrade\[dev-server-1\]: refusing to skip a minor version on dev-server-1: it runs v1\.35\.6\+k3s1, k3s\.version asks for v1\.37\.1\+k3s1; upgrade to v1\.36\.x first/);
      assert.doesNotMatch(skip.out, /guard passed/);
      const down = guard("v1.37.0+k3s1", "v1.37.1+k3s1");
      assert.notEqual(down.status, 0);
      assert.match(down.out, /refusing to downgrade dev-server-1 from v1\.37\.1\+k3s1 to v1\.37\.0\+k3s1/);
    });

    it("an embedded-etcd server on v1.33 with etcd < 3.5.26 is refused v1.34, naming the release to go through first", () => {
      // v1.33.6+k3s1 embeds etcd 3.5.21, v1.33.7+k3s1 etcd 3.5.25 (docs.k3s.io/release-notes/v1.33.X):
      // the +k3s revision matters, v1.33.7+k3s3 is the first with 3.5.26 (k3s-io/k3s#13493).
      for (const running of ["v1.33.6+k3s1", "v1.33.7+k3s1"]) {
        const r = guard("v1.34.9+k3s1", running);
        assert.notEqual(r.status, 0, running);
        assert.match(r.out, new RegExp(`refusing ${running.replace(/[.+]/g, "\\$&")} → v1\\.34\\.9\\+k3s1 on dev-server-1: upgrade to v1\\.33\\.7\\+k3s3 \\(or a later v1\\.33 release\\) first: etcd 3\\.5\\.26 is needed before etcd 3\\.6`));
        assert.doesNotMatch(r.out, /guard passed/);
      }
    });

    it("the allowed paths pass: through v1.33.7+k3s3, within a line, and without etcd (sqlite server, agent)", () => {
      for (const [target, running, opts] of [
        ["v1.34.9+k3s1", "v1.33.7+k3s3", {}],
        ["v1.33.7+k3s3", "v1.33.3+k3s1", {}],
        ["v1.37.1+k3s1", "v1.36.3+k3s1", {}],
        ["v1.34.9+k3s1", "v1.33.3+k3s1", { datastore: "sqlite" }],
        ["v1.34.9+k3s1", "v1.33.3+k3s1", { role: "agent" }],
      ] as const) {
        const r = guard(target, running, opts);
        assert.equal(r.status, 0, `${running} → ${target} ${JSON.stringify(opts)}: ${r.out}`);
        assert.match(r.out, /guard passed: UPGRADING=1/);
      }
    });

    it("validation warns, from the config alone, that a pinned v1.33 release below the etcd step cannot move to v1.34", () => {
      const r = parseStackConfig(variant("dev", (raw) => (raw.k3s!.version = "v1.33.3+k3s1")));
      assert.ok(r.ok);
      assert.ok(
        r.warnings.some((w) => w.path === "k3s-platform:k3s.version" && /the upgrade to v1\.34 will be refused from v1\.33\.3\+k3s1 \(embedded etcd\): v1\.33\.3 → v1\.33\.7\+k3s3 first: etcd 3\.5\.26/.test(w.message)),
        r.warnings.map((w) => w.message).join("\n"),
      );
      const fixed = parseStackConfig(variant("dev", (raw) => (raw.k3s!.version = "v1.33.7+k3s3")));
      assert.ok(fixed.ok && !fixed.warnings.some((w) => /will be refused/.test(w.message)));
    });

    it("likewise a pinned v1.36 release below v1.36.2+k3s1 cannot move to v1.37 (etcd 3.6.11 before 3.7, etcd.io upgrade_3_7)", () => {
      const r = parseStackConfig(variant("dev", (raw) => (raw.k3s!.version = "v1.36.1+k3s1")));
      assert.ok(r.ok);
      assert.ok(
        r.warnings.some((w) => w.path === "k3s-platform:k3s.version" && /the upgrade to v1\.37 will be refused from v1\.36\.1\+k3s1 \(embedded etcd\): v1\.36\.1 → v1\.36\.2\+k3s1 first: etcd 3\.6\.11 is needed before etcd 3\.7/.test(w.message)),
        r.warnings.map((w) => w.message).join("\n"),
      );
      const fixed = parseStackConfig(variant("dev", (raw) => (raw.k3s!.version = "v1.36.2+k3s1")));
      assert.ok(fixed.ok && !fixed.warnings.some((w) => /will be refused/.test(w.message)));
    });
  });

  describe("single-server upgrade on sqlite (scratch root, stub k3s/systemctl)", () => {
    it("copies the datastore with K3s stopped, skips the drain (no other node), waits for the new kubelet, uncordons", () => {
      const root = mkdtempSync(join(scratch, "sqlite-"));
      const stubs = mkdtempSync(join(scratch, "sqlite-stubs-"));
      const log = join(root, "calls.log");
      // The one node object: "<kubelet version> <Ready> <unschedulable> <cordoned-for>" (custom-columns order).
      writeFileSync(join(stubs, "k3s"), `#!/usr/bin/env bash
echo "k3s $*" >>"$STUB_LOG"
info="$(cat "$K3S_PLATFORM_ROOT/node-info")"
case "$*" in
  "kubectl get node "*custom-columns*) echo "$info" ;;
  "kubectl get nodes "*) read -r v r u _ <<<"$info"; echo "dev-server-1 $v $r $u" ;;
  "kubectl cordon "*) read -r v r _ a <<<"$info"; echo "$v $r true $a" >"$K3S_PLATFORM_ROOT/node-info" ;;
  "kubectl uncordon "*) read -r v r _ a <<<"$info"; echo "$v $r <none> $a" >"$K3S_PLATFORM_ROOT/node-info" ;;
  "kubectl annotate node dev-server-1 --overwrite "*) read -r v r u _ <<<"$info"; last="\${!#}"; echo "$v $r $u \${last##*=}" >"$K3S_PLATFORM_ROOT/node-info" ;;
  "kubectl annotate node dev-server-1 "*-) read -r v r u _ <<<"$info"; echo "$v $r $u <none>" >"$K3S_PLATFORM_ROOT/node-info" ;;
esac
`);
      writeFileSync(join(stubs, "systemctl"), `#!/usr/bin/env bash\necho "systemctl $*" >>"$STUB_LOG"\n[ "$1" != is-active ] || [ -e "$K3S_PLATFORM_ROOT/active" ]\n`);
      for (const f of ["k3s", "systemctl"]) chmodSync(join(stubs, f), 0o755);
      const planFor = (version: string) => {
        const config = loadStackConfig(variant("dev", (raw) => Object.assign(raw.k3s!, { version, datastore: { type: "sqlite" } })));
        return planNode(config, config.nodes.find((n) => n.role === "server")!);
      };
      const stageServer = (plan: NodePlan, newVersion: string) => {
        const staging = mkdtempSync(join(scratch, "staging-"));
        systemdHost(root);
        for (const f of plan.files) writeFileSync(join(staging, f.name), f.content);
        // The install restarts K3s: its kubelet then reports the new version. (apply.sh runs it under env -i: the log path is written in.)
        writeFileSync(join(staging, "install-k3s.sh"), `#!/usr/bin/env bash\necho install >>"${log}"\ntouch "$K3S_PLATFORM_ROOT/active"\nread -r _ r u a <"$K3S_PLATFORM_ROOT/node-info"\necho "${newVersion} $r $u $a" >"$K3S_PLATFORM_ROOT/node-info"\n`);
        for (const secret of plan.secretFiles) {
          mkdirSync(dirname(join(root, secret.target)), { recursive: true });
          writeFileSync(join(root, secret.target), "x\n");
        }
        return { staging, env: { K3S_PLATFORM_ROOT: root, K3S_PLATFORM_STAGING: staging, STUB_LOG: log, PATH: `${stubs}:${process.env.PATH}` } };
      };
      // A server installed at v1.31.4 by an earlier apply, with its sqlite database.
      mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
      writeFileSync(join(root, "etc/systemd/system/k3s.service"), "");
      mkdirSync(join(root, "var/lib/rancher/k3s/server/db"), { recursive: true });
      writeFileSync(join(root, "var/lib/rancher/k3s/server/db/state.db"), "db");
      writeFileSync(join(root, "var/lib/rancher/k3s/server/db/state.db-wal"), "wal");
      writeFileSync(join(root, "node-info"), "v1.31.4+k3s1 True <none> <none>\n");
      writeFileSync(join(root, "active"), "");
      writeFileSync(log, "");

      const s = stageServer(planFor("v1.31.5+k3s1"), "v1.31.5+k3s1");
      const r = run("bash", [join(s.staging, "apply.sh")], s.env);
      assert.equal(r.status, 0, r.out);
      const copy = join(root, "var/lib/rancher/k3s/server/db/pre-upgrade-v1.31.4-k3s1-to-v1.31.5-k3s1");
      assert.equal(readFileSync(join(copy, "state.db"), "utf8"), "db");
      assert.equal(readFileSync(join(copy, "state.db-wal"), "utf8"), "wal");
      assert.match(r.out, /drain skipped: no other Ready, schedulable node/);
      assert.match(r.out, /datastore copied to .*pre-upgrade-v1\.31\.4-k3s1-to-v1\.31\.5-k3s1 in \d+s/);
      assert.match(r.out, /Ready with kubelet v1\.31\.5\+k3s1 after \d+s/);
      const calls = readFileSync(log, "utf8").split("\n").filter((l) => /cordon|systemctl (stop|start)|install|annotate/.test(l) && !l.includes("kubectl get"));
      assert.deepEqual(calls, [
        "k3s kubectl annotate node dev-server-1 --overwrite k3s-platform.io/cordoned-for-upgrade=v1.31.5+k3s1",
        "k3s kubectl cordon dev-server-1",
        "systemctl stop k3s", // for the datastore copy
        "install",
        "systemctl stop k3s", // apply's restart: stop, then a start that does not block
        "systemctl start --no-block k3s",
        "k3s kubectl uncordon dev-server-1",
        "k3s kubectl annotate node dev-server-1 k3s-platform.io/cordoned-for-upgrade-",
      ]);
      assert.equal(readFileSync(join(root, "node-info"), "utf8"), "v1.31.5+k3s1 True <none> <none>\n");
      assert.doesNotMatch(readFileSync(log, "utf8"), /etcd-snapshot/, "no etcd on sqlite");

      // Issue 26: a K3s input change on the running server (no upgrade) goes through cordon and
      // drain as well, marked with the release it runs; pinned or on a channel alike.
      const restarted = (config: ResolvedConfig) => {
        writeFileSync(log, "");
        const plan = planNode(config, config.nodes.find((n) => n.role === "server")!);
        const c = stageServer(plan, "v1.31.5+k3s1");
        // On the channel stack, the cluster's release as the k3s-release step recorded it (ignored when pinned).
        const out = run("bash", [join(c.staging, "apply.sh")], { ...c.env, K3S_PLATFORM_CLUSTER_RELEASE: "v1.31.5+k3s1" });
        assert.equal(out.status, 0, out.out);
        assert.match(out.out, /K3s inputs changed: cordon and drain before the restart/);
        assert.deepEqual(readFileSync(log, "utf8").split("\n").filter((l) => /cordon|systemctl (stop|start)|install|annotate/.test(l) && !l.includes("kubectl get")), [
          "k3s kubectl annotate node dev-server-1 --overwrite k3s-platform.io/cordoned-for-upgrade=v1.31.5+k3s1",
          "k3s kubectl cordon dev-server-1",
          "install",
          "systemctl stop k3s",
          "systemctl start --no-block k3s",
          "k3s kubectl uncordon dev-server-1",
          "k3s kubectl annotate node dev-server-1 k3s-platform.io/cordoned-for-upgrade-",
        ]);
        assert.equal(readFileSync(join(root, "node-info"), "utf8"), "v1.31.5+k3s1 True <none> <none>\n");
      };
      const edited = (k3s: Record<string, unknown>, maxPods: number) =>
        loadStackConfig(variant("dev", (raw) => Object.assign(raw.k3s!, { datastore: { type: "sqlite" }, kubelet: { maxPods } }, k3s)));
      restarted(edited({ version: "v1.31.5+k3s1" }, 150));
      restarted(edited({ version: undefined, channel: "v1.31" }, 160));
    });
  });

  describe("cluster graph (Pulumi mocks)", () => {
    async function graph(config: ResolvedConfig) {
      const recorder = installMocks("staging");
      const cluster = new K3sCluster("staging", { config, sshPrivateKey: pulumi.secret("k"), token: pulumi.secret("t") }, { transformations: [recorder.transformation] });
      await recorder.settle(cluster.kubeconfig, cluster.registered);
      return recorder.registered;
    }

    it("agent batches: drain and uncordon on the first server, triggered by the version and their agents' K3s inputs, chained batch after batch", async () => {
      const config = loadStackConfig(variant("staging", (raw) => (raw.upgrade = { maxUnavailable: 1 })));
      const registered = await graph(config);
      // One agent's labels (a K3s input: node-label in its config.yaml) changed: only its batch's triggers change (issue 26).
      const labelled = loadStackConfig(variant("staging", (raw) => {
        raw.upgrade = { maxUnavailable: 1 };
        raw.nodes.find((n) => n.role === "agent")!.labels = { "example.com/disk": "ssd" };
      }));
      const relabelled = await graph(labelled);
      const batches = upgradeBatches(config);
      const agents = config.nodes.filter((n) => n.role === "agent").map((n) => n.name);
      assert.equal(batches.length, agents.length);
      const first = config.nodes.find((n) => n.role === "server")!;
      const lastServer = config.nodes.filter((n) => n.role === "server").at(-1)!;
      for (const b of batches) {
        const drain = registered.get(`staging-agent-batch-${b.index}-drain`)!;
        const uncordon = registered.get(`staging-agent-batch-${b.index}-uncordon`)!;
        for (const step of [drain, uncordon]) {
          assert.equal((step.inputs.connection as { host: string }).host, first.host, "runs on the first server");
          assert.equal((step.inputs.triggers as string[])[0], config.k3s.version);
          assert.equal(innerCommand(step.inputs.update as string), NO_OP_UPDATE, "other input changes run nothing");
        }
        const changed = (name: string) => JSON.stringify(registered.get(name)!.inputs.triggers) !== JSON.stringify(relabelled.get(name)!.inputs.triggers);
        for (const which of ["drain", "uncordon"]) {
          assert.equal(changed(`staging-agent-batch-${b.index}-${which}`), b.index === 1, `batch ${b.index} (${b.agents.join(", ")}) ${which}: triggers changed only for the relabelled agent's batch`);
        }
        // The keyed digests of the agents' secret files (issue 26): the mocks' token salt keys them.
        const plan = planCluster(config);
        const secrets = agentSecretInputs(plan, { token: "t" }, MOCK_GENERATED.token);
        const inputs = { k3s: batchInputs(plan, b), secrets };
        assert.equal(drain.inputs.stdin, renderAgentBatchDrain(config, b, inputs));
        assert.equal(uncordon.inputs.stdin, renderAgentBatchUncordon(config, b, inputs));
        // The drain waits for its agents' preflight (issue 28): a host that lacks what it needs is never cordoned.
        // Batch after batch through the drains (issue 26): the wait for the batch before is on the host.
        assert.deepEqual(drain.dependsOn, [`staging-${lastServer.name}-apply`, ...(b.index > 1 ? [`staging-agent-batch-${b.index - 1}-drain`] : []), ...b.agents.map((a) => `staging-${a}-preflight`)]);
        assert.deepEqual(uncordon.dependsOn, b.agents.map((a) => `staging-${a}-apply`));
        for (const a of b.agents) assert.ok(registered.get(`staging-${a}-apply`)!.dependsOn.includes(drain.name), a);
        // Like the drain, the preflight runs when the version changes: on other changes an unreachable agent holds back nobody.
        for (const a of b.agents) {
          const triggers = registered.get(`staging-${a}-preflight`)!.inputs.triggers as string[];
          assert.equal(triggers[0], config.k3s.version, a);
          // Its own K3s inputs too (issue 26): an agent that restarts and cannot be reached fails before its batch is cordoned.
          assert.equal(changed(`staging-${a}-preflight`), b.index === 1, `${a}'s preflight triggers changed only for the relabelled agent`);
        }
      }
    });

    it("a new cluster joins its agents in one wave: no agent's steps wait for another agent's apply; the first server's steps wait for no other node (issue 26)", async () => {
      const config = loadStackConfig(variant("staging", (raw) => {
        raw.upgrade = { maxUnavailable: 1 };
        const template = raw.nodes.find((n) => n.role === "agent")!;
        raw.nodes.push(...Array.from({ length: 6 }, (_, i) => ({ ...structuredClone(template), name: `stg-agent-${i + 3}`, host: `198.51.100.${30 + i}` })));
        delete raw.k3s!.serviceLb;
      }));
      assert.ok(upgradeBatches(config).length >= 8, "one agent per batch");
      const registered = await graph(config);
      const closure = (name: string): Set<string> => {
        const seen = new Set<string>();
        const visit = (n: string) => {
          for (const d of registered.get(n)?.dependsOn ?? []) if (!seen.has(d)) { seen.add(d); visit(d); }
        };
        visit(name);
        return seen;
      };
      const agents = config.nodes.filter((n) => n.role === "agent").map((n) => n.name);
      for (const a of agents) {
        const waits = [...closure(`staging-${a}-apply`)].filter((d) => /-apply$/.test(d) && agents.some((o) => d === `staging-${o}-apply`));
        assert.deepEqual(waits, [], `${a}'s apply waits for other agents' installs`);
      }
      const first = config.nodes.find((n) => n.role === "server")!.name;
      const firstSteps = ["stage", "bundle", "secrets", "os-prep", "apply"].map((c) => `staging-${first}-${c}`);
      for (const step of firstSteps) assert.ok(registered.has(step), step);
      for (const step of firstSteps) {
        const others = [...closure(step)].filter((d) => config.nodes.some((n) => n.name !== first && d.startsWith(`staging-${n.name}-`)));
        assert.deepEqual(others, [], `${step} waits for another node's steps`);
      }
      for (const n of config.nodes.filter((x) => x.name !== first)) {
        assert.ok(registered.get(`staging-${n.name}-stage`)!.dependsOn.includes(`staging-${first}-os-prep`), `${n.name}'s first step waits for the first server's os-prep`);
      }
    });

    it("a batch's drain waits on the host until the batch before is uncordoned, then drains its own; nothing cordoned: no wait (issue 26)", () => {
      const config = loadStackConfig(variant("staging", (raw) => (raw.upgrade = { maxUnavailable: 1 })));
      const [, second] = upgradeBatches(config);
      const script = join(scratch, "drain-2.sh");
      writeFileSync(script, renderAgentBatchDrain(config, second!, { k3s: batchInputs(planCluster(config), second!) }));
      const stubs = mkdtempSync(join(scratch, "batch-stubs-"));
      const state = join(stubs, "polls");
      // `get nodes` answers with the previous batch's agent cordoned for the upgrade until the Nth poll.
      writeFileSync(join(stubs, "k3s"), `#!/usr/bin/env bash
echo "k3s $*" >>"$STUB_LOG"
case "$*" in
  "kubectl get nodes --no-headers -o custom-columns=NAME:.metadata.name,CORDONED_FOR:.metadata.annotations.k3s-platform\\.io/cordoned-for-upgrade")
    n=$(($(cat "${state}" 2>/dev/null || echo 0) + 1)); echo "$n" >"${state}"
    if [ "$n" -lt "$CLEARED_AT" ]; then echo "stg-agent-1 v1.37.1+k3s1"; else echo "stg-agent-1 <none>"; fi ;;
  "kubectl get node "*) echo "Error from server (NotFound)" >&2; exit 1 ;;
esac
`);
      chmodSync(join(stubs, "k3s"), 0o755);
      const go = (clearedAt: number, wait = "60") => {
        rmSync(state, { force: true });
        const log = join(stubs, `log-${clearedAt}`);
        const r = run("bash", [script], { STUB_LOG: log, CLEARED_AT: String(clearedAt), K3S_PLATFORM_PREVIOUS_BATCH_WAIT: wait, PATH: `${stubs}:${process.env.PATH}` });
        return { ...r, polls: Number(readFileSync(state, "utf8")) };
      };
      const now = go(1);
      assert.equal(now.status, 0, now.out);
      assert.equal(now.polls, 1, "nothing cordoned: one look, no wait");
      assert.match(now.out, /not registered yet \(first join\): nothing to drain/);
      const later = go(2);
      assert.equal(later.status, 0, later.out);
      assert.equal(later.polls, 2, "waited for batch 1's uncordon");
      const never = go(1000, "1");
      assert.notEqual(never.status, 0);
      assert.match(never.out, /batch 1 is not done after 1s: still cordoned for the upgrade: stg-agent-1 .*nothing in batch 2 was cordoned/);
    });

    it("a running agent whose K3s inputs changed is cordoned and drained by its batch's drain, its record written by the uncordon; a matching record drains nothing, an absent one only when its preflight says its apply restarts K3s (issue 26)", () => {
      const config = loadStackConfig(variant("staging", (raw) => (raw.upgrade = { maxUnavailable: 1 })));
      const [firstBatch] = upgradeBatches(config);
      const agent = firstBatch!.agents[0]!;
      const plan = planCluster(config);
      const inputs = { k3s: batchInputs(plan, firstBatch!), secrets: agentSecretInputs(plan, { token: "t" }, "salt") };
      const planned = inputs.k3s.get(agent)!;
      const plannedSecrets = inputs.secrets[agent]!;
      assert.match(planned, /^[0-9a-f]{64}$/);
      assert.match(plannedSecrets, /^[0-9a-f]{64}$/);
      const drain = join(scratch, "drain-inputs.sh");
      const uncordon = join(scratch, "uncordon-inputs.sh");
      writeFileSync(drain, renderAgentBatchDrain(config, firstBatch!, inputs));
      writeFileSync(uncordon, renderAgentBatchUncordon(config, firstBatch!, inputs));
      const stubs = mkdtempSync(join(scratch, "inputs-stubs-"));
      // The agent runs the target release, Ready; its Node records RECORDED (<none>: no record); one other node takes pods.
      writeFileSync(join(stubs, "k3s"), `#!/usr/bin/env bash
echo "k3s $*" >>"$STUB_LOG"
case "$*" in
  *"custom-columns=INPUTS:.metadata.annotations.k3s-platform\\.io/k3s-inputs,SECRET_INPUTS:.metadata.annotations.k3s-platform\\.io/k3s-secret-inputs") echo "$RECORDED $RECORDED_SECRETS" ;;
  "kubectl get node ${agent} "*) echo "${config.k3s.version} True <none> $CORDONED_FOR" ;;
  "kubectl get nodes "*) echo "stg-server-1 ${config.k3s.version} True <none>"; echo "${agent} ${config.k3s.version} True <none>" ;;
esac
`);
      chmodSync(join(stubs, "k3s"), 0o755);
      const go = (script: string, recorded: string, cordonedFor = "<none>", recordedSecrets = plannedSecrets) => {
        const log = join(stubs, `log-${Math.random().toString(16).slice(2)}`);
        const r = run("bash", [script], { STUB_LOG: log, RECORDED: recorded, RECORDED_SECRETS: recordedSecrets, CORDONED_FOR: cordonedFor, PATH: `${stubs}:${process.env.PATH}` });
        return { ...r, calls: existsSync(log) ? readFileSync(log, "utf8") : "" };
      };
      const changed = go(drain, "0".repeat(64));
      assert.equal(changed.status, 0, changed.out);
      assert.match(changed.out, /its K3s inputs changed: cordon and drain before its apply restarts it/);
      assert.match(changed.calls, new RegExp(`kubectl annotate node ${agent} --overwrite k3s-platform.io/cordoned-for-upgrade=${config.k3s.version!.replace(/[.+]/g, "\\$&")}\n`));
      assert.match(changed.calls, new RegExp(`kubectl cordon ${agent}\n`));
      assert.match(changed.calls, new RegExp(`kubectl drain ${agent} --timeout=`));
      // Its secret files changed (the keyed digest its Node records differs): drained the same way.
      const secret = go(drain, planned, "<none>", "1".repeat(64));
      assert.equal(secret.status, 0, secret.out);
      assert.match(secret.out, /its secret files changed: cordon and drain before its apply restarts it/);
      assert.match(secret.calls, new RegExp(`kubectl cordon ${agent}\n[^]*kubectl drain ${agent} --timeout=`));
      // No record of the secret files (an agent recorded before it existed) and no answer from its
      // preflight (render gives none): adopted, nothing drained.
      for (const [recorded, secrets] of [[planned, plannedSecrets], ["<none>", plannedSecrets], [planned, "<none>"], ["<none>", "<none>"]] as const) {
        const same = go(drain, recorded, "<none>", secrets);
        assert.equal(same.status, 0, same.out);
        assert.doesNotMatch(same.calls, /kubectl (cordon|drain|annotate)/, `record ${recorded} ${secrets}: nothing cordoned`);
      }
      // Its preflight's dry run says its apply keeps K3s running (an equivalent NO_PROXY kept): nothing
      // cordoned or drained for changed inputs or secret files; the uncordon still records them.
      const keeps = join(scratch, "drain-keeps.sh");
      writeFileSync(keeps, renderAgentBatchDrain(config, firstBatch!, { ...inputs, restarts: { [agent]: false } }));
      for (const [recorded, secrets] of [["0".repeat(64), plannedSecrets], [planned, "1".repeat(64)]] as const) {
        const kept = go(keeps, recorded, "<none>", secrets);
        assert.equal(kept.status, 0, kept.out);
        assert.doesNotMatch(kept.calls, /kubectl (cordon|drain|annotate)/, `record ${recorded} ${secrets}: nothing cordoned`);
      }
      // The answer as the preflight's stdout gives it: yes, no, or none (undefined).
      assert.deepEqual(
        ["preflight ok\napply[a]: dry run: restarts K3s: no\n", "apply[a]: dry run: restarts K3s: yes", "", "apply[a]: dry run: restarts K3s: no, maybe"].map(parseRestartVerdict),
        [false, true, undefined, undefined],
      );
      // Every record (planned, other, none) of both digests with every answer (issue 26): a changed
      // record drains unless the answer is no; a missing one (an agent joined before the records:
      // the first up of this version) drains only on a yes, whatever else changed in that up; no
      // answer there means the preflight has not run since it answers: its inputs did not change.
      const answers = [true, false, undefined] as const;
      for (const answer of answers) {
        const script = join(scratch, `drain-answer-${String(answer)}.sh`);
        writeFileSync(script, renderAgentBatchDrain(config, firstBatch!, { ...inputs, restarts: { [agent]: answer } }));
        for (const recorded of [planned, "0".repeat(64), "<none>"]) {
          for (const secrets of [plannedSecrets, "1".repeat(64), "<none>"]) {
            const changedRecord = (recorded !== "<none>" && recorded !== planned) || (secrets !== "<none>" && secrets !== plannedSecrets);
            const missing = recorded === "<none>" || secrets === "<none>";
            const drains = changedRecord ? answer !== false : missing && answer === true;
            const r = go(script, recorded, "<none>", secrets);
            const what = `answer ${String(answer)}, record ${recorded.slice(0, 6)} ${secrets.slice(0, 6)}`;
            assert.equal(r.status, 0, `${what}: ${r.out}`);
            if (drains) assert.match(r.calls, new RegExp(`kubectl cordon ${agent}\n[^]*kubectl drain ${agent} --timeout=`), what);
            else assert.doesNotMatch(r.calls, /kubectl (cordon|drain|annotate)/, what);
          }
        }
      }
      const unrecorded = go(join(scratch, "drain-answer-true.sh"), "<none>", "<none>");
      assert.match(unrecorded.out, /no record of its K3s inputs yet, and its apply will restart K3s \(its preflight's dry run\): cordon and drain/);
      const after = go(uncordon, "0".repeat(64), config.k3s.version!);
      assert.equal(after.status, 0, after.out);
      const record = after.calls.indexOf(`kubectl annotate node ${agent} --overwrite k3s-platform.io/k3s-inputs=${planned} k3s-platform.io/k3s-secret-inputs=${plannedSecrets}\n`);
      assert.ok(record >= 0, after.calls);
      assert.ok(after.calls.indexOf(`kubectl uncordon ${agent}`) > record, "recorded, then uncordoned");
    });

    it("a failed drain takes back every cordon of its batch before failing, an operator's cordon left alone: nothing restarted, nothing stays cordoned (issue 26)", () => {
      const config = loadStackConfig(variant("staging", (raw) => (raw.upgrade = { maxUnavailable: 2 })));
      const [batch] = upgradeBatches(config);
      assert.equal(batch!.agents.length, 2);
      const script = join(scratch, "drain-fails.sh");
      // Both agents' Nodes record other inputs: both are cordoned, then drained one after the other.
      writeFileSync(script, renderAgentBatchDrain(config, batch!, { k3s: batchInputs(planCluster(config), batch!) }));
      const stubs = mkdtempSync(join(scratch, "undo-stubs-"));
      // The API as node state in files: NAME.cordoned, NAME.mark (the upgrade's annotation); a drain of FAIL_NODE fails as a PDB makes it.
      writeFileSync(join(stubs, "k3s"), `#!/usr/bin/env bash
echo "k3s $*" >>"$STUB_LOG"
state() { if [ -e "$NODES/$1.cordoned" ]; then echo true; else echo "<none>"; fi; }
mark() { cat "$NODES/$1.mark" 2>/dev/null || echo "<none>"; }
case "$*" in
  *"custom-columns=INPUTS:"*) echo "${"0".repeat(64)} <none>" ;;
  "kubectl get node "*) echo "${config.k3s.version} True $(state "$4") $(mark "$4")" ;;
  "kubectl get nodes "*) echo "stg-server-1 ${config.k3s.version} True <none>"; for a in ${batch!.agents.join(" ")}; do echo "$a ${config.k3s.version} True $(state "$a")"; done ;;
  "kubectl annotate node "*"k3s-platform.io/cordoned-for-upgrade="*) printf '%s\n' "\${6#*=}" >"$NODES/$4.mark" ;;
  "kubectl annotate node "*"k3s-platform.io/cordoned-for-upgrade-") rm -f "$NODES/$4.mark" ;;
  "kubectl cordon "*) touch "$NODES/$3.cordoned" ;;
  "kubectl uncordon "*) rm -f "$NODES/$3.cordoned" ;;
  "kubectl drain $FAIL_NODE "*) echo 'error when evicting pods/"web-0" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod'"'"'s disruption budget.' >&2; exit 1 ;;
esac
`);
      chmodSync(join(stubs, "k3s"), 0o755);
      const go = (failNode: string, operatorCordoned: string[] = []) => {
        const nodes = mkdtempSync(join(stubs, "nodes-"));
        for (const n of operatorCordoned) writeFileSync(join(nodes, `${n}.cordoned`), "");
        const log = join(nodes, "log");
        const r = run("bash", [script], { STUB_LOG: log, NODES: nodes, FAIL_NODE: failNode, PATH: `${stubs}:${process.env.PATH}` });
        const left = batch!.agents.map((a) => [a, existsSync(join(nodes, `${a}.cordoned`)), existsSync(join(nodes, `${a}.mark`))]);
        return { ...r, calls: readFileSync(log, "utf8"), left };
      };
      const [a1, a2] = batch!.agents as [string, string];
      for (const failing of [a1, a2]) {
        const r = go(failing);
        assert.notEqual(r.status, 0, "the step fails");
        assert.match(r.out, new RegExp(`drain of ${failing} failed after \\d+s; pods not evicted: default/web-0 .*its cordon is taken back`));
        const at = (call: string) => r.calls.indexOf(`k3s kubectl ${call}\n`);
        assert.ok(at(`cordon ${a1}`) < at(`cordon ${a2}`) && at(`cordon ${a2}`) < r.calls.indexOf(`k3s kubectl drain ${failing} `), r.calls);
        for (const a of [a1, a2]) assert.ok(at(`uncordon ${a}`) > r.calls.indexOf(`k3s kubectl drain ${failing} `), `${a} uncordoned after the failed drain\n${r.calls}`);
        assert.deepEqual(r.left, [[a1, false, false], [a2, false, false]], "nothing stays cordoned or marked");
      }
      // An operator's cordon (no annotation) is neither taken over nor taken back.
      const operator = go(a2, [a1]);
      assert.notEqual(operator.status, 0);
      assert.deepEqual(operator.left, [[a1, true, false], [a2, false, false]]);
    });

    it("a channel stack's batch drains a running agent whose K3s inputs changed, at the release its k3s-release step recorded; with no readable record it cordons nothing (issue 26)", () => {
      const config = loadStackConfig(variant("staging", (raw) => ((raw.k3s!.version = undefined), (raw.k3s!.channel = "stable"), (raw.upgrade = { maxUnavailable: 1 }))));
      const release = "v1.36.3+k3s1";
      const [firstBatch] = upgradeBatches(config);
      const agent = firstBatch!.agents[0]!;
      const inputs = { k3s: batchInputs(planCluster(config), firstBatch!) };
      const stubs = mkdtempSync(join(scratch, "channel-stubs-"));
      // The agent runs the cluster's release, Ready, its Node records other inputs; one other node takes pods.
      writeFileSync(join(stubs, "k3s"), `#!/usr/bin/env bash
echo "k3s $*" >>"$STUB_LOG"
case "$*" in
  *"custom-columns=INPUTS:"*) echo "${"0".repeat(64)} <none>" ;;
  "kubectl get node ${agent} "*) echo "${release} True <none> <none>" ;;
  "kubectl get nodes "*) echo "stg-server-1 ${release} True <none>"; echo "${agent} ${release} True <none>" ;;
esac
`);
      chmodSync(join(stubs, "k3s"), 0o755);
      const go = (recorded: string | undefined) => {
        const script = join(scratch, `channel-drain-${recorded ?? "none"}.sh`);
        writeFileSync(script, renderAgentBatchDrain(config, firstBatch!, inputs, recorded));
        const log = join(stubs, `log-${recorded ?? "none"}`);
        const r = run("bash", [script], { STUB_LOG: log, PATH: `${stubs}:${process.env.PATH}` });
        return { ...r, calls: existsSync(log) ? readFileSync(log, "utf8") : "" };
      };
      const drained = go(release);
      assert.equal(drained.status, 0, drained.out);
      assert.match(drained.out, /its K3s inputs changed: cordon and drain before its apply restarts it/);
      assert.match(drained.calls, new RegExp(`kubectl annotate node ${agent} --overwrite k3s-platform.io/cordoned-for-upgrade=v1\\.36\\.3\\+k3s1\n`));
      assert.match(drained.calls, new RegExp(`kubectl cordon ${agent}\n[^]*kubectl drain ${agent} --timeout=`));
      const none = go(undefined);
      assert.notEqual(none.status, 0);
      assert.match(none.out, /no cluster release for channel stable \(the k3s-release step records it; got ''\): nothing cordoned/);
      assert.equal(none.calls, "", "nothing asked of the API");
    });

    it("the batch scripts pass shellcheck and pipe into no early-exit consumer", () => {
      const config = loadStackConfig(variant("prod", (raw) => (raw.upgrade = { maxUnavailable: 2, drain: { disableEviction: true } })));
      const plan = planCluster(config);
      const paths = upgradeBatches(config).flatMap((b) => [renderAgentBatchDrain(config, b, { k3s: batchInputs(plan, b) }), renderAgentBatchUncordon(config, b, { k3s: batchInputs(plan, b) })]).map((text, i) => {
        assert.doesNotMatch(text.replace(/(^|\s)#.*$/gm, ""), /\|\s*(grep\b[^|;&\n]*\s-[A-Za-z]*[qlm]|head\b)/);
        const path = join(scratch, `batch-${i}.sh`);
        writeFileSync(path, text);
        return path;
      });
      assert.match(readFileSync(paths[0]!, "utf8"), /drain_for_upgrade "\$agent" 300 --ignore-daemonsets --delete-emptydir-data --disable-eviction/);
      // Every datastore's server apply.sh (the backup step differs): sqlite, external.
      for (const datastore of [{ type: "sqlite" }, { type: "external" }] as const) {
        const c = loadStackConfig(variant("dev", (raw) => (raw.k3s!.datastore = datastore)));
        const path = join(scratch, `apply-${datastore.type}.sh`);
        writeFileSync(path, planNode(c, c.nodes.find((n) => n.role === "server")!).files.find((f) => f.name === "apply.sh")!.content);
        paths.push(path);
      }
      const lint = run("shellcheck", ["--severity=style", ...paths]);
      assert.equal(lint.status, 0, lint.out);
    });

    it("a channel stack's agents join in upgrade batches, as a pinned stack's (issue 26): each agent's apply after its batch's drain, which waits for the last server and its agents' preflight", async () => {
      const config = loadStackConfig(variant("dev", (raw) => Object.assign(raw.k3s!, { version: undefined, channel: "stable" })));
      const recorder = installMocks("dev");
      const cluster = new K3sCluster("dev", { config, sshPrivateKey: pulumi.secret("k"), token: pulumi.secret("t") }, { transformations: [recorder.transformation] });
      await recorder.settle(cluster.kubeconfig, cluster.registered);
      const server = config.nodes.filter((n) => n.role === "server").at(-1)!.name;
      for (const batch of upgradeBatches(config)) {
        const drain = recorder.registered.get(`dev-agent-batch-${batch.index}-drain`);
        assert.ok(drain, `batch ${batch.index}'s drain is declared`);
        assert.ok(drain.dependsOn.includes(`dev-${server}-apply`), drain.dependsOn.join(", "));
        for (const a of batch.agents) {
          assert.ok(drain.dependsOn.includes(`dev-${a}-preflight`), `${a}'s preflight first: ${drain.dependsOn.join(", ")}`);
          assert.ok(recorder.registered.get(`dev-${a}-apply`)!.dependsOn.includes(drain.name), `${a} after its batch's drain`);
        }
        assert.ok(recorder.registered.get(`dev-agent-batch-${batch.index}-uncordon`), `batch ${batch.index}'s uncordon is declared`);
      }
    });
  });

  describe("preview:md", () => {
    const cluster = (config: ResolvedConfig) => ({ type: "k3s-platform:index:K3sCluster", inputs: { config } });
    it("one line per phase: snapshot, servers one at a time, agents in batches", () => {
      const before = loadStackConfig(variant("prod", (raw) => (raw.k3s!.version = "v1.37.0+k3s1")));
      const after = sampleConfig("prod");
      assert.equal(after.k3s.version, "v1.37.1+k3s1", "the prod sample pins v1.37.1+k3s1");
      assert.deepEqual(upgradeSummary(before, after), ["upgrade v1.37.0 → v1.37.1: snapshot, 3 servers one at a time, 3 agents in 3 batches of 1"]);
      const two = loadStackConfig(variant("prod", (raw) => (raw.upgrade = { maxUnavailable: 2 })));
      assert.match(upgradeSummary(before, two)[0]!, /3 agents in 2 batches of 2$/);
      assert.match(upgradeSummary({ ...before, k3s: { ...before.k3s, version: "v1.35.6+k3s1" } }, after)[0]!, /refused on the hosts.*skips 1 minor/);
      // The etcd 3.5 → 3.6 step: preview names the release to go through first (paths.ts).
      assert.equal(
        upgradeSummary({ k3s: { version: "v1.33.3+k3s1" } }, { k3s: { version: "v1.34.9+k3s1", datastore: { type: "etcd" } } })[0],
        "upgrade v1.33.3 → v1.34.9: **refused on the hosts** (v1.33.3+k3s1 → v1.34.9+k3s1: upgrade to v1.33.7+k3s3 (or a later v1.33 release) first: etcd 3.5.26 is needed before etcd 3.6 (removed etcd members come back as \"zombie members\" otherwise)); path: v1.33.3 → v1.33.7+k3s3 first: etcd 3.5.26 is needed before etcd 3.6 (removed etcd members come back as \"zombie members\" otherwise)",
      );
      assert.match(upgradeSummary({ k3s: { version: "v1.33.3+k3s1" } }, { k3s: { version: "v1.34.9+k3s1", datastore: { type: "sqlite" } } })[0]!, /^upgrade v1\.33\.3 → v1\.34\.9: copy of the sqlite datastore/);
      const md = previewMarkdown(
        { steps: [{ op: "update", urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod", oldState: cluster(before), newState: cluster(after), detailedDiff: { "config.k3s.version": { kind: "update" } } }] },
        { stack: "prod" },
      );
      assert.match(md, /#### Operations\n\n- upgrade v1\.37\.0 → v1\.37\.1: snapshot, 3 servers one at a time, 3 agents in 3 batches of 1\n/);
      assert.doesNotMatch(previewMarkdown({ steps: [] }, { stack: "prod" }), /Operations/);
    });
    it("a channel stack: the preview says running nodes keep their release (issue 28)", () => {
      const pinned = sampleConfig("dev");
      const channel = loadStackConfig(variant("dev", (raw) => Object.assign(raw.k3s!, { version: undefined, channel: "stable" })));
      assert.deepEqual(upgradeSummary(pinned, channel), [`K3s release: channel stable is resolved once for the whole cluster (adopted from the first server when K3s runs there: ${pinned.k3s.version}); every node installs that release: set k3s.version to upgrade`]);
      assert.deepEqual(upgradeSummary(undefined, channel), ["K3s release: channel stable is resolved once for the whole cluster (adopted from the first server when K3s runs there); every node installs that release: set k3s.version to upgrade"]);
      assert.deepEqual(upgradeSummary(channel, channel), [], "an unchanged channel says nothing");
    });
  });

  describe("restore runbook (components/backup)", () => {
    const config = loadStackConfig(variant("prod", (raw) => (raw.k3s!.etcdSnapshots = { dir: "/srv/snapshots", retention: 10 })));
    const scripts = restoreRunbook(config);
    /** A first or other server: config.yaml naming it, k3s running, a snapshot on disk. */
    function host(nodeName: string) {
      const root = mkdtempSync(join(scratch, "restore-"));
      mkdirSync(join(root, "etc/rancher/k3s"), { recursive: true });
      writeFileSync(join(root, PATHS.configYaml), `node-name: ${nodeName}\n`);
      mkdirSync(join(root, "run/active"), { recursive: true });
      writeFileSync(join(root, "run/active/k3s"), "");
      mkdirSync(join(root, "srv/snapshots"), { recursive: true });
      writeFileSync(join(root, "srv/snapshots/pre-upgrade-a-prod-server-1-1700000000"), "snapshot");
      mkdirSync(join(root, "var/lib/rancher/k3s/server/db/etcd"), { recursive: true });
      const log = join(root, "calls.log");
      writeFileSync(log, "");
      const env = { K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${BACKUP_STUBS}:${process.env.PATH}` };
      return { root, log, env };
    }
    const script = (name: string) => {
      const path = join(scratch, name);
      writeFileSync(path, scripts.get(`backup/${name}`)!);
      return path;
    };

    it("npm run render writes the runbook for embedded etcd only; it passes shellcheck", () => {
      assert.deepEqual([...scripts.keys()], ["backup/restore-etcd.sh", "backup/rejoin-server.sh"]);
      const tree = renderTree(config, new Set());
      assert.equal(tree.get("backup/restore-etcd.sh"), scripts.get("backup/restore-etcd.sh"));
      assert.equal(restoreRunbook(loadStackConfig(variant("dev", (raw) => (raw.k3s!.datastore = { type: "sqlite" })))).size, 0);
      const lint = run("shellcheck", ["--severity=style", script("restore-etcd.sh"), script("rejoin-server.sh")]);
      assert.equal(lint.status, 0, lint.out);
    });

    it("restore on the first server: refuses without --yes, elsewhere, or with a missing snapshot; then stop → cluster-reset from the snapshot → start", () => {
      const first = host("prod-server-1");
      const restore = script("restore-etcd.sh");
      const dry = run("bash", [restore, "pre-upgrade-a-prod-server-1-1700000000"], first.env);
      assert.equal(dry.status, 2, dry.out);
      assert.match(dry.out, /nothing done; run again with --yes/);
      assert.equal(readFileSync(first.log, "utf8"), "", "nothing ran");
      const other = host("prod-server-2");
      assert.match(run("bash", [restore, "x", "--yes"], other.env).out, /this host is 'prod-server-2', not the first server prod-server-1/);
      assert.match(run("bash", [restore, "missing", "--yes"], first.env).out, /no snapshot missing \(looked for the file and in \/srv\/snapshots/);

      const r = run("bash", [restore, "pre-upgrade-a-prod-server-1-1700000000", "--yes"], first.env);
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(readFileSync(first.log, "utf8").trim().split("\n"), [
        "systemctl stop k3s",
        "k3s server --cluster-reset --cluster-reset-restore-path=/srv/snapshots/pre-upgrade-a-prod-server-1-1700000000",
        // Queued, then a bounded wait for Ready: the restore step's own fragment (backup/restore.ts).
        "systemctl start --no-block k3s",
      ]);
      assert.equal(readFileSync(join(first.root, "restored/from"), "utf8").trim(), "/srv/snapshots/pre-upgrade-a-prod-server-1-1700000000");
      assert.match(r.out, /now, on every other server: bash rejoin-server.sh --yes/);
    });

    it("rejoin on the other servers: refuses on the first server; moves the etcd data aside and restarts", () => {
      const rejoin = script("rejoin-server.sh");
      const first = host("prod-server-1");
      const refused = run("bash", [rejoin, "--yes"], first.env);
      assert.notEqual(refused.status, 0);
      assert.match(refused.out, /this is the first server prod-server-1/);
      assert.ok(existsSync(join(first.root, "var/lib/rancher/k3s/server/db/etcd")), "the first server's data stays");
      const second = host("prod-server-2");
      const r = run("bash", [rejoin, "--yes"], second.env);
      assert.equal(r.status, 0, r.out);
      assert.ok(!existsSync(join(second.root, "var/lib/rancher/k3s/server/db")), "etcd data gone from its place");
      assert.deepEqual(readFileSync(second.log, "utf8").trim().split("\n"), ["systemctl stop k3s", "systemctl start --no-block k3s"]);
      assert.match(r.out, /rejoined through prod-server-1/);
    });
  });
});
