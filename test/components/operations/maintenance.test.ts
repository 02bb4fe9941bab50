import { strict as assert } from "node:assert";
import { NO_OP_UPDATE } from "../../../components/operations/once";
import { spawnSync } from "node:child_process";
import * as fc from "fast-check";
import { maintenanceCommand } from "../../../components/config/schema";
import { MAINTENANCE_COMMANDS } from "../../../components/config/maintenance-commands";
import { renderMaintenanceRun } from "../../../components/maintenance/render";
import { maintenance, MAINTENANCE_RECORD } from "../../../components/operations/maintenance";
import { clusterRecordKey, parseCovered, readClusterRecord, writeClusterRecord } from "../../../components/operations/covered";
import { raw } from "../../../components/shell/sh";
import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ONE_SHOT_KEYS, oneShotValues } from "../../../components/operations/once";
import { rotationDone } from "../../../components/operations/certificates";
import { restoreAbandoned } from "../../../components/operations/restore-abandoned";
import type { Facts, FromFacts, Step } from "../../../components/operations/step";
import { parseStackConfig } from "../../../components/stack/load";
import { lifecycleLines } from "../../../tools/preview-lifecycle";
import type { PreviewStep } from "../../../tools/preview-markdown";
import type { StackInput } from "../../../components/config/schema";
import type { StackValidationPolicy } from "@pulumi/policy";
import { policies } from "../../../policies/policies";
import { collectGraph, policySettings, runStackPolicy, stackArgs } from "../../helpers/policy-harness";
import { REPO, variant } from "../../helpers/samples";
import { sample, stepsOf } from "./helpers";

/** The nodes of the prod sample, every one registered. */
const ALL_NODES = ["prod-server-1", "prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-2", "prod-agent-3", "prod-agent-0"];

/**
 * A `k3s` on PATH whose `kubectl get nodes --no-headers -o custom-columns=NAME:.metadata.name,UID:.metadata.uid`
 * lists the Nodes of `$root/nodes/<name>` with the UID each got when created (as the API server
 * assigns .metadata.uid once per object: kubernetes.io/docs/concepts/overview/working-with-objects/names/#uids).
 * Returns the directory to put first on PATH.
 */
function apiServer(root: string, nodes: readonly string[], api = root): string {
  const bin = join(root, "bin");
  mkdirSync(bin, { recursive: true });
  for (const n of nodes) {
    mkdirSync(join(api, "nodes", n), { recursive: true });
    if (!existsSync(join(api, "nodes", n, "uid"))) writeFileSync(join(api, "nodes", n, "uid"), randomUUID());
  }
  // ConfigMaps (the operations' cluster records): test/helpers/kubectl-configmap.sh, state shared through `api`.
  writeFileSync(
    join(bin, "k3s"),
    `#!/usr/bin/env bash
if [ "$1 \${3:-}" = "kubectl configmap" ]; then shift; STUB_API=${JSON.stringify(api)} exec ${JSON.stringify(CONFIGMAP_STANDIN)} "$@"; fi
[ -z "\${STUB_API_DOWN:-}" ] || { echo "The connection to the server 127.0.0.1:6443 was refused" >&2; exit 1; }
[ "$*" = "kubectl get nodes --no-headers -o custom-columns=NAME:.metadata.name,UID:.metadata.uid" ] || { echo "not modelled: $*" >&2; exit 2; }
for d in ${JSON.stringify(api)}/nodes/*/; do printf '%s %s\\n' "$(basename "$d")" "$(cat "$d/uid")"; done
`,
    { mode: 0o755 },
  );
  return bin;
}
const CONFIGMAP_STANDIN = join(REPO, "test", "helpers", "kubectl-configmap.sh");

const FACTS: Facts = { baseline: {}, token: "", tokenSalt: "", encryptionKeys: {}, restoreToken: "" };
const stdinOf = (s: Step, facts: Partial<Facts> = {}) => (s.stdin as FromFacts<string>).render({ ...FACTS, ...facts });

