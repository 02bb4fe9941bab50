import { strict as assert } from "node:assert";
import { NO_OP_UPDATE } from "../../../components/operations/once";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as fc from "fast-check";
import { ABANDONED_RESET_LINE, parseAbandonedReset, renderRestoreAbandoned, parseRestoreCovered, parseRestoreResetDone, RESET_FLAG, RESET_RECORD, RESTORE_COVERED, restoreCoversLine, RESTORE_RESTARTING, RESTORE_STOPPED, RESTORE_TOKEN_DROPIN, snapshotTime } from "../../../components/backup/restore";
import { type NodeConfig, type ResolvedConfig, restoreSchema } from "../../../components/config/schema";
import { secretIssues } from "../../../components/config/validate";
import { PATHS } from "../../../components/k3s/paths";
import { SERVER_CA_FILE } from "../../../components/rotation/token-request";
import { rotationDone } from "../../../components/operations/certificates";
import { ONCE_DIR } from "../../../components/operations/once";
import { clusterSteps } from "../../../components/operations";
import { restore, restoreStepNames } from "../../../components/operations/restore";
import { restoreAbandoned, restoreAbandonedDone } from "../../../components/operations/restore-abandoned";
import type { Facts, FromFacts, Step } from "../../../components/operations/step";
import { parseStackConfig } from "../../../components/stack/load";
import type { StackValidationPolicy } from "@pulumi/policy";
import { policies } from "../../../policies/policies";
import { lifecycleLines } from "../../../tools/preview-lifecycle";
import type { PreviewStep } from "../../../tools/preview-markdown";
import { collectGraph, policySettings, runStackPolicy, stackArgs } from "../../helpers/policy-harness";
import { REPO, variant } from "../../helpers/samples";
import { sample, stepsOf } from "./helpers";

const STUBS = join(REPO, "test", "helpers", "stubs-backup");
const SNAPSHOT = "pre-upgrade-prod-server-1-1765065600";
/** A secure token's prefix and CA hash (64 hex digits: K3s' parseToken refuses other lengths). */
const K10 = `K10${"ca".repeat(32)}`;
const FACTS: Facts = { baseline: {}, token: `${K10}::server:current-pass`, tokenSalt: "", encryptionKeys: {}, restoreToken: "" };
/** The prod sample's nodes, and a server and an agent added after them. */
const ORIGINAL_NODES = ["prod-server-1", "prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-2", "prod-agent-3"];
const addNodes = (raw: ReturnType<typeof variant>) => {
  const like = (name: string) => raw.nodes.find((n) => n.name === name)!;
  raw.nodes.push({ ...like("prod-server-3"), name: "prod-server-4", host: "203.0.113.14" }, { ...like("prod-agent-3"), name: "prod-agent-4", host: "203.0.113.24" });
};
const stdinOf = (s: Step, facts: Partial<Facts> = {}) => (typeof s.stdin === "string" ? s.stdin : (s.stdin as FromFacts<string>).render({ ...FACTS, ...facts }));