describe("operation maintenance", () => {
  const patch = { id: 1, command: ["apt-get", "-y", "upgrade"], reboot: true };

  it("servers one at a time (watched by another server), then agents in upgrade.maxUnavailable batches: drain, run, wait, back, uncordon; each group after the last", () => {
    const { steps, config, plan } = stepsOf(maintenance, sample("prod", (raw) => ((raw.maintenance = patch), (raw.upgrade = { maxUnavailable: 2 }))));
    const line = (s: Step) => `${s.name}@${s.host.name} <- ${s.after.join(",")}`;
    assert.deepEqual(restoreAbandoned.steps(config, plan)[0]!.after, rotationDone(config, plan));
    assert.deepEqual(steps.slice(0, 6).map(line), [
      // No restore armed: after the steps that converge an unfinished one (operations/restore-abandoned.ts: the servers' chain, then every agent), which follow the rotations.
      "maintenance-record@prod-server-1 <- prod-agent-1-restore-abandoned,prod-agent-2-restore-abandoned,prod-agent-3-restore-abandoned",
      "maintenance-1-drain@prod-server-2 <- maintenance-record",
      "prod-server-1-maintenance-run@prod-server-1 <- maintenance-1-drain",
      "maintenance-1-wait@prod-server-2 <- prod-server-1-maintenance-run",
      "prod-server-1-maintenance-back@prod-server-1 <- maintenance-1-wait",
      "maintenance-1-uncordon@prod-server-2 <- prod-server-1-maintenance-back",
    ]);
    assert.equal(line(steps[6]!), "maintenance-2-drain@prod-server-1 <- maintenance-1-uncordon", "the next server only after the first is back and uncordoned");
    const agentGroups = steps.filter((s) => /^maintenance-[0-9]+-drain$/.test(s.name)).map((s) => s.summary);
    assert.deepEqual(agentGroups.slice(3), ["group 4 (prod-agent-1, prod-agent-2): cordon and drain, on prod-server-1", "group 5 (prod-agent-3): cordon and drain, on prod-server-1"]);
    assert.deepEqual(steps.filter((s) => s.restartsK3s).map((s) => s.name), ["prod-server-1", "prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-2", "prod-agent-3"].map((n) => `${n}-maintenance-run`));
    assert.ok(steps.every((s) => s.runs === "once" && JSON.stringify(s.triggers).startsWith('["1"')));
    // An update runs nothing on a host; the record's runs its script again, which records nothing
    // more for the id and prints the record with the Nodes' UIDs now (what the program reads).
    assert.deepEqual(steps.filter((s) => s.update !== NO_OP_UPDATE).map((s) => `${s.name}: ${s.update}`), ["maintenance-record: sudo -n bash -s"]);
    // A group step's trigger also names its nodes (a node added or removed moves groups).
    assert.deepEqual(steps.find((s) => s.name === "maintenance-4-drain")!.triggers, ["1", "prod-agent-1", "prod-agent-2"]);
  });

  it("a node added while a maintenance is still armed: no group step keeps its name and trigger for other nodes, no group reuses another group's record (the shifted groups re-run nothing done, the new node is drained first)", () => {
    const arm = (raw: StackInput) => ((raw.maintenance = patch), (raw.upgrade = { maxUnavailable: 1 }));
    const before = stepsOf(maintenance, sample("prod", arm)).steps;
    // A fourth server (replacing one, docs/removing-and-replacing-nodes.md): servers come first, so every agent group moves.
    const after = stepsOf(maintenance, sample("prod", (raw) => {
      arm(raw);
      const s3 = raw.nodes!.find((n) => n.name === "prod-server-3")!;
      raw.nodes!.splice(raw.nodes!.indexOf(s3) + 1, 0, { ...s3, name: "prod-server-4", host: "203.0.113.14" });
    })).steps;
    const group = /^maintenance-[0-9]+-(drain|wait|uncordon)$/;
    const nodesOf = (s: Step) => /^NODES=\((.*)\)$/m.exec(stdinOf(s))![1];
    const recordOf = (s: Step) => /once\/([a-z0-9-]+)/.exec(stdinOf(s))![1];
    const old = new Map(before.filter((s) => group.test(s.name)).map((s) => [s.name, s]));
    const records = new Map(before.filter((s) => group.test(s.name)).map((s) => [`${s.host.name} ${recordOf(s)}`, nodesOf(s)]));
    for (const s of after.filter((x) => group.test(x.name))) {
      const was = old.get(s.name);
      if (was && JSON.stringify(was.triggers) === JSON.stringify(s.triggers)) assert.equal(nodesOf(s), nodesOf(was), `${s.name} keeps its trigger but now covers other nodes: Pulumi would not run it again`);
      const recorded = records.get(`${s.host.name} ${recordOf(s)}`);
      if (recorded !== undefined) assert.equal(nodesOf(s), recorded, `${s.name} on ${s.host.name} would find the record another group left and skip`);
    }
    assert.ok(after.some((s) => group.test(s.name) && nodesOf(s) === "prod-server-4"), "the new server has its own group");
  });

  it("without reboot: drain, run, uncordon only; `nodes` limits it to the listed nodes", () => {
    const { steps } = stepsOf(maintenance, sample("prod", (raw) => (raw.maintenance = { id: "2026-12-07", command: ["apt-get", "-y", "upgrade"], nodes: ["prod-server-3", "prod-agent-2"] })));
    assert.deepEqual(
      steps.map((s) => s.name),
      ["maintenance-record", "maintenance-1-drain", "prod-server-3-maintenance-run", "maintenance-1-uncordon", "maintenance-2-drain", "prod-agent-2-maintenance-run", "maintenance-2-uncordon"],
    );
    assert.equal(steps[1]!.host.name, "prod-server-1");
    assert.deepEqual(stepsOf(maintenance, sample("prod")).steps, []);
  });

  it("one-shot with the baseline: a maintenance armed when the cluster is created records without running; a later id runs", () => {
    const config = sample("dev", (raw) => (raw.maintenance = { id: 3, reboot: true, nodes: ["dev-agent-1"] }));
    assert.equal(oneShotValues(config)[ONE_SHOT_KEYS.maintenance], "3");
    const [, drain] = stepsOf(maintenance, config).steps;
    assert.match(stdinOf(drain!, { baseline: { [ONE_SHOT_KEYS.maintenance]: "3" } }), /the cluster was created with trigger/);
    assert.doesNotMatch(stdinOf(drain!, { baseline: { [ONE_SHOT_KEYS.maintenance]: "2" } }), /the cluster was created with trigger/);
  });

  it("validation names the path: unknown or armed nodes, rebooting the only server, nothing to do, and in prod a command off the allowlist", () => {
    const issues = (env: "dev" | "prod", edit: Parameters<typeof variant>[1]) => {
      const r = parseStackConfig(variant(env, edit));
      return r.ok ? "" : r.issues.map((i) => `${i.path}: ${i.message}`).join("\n");
    };
    assert.match(issues("prod", (raw) => (raw.maintenance = { id: 1, reboot: true, nodes: ["prod-server-9"] })), /k3s-platform:maintenance\.nodes\[0\]: no node named prod-server-9/);
    assert.match(
      issues("dev", (raw) => {
        raw.nodes = raw.nodes.filter((n) => n.role !== "server" || n.name === raw.nodes[0]!.name);
        raw.maintenance = { id: 1, reboot: true };
      }),
      /k3s-platform:maintenance\.reboot: node \S+ is the only server: no other server can watch it come back/,
    );
    assert.match(issues("dev", (raw) => (raw.maintenance = { id: 1 })), /k3s-platform:maintenance: sets neither command nor reboot/);
    assert.match(issues("prod", (raw) => (raw.maintenance = { id: 1, command: ["curl", "-o", "/tmp/x", "https://example.com/x"] })), /k3s-platform:maintenance\.command: prod runs only a known OS-patching command here/);
    assert.equal(issues("prod", (raw) => (raw.maintenance = { id: 1, command: [...MAINTENANCE_COMMANDS[1]!.argv] })), "");
    assert.equal(issues("dev", (raw) => (raw.maintenance = { id: 1, command: ["/usr/local/bin/patch-host", "--all"] })), "", "outside prod any single command");
    assert.match(issues("dev", (raw) => (raw.maintenance = { id: 1, command: ["apt-get update && reboot"] })), /k3s-platform:maintenance\.command\[0\]: the program/);
  });

  it("property: the node runs exactly the argv the schema accepts, one word per entry, never through a shell", () => {
    const node = sample("dev").nodes[0]!;
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "grapheme", maxLength: 12 }), { maxLength: 4 }), (args) => {
        const argv = ["printf", "<%s>\\n", ...args];
        const parsed = maintenanceCommand.safeParse(argv);
        if (!parsed.success) return;
        const r = spawnSync("bash", ["-s"], { input: renderMaintenanceRun({ id: 1, command: parsed.data, reboot: false, nodes: "all" }, node), encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: "/nonexistent" } });
        assert.equal(r.status, 0, r.stderr);
        const printed = r.stdout.split("\n").filter((l) => l.startsWith("<")).join("\n");
        assert.equal(printed, args.map((a) => `<${a}>`).join("\n") || "<>");
      }),
      { numRuns: 60 },
    );
  });

  it("preview:md says what runs as root where, in which groups; nothing on a second up", () => {
    const { steps, config } = stepsOf(maintenance, sample("prod", (raw) => ((raw.maintenance = patch), (raw.upgrade = { maxUnavailable: 2 }))));
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const cluster: PreviewStep = { op: "update", urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod", newState: { inputs: { config } } };
    const preview = steps.map((s): PreviewStep => ({ op: "create", urn: urn(s.name) }));
    assert.deepEqual(lifecycleLines([cluster, ...preview], "prod"), [
      "maintenance 1: cordon, drain, run `apt-get -y upgrade` as root, reboot and wait for the new boot, uncordon; servers one at a time (prod-server-1, prod-server-2, prod-server-3), then agents in 2 batches of up to 2 (prod-agent-1, prod-agent-2) (prod-agent-3) (docs/maintenance.md)",
    ]);
    assert.deepEqual(lifecycleLines([cluster, ...preview.map((p) => ({ ...p, op: "same" }))], "prod"), []);
  });

  it("preview:md: command, reboot or nodes changed under the same maintenance.id says what ran does not run again (set a new id)", () => {
    const config = (m: StackInput["maintenance"]) => sample("prod", (raw) => ((raw.maintenance = m), (raw.upgrade = { maxUnavailable: 2 })));
    const cluster = (before: StackInput["maintenance"], now: StackInput["maintenance"]): PreviewStep => ({
      op: "update",
      urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod",
      oldState: { inputs: { config: config(before) } },
      newState: { inputs: { config: config(now) } },
    });
    assert.deepEqual(lifecycleLines([cluster(patch, { ...patch, command: ["dnf", "-y", "upgrade"], nodes: ["prod-agent-1"] })], "prod"), [
      "⚠️ maintenance 1: maintenance.command, maintenance.nodes changed under the same id: every step that already ran for maintenance 1 is not run again, and nodes it did not cover when it first ran are not added; set a new maintenance.id to run it (docs/maintenance.md)",
    ]);
    assert.deepEqual(lifecycleLines([cluster(patch, patch)], "prod"), []);
    assert.deepEqual(lifecycleLines([cluster(patch, { ...patch, id: 2, command: ["dnf", "-y", "upgrade"] })], "prod"), []);
  });

  it("a maintenance that leaves the config (removed, or a new id) uncordons the nodes it cordoned and never uncordoned (a failed or abandoned run); an operator's cordon, another id's and an unreachable API are left alone", () => {
    const armed = stepsOf(maintenance, sample("prod", (raw) => (raw.maintenance = patch)));
    const record = armed.steps.find((s) => s.name === MAINTENANCE_RECORD)!;
    assert.deepEqual(record.triggers, ["1"], "a new id replaces the record: the old one's delete runs");
    assert.ok(record.delete?.startsWith("sudo -n bash -c "), "the delete runs the release as root, on the first server");
    assert.equal(record.host.name, "prod-server-1");
    const dir = mkdtempSync(join(tmpdir(), "k3sp-maint-release-"));
    try {
      // A stand-in for `k3s kubectl`: Nodes and their cordoned-for-maintenance annotation from $NODES, calls logged.
      const bin = join(dir, "bin");
      mkdirSync(bin);
      writeFileSync(
        join(bin, "k3s"),
        `#!/usr/bin/env bash
[ "$1" = kubectl ] || exit 2
shift
echo "$*" >>"$STUB_LOG"
[ -z "\${API_DOWN:-}" ] || { echo "The connection to the server 127.0.0.1:6443 was refused" >&2; exit 1; }
case "$1" in get) printf '%s\n' "$NODES" ;; uncordon | annotate) ;; *) exit 2 ;; esac
`,
      );
      chmodSync(join(bin, "k3s"), 0o755);
      const log = join(dir, "calls");
      const run = (nodes: string, extra: Record<string, string> = {}) => {
        writeFileSync(log, "");
        const r = spawnSync("bash", ["-c", record.onRemoval!], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, STUB_LOG: log, NODES: nodes, ...extra } });
        const all = readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
        return { status: r.status, out: r.stdout + r.stderr, gets: all.filter((l) => l.startsWith("get ")), calls: all.filter((l) => !l.startsWith("get ")) };
      };
      const r = run("prod-server-1 <none>\nprod-agent-1 1\nprod-agent-2 <none>\nprod-agent-3 2");
      assert.equal(r.status, 0, r.out);
      assert.deepEqual(r.calls, ["uncordon prod-agent-1", "annotate node prod-agent-1 k3s-platform.io/cordoned-for-maintenance-"]);
      assert.match(r.out, /maintenance\[prod-agent-1\] .*uncordoned/);
      // kubectl's custom columns read an annotation key with its dots escaped (JSONPath), as the drain does.
      assert.deepEqual(r.gets, [String.raw`get nodes --no-headers -o custom-columns=NAME:.metadata.name,CORDONED_FOR:.metadata.annotations.k3s-platform\.io/cordoned-for-maintenance`]);
      const down = run("", { API_DOWN: "1" });
      assert.equal(down.status, 0, "a destroy or a lost first server must not be blocked by it");
      assert.match(down.out, /nothing uncordoned/);
      assert.deepEqual(down.calls, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a node that joined after the maintenance ran (not in its record) is not maintained: its run and back run nothing, every group drops it; the record is written once per id and printed on every run; preview says so", () => {
    const arm = (raw: StackInput) => ((raw.maintenance = patch), (raw.upgrade = { maxUnavailable: 2 }));
    const armed = stepsOf(maintenance, sample("prod", arm));
    const root = mkdtempSync(join(tmpdir(), "k3sp-maint-record-"));
    const exec = (script: string) => spawnSync("bash", ["-s"], { input: script, encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root, PATH: `${apiServer(root, ALL_NODES)}:${process.env.PATH}` } });
    const record = armed.steps.find((s) => s.name === MAINTENANCE_RECORD)!;
    const first = exec(record.stdin as string);
    assert.equal(first.status, 0, first.stderr);
    const covered = parseCovered(first.stdout, "maintenance", "1");
    assert.deepEqual(covered, ["prod-server-1", "prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-2", "prod-agent-3"]);
    // A later up with a new agent listed first: the record step's stdin changed, but a re-run keeps the record.
    const later = stepsOf(maintenance, sample("prod", (raw) => {
      arm(raw);
      const a1 = raw.nodes!.find((n) => n.name === "prod-agent-1")!;
      raw.nodes!.splice(raw.nodes!.indexOf(a1), 0, { ...a1, name: "prod-agent-0", host: "203.0.113.20" });
    }));
    const again = exec(later.steps.find((s) => s.name === MAINTENANCE_RECORD)!.stdin as string);
    assert.deepEqual(parseCovered(again.stdout, "maintenance", "1"), covered, "recorded once per id: the new agent stays out");
    const facts = { maintenanceCovered: covered };
    for (const name of ["prod-agent-0-maintenance-run", "prod-agent-0-maintenance-back"]) {
      const r = exec(stdinOf(later.steps.find((s) => s.name === name)!, facts));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /maintenance 1 did not cover this node when it ran \(it covered prod-server-1, .*prod-agent-3; it joined since, or maintenance\.nodes did not choose it then\): nothing to do; set a new maintenance\.id to maintain it$/m);
      assert.doesNotMatch(stdinOf(later.steps.find((s) => s.name === name)!, facts), /apt-get|reboot/);
    }
    const group = later.steps.find((s) => s.name === "maintenance-4-drain")!;
    assert.deepEqual(group.triggers, ["1", "prod-agent-0", "prod-agent-1"], "the batches moved");
    assert.match(stdinOf(group, facts), /^NODES=\(prod-agent-1\)$/m, "the new agent is dropped; prod-agent-1 is skipped on the host when its annotation says done");
    assert.match(stdinOf(group, facts), /if maintained "\$node"; then say "\$node" "already maintained for id \$ID/);
    // Nodes of the record render as before (no Update noise on a later up).
    for (const s of armed.steps.filter((x) => x.name.endsWith("-maintenance-run"))) assert.equal(stdinOf(later.steps.find((x) => x.name === s.name)!, facts), stdinOf(s, facts));

    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const cluster: PreviewStep = { op: "same", urn: "urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster::prod", newState: { inputs: { config: later.config } } };
    const recordStep: PreviewStep = { op: "update", urn: urn(MAINTENANCE_RECORD), oldState: { outputs: { stdout: first.stdout } } };
    const created = ["prod-agent-0-maintenance-run", "prod-agent-0-maintenance-back"].map((n): PreviewStep => ({ op: "create", urn: urn(n) }));
    assert.deepEqual(lifecycleLines([cluster, recordStep, ...created], "prod"), ["maintenance 1 did not cover prod-agent-0 when it ran (it joined since, or maintenance.nodes did not choose it then): nothing of it runs on it; set a new maintenance.id to maintain it (docs/maintenance.md)"]);

    // Listed in the config all along but not chosen when maintenance 1 ran: maintenance.nodes
    // names prod-agent-3 later under the same id. It did not join since: the words say both.
    const chosen = ["prod-server-1", "prod-agent-1"];
    const narrow = stepsOf(maintenance, sample("prod", (raw) => ((raw.maintenance = { ...patch, nodes: [...chosen, "prod-agent-3"] }), (raw.upgrade = { maxUnavailable: 2 }))));
    const fresh = mkdtempSync(join(tmpdir(), "k3sp-maint-chosen-"));
    const notChosen = spawnSync("bash", ["-s"], { input: stdinOf(narrow.steps.find((s) => s.name === "prod-agent-3-maintenance-run")!, { maintenanceCovered: chosen }), encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: fresh } });
    rmSync(fresh, { recursive: true, force: true });
    assert.equal(notChosen.status, 0, notChosen.stderr);
    assert.match(notChosen.stdout, /^maintenance\[prod-agent-3\] run: maintenance 1 did not cover this node when it ran \(it covered prod-server-1, prod-agent-1; .*maintenance\.nodes did not choose it then\): nothing to do; set a new maintenance\.id to maintain it$/m);
    assert.doesNotMatch(notChosen.stdout, /ran before this node joined/);
    rmSync(root, { recursive: true, force: true });
  });

  it("property: the cluster record's key is a valid ConfigMap key for every id the schema accepts, and any record text round-trips through the ConfigMap (base64: no quoting reaches the shell or the patch JSON)", () => {
    const ids = fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/), fc.nat().map(String));
    fc.assert(fc.property(ids, fc.constantFrom("restore", "maintenance") as fc.Arbitrary<"restore" | "maintenance">, (id, op) => /^[-._a-zA-Z0-9]{1,253}$/.test(clusterRecordKey(op, id))));
    const api = mkdtempSync(join(tmpdir(), "k3sp-record-api-"));
    const root = mkdtempSync(join(tmpdir(), "k3sp-record-host-"));
    const bin = apiServer(root, [], api);
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 200 }).filter((t) => !t.includes("\0") && !t.endsWith("\n")), ids, (text, id) => {
        writeFileSync(join(root, "record"), text);
        const script = `set -euo pipefail\nsay() { echo "$*" >&2; }\n${writeClusterRecord("maintenance", id, raw(JSON.stringify(join(root, "record")))).text}\n${readClusterRecord("maintenance", id).text}\nprintf '%s' "$cluster_record"`;
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
        return r.status === 0 && r.stdout === text;
      }),
      { numRuns: 60 },
    );
    for (const d of [api, root]) rmSync(d, { recursive: true, force: true });
  });

  it("the first slot moves after the maintenance ran (the old first server armed, an agent joined since): the new first server's record step reads the cluster's record (ConfigMap kube-system/k3s-platform-operations) and records nothing again: the agent stays out; with the API down it falls back to its host", () => {
    const arm = (raw: StackInput) => ((raw.maintenance = patch), (raw.upgrade = { maxUnavailable: 2 }));
    const api = mkdtempSync(join(tmpdir(), "k3sp-maint-api-"));
    const hostRoot = (n: string) => mkdtempSync(join(tmpdir(), `k3sp-maint-${n}-`));
    const [one, two] = [hostRoot("server-1"), hostRoot("server-2")];
    const nodes = ALL_NODES.filter((n) => n !== "prod-agent-0");
    const exec = (root: string, script: string, env: Record<string, string> = {}) =>
      spawnSync("bash", ["-s"], { input: script, encoding: "utf8", env: { ...process.env, ...env, K3S_PLATFORM_ROOT: root, PATH: `${apiServer(root, nodes, api)}:${process.env.PATH}` } });
    const armed = stepsOf(maintenance, sample("prod", arm));
    assert.equal(armed.steps.find((s) => s.name === MAINTENANCE_RECORD)!.host.name, "prod-server-1");
    const first = exec(one, armed.steps.find((s) => s.name === MAINTENANCE_RECORD)!.stdin as string);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /recorded in the cluster \(ConfigMap kube-system\/k3s-platform-operations, key maintenance-[0-9a-f]{16}\)/);
    const covered = parseCovered(first.stdout, "maintenance", "1");
    assert.deepEqual(covered, nodes);
    // Later: prod-agent-0 joined, prod-server-1 is armed for decommission: prod-server-2 holds the first slot.
    apiServer(two, ALL_NODES, api);
    const moved = stepsOf(maintenance, sample("prod", (raw) => {
      arm(raw);
      raw.nodes![0]!.decommission = true;
      const a1 = raw.nodes!.find((n) => n.name === "prod-agent-1")!;
      raw.nodes!.splice(raw.nodes!.indexOf(a1), 0, { ...a1, name: "prod-agent-0", host: "203.0.113.20" });
    }));
    const record = moved.steps.find((s) => s.name === MAINTENANCE_RECORD)!;
    assert.equal(record.host.name, "prod-server-2");
    const read = exec(two, record.stdin as string);
    assert.equal(read.status, 0, read.stderr);
    assert.deepEqual(parseCovered(read.stdout, "maintenance", "1"), covered, "the cluster's record: prod-agent-0 stays out");
    assert.doesNotMatch(read.stdout, /recorded in the cluster/, "nothing recorded again");
    const facts = { maintenanceCovered: parseCovered(read.stdout, "maintenance", "1") };
    assert.match(exec(two, stdinOf(moved.steps.find((s) => s.name === "prod-agent-0-maintenance-run")!, facts)).stdout, /maintenance 1 did not cover this node when it ran/);
    // The API does not answer: no cluster record to read, and the step says that only its host's records decide.
    const three = hostRoot("server-2b");
    const blind = exec(three, record.stdin as string, { STUB_API_DOWN: "1" });
    assert.match(blind.stdout, /^maintenance\[prod-server-2\] record: warning: the API did not answer for the cluster's record of maintenance 1/m);
    // Nor for the Nodes' UIDs: the step fails naming host and step (as every day-2 step's failure does).
    assert.equal(blind.status, 1);
    assert.match(blind.stderr, /^maintenance\[prod-server-2\] record: cannot list the Nodes' UIDs \(k3s kubectl get nodes\)/m);
    for (const d of [api, one, two, three]) rmSync(d, { recursive: true, force: true });
  });

  it("a node removed and re-added under its name after the maintenance ran (a new Node, a new UID) is not covered: its steps and its group run nothing on it; the nodes kept stay covered", () => {
    const arm = (raw: StackInput) => ((raw.maintenance = patch), (raw.upgrade = { maxUnavailable: 2 }));
    const { steps } = stepsOf(maintenance, sample("prod", arm));
    const root = mkdtempSync(join(tmpdir(), "k3sp-maint-readd-"));
    const nodes = ["prod-server-1", "prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-2", "prod-agent-3"];
    const exec = (script: string) => spawnSync("bash", ["-s"], { input: script, encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root, PATH: `${apiServer(root, nodes)}:${process.env.PATH}` } });
    const record = steps.find((s) => s.name === MAINTENANCE_RECORD)!;
    const first = exec(record.stdin as string);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(parseCovered(first.stdout, "maintenance", "1"), nodes);
    // prod-agent-1 and prod-server-3 are removed (their Nodes deleted) and re-added: new Node objects.
    rmSync(join(root, "nodes", "prod-agent-1"), { recursive: true });
    rmSync(join(root, "nodes", "prod-server-3"), { recursive: true });
    const again = exec(record.stdin as string);
    assert.equal(again.status, 0, again.stderr);
    const covered = parseCovered(again.stdout, "maintenance", "1");
    assert.deepEqual(covered, ["prod-server-1", "prod-server-2", "prod-agent-2", "prod-agent-3"], "the re-added nodes are not the Nodes it covered");
    // Not registered yet when the record printed: not the Node it covered either.
    rmSync(join(root, "nodes", "prod-agent-2"), { recursive: true });
    const printed = exec(record.stdin as string).stdout.split("\n").filter((l) => !l.startsWith("maintenance node now: prod-agent-2 ")).join("\n");
    assert.ok(!parseCovered(printed, "maintenance", "1").includes("prod-agent-2"));
    const facts = { maintenanceCovered: covered };
    for (const name of ["prod-agent-1-maintenance-run", "prod-agent-1-maintenance-back", "prod-server-3-maintenance-run"]) {
      assert.match(stdinOf(steps.find((s) => s.name === name)!, facts), /maintenance 1 did not cover this node when it ran/, name);
    }
    assert.match(stdinOf(steps.find((s) => s.name === "maintenance-4-drain")!, facts), /^NODES=\(prod-agent-2\)$/m, "its batch drains only the node it covered");
    assert.match(stdinOf(steps.find((s) => s.name === "maintenance-3-drain")!, facts), /^NODES=\(\)$/m, "the re-added server's group drains nothing");
    rmSync(root, { recursive: true, force: true });
  });

  it("the pack's servers-restart-one-at-a-time passes the program's maintenance; a server's run step without its group's order is reported", async () => {
    const graph = await collectGraph(sample("prod", (raw) => (raw.maintenance = patch)), "prod");
    const policy = policies.find((p) => p.name === "servers-restart-one-at-a-time") as StackValidationPolicy;
    const run = (g: typeof graph) => runStackPolicy(policy, stackArgs(g, policySettings(policy).config));
    assert.ok(graph.some((r) => r.name === "prod-prod-server-2-maintenance-run"));
    assert.deepEqual(await run(graph), []);
    const parallel = graph.map((r) => (r.name === "prod-prod-server-2-maintenance-run" ? { ...r, dependencies: [] } : r));
    assert.ok((await run(parallel)).some((m) => /prod-prod-server-2-maintenance-run/.test(m)));
  });

  it("a failing command stops there, naming node and step", () => {
    const node = sample("dev").nodes[0]!;
    const r = spawnSync("bash", ["-s"], { input: renderMaintenanceRun({ id: 1, command: ["false"], reboot: true, nodes: "all" }, node), encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^maintenance\\[${node.name}\\] run \\(on ${node.name}\\): the command failed \\(status 1\\): ${node.name} stays cordoned and the maintenance stops here`, "m"));
    assert.doesNotMatch(r.stdout, /reboot in/, "no reboot after a failed command");
  });
});