describe("operation restore", () => {
  const withRestore = (r: Record<string, unknown>, edit: (raw: ReturnType<typeof variant>) => void = () => {}) =>
    sample("prod", (raw) => {
      raw.k3s!.etcdSnapshots = { dir: "/srv/snapshots", s3: { bucket: "snaps", folder: "prod" } };
      raw.restore = r as never;
      edit(raw);
    });

  it("check, every server stops (others first), the first server resets, the others rejoin one at a time, agents restart; after the rotations", () => {
    const { steps, config, plan } = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
    assert.deepEqual(
      steps.map((s) => `${s.name} ${s.after.join(",")}`),
      [
        // After restore-abandoned's steps, which take the armed id as their trigger first (operations/restore-abandoned.ts whileArmed).
        `prod-server-1-restore-check ${restoreAbandonedDone(config, []).join(",")}`,
        "prod-server-2-restore-stop prod-server-1-restore-check",
        "prod-server-3-restore-stop prod-server-2-restore-stop",
        "prod-server-1-restore-stop prod-server-3-restore-stop",
        "prod-server-1-restore-reset prod-server-1-restore-stop",
        "prod-server-2-restore-rejoin prod-server-1-restore-reset",
        "prod-server-3-restore-rejoin prod-server-2-restore-rejoin",
        "prod-agent-1-restore-restart prod-server-3-restore-rejoin",
        "prod-agent-2-restore-restart prod-server-3-restore-rejoin",
        "prod-agent-3-restore-restart prod-server-3-restore-rejoin",
      ],
    );
    assert.deepEqual(steps.map((s) => s.name), restoreStepNames(config));
    assert.ok(steps.every((s) => s.runs === "once" && JSON.stringify(s.triggers) === '["1"]'), "one-shot per restore.id");
    // An update runs nothing on a host: the check's only prints the record it wrote (what the others read).
    assert.deepEqual(steps.map((s) => s.update), steps.map((s, i) => (i === 0 ? `${NO_OP_UPDATE}; sudo -n cat ${RESTORE_COVERED} 2>/dev/null || true` : NO_OP_UPDATE)));
    assert.deepEqual(steps.filter((s) => !s.restartsK3s).map((s) => s.name), ["prod-server-1-restore-check"]);
    assert.deepEqual(steps.find((s) => s.name.endsWith("-reset"))!.secretInputs, ["stdin"], "the reset's stdin may carry restoreToken");
    // In the whole run order, after every other restart (rotations) and before nothing that restarts.
    const order = clusterSteps(config, plan).map((s) => s.name);
    assert.ok(order.indexOf("prod-server-1-restore-check") > Math.max(...rotationDone(config, plan).map((n) => order.indexOf(n))));
    assert.deepEqual(stepsOf(restore, sample("prod")).steps, [], "not armed: no step");
  });

  it("validation names the config path: embedded etcd only, s3 needs etcdSnapshots.s3 and a file name, snapshot names are words; restoreToken without restore is refused", () => {
    const issues = (edit: Parameters<typeof variant>[1]) => {
      const r = parseStackConfig(variant("prod", edit));
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    const sqlite = issues((raw) => {
      raw.k3s!.datastore = { type: "sqlite" };
      raw.nodes = raw.nodes.filter((n) => n.name === "prod-server-1");
      raw.restore = { id: 1, snapshot: SNAPSHOT };
    });
    assert.ok(sqlite.some((i) => /^k3s-platform:restore: restores an embedded-etcd snapshot, but k3s\.datastore\.type is sqlite/.test(i)), sqlite.join("\n"));
    assert.match(issues((raw) => (raw.restore = { id: 1, snapshot: SNAPSHOT, source: "s3" })).join("\n"), /k3s-platform:restore\.source: s3 needs k3s\.etcdSnapshots\.s3/);
    assert.match(
      issues((raw) => {
        raw.k3s!.etcdSnapshots = { s3: { bucket: "snaps" } };
        raw.restore = { id: 1, snapshot: "/srv/x", source: "s3" };
      }).join("\n"),
      /k3s-platform:restore\.snapshot: an S3 snapshot is named by its file name only/,
    );
    for (const bad of ["../etc/shadow", "/srv/../etc/shadow", "a;reboot", "$(id)", "a b", "-rf", "x\ny"]) {
      assert.match(issues((raw) => (raw.restore = { id: 1, snapshot: bad })).join("\n"), /k3s-platform:restore\.snapshot: /, bad);
    }
    const needs = { k3s: { datastore: { type: "etcd" } } };
    assert.deepEqual(secretIssues(needs, new Set(["restoreToken"])).map((i) => i.path), ["k3s-platform:restoreToken"]);
    assert.deepEqual(secretIssues({ ...needs, restore: {} }, new Set(["restoreToken"])), []);
  });

  it("validation leaves a restore with a server armed for decommission to the host check (after the restore ran, a decommission must work); preview:md warns when the restore runs in the same change", () => {
    const issues = (edit: Parameters<typeof variant>[1]) => {
      const r = parseStackConfig(variant("prod", edit));
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    const armed = (raw: ReturnType<typeof variant>) => {
      raw.nodes.push({ ...raw.nodes.find((n) => n.name === "prod-server-3")!, name: "prod-server-4", host: "203.0.113.14" });
      raw.nodes.find((n) => n.name === "prod-server-3")!.decommission = true;
      raw.restore = { id: 1, snapshot: SNAPSHOT };
    };
    assert.deepEqual(issues(armed).filter((i) => /restore/.test(i)), []);
    // Preview: the restore runs in this up while prod-server-3 is armed and prod-server-5 is deleted.
    const now = sample("prod", armed);
    const before = sample("prod", (raw) => {
      armed(raw);
      delete raw.restore;
      raw.nodes.push({ ...raw.nodes.find((n) => n.name === "prod-server-2")!, name: "prod-server-5", host: "203.0.113.15" });
    });
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const cluster = (old: ResolvedConfig): PreviewStep => ({ op: "update", urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod", oldState: { inputs: { config: old } }, newState: { inputs: { config: now } } });
    const created = restoreStepNames(now).map((n): PreviewStep => ({ op: "create", urn: urn(n) }));
    const lines = lifecycleLines([cluster(before), ...created], "prod");
    assert.ok(
      lines.includes(
        "⚠️ restore: prod-server-3 armed for decommission, prod-server-5 deleted from the config: K3s keeps running there through this up (a teardown runs after the restore), so the restore check will refuse before any server stops; finish the removal in an up without restore first, then restore (docs/backup-and-restore.md)",
      ),
      lines.join("\n"),
    );
    // The restore ran before (its steps are not created): a decommission then says nothing of it.
    assert.ok(!lifecycleLines([cluster(before)], "prod").some((l) => /restore/.test(l)));
  });

  it("property: a snapshot the schema accepts is one plain word (no shell, YAML or path metacharacter reaches a script)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
        const r = restoreSchema.safeParse({ id: 1, snapshot: s });
        if (r.success) assert.match(r.data.snapshot, /^\/?[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/);
        if (r.success) assert.ok(!r.data.snapshot.split("/").includes(".."));
      }),
      { numRuns: 100 },
    );
    assert.equal(snapshotTime(SNAPSHOT)!.toISOString(), "2025-12-07T00:00:00.000Z");
    assert.equal(snapshotTime("my-backup"), undefined);
  });

  it("the pack's servers-restart-one-at-a-time passes the program's restore (every stop, reset and rejoin ordered); a parallel rejoin is reported", async () => {
    const config = withRestore({ id: 1, snapshot: SNAPSHOT });
    const graph = await collectGraph(config, "prod");
    const policy = policies.find((p) => p.name === "servers-restart-one-at-a-time") as StackValidationPolicy;
    const run = (g: typeof graph) => runStackPolicy(policy, stackArgs(g, policySettings(policy).config));
    assert.ok(graph.some((r) => r.name === "prod-prod-server-3-restore-rejoin"));
    assert.deepEqual(await run(graph), []);
    const parallel = graph.map((r) => (r.name === "prod-prod-server-3-restore-rejoin" ? { ...r, dependencies: [] } : r));
    assert.ok((await run(parallel)).some((m) => /prod-prod-server-3-restore-rejoin/.test(m)));
  });

  it("preview:md says what is lost (from the snapshot's time) and which hosts restart", () => {
    const config = withRestore({ id: 1, snapshot: SNAPSHOT });
    const urn = (type: string, name: string, parent = "k3s-platform:index:K3sCluster") => `urn:pulumi:prod::k3s-platform::${parent}$${type}::${name}`;
    const cluster: PreviewStep = { op: "update", urn: `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod`, newState: { inputs: { config } } };
    const steps: PreviewStep[] = [cluster, ...restoreStepNames(config).map((n): PreviewStep => ({ op: "create", urn: urn("command:remote:Command", `prod-${n}`) }))];
    assert.deepEqual(lifecycleLines(steps, "prod"), [
      "⚠️ restore snapshot pre-upgrade-prod-server-1-1765065600 (local): everything written to the cluster after 2025-12-07T00:00:00.000Z (when it was taken) is lost; " +
        "K3s stops on 3 servers at once (prod-server-2, prod-server-3, prod-server-1), then prod-server-1 resets from it and starts, then prod-server-2, prod-server-3 rejoin one at a time (etcd data moved aside), then 3 agents restart (docs/backup-and-restore.md)",
    ]);
    assert.deepEqual(lifecycleLines([cluster, ...steps.slice(1).map((s) => ({ ...s, op: "same" }))], "prod"), [], "a second up: nothing runs, nothing said");
  });

  it("preview:md: a snapshot or source changed under the same restore.id says the restore does not run again (set a new id); a new id, or the first arming, says nothing of it", () => {
    const cluster = (before: Record<string, unknown> | undefined, now: Record<string, unknown>): PreviewStep => ({
      op: "update",
      urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod",
      oldState: { inputs: { config: withRestore(before ?? {}, (raw) => (before ? undefined : delete raw.restore)) } },
      newState: { inputs: { config: withRestore(now) } },
    });
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const updated = restoreStepNames(withRestore({ id: 1, snapshot: SNAPSHOT })).map((n): PreviewStep => ({ op: "update", urn: urn(n) }));
    const lines = lifecycleLines([cluster({ id: 1, snapshot: SNAPSHOT }, { id: 1, snapshot: "other-prod-server-1-1765152000", source: "s3" }), ...updated], "prod");
    assert.deepEqual(lines, [
      "⚠️ restore 1: restore.snapshot, restore.source changed under the same id: every step that already ran for restore 1 is not run again, so this restores nothing there; set a new restore.id to restore other-prod-server-1-1765152000 (docs/backup-and-restore.md)",
    ]);
    assert.deepEqual(lifecycleLines([cluster({ id: 1, snapshot: SNAPSHOT }, { id: 1, snapshot: SNAPSHOT }), ...updated], "prod"), [], "nothing changed: nothing said");
    assert.ok(!lifecycleLines([cluster({ id: 1, snapshot: SNAPSHOT }, { id: 2, snapshot: "other-1765152000" })], "prod").some((l) => /same id/.test(l)), "a new id is a new restore");
    assert.ok(!lifecycleLines([cluster(undefined, { id: 1, snapshot: SNAPSHOT })], "prod").some((l) => /same id/.test(l)), "first arming");
  });

  it("preview:md: restore steps created on nodes that joined after the restore ran (its check's record) say they run nothing; a covered node's retry is still announced", () => {
    const config = withRestore({ id: 1, snapshot: SNAPSHOT }, addNodes);
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const cluster: PreviewStep = { op: "same", urn: `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod`, newState: { inputs: { config } } };
    const record = `restore[prod-server-1] check: ...\n${restoreCoversLine("1", ORIGINAL_NODES)}\n`;
    const check: PreviewStep = { op: "update", urn: urn("prod-server-1-restore-check"), oldState: { outputs: { stdout: record } } };
    const added = ["prod-server-4-restore-stop", "prod-server-4-restore-rejoin", "prod-agent-4-restore-restart"].map((n): PreviewStep => ({ op: "create", urn: urn(n) }));
    assert.deepEqual(lifecycleLines([cluster, check, ...added], "prod"), ["restore 1 ran before prod-server-4, prod-agent-4 joined: nothing of it runs on them (docs/backup-and-restore.md)"]);
    // The reset has not run yet (created in this up): a server outside the record joined the cluster it replaces; its stop refuses.
    const pending: PreviewStep = { op: "create", urn: urn("prod-server-1-restore-reset") };
    const lines = lifecycleLines([cluster, check, pending, ...added], "prod");
    assert.ok(lines.includes("⚠️ restore 1: prod-server-4 joined after its check ran and before its cluster reset, so the restore does not stop it and its stop fails before anything stops there (a server left running through the reset keeps the old etcd membership): remove restore from the config in this change, or set a new restore.id, whose check covers every server (docs/backup-and-restore.md)"), lines.join("\n"));
    assert.ok(lines.includes("restore 1 ran before prod-agent-4 joined: nothing of it runs on it (docs/backup-and-restore.md)"), lines.join("\n"));
    // A covered server whose rejoin failed last time (nothing in state): its retry does run.
    const retry: PreviewStep = { op: "create", urn: urn("prod-server-3-restore-rejoin") };
    assert.match(lifecycleLines([cluster, check, retry], "prod")[0]!, /^⚠️ restore .*prod-server-3 rejoins one at a time/);
    // The reset was done before this up (the record says so): a server re-added under a covered name is not announced as stopping.
    const done: PreviewStep = { ...check, oldState: { outputs: { stdout: `${record}restore reset done: 1\n` } } };
    const readded = ["prod-server-3-restore-stop", "prod-server-3-restore-rejoin"].map((n): PreviewStep => ({ op: "create", urn: urn(n) }));
    assert.deepEqual(lifecycleLines([cluster, done, ...readded], "prod"), [
      "restore 1's reset was done before this up: on prod-server-3 nothing stops; a rejoin or agent restart runs only where restore 1 stopped K3s (a retry) (docs/backup-and-restore.md)",
    ]);
  });

  it("preview:md: the first slot moved after the restore ran (old first armed): a new first server the restore stopped runs nothing of it; one that joined after it reads the cluster's record, a warning says so and names the way out when that record is missing", () => {
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const record = `${restoreCoversLine("1", ORIGINAL_NODES)}\nrestore reset done: 1\n`;
    const oldCheck: PreviewStep = { op: "delete", urn: urn("prod-server-1-restore-check"), oldState: { outputs: { stdout: record } } };
    const lines = (first: string) => {
      const config = withRestore({ id: 1, snapshot: SNAPSHOT }, (raw) => {
        addNodes(raw);
        raw.nodes[0]!.decommission = true;
        const i = raw.nodes.findIndex((n) => n.name === first);
        raw.nodes.splice(1, 0, ...raw.nodes.splice(i, 1));
      });
      const cluster: PreviewStep = { op: "update", urn: `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod`, newState: { inputs: { config } } };
      const created = [`${first}-restore-check`, `${first}-restore-reset`].map((n): PreviewStep => ({ op: "create", urn: urn(n) }));
      return lifecycleLines([cluster, oldCheck, ...created, { op: "delete", urn: urn("prod-server-1-restore-stop") }], "prod").filter((l) => l.includes("restore"));
    };
    assert.deepEqual(lines("prod-server-2"), ["restore 1 ran with prod-server-1 as the first server; prod-server-2 holds the first slot now and was stopped by that restore: nothing of it runs again (docs/backup-and-restore.md)"]);
    assert.deepEqual(lines("prod-server-4"), [
      `⚠️ restore 1 ran with prod-server-1 as the first server; prod-server-4 takes the first slot but joined after it: its check reads the record restore 1 wrote into the cluster (ConfigMap kube-system/k3s-platform-operations) and then runs nothing of it; without that record (a restore run before the cluster kept it, or the API not answering) it would restore ${SNAPSHOT} again on the running cluster: to be sure, remove restore from the config in this change (docs/backup-and-restore.md)`,
    ]);
  });

  it("preview:md: restore removed before it finished (a step failed, then a change of mind) names the steps that never completed and what this up runs instead (start as it was, or rejoin after the reset); removed after it finished, or before its check finished, says nothing of it", () => {
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const was = withRestore({ id: 1, snapshot: SNAPSHOT });
    const { restore: _dropped, ...now } = was;
    const cluster: PreviewStep = { op: "update", urn: `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod`, oldState: { inputs: { config: was } }, newState: { inputs: { config: now } } };
    const all = restoreStepNames(was);
    const deleting = (names: string[]) => names.map((n): PreviewStep => ({ op: "delete", urn: urn(n) }));
    // The reset ran; prod-server-2's rejoin failed: it, prod-server-3's rejoin and the agents' restarts never completed.
    const upTo = all.indexOf("prod-server-1-restore-reset") + 1;
    assert.deepEqual(lifecycleLines([cluster, ...deleting(all.slice(0, upTo))], "prod"), [
      `⚠️ restore 1 is removed before it finished (${all.slice(upTo).join(", ")} never completed): this up converges what it left: its cluster reset ran on prod-server-1: prod-server-2, prod-server-3 rejoin it one at a time (etcd data moved aside); then k3s-agent starts again on prod-agent-1, prod-agent-2, prod-agent-3 wherever the restore's restart stopped it (agents whose restart never began reconnect on their own); servers it never stopped are not touched (docs/backup-and-restore.md)`,
    ]);
    // Every server rejoined; prod-agent-1's restart finished, the other agents' did not (one failed after its stop).
    const agentsLeft = all.indexOf("prod-agent-2-restore-restart");
    assert.deepEqual(lifecycleLines([cluster, ...deleting(all.slice(0, agentsLeft))], "prod"), [
      `⚠️ restore 1 is removed before it finished (prod-agent-2-restore-restart, prod-agent-3-restore-restart never completed): this up converges what it left: its cluster reset ran on prod-server-1: every other server rejoined it; then k3s-agent starts again on prod-agent-2, prod-agent-3 wherever the restore's restart stopped it (agents whose restart never began reconnect on their own); servers it never stopped are not touched (docs/backup-and-restore.md)`,
    ]);
    // The reset failed (or never started): prod-server-2 and prod-server-3 stopped, prod-server-1's stop never completed.
    const stopped = all.indexOf("prod-server-1-restore-stop");
    assert.deepEqual(lifecycleLines([cluster, ...deleting(all.slice(0, stopped))], "prod"), [
      `⚠️ restore 1 is removed before it finished (${all.slice(stopped).join(", ")} never completed): this up converges what it left: no cluster reset ran: K3s starts again as it was on prod-server-2, prod-server-3 (the servers its stop stopped), one at a time (each Ready before the next, once a quorum runs), etcd data untouched; servers it never stopped are not touched (docs/backup-and-restore.md)`,
    ]);
    assert.deepEqual(lifecycleLines([cluster, ...deleting(all)], "prod"), [], "finished: removing it changes nothing");
    assert.deepEqual(lifecycleLines([cluster], "prod"), [], "its check never finished: nothing stopped");
  });

  describe("the scripts, run against stand-ins of K3s' documented restore (test/helpers/stubs-backup)", () => {
    const scratch = mkdtempSync(join(tmpdir(), "k3sp-restore-"));
    after(() => rmSync(scratch, { recursive: true, force: true }));
    /** A server's root: config.yaml (node name, S3 as the stack renders it), k3s running, a snapshot. */
    const host = (node: string, snapshotToken?: string) => {
      const root = mkdtempSync(join(scratch, `${node}-`));
      mkdirSync(join(root, "etc/rancher/k3s/config.yaml.d"), { recursive: true });
      writeFileSync(join(root, PATHS.configYaml), `node-name: ${node}\netcd-s3: true\netcd-s3-bucket: snaps\n`);
      writeFileSync(join(root, PATHS.secretDropIn), `token: "${K10}::server:current-pass"\n`);
      mkdirSync(join(root, "run/active"), { recursive: true });
      writeFileSync(join(root, "run/active/k3s"), "");
      mkdirSync(join(root, "srv/snapshots"), { recursive: true });
      writeFileSync(join(root, `srv/snapshots/${SNAPSHOT}`), snapshotToken ? `token=${snapshotToken}\n` : "snapshot\n");
      mkdirSync(join(root, "var/lib/rancher/k3s/server/db/etcd"), { recursive: true });
      mkdirSync(join(root, "var/lib/rancher/k3s/server/tls"), { recursive: true });
      writeFileSync(join(root, SERVER_CA_FILE), "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n");
      const log = join(root, "calls.log");
      writeFileSync(log, "");
      return { root, log, env: { ...process.env, K3S_PLATFORM_ROOT: root, STUB_LOG: log, PATH: `${STUBS}:${process.env.PATH}` } };
    };
    const exec = (h: ReturnType<typeof host>, script: string) => {
      const r = spawnSync("bash", ["-s"], { input: script, encoding: "utf8", env: h.env });
      return { status: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
    };
    const calls = (h: ReturnType<typeof host>) => readFileSync(h.log, "utf8").trim().split("\n").filter(Boolean);
    /** The record the check step leaves on the first server (it runs before the reset in every up). */
    const checked = <H extends ReturnType<typeof host>>(h: H, id: number): H => {
      mkdirSync(join(h.root, ONCE_DIR), { recursive: true });
      writeFileSync(join(h.root, ONCE_DIR, "restore-check"), String(id));
      return h;
    };

    it("a missing snapshot fails the check naming host and step, before anything stops", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 1, snapshot: "absent-1765065600" }));
      const first = host("prod-server-1");
      const r = exec(first, stdinOf(steps[0]!));
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^restore\[prod-server-1\] check: no snapshot file \/srv\/snapshots\/absent-1765065600 on prod-server-1 .*nothing was stopped/m);
      assert.deepEqual(calls(first), []);
      assert.ok(existsSync(join(first.root, "run/active/k3s")));
    });

    it("a Ready server Node this restore does not stop (armed for decommission, or its entry deleted) fails the check naming it and the fix, before anything stops; a server Node not Ready is a warning; agents do not count; an API that does not answer is a warning", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const check = stdinOf(steps[0]!);
      const withNodes = (rows: string) => {
        const h = host("prod-server-1");
        mkdirSync(join(h.root, "api"));
        writeFileSync(join(h.root, "api/nodes"), rows);
        return h;
      };
      const ours = "prod-server-1 True true\nprod-server-2 True true\nprod-server-3 True true\nprod-agent-1 True <none>\n";
      // prod-server-9: a server whose entry is gone (or armed); its K3s runs. An agent K3s labels nothing.
      const first = withNodes(`${ours}prod-server-9 True true\nprod-agent-9 True <none>\n`);
      const refused = exec(first, check);
      assert.equal(refused.status, 1, refused.out);
      assert.match(
        refused.stderr,
        /^restore\[prod-server-1\] check: K3s runs as a server on prod-server-9 \(a Ready Node labelled node-role\.kubernetes\.io\/control-plane=true\), which this restore does not stop: .*Finish the removal first in an up without restore \(decommission: true, then delete the entry\), or keep it in the config as a server, or stop K3s there .*nothing was stopped$/m,
      );
      assert.doesNotMatch(refused.stderr, /prod-agent-9/);
      assert.deepEqual(calls(first), [], "nothing stopped");
      assert.ok(existsSync(join(first.root, "run/active/k3s")) && !existsSync(join(first.root, RESTORE_COVERED)), "K3s runs, nothing recorded: the next up checks again");
      // Its K3s stopped (by hand, or its removal finished): the same host's next check passes.
      writeFileSync(join(first.root, "api/nodes"), `${ours}prod-server-9 Unknown true\n`);
      const warned = exec(first, check);
      assert.equal(warned.status, 0, warned.out);
      assert.match(warned.out, /check: warning: server Node\(s\) prod-server-9 are not Ready and this restore does not stop them/);
      assert.deepEqual(parseRestoreCovered(warned.out, "1"), ORIGINAL_NODES);
      // Only the servers this restore stops: it passes without a word.
      const clean = exec(withNodes(ours), check);
      assert.equal(clean.status, 0, clean.out);
      assert.doesNotMatch(clean.out, /warning/);
      // The API does not answer (a broken cluster is what a restore repairs): a bounded retry, then a warning.
      const down = withNodes(ours);
      const bin = join(down.root, "bin");
      mkdirSync(bin);
      writeFileSync(join(bin, "sleep"), `#!/usr/bin/env bash\necho "sleep $*" >>"${join(down.root, "sleeps")}"\n`, { mode: 0o755 });
      // kubectl's words when the API does not answer (k8s.io/kubectl pkg/cmd/util/helpers.go StandardErrorMessage).
      writeFileSync(join(bin, "k3s"), `#!/usr/bin/env bash\n[ "$1" = kubectl ] && { echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?" >&2; exit 1; }\nexec ${STUBS}/k3s "$@"\n`, { mode: 0o755 });
      const blind = spawnSync("bash", ["-s"], { input: check, encoding: "utf8", env: { ...down.env, PATH: `${bin}:${down.env.PATH}` } });
      assert.equal(blind.status, 0, blind.stderr);
      assert.match(blind.stdout, /check: warning: the API did not list the Nodes for 30s .*this restore stops only prod-server-2, prod-server-3, prod-server-1/);
      assert.equal(readFileSync(join(down.root, "sleeps"), "utf8").split("\n").filter(Boolean).length, 15, "retried 15 times, 2 s apart");
    });

    it("local snapshot with S3 configured: --etcd-s3=false and the full path; stop, reset, start, Ready; every step once per id", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const first = host("prod-server-1");
      const second = host("prod-server-2");
      const byName = (n: string) => stdinOf(steps.find((s) => s.name === n)!);
      const check = exec(first, byName("prod-server-1-restore-check"));
      assert.equal(check.status, 0, check.out);
      assert.match(check.out, /restoring local snapshot pre-upgrade-prod-server-1-1765065600, taken 2025-12-07T00:00:00\.000Z \(from its name\): everything written to the cluster after it is lost/);
      for (const [h, n] of [[second, "prod-server-2-restore-stop"], [first, "prod-server-1-restore-stop"]] as const) assert.equal(exec(h, byName(n)).status, 0);
      assert.ok(!existsSync(join(first.root, "run/active/k3s")) && !existsSync(join(second.root, "run/active/k3s")), "every server stopped");
      const reset = exec(first, byName("prod-server-1-restore-reset"));
      assert.equal(reset.status, 0, reset.out);
      assert.deepEqual(calls(first), [
        "systemctl stop k3s",
        "systemctl stop k3s",
        `k3s server --cluster-reset --cluster-reset-restore-path=/srv/snapshots/${SNAPSHOT} --etcd-s3=false`,
        "systemctl start --no-block k3s",
      ]);
      assert.ok(!existsSync(join(first.root, RESET_FLAG)), "K3s started normally: its reset-flag is gone");
      const rejoin = exec(second, byName("prod-server-2-restore-rejoin"));
      assert.equal(rejoin.status, 0, rejoin.out);
      assert.ok(!existsSync(join(second.root, "var/lib/rancher/k3s/server/db")) && existsSync(join(second.root, "var/lib/rancher/k3s/server/db.before-restore-1/etcd")), "etcd data moved aside");
      // A second run of any step (a second up on a host that finished it) does nothing.
      const before = [calls(first), calls(second)];
      for (const s of steps.filter((s) => /server-[12]/.test(s.name))) {
        const r = exec(s.host.name === "prod-server-1" ? first : second, stdinOf(s));
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /already done for restore id 1 on this host, skipped/);
      }
      assert.deepEqual([calls(first), calls(second)], before);
    });

    it("a reset K3s refuses stops the restore naming host and step; the retry after K3s started never resets twice", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 2, snapshot: SNAPSHOT }));
      const first = checked(host("prod-server-1"), 2);
      const reset = stdinOf(steps.find((s) => s.name === "prod-server-1-restore-reset")!);
      writeFileSync(join(first.root, "run/active/k3s"), ""); // stays running: the stand-in's etcd port is taken
      const stubbornStop = join(first.root, "bin");
      mkdirSync(stubbornStop);
      writeFileSync(join(stubbornStop, "systemctl"), `#!/usr/bin/env bash\n[ "$1" = stop ] && exit 0\nexec ${STUBS}/systemctl "$@"\n`, { mode: 0o755 });
      const refused = spawnSync("bash", ["-s"], { input: reset, encoding: "utf8", env: { ...first.env, PATH: `${stubbornStop}:${first.env.PATH}` } });
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /^restore\[prod-server-1\] reset: k3s server --cluster-reset from \/srv\/snapshots\/\S+ failed \(status 1\); K3s stays stopped on every server and nothing was restored/m);
      // A reset that ran but whose start failed leaves the reset-flag: the retry only starts K3s.
      mkdirSync(join(first.root, "var/lib/rancher/k3s/server/db"), { recursive: true });
      writeFileSync(join(first.root, RESET_FLAG), "");
      rmSync(join(first.root, "run/active/k3s"));
      writeFileSync(first.log, "");
      const retry = exec(first, reset);
      assert.equal(retry.status, 0, retry.out);
      assert.match(retry.out, /reset-flag is present: a cluster reset already ran here .*never resetting twice/);
      assert.deepEqual(calls(first), ["systemctl start --no-block k3s"]);
      // A reset that ran, then K3s started (its reset-flag gone) but was not Ready in time: the
      // step's record of the id keeps the retry from resetting again.
      const started = checked(host("prod-server-1"), 2);
      rmSync(join(started.root, "run/active/k3s"));
      const ran = exec(started, reset);
      assert.equal(ran.status, 0, ran.out);
      assert.equal(readFileSync(join(started.root, RESET_RECORD), "utf8"), "2", "the reset of id 2 is recorded");
      assert.ok(!existsSync(join(started.root, RESET_FLAG)), "K3s started: its reset-flag is gone");
      rmSync(join(started.root, "run/active/k3s"));
      rmSync(join(started.root, ONCE_DIR, "restore-reset"));
      writeFileSync(started.log, "");
      const again = exec(started, reset);
      assert.equal(again.status, 0, again.out);
      assert.match(again.out, /the cluster reset of restore 2 already ran here \(K3s started since, a retry\): starting it \(never resetting twice\)/);
      assert.deepEqual(calls(started), ["systemctl start --no-block k3s"], "no stop, no second --cluster-reset");
    });

    it("s3 source: the file name with --etcd-s3, checked with k3s etcd-snapshot ls first", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 3, snapshot: SNAPSHOT, source: "s3" }));
      const first = host("prod-server-1");
      const check = stdinOf(steps[0]!);
      assert.match(exec(first, check).stderr, /check: no snapshot pre-upgrade-prod-server-1-1765065600 in S3/);
      mkdirSync(join(first.root, "s3"));
      writeFileSync(join(first.root, "s3", SNAPSHOT), "snapshot\n");
      assert.equal(exec(first, check).status, 0);
      writeFileSync(first.log, "");
      rmSync(join(first.root, "run/active/k3s"));
      const r = exec(first, stdinOf(steps.find((s) => s.name.endsWith("-reset"))!));
      assert.equal(r.status, 0, r.out);
      assert.ok(calls(first).includes(`k3s server --cluster-reset --cluster-reset-restore-path=${SNAPSHOT} --etcd-s3`), calls(first).join("\n"));
    });

    it("restoreToken: without it K3s refuses a snapshot of another token; with it the reset runs with it (never on a command line), rotates back, and the drop-in is gone", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 4, snapshot: SNAPSHOT }));
      const reset = steps.find((s) => s.name.endsWith("-reset"))!;
      const without = checked(host("prod-server-1", `${K10}::server:old-pass`), 4);
      rmSync(join(without.root, "run/active/k3s"));
      const refused = exec(without, stdinOf(reset));
      assert.equal(refused.status, 1);
      assert.match(refused.out, /encrypted with different token/);

      const first = checked(host("prod-server-1", `${K10}::server:old-pass`), 4);
      rmSync(join(first.root, "run/active/k3s"));
      const script = stdinOf(reset, { restoreToken: `${K10}::server:old-pass` });
      // Every process the script starts, with its argv (strace -f -e execve): neither token in any.
      const trace = join(first.root, "execve.log");
      const traced = spawnSync("strace", ["-f", "-qq", "-e", "trace=execve", "-s", "65536", "-o", trace, "bash", "-s"], { input: script, encoding: "utf8", env: first.env });
      const r = { status: traced.status, out: `${traced.stdout}${traced.stderr}` };
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(calls(first), [
        "systemctl stop k3s",
        `k3s server --cluster-reset --cluster-reset-restore-path=/srv/snapshots/${SNAPSHOT} --etcd-s3=false`,
        "systemctl start --no-block k3s",
        // Rotated back by K3s' token endpoint (the request k3s token rotate makes), the curl
        // configuration on stdin: the stand-in authenticated old-pass and recorded the new one's hash.
        "curl -K -",
        `token endpoint: rotated new-token-sha256=${createHash("sha256").update("current-pass").digest("hex")}`,
        "systemctl stop k3s",
        "systemctl start --no-block k3s",
      ]);
      const execs = readFileSync(trace, "utf8").split("\n").filter((l) => l.includes("execve("));
      assert.ok(execs.some((l) => /"curl", "-K", "-"\]/.test(l)));
      for (const secret of ["old-pass", "current-pass"]) assert.ok(!execs.some((l) => l.includes(secret)), `${secret} in no process's argv`);
      assert.equal(readFileSync(join(first.root, "var/lib/rancher/k3s/server/token"), "utf8").trim().replace(/^K10[0-9a-f]*::/, ""), "server:current-pass", "K3s runs with the configured token again");
      assert.ok(!existsSync(join(first.root, RESTORE_TOKEN_DROPIN)), "the restore-token drop-in is removed");
      assert.doesNotMatch(readFileSync(first.log, "utf8"), /old-pass/, "restoreToken never on a command line");
      assert.doesNotMatch(script, /bash -c/, "the script runs in the shell that reads it: no argument carries it");
    });
    it("restoreToken set and no curl on the first server: the check refuses before anything stops, naming host, step and why", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 5, snapshot: SNAPSHOT }));
      const first = host("prod-server-1");
      const tools = join(first.root, "tools");
      mkdirSync(tools);
      symlinkSync(join(STUBS, "k3s"), join(tools, "k3s"));
      // The ConfigMap stand-in the k3s stand-in runs from beside its own directory.
      symlinkSync(join(STUBS, "..", "kubectl-configmap.sh"), join(first.root, "kubectl-configmap.sh"));
      for (const t of ["bash", "cat", "date", "mkdir", "mv", "dirname", "sed", "mktemp", "rm", "base64"]) symlinkSync(spawnSync("bash", ["-c", `command -v ${t}`], { encoding: "utf8" }).stdout.trim(), join(tools, t));
      const run = (facts: Partial<Facts>) => spawnSync("/bin/bash", ["-s"], { input: stdinOf(steps[0]!, facts), encoding: "utf8", env: { ...first.env, PATH: tools } });
      const refused = run({ restoreTokenSet: true });
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /^restore\[prod-server-1\] check: curl is not installed on prod-server-1, which step reset needs \(restoreToken is set\): K3s' token rotation request is sent with curl .*; install curl there and run pulumi up again; nothing was stopped$/m);
      assert.ok(!existsSync(join(first.root, RESTORE_COVERED)), "nothing recorded, nothing stopped");
      assert.equal(run({}).status, 0, "without restoreToken curl is not needed");
    });

    it("a restore covers exactly the nodes of its check's record: steps of nodes that joined later run nothing; a node added in the arming up is covered", () => {
      const armed = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const first = host("prod-server-1");
      const check = exec(first, stdinOf(armed.steps[0]!));
      assert.equal(check.status, 0, check.out);
      const covered = parseRestoreCovered(check.out, "1");
      assert.deepEqual(covered, ORIGINAL_NODES, "the managed nodes when the check ran");
      assert.deepEqual(parseRestoreCovered(readFileSync(join(first.root, RESTORE_COVERED), "utf8"), "1"), ORIGINAL_NODES, "recorded on the first server");
      assert.deepEqual(parseRestoreCovered(exec(first, stdinOf(armed.steps[0]!)).out, "1"), ORIGINAL_NODES, "a skipped run prints the record too");
      assert.deepEqual(parseRestoreCovered(check.out, "2"), [], "another id's record covers nothing");

      // Later, once the restore finished (its record says the reset is done): a server and an agent join with restore 1 still set.
      const later = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }, addNodes));
      const byName = (steps: Step[], n: string) => steps.find((s) => s.name === n)!;
      for (const s of armed.steps.slice(1)) assert.equal(stdinOf(byName(later.steps, s.name), { restoreCovered: covered }), stdinOf(s, { restoreCovered: covered }), `${s.name}: unchanged, no Update`);
      for (const name of ["prod-server-4-restore-stop", "prod-server-4-restore-rejoin", "prod-agent-4-restore-restart"]) {
        const joined = host(name.replace(/-restore-.*/, ""));
        const r = exec(joined, stdinOf(byName(later.steps, name), { restoreCovered: covered, restoreResetDone: true }));
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /restore 1 ran before this node joined \(it covered prod-server-1, .*\): nothing to do/);
        assert.deepEqual(calls(joined), [], `${name}: nothing stopped or started`);
        assert.ok(existsSync(join(joined.root, "run/active/k3s")) && existsSync(join(joined.root, "var/lib/rancher/k3s/server/db/etcd")), `${name}: K3s runs, etcd data in place`);
      }
      assert.ok(later.steps.find((s) => s.name === "prod-server-1-restore-check")!.update!.includes(`cat ${RESTORE_COVERED}`), "the check's update prints its record again");

      // Armed in the up that adds them: they join first, the check records them, the restore covers them.
      const fresh = host("prod-server-1");
      const sameUp = exec(fresh, stdinOf(later.steps[0]!));
      const coveredNow = parseRestoreCovered(sameUp.out, "1");
      assert.deepEqual(coveredNow, [...ORIGINAL_NODES.slice(0, 3), "prod-server-4", ...ORIGINAL_NODES.slice(3), "prod-agent-4"]);
      const joined = host("prod-server-4");
      assert.equal(exec(joined, stdinOf(byName(later.steps, "prod-server-4-restore-stop"), { restoreCovered: coveredNow })).status, 0);
      const rejoin = exec(joined, stdinOf(byName(later.steps, "prod-server-4-restore-rejoin"), { restoreCovered: coveredNow }));
      assert.equal(rejoin.status, 0, rejoin.out);
      assert.ok(existsSync(join(joined.root, "var/lib/rancher/k3s/server/db.before-restore-1/etcd")), "covered: its etcd data moved aside, it rejoins");
    });

    it("a server that joined after the check ran but before the cluster reset (an up failed in between: a stop failed on a dead host, and a server was added to replace it) makes its stop fail before it stops anything, naming host, step and the ways out: left running with the old etcd membership, it would break the reset", () => {
      const armed = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const check = exec(host("prod-server-1"), stdinOf(armed.steps[0]!));
      const covered = parseRestoreCovered(check.out, "1");
      assert.equal(parseRestoreResetDone(check.out, "1"), false, "no reset yet");
      const later = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }, addNodes));
      const byName = (n: string) => later.steps.find((s) => s.name === n)!;
      const joined = host("prod-server-4");
      const r = exec(joined, stdinOf(byName("prod-server-4-restore-stop"), { restoreCovered: covered, restoreResetDone: false }));
      assert.equal(r.status, 1, r.out);
      assert.match(r.stderr, /^restore\[prod-server-4\] stop: prod-server-4 joined the cluster after restore 1's check ran \(it covered prod-server-1, prod-server-2, prod-server-3, .*\) and before its cluster reset: .*remove restore from the config .*or set a new restore\.id .*nothing was stopped$/m);
      assert.deepEqual(calls(joined), [], "nothing stopped");
      assert.ok(existsSync(join(joined.root, "run/active/k3s")), "K3s still runs there");
      // An agent that joined in between runs nothing (agents hold no etcd data; they reconnect on their own).
      const agent = host("prod-agent-4");
      assert.equal(exec(agent, stdinOf(byName("prod-agent-4-restore-restart"), { restoreCovered: covered, restoreResetDone: false })).status, 0);
      assert.deepEqual(calls(agent), []);
      // No record of this id at all (a lost host record): the side that never stops anything, as before.
      const unknown = exec(host("prod-server-4"), stdinOf(byName("prod-server-4-restore-stop"), { restoreCovered: [], restoreResetDone: false }));
      assert.equal(unknown.status, 0, unknown.out);
    });

    it("restore left in the config when the first server changes (it is armed for decommission, Ready or its host dead): the new first server, stopped and rejoined by that restore, runs nothing of it again; no cluster reset on a running cluster", () => {
      const ran = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const byName = (steps: Step[], n: string) => steps.find((s) => s.name === n)!;
      // prod-server-2 took part in restore 1 (prod-server-1 reset): it stopped, then rejoined.
      const second = host("prod-server-2");
      for (const n of ["prod-server-2-restore-stop", "prod-server-2-restore-rejoin"]) assert.equal(exec(second, stdinOf(byName(ran.steps, n), { restoreCovered: ORIGINAL_NODES })).status, 0);
      writeFileSync(join(second.root, "run/active/k3s"), "");
      // Later, restore 1 still set: prod-server-1 is armed, so prod-server-2 holds the first slot.
      const moved = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }, (raw) => (raw.nodes[0]!.decommission = true)));
      const check = byName(moved.steps, "prod-server-2-restore-check");
      for (const oldFirst of ["prod-server-1 Unknown true", "prod-server-1 True true"]) {
        mkdirSync(join(second.root, "api"), { recursive: true });
        writeFileSync(join(second.root, "api/nodes"), `${oldFirst}\nprod-server-2 True true\nprod-server-3 True true\n`);
        rmSync(join(second.root, "var/lib/k3s-platform/once/restore-check"), { force: true });
        writeFileSync(second.log, "");
        const checked = exec(second, stdinOf(check));
        assert.equal(checked.status, 0, checked.out);
        assert.match(checked.out, /check: restore 1 already ran in this cluster \(K3s on prod-server-2 was stopped by it\): nothing of it runs again; set a new restore\.id to restore again/);
        const facts = { restoreCovered: parseRestoreCovered(checked.out, "1"), restoreResetDone: parseRestoreResetDone(checked.out, "1") };
        assert.deepEqual(facts, { restoreCovered: [], restoreResetDone: true });
        const reset = exec(second, stdinOf(byName(moved.steps, "prod-server-2-restore-reset"), facts));
        assert.equal(reset.status, 0, reset.out);
        assert.deepEqual(calls(second), [], `${oldFirst}: no stop, no cluster reset, no start`);
        assert.ok(existsSync(join(second.root, "run/active/k3s")), "K3s still runs");
      }
    });

    describe("restore removed from the config before it finished: the restore-abandoned chain converges every server from its own markers", () => {
      const armed = () => stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const removed = () => stepsOf(restoreAbandoned, withRestore({ id: 1, snapshot: SNAPSHOT }, (raw) => delete raw.restore));
      const byName = (steps: Step[], n: string) => steps.find((s) => s.name === n)!;
      /** The armed restore's steps on the three servers up to (not including) `until`. */
      const runUpTo = (until: string) => {
        const { steps } = armed();
        const hosts = new Map(["prod-server-1", "prod-server-2", "prod-server-3"].map((n) => [n, host(n)]));
        for (const s of steps) {
          if (s.name === until) break;
          if (!hosts.has(s.host.name)) continue;
          const r = exec(hosts.get(s.host.name)!, stdinOf(s, { restoreCovered: ORIGINAL_NODES }));
          assert.equal(r.status, 0, `${s.name}: ${r.out}`);
        }
        for (const h of hosts.values()) writeFileSync(h.log, "");
        return hosts;
      };
      /** The chain in order: the first server's stdout is the others' fact. */
      const converge = (hosts: Map<string, ReturnType<typeof host>>) => {
        const { steps } = removed();
        const outs: string[] = [];
        let fact: string | undefined;
        for (const s of steps) {
          if (!hosts.has(s.host.name)) continue;
          const r = exec(hosts.get(s.host.name)!, stdinOf(s, { restoreAbandonedReset: fact }));
          assert.equal(r.status, 0, `${s.name}: ${r.out}`);
          if (fact === undefined) fact = parseAbandonedReset(r.out);
          outs.push(r.out);
        }
        return outs;
      };

      it("a chain on every server (first server first), one at a time, only while no restore is armed, only on embedded etcd", () => {
        const { steps, config, plan } = removed();
        assert.deepEqual(steps.map((s) => `${s.name} ${s.after.join(",")}`), [
          `prod-server-1-restore-abandoned ${rotationDone(config, plan).join(",")}`,
          "prod-server-2-restore-abandoned prod-server-1-restore-abandoned",
          "prod-server-3-restore-abandoned prod-server-2-restore-abandoned",
          // The agents after every server, in parallel (as the restore restarts them).
          "prod-agent-1-restore-abandoned prod-server-3-restore-abandoned",
          "prod-agent-2-restore-abandoned prod-server-3-restore-abandoned",
          "prod-agent-3-restore-abandoned prod-server-3-restore-abandoned",
        ]);
        assert.ok(steps.every((s) => s.runs === "once" && s.update === NO_OP_UPDATE && s.triggers === undefined));
        // The servers' steps stop (a rejoin) and start K3s; an agent's only starts a stopped k3s-agent.
        assert.deepEqual(steps.filter((s) => s.restartsK3s).map((s) => s.host.role), ["server", "server", "server"]);
        assert.deepEqual(restoreAbandonedDone(config, []), ["prod-agent-1-restore-abandoned", "prod-agent-2-restore-abandoned", "prod-agent-3-restore-abandoned"], "maintenance waits for the agents");
        // A restore armed: the same steps, touching nothing, with its id as their trigger: an arming up that
        // fails has replaced them, so the up that removes restore (trigger back to none) replaces them again and runs the convergence.
        const whileArmed = stepsOf(restoreAbandoned, withRestore({ id: 1, snapshot: SNAPSHOT })).steps;
        assert.deepEqual(whileArmed.map((s) => s.name), steps.map((s) => s.name));
        for (const s of whileArmed) {
          assert.deepEqual([s.triggers, s.restartsK3s], [["restore 1 armed"], false], s.name);
          assert.equal(stdinOf(s), `#!/usr/bin/env bash\n# Generated by k3s-platform: restore-abandoned on ${s.host.name} while restore 1 is armed: nothing.\necho 'restore[${s.host.name}] abandoned: restore 1 is armed: its own steps act; nothing to do'\n`);
        }
        const dev = sample("dev");
        assert.deepEqual(stepsOf(restoreAbandoned, dev).steps.length, dev.k3s.datastore.type === "etcd" ? dev.nodes.length : 0, "one step per server and agent (dev)");
      });

      it("a stop that ran over its bound (systemctl's wait killed by timeout, while systemd's stop job went on and stopped K3s) fails the step; removed then, the restore-abandoned step starts K3s there too", () => {
        const hosts = runUpTo("prod-server-3-restore-stop");
        const third = hosts.get("prod-server-3")!;
        const stop = armed().steps.find((s) => s.name === "prod-server-3-restore-stop")!;
        // systemctl(1): the client waits for the job; killing the client does not cancel it.
        const timesOut: Record<string, string> = { STUB_STOP_TIMES_OUT: "1" };
        const r = exec({ ...third, env: { ...third.env, ...timesOut } }, stdinOf(stop, { restoreCovered: ORIGINAL_NODES }));
        assert.equal(r.status, 1, r.out);
        assert.match(r.stderr, /restore\[prod-server-3\] stop: systemctl stop k3s failed or ran over/);
        assert.ok(!existsSync(join(third.root, "run/active/k3s")), "K3s stopped there all the same");
        for (const h of hosts.values()) writeFileSync(h.log, "");
        converge(hosts);
        assert.deepEqual(calls(third), ["systemctl start --no-block k3s"], "started again");
        assert.ok(existsSync(join(third.root, "run/active/k3s")));
        assert.deepEqual(calls(hosts.get("prod-server-1")!), [], "the first server, never stopped: nothing");
      });

      it("the reset failed after every server stopped: each server starts K3s as it was, its restore records gone (the same id set again runs the whole restore); a second run touches nothing", () => {
        const hosts = runUpTo("prod-server-1-restore-reset");
        for (const h of hosts.values()) assert.ok(!existsSync(join(h.root, "run/active/k3s")), "stopped by the restore");
        const outs = converge(hosts);
        for (const [name, h] of hosts) {
          assert.deepEqual(calls(h), ["systemctl start --no-block k3s"], `${name}: started, nothing else`);
          assert.ok(existsSync(join(h.root, "run/active/k3s")) && existsSync(join(h.root, "var/lib/rancher/k3s/server/db/etcd")), `${name}: runs on its own etcd data`);
          assert.ok(!existsSync(join(h.root, RESTORE_STOPPED)) && !existsSync(join(h.root, ONCE_DIR, "restore-stop")), `${name}: the stop's records are gone`);
        }
        assert.ok(!existsSync(join(hosts.get("prod-server-1")!.root, ONCE_DIR, "restore-check")), "the check runs again for the same id");
        assert.match(outs[0]!, /abandoned: restore 1 stopped K3s here and was removed before any cluster reset: start K3s as it was/);
        assert.ok(!outs[0]!.includes(ABANDONED_RESET_LINE));
        for (const h of hosts.values()) writeFileSync(h.log, "");
        for (const out of converge(hosts)) assert.match(out, /no restore stopped K3s here: nothing to do/);
        for (const h of hosts.values()) assert.deepEqual(calls(h), [], "a second up calls nothing");
        // The same id armed again: the whole restore runs (check, stops, reset), never a reset on running servers.
        const again = armed();
        const first = hosts.get("prod-server-1")!;
        const check = exec(first, stdinOf(again.steps[0]!));
        assert.match(check.out, /restoring local snapshot/);
        assert.doesNotMatch(exec(hosts.get("prod-server-2")!, stdinOf(byName(again.steps, "prod-server-2-restore-stop"), { restoreCovered: ORIGINAL_NODES })).out, /already done/);
      });

      it("the reset failed after every server stopped: a server the quorum does not need yet starts and the next one follows; from the server that makes the quorum (2 of 3) on, each waits until it and every server before it are Ready, or fails naming the one that is not, and the chain stops there; the retry finishes it", () => {
        const hosts = runUpTo("prod-server-1-restore-reset");
        const { steps } = removed();
        const [first, second, third] = steps.map((s) => stdinOf(s, { restoreAbandonedReset: "" }));
        // A fast clock: `sleep` advances $SECONDS instead of waiting (bash lets a script set it), so
        // the 300 s bound runs out at once; BASH_ENV is read by the non-interactive bash -s.
        const clock = join(scratch, "fast-clock.sh");
        writeFileSync(clock, 'sleep() { SECONDS=$((SECONDS + ${1%.*})); }\n');
        const run = (n: string, script: string) => {
          const h = hosts.get(n)!;
          return exec({ ...h, env: { ...h.env, BASH_ENV: clock } as typeof h.env }, script);
        };
        // prod-server-1 alone is 1 of 3 etcd members: it cannot be Ready, so it does not wait for it.
        const notReady = (n: string, nodes: string[]) => {
          mkdirSync(join(hosts.get(n)!.root, "api"), { recursive: true });
          writeFileSync(join(hosts.get(n)!.root, "api/not-ready"), nodes.join("\n") + "\n");
        };
        notReady("prod-server-1", ["prod-server-1"]);
        const alone = run("prod-server-1", first!);
        assert.equal(alone.status, 0, alone.out);
        assert.match(alone.out, /K3s started; its etcd member cannot be Ready before 2 of the 3 servers run \(a quorum\): the next server starts now; the step on prod-server-2 waits until prod-server-1, prod-server-2 are Ready/);
        // prod-server-2 makes the quorum, but its Node does not become Ready: the step fails naming it; prod-server-3 never starts.
        notReady("prod-server-2", ["prod-server-2"]);
        const stuck = run("prod-server-2", second!);
        assert.equal(stuck.status, 1, stuck.out);
        assert.match(stuck.stderr, /^restore\[prod-server-2\] abandoned: prod-server-2 is not Ready 300s after K3s started again on prod-server-1, prod-server-2 \(etcd needs 2 of the 3 servers running\); the next server does not start until it is: see journalctl -u k3s on prod-server-2, then run pulumi up again$/m);
        assert.ok(existsSync(join(hosts.get("prod-server-2")!.root, RESTORE_STOPPED)), "its marker stays: the retry waits again");
        // The server before it not Ready (seen from prod-server-2's API): named, the chain stops too.
        notReady("prod-server-2", ["prod-server-1"]);
        const before = run("prod-server-2", second!);
        assert.equal(before.status, 1, before.out);
        assert.match(before.stderr, /abandoned: prod-server-1 is not Ready 300s after K3s started again on prod-server-1, prod-server-2/);
        // Every Node Ready: the retry passes, and prod-server-3 (the last) waits for all three.
        notReady("prod-server-2", []);
        const ready = run("prod-server-2", second!);
        assert.equal(ready.status, 0, ready.out);
        assert.match(ready.out, /K3s runs again; prod-server-1, prod-server-2 Ready/);
        assert.ok(!existsSync(join(hosts.get("prod-server-2")!.root, RESTORE_STOPPED)));
        notReady("prod-server-3", ["prod-server-3"]);
        assert.match(run("prod-server-3", third!).stderr, /prod-server-3 is not Ready 300s after K3s started again on prod-server-1, prod-server-2, prod-server-3 \(etcd needs 2 of the 3 servers running\)/);
      });

      it("the quorum decides who waits: of 5 servers the first two start without waiting, the third waits for the first three, each later one for all before it; 1 server waits for itself", () => {
        const chain = ["s1", "s2", "s3", "s4", "s5"];
        const script = (name: string, of: string[]) => renderRestoreAbandoned({ name } as NodeConfig, of);
        for (const n of ["s1", "s2"]) {
          assert.match(script(n, chain), /the next server starts now; the step on s3 waits until s1, s2, s3 are Ready/, n);
          assert.doesNotMatch(script(n, chain), /for server in/, n);
        }
        assert.match(script("s3", chain), /^for server in s1 s2 s3; do$/m);
        assert.match(script("s5", chain), /^for server in s1 s2 s3 s4 s5; do$/m);
        assert.match(script("s1", ["s1"]), /^for server in s1; do$/m);
        assert.match(script("s2", ["s1", "s2"]), /^for server in s1 s2; do$/m);
        assert.doesNotMatch(script("s1", ["s1", "s2"]), /for server in/);
        assert.throws(() => script("s9", chain), /s9 is not in the chain/);
      });

      it("the reset ran and a rejoin failed: the reset server is left as it is, each server that did not rejoin rejoins it with its etcd data moved aside; the same id set again runs nothing", () => {
        const hosts = runUpTo("prod-server-3-restore-rejoin");
        const third = hosts.get("prod-server-3")!;
        const outs = converge(hosts);
        assert.equal(parseAbandonedReset(outs[0]), "1", "the first server says its reset ran");
        assert.deepEqual(calls(hosts.get("prod-server-1")!), [], "the reset server: nothing");
        assert.deepEqual(calls(hosts.get("prod-server-2")!), [], "rejoined already: nothing");
        assert.deepEqual(calls(third), ["systemctl stop k3s", "systemctl start --no-block k3s"]);
        assert.ok(existsSync(join(third.root, "var/lib/rancher/k3s/server/db.before-restore-1/etcd")) && existsSync(join(third.root, "run/active/k3s")), "rejoined with its etcd data moved aside");
        for (const h of hosts.values()) writeFileSync(h.log, "");
        converge(hosts);
        for (const h of hosts.values()) assert.deepEqual(calls(h), [], "a second up calls nothing");
        // Armed again with id 1: every step finds its host's record (never a second reset).
        for (const s of armed().steps.filter((s) => hosts.has(s.host.name))) {
          const r = exec(hosts.get(s.host.name)!, stdinOf(s, { restoreCovered: ORIGINAL_NODES }));
          assert.match(r.out, /already done for restore id 1 on this host, skipped/, s.name);
        }
        for (const h of hosts.values()) assert.deepEqual(calls(h), []);
      });

      it("the reset ran but its start failed (K3s' reset-flag left): the first server starts on the restored data and records the reset done; the others rejoin it", () => {
        const hosts = runUpTo("prod-server-1-restore-reset");
        const first = hosts.get("prod-server-1")!;
        mkdirSync(join(first.root, "var/lib/rancher/k3s/server/db"), { recursive: true });
        writeFileSync(join(first.root, RESET_FLAG), "");
        const outs = converge(hosts);
        assert.equal(parseAbandonedReset(outs[0]), "1");
        assert.deepEqual(calls(first), ["systemctl start --no-block k3s"]);
        assert.equal(parseRestoreResetDone(readFileSync(join(first.root, RESTORE_COVERED), "utf8"), "1"), true, "the check's record says the reset is done");
        for (const n of ["prod-server-2", "prod-server-3"]) {
          assert.deepEqual(calls(hosts.get(n)!), ["systemctl stop k3s", "systemctl start --no-block k3s"], n);
          assert.ok(existsSync(join(hosts.get(n)!.root, "var/lib/rancher/k3s/server/db.before-restore-1/etcd")), `${n}: rejoined`);
        }
      });

      it("agents: where the restore's restart stopped k3s-agent and did not finish (its stop ran over its bound), k3s-agent starts again and the restart is recorded done; an agent whose restart finished, or never began, is only read; a second run calls nothing", () => {
        const agents = new Map(["prod-agent-1", "prod-agent-2", "prod-agent-3"].map((n) => {
          const h = host(n);
          rmSync(join(h.root, "run/active/k3s"));
          writeFileSync(join(h.root, "run/active/k3s-agent"), "");
          return [n, h] as const;
        }));
        const restart = (n: string) => armed().steps.find((s) => s.name === `${n}-restore-restart`)!;
        // prod-agent-2's restart finished; prod-agent-1's stop ran over its bound (k3s-agent stopped all the same); prod-agent-3's never began.
        assert.equal(exec(agents.get("prod-agent-2")!, stdinOf(restart("prod-agent-2"), { restoreCovered: ORIGINAL_NODES })).status, 0);
        const one = agents.get("prod-agent-1")!;
        const failed = exec({ ...one, env: { ...one.env, STUB_STOP_TIMES_OUT: "1" } as typeof one.env }, stdinOf(restart("prod-agent-1"), { restoreCovered: ORIGINAL_NODES }));
        assert.equal(failed.status, 1, failed.out);
        assert.ok(!existsSync(join(one.root, "run/active/k3s-agent")), "k3s-agent left stopped");
        for (const h of agents.values()) writeFileSync(h.log, "");
        const scripts = removed().steps.filter((s) => agents.has(s.host.name));
        assert.deepEqual(scripts.map((s) => s.name), [...agents.keys()].map((n) => `${n}-restore-abandoned`));
        const outs = new Map(scripts.map((s) => [s.host.name, exec(agents.get(s.host.name)!, stdinOf(s))]));
        for (const [n, r] of outs) assert.equal(r.status, 0, `${n}: ${r.out}`);
        assert.match(outs.get("prod-agent-1")!.out, /restore 1 stopped k3s-agent here and was removed before its restart finished: start k3s-agent/);
        assert.ok(calls(one).includes("systemctl start --no-block k3s-agent") && existsSync(join(one.root, "run/active/k3s-agent")), "k3s-agent runs again");
        assert.equal(readFileSync(join(one.root, ONCE_DIR, "restore-restart"), "utf8"), "1", "the restart is recorded done");
        for (const n of ["prod-agent-2", "prod-agent-3"]) {
          assert.match(outs.get(n)!.out, /no unfinished restore restart of k3s-agent here: nothing to do/, n);
          assert.deepEqual(calls(agents.get(n)!), [], `${n}: only files read`);
        }
        assert.ok(!existsSync(join(agents.get("prod-agent-3")!.root, "var/lib/k3s-platform")), "prod-agent-3: nothing written");
        for (const h of agents.values()) writeFileSync(h.log, "");
        for (const s of scripts) assert.match(exec(agents.get(s.host.name)!, stdinOf(s)).out, /nothing to do/);
        for (const h of agents.values()) assert.deepEqual(calls(h), [], "a second run calls nothing");
        // The same id armed again: prod-agent-1's restart is done for it.
        assert.match(exec(one, stdinOf(restart("prod-agent-1"), { restoreCovered: ORIGINAL_NODES })).out, /already done for restore id 1 on this host, skipped/);
      });

      /**
       * The up that removes `restore` fails part-way (here the chain stops before prod-server-3: not
       * Ready in time). The engine deletes what the program no longer declares only at the end of an
       * up that succeeds, so the restore's steps that finished in the arming up (the check, the stops)
       * stay in state, and the same id set again runs only what never finished: the reset, on a first
       * server whose convergence started K3s again (or whose peers it started). A cluster reset then
       * would leave the servers started as they were on the old etcd membership: it must refuse,
       * before it stops anything, and name the way out (a new id runs the check and every stop again).
       */
      const convergeUntil = (hosts: Map<string, ReturnType<typeof host>>, servers: string[]) => {
        const { steps } = removed();
        let fact: string | undefined;
        for (const n of servers) {
          const r = exec(hosts.get(n)!, stdinOf(byName(steps, `${n}-restore-abandoned`), { restoreAbandonedReset: fact }));
          assert.equal(r.status, 0, `${n}: ${r.out}`);
          if (fact === undefined) fact = parseAbandonedReset(r.out);
        }
        for (const h of hosts.values()) writeFileSync(h.log, "");
      };
      const refusedReset = (hosts: Map<string, ReturnType<typeof host>>) => {
        const first = hosts.get("prod-server-1")!;
        const r = exec(first, stdinOf(byName(armed().steps, "prod-server-1-restore-reset"), { restoreCovered: ORIGINAL_NODES }));
        assert.equal(r.status, 1, r.out);
        assert.match(r.stderr, /^restore\[prod-server-1\] reset: restore 1 was removed before it finished .*set a new restore\.id .*nothing was reset$/m);
        assert.ok(!calls(first).some((c) => c.startsWith("k3s server")), `no cluster reset: ${calls(first).join("; ")}`);
      };

      it("the reset failed, restore was removed and that up failed part-way (the first two servers started as they were): the same id set again runs only the reset (its check and stops stay in state): it refuses, naming a new id, and resets nothing", () => {
        const hosts = runUpTo("prod-server-1-restore-reset");
        convergeUntil(hosts, ["prod-server-1", "prod-server-2"]);
        refusedReset(hosts);
        assert.deepEqual(calls(hosts.get("prod-server-1")!), [], "K3s not even stopped");
        assert.ok(existsSync(join(hosts.get("prod-server-1")!.root, "run/active/k3s")));
      });

      it("a stop failed (prod-server-3), restore was removed and that up failed part-way (prod-server-2 started as it was): the same id set again runs the stops that never finished, then the reset refuses, naming a new id; prod-server-2 keeps running on its etcd data", () => {
        const hosts = runUpTo("prod-server-3-restore-stop");
        convergeUntil(hosts, ["prod-server-1", "prod-server-2"]);
        assert.ok(existsSync(join(hosts.get("prod-server-2")!.root, "run/active/k3s")), "prod-server-2 started as it was");
        for (const n of ["prod-server-3", "prod-server-1"]) {
          const r = exec(hosts.get(n)!, stdinOf(byName(armed().steps, `${n}-restore-stop`), { restoreCovered: ORIGINAL_NODES }));
          assert.equal(r.status, 0, `${n}: ${r.out}`);
        }
        refusedReset(hosts);
      });

      it("a host no restore stopped (never armed, a new server, an agent-less cluster's first up) is only read: nothing called, nothing written", () => {
        const fresh = new Map(["prod-server-1", "prod-server-2", "prod-server-3"].map((n) => [n, host(n)]));
        const outs = converge(fresh);
        for (const [n, h] of fresh) {
          assert.deepEqual(calls(h), [], n);
          assert.ok(!existsSync(join(h.root, "var/lib/k3s-platform")), `${n}: nothing written`);
        }
        for (const out of outs) assert.match(out, /no restore stopped K3s here: nothing to do/);
      });
    });

    it("the first slot moves to a server that joined after the restore (no marker of it on its host): its check reads the record the reset wrote into the restored cluster and runs nothing of it; no second cluster reset on the running cluster", () => {
      const api = mkdtempSync(join(scratch, "api-"));
      const { steps } = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const byName = (list: Step[], n: string) => list.find((s) => s.name === n)!;
      const first = host("prod-server-1");
      const shared = (h: ReturnType<typeof host>) => ({ ...h, env: { ...h.env, STUB_API: api } });
      const one = shared(first);
      assert.equal(exec(one, stdinOf(steps[0]!)).status, 0);
      assert.equal(exec(one, stdinOf(byName(steps, "prod-server-1-restore-stop"), { restoreCovered: ORIGINAL_NODES })).status, 0);
      // A record written before the reset would be rolled back with etcd: the check writes none.
      assert.ok(!existsSync(join(api, "configmaps")), "nothing in the cluster before the reset");
      const reset = exec(one, stdinOf(byName(steps, "prod-server-1-restore-reset"), { restoreCovered: ORIGINAL_NODES }));
      assert.equal(reset.status, 0, reset.out);
      assert.match(reset.out, /reset: recorded in the cluster \(ConfigMap kube-system\/k3s-platform-operations, key restore-[0-9a-f]{16}\)/);
      // Later, restore 1 still set: prod-server-1 is armed; prod-server-2 was removed and re-added
      // since (a fresh host: no marker, no once-record) and now holds the first slot.
      const moved = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }, (raw) => (raw.nodes[0]!.decommission = true)));
      const fresh = shared(host("prod-server-2"));
      mkdirSync(join(fresh.root, "api"), { recursive: true });
      writeFileSync(join(fresh.root, "api/nodes"), "prod-server-1 True true\nprod-server-2 True true\nprod-server-3 True true\n");
      const check = exec(fresh, stdinOf(byName(moved.steps, "prod-server-2-restore-check")));
      assert.equal(check.status, 0, check.out);
      assert.match(check.out, /check: restore 1 already ran in this cluster \(the cluster's record says so: ConfigMap kube-system\/k3s-platform-operations\): nothing of it runs again; set a new restore\.id to restore again/);
      const facts = { restoreCovered: parseRestoreCovered(check.out, "1"), restoreResetDone: parseRestoreResetDone(check.out, "1") };
      assert.deepEqual(facts, { restoreCovered: [], restoreResetDone: true });
      for (const n of ["prod-server-2-restore-stop", "prod-server-2-restore-reset"]) assert.equal(exec(fresh, stdinOf(byName(moved.steps, n), facts)).status, 0);
      assert.deepEqual(calls(fresh), [], "no stop, no cluster reset, no start");
      assert.ok(existsSync(join(fresh.root, "run/active/k3s")), "K3s still runs");
      // Without the cluster's record (an older restore, or the API not answering), the fresh host cannot tell: its check would go on.
      const blind = host("prod-server-2");
      assert.match(exec(blind, stdinOf(byName(moved.steps, "prod-server-2-restore-check"))).out, /restoring local snapshot/);
    });

    it("a node removed and re-added under its name after the reset (a fresh host, restore still set) stops nothing, moves no etcd data, restarts nothing; a rejoin or restart begun before the re-add still runs on a retry", () => {
      const { steps } = stepsOf(restore, withRestore({ id: 1, snapshot: SNAPSHOT }));
      const byName = (n: string) => steps.find((s) => s.name === n)!;
      const first = host("prod-server-1");
      const check = exec(first, stdinOf(steps[0]!));
      assert.equal(check.status, 0, check.out);
      assert.equal(parseRestoreResetDone(check.out, "1"), false, "before the reset: not done");
      const covered = parseRestoreCovered(check.out, "1");
      // The arming up: prod-server-2 stops (its K3s gets the marker), the first server resets.
      const second = host("prod-server-2");
      for (const [h, n] of [[second, "prod-server-2-restore-stop"], [first, "prod-server-1-restore-stop"]] as const) assert.equal(exec(h, stdinOf(byName(n), { restoreCovered: covered })).status, 0);
      assert.equal(readFileSync(join(second.root, RESTORE_STOPPED), "utf8"), "1", "the stop marks the K3s it stopped");
      assert.equal(exec(first, stdinOf(byName("prod-server-1-restore-reset"), { restoreCovered: covered })).status, 0);
      // The check's update prints the record: it now says the reset is done.
      const printed = spawnSync("bash", ["-c", `cat "${first.root}${RESTORE_COVERED}"`], { encoding: "utf8" }).stdout;
      assert.equal(parseRestoreResetDone(printed, "1"), true);
      assert.equal(parseRestoreResetDone(printed, "2"), false, "another id's reset is not this one's");
      assert.deepEqual(parseRestoreCovered(printed, "1"), covered, "the record still covers the same nodes");
      const after = { restoreCovered: covered, restoreResetDone: true };

      // prod-server-3 and prod-agent-1 were removed and re-added under their names: fresh hosts,
      // in the record, K3s running, no marker; their steps are new resources.
      const third = host("prod-server-3");
      const agent = host("prod-agent-1");
      for (const [h, n] of [[third, "prod-server-3-restore-stop"], [third, "prod-server-3-restore-rejoin"], [agent, "prod-agent-1-restore-restart"]] as const) {
        const r = exec(h, stdinOf(byName(n), after));
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /reset of restore 1 was done before this node joined the cluster: nothing to do|not stopped by restore 1 .*no etcd data moves|no restart of it began on this K3s: nothing to restart/, n);
      }
      assert.deepEqual(calls(third), [], "nothing stopped or started on the re-added server");
      assert.deepEqual(calls(agent), [], "nothing restarted on the re-added agent");
      assert.ok(existsSync(join(third.root, "run/active/k3s")), "its K3s runs");
      assert.ok(existsSync(join(third.root, "var/lib/rancher/k3s/server/db/etcd")) && !existsSync(join(third.root, "var/lib/rancher/k3s/server/db.before-restore-1")), "its etcd data stays");
      assert.doesNotMatch(stdinOf(byName("prod-server-3-restore-stop"), after), /systemctl/, "the stop renders no stop at all");

      // A retry after the reset (prod-server-2's rejoin failed in the arming up): its K3s carries the marker, so it rejoins.
      const rejoin = exec(second, stdinOf(byName("prod-server-2-restore-rejoin"), after));
      assert.equal(rejoin.status, 0, rejoin.out);
      assert.ok(existsSync(join(second.root, "var/lib/rancher/k3s/server/db.before-restore-1/etcd")), "the server restore 1 stopped rejoins");
      // An agent whose restart began (and failed) before: it restarts on the retry.
      const began = host("prod-agent-2");
      mkdirSync(join(began.root, "var/lib/rancher/k3s/agent"), { recursive: true });
      writeFileSync(join(began.root, RESTORE_RESTARTING), "1");
      const restarted = exec(began, stdinOf(byName("prod-agent-2-restore-restart"), after));
      assert.equal(restarted.status, 0, restarted.out);
      assert.ok(calls(began).includes("systemctl stop k3s-agent"), "its restart runs again");
    });
  });
});
