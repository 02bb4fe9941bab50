import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import fc from "fast-check";
import YAML from "yaml";
import { parseStackConfig, loadStackConfig } from "../../components/stack/load";
import { renderInventoryScript, renderDrainScript, renderUninstallScript, teardownCommands, teardownPlans } from "../../components/decommission/render";
import { JOIN_DROPIN, peerServerUrls, rejoinSnippet } from "../../components/decommission/rejoin";
import { MANAGED_NODES_FILE } from "../../components/decommission/nodes";
import { ResolvedConfig } from "../../components/config/schema";
import { forgetServer, forgetSteps, rebuildTriggers, renderForgetScript } from "../../components/decommission/rebuild";
import { NO_OP_UPDATE } from "../../components/operations/once";
import { planCluster, planNode } from "../../components/plan/node";
import {
  certificateRotationSteps,
  parseCertificateCheck,
  renderCertificateCheckScript,
  renderCertificateRotateScript,
  renderTokenRotateScript,
  tokenFingerprint,
} from "../../components/rotation/render";
import { raw, sh } from "../../components/shell/sh";
import { REPO, variant } from "../helpers/samples";
import { SERVER_CA_FILE } from "../../components/rotation/token-request";

/** K3s' token endpoint as the server answers it (the curl stand-in's model; its sources in the file). */
const TOKEN_ENDPOINT_MODEL = join(REPO, "test/e2e/hosts/root-overlay/usr/local/lib/k3sp-stub/token-endpoint");

/** Node removal, rebuild and rotation: validation, plans, and the generated scripts run in a sandbox. */

/** A pipe into a consumer that may exit early (as host-scripts.test.ts; not imported: that would run its suite). */
const EARLY_EXIT_PIPE = /(?<!\|)\|(?!\|)\s*(grep\b[^|;&\n]*\s-[A-Za-z]*[qlm]|grep\b[^|;&\n]*--(quiet|silent|max-count|files-with-matches)|head\b|sed\b[^|;&\n]*\b\d+q\b)/;

const prod = (edit: (nodes: Array<{ name: string; decommission?: boolean }>) => void) =>
  parseStackConfig(variant("prod", (r) => edit(r.nodes as Array<{ name: string; decommission?: boolean }>)));
const issues = (r: ReturnType<typeof parseStackConfig>) => (r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`));

/** A sandbox: a fake `k3s`/`systemctl`/`curl` on PATH that record their calls, a scratch root. */
function sandbox(fakes: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "k3sp-life-"));
  const bin = join(dir, "bin");
  const root = join(dir, "root");
  mkdirSync(bin);
  mkdirSync(root);
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\necho "${name} $*" >>"${dir}/calls"\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  const run = (script: string, env: Record<string, string> = {}) => {
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, K3S_PLATFORM_ROOT: root, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const calls = () => (existsSync(join(dir, "calls")) ? readFileSync(join(dir, "calls"), "utf8") : "");
  return { dir, root, run, calls };
}

/**
 * A fake `k3s` for the drain and forget scripts: `first` (test-specific answers) runs first; then
 * `get node` prints $READY (default True) and `get nodes` prints $ROWS (custom-columns rows
 * NAME READY ADDRESS MEMBER REMOVED, `\n`-separated); every other call succeeds silently.
 */
const k3sFake = (first = "") => `${first}
case "$2 $3" in
  "get node") echo "\${READY:-True}"; exit 0 ;;
  "get nodes") printf '%b' "\${ROWS:-}"; exit 0 ;;
esac
exit 0`;

describe("decommission: validation", () => {
  it("refuses the last server, more servers than etcd can lose at once, and an even number left in prod; names the node", () => {
    assert.deepEqual(issues(prod((n) => (n[3]!.decommission = true))), [], "an agent may go");
    const two = issues(prod((n) => (n[0]!.decommission = n[1]!.decommission = true)));
    assert.equal(two.length, 2);
    assert.match(two[0]!, /^k3s-platform:nodes\[0\] \(prod-server-1\)\.decommission: 2 of 3 servers are decommissioned at once; etcd keeps quorum with at most 1/);
    // Arming one of three prod servers stops nothing (three keep running): allowed, with the path
    // that completes the replacement; deleting the entry is judged then (the pack's prod-server-quorum).
    const armedOne = prod((n) => (n[1]!.decommission = true));
    assert.deepEqual(issues(armedOne), []);
    assert.ok(armedOne.ok);
    assert.deepEqual(
      armedOne.warnings.filter((w) => w.path.includes("decommission")).map((w) => `${w.path}: ${w.message}`),
      [
        "k3s-platform:nodes[1] (prod-server-2).decommission: prod-server-2 is armed: deleting its entry alone would leave 2 servers in prod, which is refused (an even number); delete it in the change that adds its replacement (role: server: it joins first, then prod-server-2 is removed, and 3 stay)",
      ],
    );
    const dev = parseStackConfig(variant("dev", (r) => (r.nodes[0]!.decommission = true)));
    assert.match(issues(dev)[0]!, /decommission: decommissioning dev-server-1 leaves no server/);
    const twoServers = parseStackConfig(variant("staging", (r) => {
      r.nodes.splice(1, 0, { ...structuredClone(r.nodes[0]!), name: "stg-server-2", host: "198.51.100.99", nodeIp: undefined, decommission: true });
    }));
    assert.match(issues(twoServers).join("\n"), /1 of 2 servers are decommissioned at once; etcd keeps quorum with at most 0/);
  });
});

describe("decommission: plan and teardown", () => {
  const config = loadStackConfig(variant("prod", (r) => {
    r.environment = "staging"; // two servers left is fine outside prod
    r.nodes[0]!.decommission = true;
    r.nodes[4]!.decommission = true;
    r.nodes[5]!.decommission = false;
  }));

  it("a decommissioned node gets no steps; the next server takes the first slot (cluster-init) and runs the drains", () => {
    const plan = planCluster(config);
    assert.deepEqual(plan.nodes.map((n) => n.node.name), ["prod-server-2", "prod-server-3", "prod-agent-1", "prod-agent-3"]);
    assert.deepEqual(plan.decommissioned.map((n) => n.name), ["prod-server-1", "prod-agent-2"]);
    assert.equal(plan.nodes[0]!.role, "first-server");
    assert.match(plan.nodes[0]!.files.find((f) => f.name === "config.yaml")!.content, /^cluster-init: true$/m);
    assert.match(plan.nodes[1]!.files.find((f) => f.name === "config.yaml")!.content, /^server: https:\/\/203\.0\.113\.12:6443$/m);
    assert.deepEqual(teardownPlans(config).map((t) => [t.node.name, t.armed, t.drainServer.name]), [
      ["prod-server-1", true, "prod-server-2"],
      ["prod-agent-2", true, "prod-server-2"],
      ["prod-agent-3", false, "prod-server-2"],
    ]);
  });

  it("teardown commands: no triggers, drain depends on uninstall (deleted first), disarmed ones change nothing", () => {
    const commands = teardownCommands(config);
    assert.deepEqual(commands.map((c) => [c.name, c.dependsOn]), [
      ["prod-server-1-decommission-uninstall", []],
      ["prod-server-1-decommission-drain", ["prod-server-1-decommission-uninstall"]],
      ["prod-agent-2-decommission-uninstall", []],
      ["prod-agent-2-decommission-drain", ["prod-agent-2-decommission-uninstall"]],
      ["prod-agent-3-decommission-uninstall", []],
      ["prod-agent-3-decommission-drain", ["prod-agent-3-decommission-uninstall"]],
    ]);
    for (const c of commands) {
      assert.ok(!("triggers" in c), c.name);
      assert.ok(c.update === undefined || c.update === NO_OP_UPDATE, `${c.name}: an Update runs nothing`);
      assert.doesNotMatch(c.create ?? "", /uninstall\.sh|kubectl/, `${c.name}: arming changes nothing`);
    }
    // Arming a dead host must be possible (the usual reason to remove a node): nothing but the
    // removal's delete connects to the node itself (pulumi-command skips an unset create/update).
    for (const c of commands.filter((c) => c.name.endsWith("-uninstall"))) {
      assert.equal(c.create, undefined, `${c.name}: no create on the node`);
      assert.equal(c.update, undefined, `${c.name}: no update on the node`);
    }
    assert.match(commands[0]!.delete, /k3s-uninstall\.sh/);
    assert.match(commands[2]!.delete, /k3s-agent-uninstall\.sh/);
    assert.doesNotMatch(commands[4]!.delete + commands[5]!.delete, /uninstall\.sh |kubectl/, "disarmed: the delete is a message");
  });

  it("the drain runs cordon, drain, delete node; an absent node is a no-op; a blocked drain fails, leaving it cordoned", () => {
    const script = renderDrainScript(config.nodes[4]!);
    const ok = sandbox({ k3s: k3sFake() });
    const r = ok.run(script, { ROWS: "prod-agent-2 True 203.0.113.22 <none> <none>\\nprod-server-1 True 203.0.113.11 prod-server-1-0a1b2c3d <none>\\n" });
    assert.equal(r.status, 0, r.stderr);
    const nodes =
      "k3s kubectl get nodes --no-headers -o custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type==\"Ready\")].status,ADDRESS:.status.addresses[?(@.type==\"InternalIP\")].address,MEMBER:.metadata.annotations.etcd\\.k3s\\.cattle\\.io/node-name,REMOVED:.metadata.annotations.etcd\\.k3s\\.cattle\\.io/removed-node-name";
    assert.deepEqual(ok.calls().trim().split("\n"), [
      "k3s kubectl get --raw=/readyz",
      "k3s kubectl get configmap k3s-platform-managed-nodes -n kube-system -o jsonpath={.data.nodes}",
      'k3s kubectl get node prod-agent-2 --no-headers -o custom-columns=READY:.status.conditions[?(@.type=="Ready")].status',
      nodes,
      "k3s kubectl cordon prod-agent-2",
      "k3s kubectl drain prod-agent-2 --ignore-daemonsets --delete-emptydir-data --timeout=300s",
      nodes,
      "k3s kubectl delete node prod-agent-2 --wait=true --timeout=300s",
    ]);
    assert.match(r.stdout, /decommission\[prod-agent-2\]: drain \(\d+s\)/);
    const gone = sandbox({ k3s: `[ "$2" = get ] && [ "$3" = node ] && { echo 'Error from server (NotFound): nodes "prod-agent-2" not found' >&2; exit 1; }; exit 0` });
    const g = gone.run(script);
    assert.equal(g.status, 0, g.stderr);
    assert.match(g.stdout, /not registered: nothing to drain/);
    const blocked = sandbox({ k3s: k3sFake(`[ "$2" = drain ] && { echo 'error when evicting pods/"web-0" -n "shop": Cannot evict pod as it would violate the pod'"'"'s disruption budget.' >&2; exit 1; }`) });
    const b = blocked.run(script);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /web-0/);
    assert.match(b.stderr, /stays cordoned and installed, the next pulumi up retries/);
    assert.doesNotMatch(blocked.calls(), /delete node/);
  });

  it("the program's drain fails naming the node and the server its drain ran on (it never runs on the node itself)", () => {
    const plan = teardownPlans(config).find((t) => t.node.name === "prod-agent-2")!;
    assert.equal(plan.drainServer.name, "prod-server-2");
    const blocked = sandbox({ k3s: k3sFake(`[ "$2" = drain ] && { echo 'error when evicting pods/"web-0" -n "shop": Cannot evict pod' >&2; exit 1; }`) });
    const b = blocked.run(plan.drainScript);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /^decommission\[prod-agent-2\] drain on prod-server-2: drain did not finish .*prod-agent-2 stays cordoned and installed/m);
    // Its progress keeps the node's own prefix.
    assert.match(b.stdout, /^decommission\[prod-agent-2\]: cordon/m);
  });

  it("a server's own managed-nodes file (placed before issue 26, stale now) no longer decides: the cluster's list does", () => {
    const script = renderDrainScript(config.nodes[4]!);
    const listed = sandbox({ k3s: k3sFake() });
    mkdirSync(join(listed.root, dirname(MANAGED_NODES_FILE)), { recursive: true });
    writeFileSync(join(listed.root, MANAGED_NODES_FILE), "prod-agent-1\nprod-agent-2\nprod-server-1\n");
    const r = listed.run(script);
    assert.equal(r.status, 0, r.stderr);
    assert.match(listed.calls(), /^k3s kubectl get configmap k3s-platform-managed-nodes/m);
  });

  it("a node the cluster's managed-node list names is refused even when this server's own list is stale (this server armed in the same up)", () => {
    const script = renderDrainScript(config.nodes[4]!);
    // `k3s kubectl get configmap …` prints the ConfigMap's `nodes`; every other call succeeds.
    const cluster = (nodes: string) => sandbox({ k3s: k3sFake(`[ "$2 $3" = "get configmap" ] && { printf '%s' ${JSON.stringify(nodes)}; exit 0; }`) });
    const stale = cluster("prod-agent-1 prod-agent-2 prod-server-1");
    const r = stale.run(script);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /prod-agent-2 is still a node entry without decommission: true .*nothing was changed/);
    assert.match(stale.calls(), /^k3s kubectl get configmap k3s-platform-managed-nodes -n kube-system -o jsonpath=\{\.data\.nodes\}$/m);
    assert.doesNotMatch(stale.calls(), /cordon|drain|delete/);
    // Whole names only: prefixes and extensions of the name are other nodes.
    for (const list of ["prod-agent-20 prod-agent", "", "prod-agent-2x"]) assert.equal(cluster(list).run(script).status, 0, `listed: ${list}`);
    for (const list of ["prod-agent-2", "a prod-agent-2", "prod-agent-2 z"]) assert.equal(cluster(list).run(script).status, 1, `listed: ${list}`);
    // No list in the cluster: a warning (the inventory writes it in the same up); any other read error changes nothing.
    const absent = sandbox({ k3s: k3sFake(`[ "$2 $3" = "get configmap" ] && { echo 'Error from server (NotFound): configmaps "k3s-platform-managed-nodes" not found' >&2; exit 1; }`) });
    const a = absent.run(script);
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /warning: no managed-node list in the cluster/);
    const broken = sandbox({ k3s: k3sFake(`[ "$2 $3" = "get configmap" ] && { echo 'Unable to connect to the server' >&2; exit 1; }`) });
    const b = broken.run(script);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /cannot read the managed-node list .*Unable to connect.*nothing was changed/);
    assert.doesNotMatch(broken.calls(), /cordon|drain|delete/);
  });

  it("the inventory writes the managed entries into the cluster; a deleted decommission line changes its script (so it re-runs before any delete)", () => {
    const armed = loadStackConfig(variant("prod", (r) => ((r.nodes[4] as { decommission?: boolean }).decommission = true)));
    const lineDeleted = loadStackConfig(variant("prod", () => {}));
    const applied = (c: ResolvedConfig) => {
      const s = sandbox({ k3s: `[ "$2 $3" = "apply -f" ] && cat >"$(dirname "$0")/../applied"; exit 0` });
      const r = s.run(renderInventoryScript(c));
      assert.equal(r.status, 0, r.stderr);
      assert.match(s.calls(), /^k3s kubectl apply -f -$/m);
      return JSON.parse(readFileSync(join(s.dir, "applied"), "utf8")) as { kind: string; metadata: { name: string; namespace: string }; data: { nodes: string } };
    };
    const all = applied(lineDeleted);
    assert.deepEqual([all.kind, all.metadata.namespace, all.metadata.name], ["ConfigMap", "kube-system", "k3s-platform-managed-nodes"]);
    assert.deepEqual(all.data.nodes.split(" "), lineDeleted.nodes.map((n) => n.name).sort());
    assert.deepEqual(applied(armed).data.nodes.split(" "), lineDeleted.nodes.map((n) => n.name).filter((n) => n !== "prod-agent-2").sort());
    assert.notEqual(renderInventoryScript(armed), renderInventoryScript(lineDeleted));
  });

  it("no node carries the managed-node list (issue 26): arming, disarming by deleting the line, adding or removing an entry change no server's apply", () => {
    const applyHashes = (c: ResolvedConfig) => new Map(c.nodes.filter((n) => n.role === "server" && n.decommission !== true).map((n) => [n.name, planNode(c, n).hashes.apply]));
    const armed = loadStackConfig(variant("prod", (r) => ((r.nodes[4] as { decommission?: boolean }).decommission = true)));
    const lineDeleted = loadStackConfig(variant("prod", () => {}));
    const removed = loadStackConfig(variant("prod", (r) => r.nodes.splice(4, 1)));
    for (const c of [armed, lineDeleted, removed]) {
      for (const n of c.nodes) assert.ok(!planNode(c, n).files.some((f) => f.target === MANAGED_NODES_FILE), `${n.name} carries no list`);
    }
    const before = applyHashes(lineDeleted);
    for (const c of [armed, removed]) for (const [name, hash] of applyHashes(c)) assert.equal(hash, before.get(name), name);
  });

  it("the drain of a dead node (Ready=Unknown) deletes the Node without waiting on evictions that never finish", () => {
    const dead = sandbox({ k3s: `[ "$2" = get ] && [ "$3" = node ] && { echo Unknown; exit 0; }; [ "$2" = drain ] && { sleep 5; exit 1; }; exit 0` });
    const r = dead.run(renderDrainScript(config.nodes[4]!));
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(dead.calls(), /kubectl (cordon|drain) /);
    assert.match(dead.calls(), /^k3s kubectl delete node prod-agent-2 --wait=true --timeout=300s$/m);
    assert.match(r.stdout, /Ready=Unknown .*skipping cordon and drain/);
  });

  describe("a server's removal keeps etcd whole: its peers join first, a Ready majority stays (issue 23: replacing a server, shrinking)", () => {
    const server = config.nodes[0]!; // prod-server-1, armed
    const row = (name: string, ready: string, member = `${name}-m`) => `${name} ${ready} 203.0.113.${name.slice(-1)} ${member} <none>\\n`;
    /** k3s fake whose `get nodes` prints $ROWS for the first $JOIN_AFTER listings, then $JOINED. */
    const joining = `[ "$2 $3" = "get nodes" ] && {
  f="$(dirname "$0")/../listings"; n="$(cat "$f" 2>/dev/null || echo 0)"; echo $((n + 1)) >"$f"
  if [ "$n" -ge "\${JOIN_AFTER:-0}" ]; then printf '%b' "\${JOINED:-$ROWS}"; else printf '%b' "$ROWS"; fi; exit 0; }`;
    const run = (peers: string[], env: Record<string, string>, first = joining) => {
      const s = sandbox({ k3s: k3sFake(first), sleep: "exit 0" }); // the polls' sleeps are instant here
      const r = s.run(renderDrainScript(server, peers), env);
      return { ...r, calls: s.calls(), changing: s.calls().split("\n").filter((l) => /kubectl (annotate|cordon|drain|delete) /.test(l)) };
    };
    const three = row("prod-server-1", "True") + row("prod-server-2", "True") + row("prod-server-3", "True");

    it("the plan bakes the managed servers of the arming up into an armed server's drain (an agent's has none)", () => {
      const [first] = teardownPlans(config);
      assert.match(first!.drainScript, /^PEERS=\(prod-server-2 prod-server-3\)$/m);
      assert.doesNotMatch(teardownPlans(config)[1]!.drainScript, /PEERS=/);
    });

    it("a server added in the same up is waited for until it names its etcd member; then the removal runs, after it", () => {
      const r = run(["prod-server-2", "prod-server-3", "prod-server-4"], { ROWS: three + row("prod-server-4", "True", "<none>"), JOINED: three + row("prod-server-4", "True"), JOIN_AFTER: "3" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /waiting for server\(s\) prod-server-4 to join etcd before prod-server-1 leaves \(up to 300s\)/);
      assert.match(r.stdout, /etcd keeps quorum: 3 members left, 3 on Ready Nodes \(needs 2\)/);
      assert.deepEqual(r.changing, ["k3s kubectl cordon prod-server-1", "k3s kubectl drain prod-server-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s", "k3s kubectl delete node prod-server-1 --wait=true --timeout=300s"]);
      assert.ok(r.calls.split("\n").filter((l) => /get nodes/.test(l)).length >= 4, "listed until the member appeared");
    });

    it("a peer that never joins fails the removal naming it, after the bounded wait, with nothing changed", () => {
      const r = run(["prod-server-2", "prod-server-3", "prod-server-4"], { ROWS: three });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /decommission\[prod-server-1\]: server\(s\) prod-server-4 not registered as etcd members after 300s: removing prod-server-1 before they joined could cost etcd its quorum; nothing was changed/);
      assert.deepEqual(r.changing, []);
    });

    it("a peer no longer managed (the cluster's list) is not waited for", () => {
      const listed = `[ "$2 $3" = "get configmap" ] && { printf '%s' "prod-agent-1 prod-server-2 prod-server-3"; exit 0; }\n${joining}`;
      const r = run(["prod-server-2", "prod-server-3", "prod-server-4"], { ROWS: three }, listed);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /waiting for/);
    });

    it("refuses when the members left would have no Ready majority, naming the Nodes that are down; a dead member's own removal passes", () => {
      const down = row("prod-server-1", "True") + row("prod-server-2", "Unknown") + row("prod-server-3", "False") + row("prod-server-4", "True");
      const r = run(["prod-server-2", "prod-server-3", "prod-server-4"], { ROWS: down });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /after prod-server-1 leaves, 1 of 3 etcd members are on Ready Nodes and etcd needs 2: bring back prod-server-2 prod-server-3 first; nothing was changed/);
      assert.deepEqual(r.changing, []);
      // The leaving server is the dead one: two of two left are Ready.
      const dead = row("prod-server-1", "Unknown") + row("prod-server-2", "True") + row("prod-server-3", "True");
      const d = run(["prod-server-2", "prod-server-3"], { ROWS: dead, READY: "Unknown" });
      assert.equal(d.status, 0, d.stderr);
      assert.match(d.stdout, /etcd keeps quorum: 2 members left, 2 on Ready Nodes \(needs 2\)/);
      // The last member never leaves.
      const alone = run([], { ROWS: row("prod-server-1", "True") });
      assert.equal(alone.status, 1);
      assert.match(alone.stderr, /prod-server-1 carries the last etcd member/);
    });

    it("a member a Ready Node on the same host carries now stays: nothing leaves etcd, nothing is counted", () => {
      const reused = row("prod-server-1", "True") + "prod-server-9 True 203.0.113.1 prod-server-1-m <none>\\n" + row("prod-server-2", "Unknown") + row("prod-server-3", "Unknown");
      const r = run(["prod-server-2", "prod-server-3"], { ROWS: reused });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /etcd keeps quorum/);
    });
  });

  it("armed servers leave one at a time (a 5 -> 3 shrink): each server's uninstall waits on the next one's drain, so the engine runs drain, uninstall, drain, uninstall", () => {
    const shrink = loadStackConfig(variant("prod", (r) => {
      const extra = (n: number) => ({ ...structuredClone(r.nodes[0]!), name: `prod-server-${n}`, host: `203.0.113.1${n}`, nodeIp: undefined });
      r.nodes.splice(3, 0, extra(4), extra(5));
      r.nodes[1]!.decommission = r.nodes[3]!.decommission = true;
      r.nodes[6]!.decommission = true; // an agent: not chained
    }));
    const deps = new Map(teardownCommands(shrink).map((c) => [c.name, c.dependsOn]));
    assert.deepEqual(deps.get("prod-server-2-decommission-uninstall"), ["prod-server-4-decommission-drain"]);
    assert.deepEqual(deps.get("prod-server-4-decommission-uninstall"), []);
    assert.deepEqual(deps.get(`${shrink.nodes[6]!.name}-decommission-uninstall`), []);
    // The engine deletes dependents before their dependencies: the order it runs the four deletes.
    const order: string[] = [];
    const visit = (name: string) => {
      if (order.includes(name)) return;
      for (const [dependent, on] of deps) if (on.includes(name)) visit(dependent);
      order.push(name);
    };
    for (const name of [...deps.keys()].filter((n) => /server-[24]/.test(n))) visit(name);
    assert.deepEqual(order, ["prod-server-2-decommission-drain", "prod-server-2-decommission-uninstall", "prod-server-4-decommission-drain", "prod-server-4-decommission-uninstall"]);
  });

  describe("the drain and forget share delete_node: an etcd member a live Node carries now is kept", () => {
    const script = renderDrainScript(config.nodes[4]!);
    const run = (rows: string[], env: Record<string, string> = {}, first = "") => {
      const s = sandbox({ k3s: k3sFake(first), sleep: "exit 0" }); // sleep: the member wait's polls, instant here
      const r = s.run(script, { READY: "Unknown", ROWS: rows.map((row) => `${row}\\n`).join(""), ...env });
      return { ...r, calls: s.calls(), changing: s.calls().split("\n").filter((l) => /kubectl (annotate|cordon|drain|delete) /.test(l)) };
    };
    const DELETE = "k3s kubectl delete node prod-agent-2 --wait=true --timeout=300s";
    const MARK = "k3s kubectl annotate node prod-agent-2 --overwrite etcd.k3s.cattle.io/remove=true etcd.k3s.cattle.io/removed-node-name=prod-agent-2-0c0ffee0";

    it("a Ready, unmarked Node on the same host carrying the member: the old Node is marked in one call, then deleted; no cordon or drain (no kubelet runs for it)", () => {
      const r = run(["prod-server-1 True 203.0.113.11 prod-server-1-5f3a9c01 <none>", "prod-agent-2 True 203.0.113.22 prod-agent-2-0c0ffee0 <none>", "prod-server-7 True 203.0.113.22 prod-agent-2-0c0ffee0 <none>"], { READY: "True" });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.changing, [MARK, DELETE]);
      assert.match(r.stdout, /its host serves Node prod-server-7 now, so no kubelet runs for prod-agent-2: skipping cordon and drain/);
      assert.match(r.stdout, /etcd member prod-agent-2-0c0ffee0 belongs to Node prod-server-7 now/);
    });

    it("no live carrier: deleted as it is (K3s removes the member), whether the carrier is not Ready, itself marked, or only shares a prefix", () => {
      for (const other of ["prod-server-7 Unknown 203.0.113.77 prod-agent-2-0c0ffee0 <none>", "prod-server-7 True 203.0.113.77 prod-agent-2-0c0ffee0 prod-agent-2-0c0ffee0", "prod-server-7 True 203.0.113.77 prod-agent-2-0c0ffee01 <none>", "prod-server-7 True 203.0.113.77 <none> <none>"]) {
        const r = run(["prod-agent-2 Unknown 203.0.113.22 prod-agent-2-0c0ffee0 <none>", other]);
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.changing, [DELETE], other);
      }
      const agent = run(["prod-agent-2 Unknown 203.0.113.22 <none> <none>", "prod-server-7 True 203.0.113.22 <none> <none>"]);
      assert.deepEqual(agent.changing, [DELETE], "no member: nothing to keep, no wait");
      assert.doesNotMatch(agent.stdout, /waiting/);
    });

    it("two stale Nodes carrying one member, deleted at once: neither keeps it for the other (a dead voter would stay)", () => {
      const r = run(["prod-agent-2 Unknown 203.0.113.22 prod-agent-2-0c0ffee0 <none>", "prod-agent-9 Unknown 203.0.113.22 prod-agent-2-0c0ffee0 <none>"]);
      assert.deepEqual(r.changing, [DELETE]);
    });

    it("a mark left by an earlier attempt whose carrier is gone is cleared in one call before the delete", () => {
      const r = run(["prod-agent-2 Unknown 203.0.113.22 prod-agent-2-0c0ffee0 prod-agent-2-0c0ffee0"]);
      assert.deepEqual(r.changing, ["k3s kubectl annotate node prod-agent-2 etcd.k3s.cattle.io/remove- etcd.k3s.cattle.io/removed-node-name-", DELETE]);
      assert.match(r.stdout, /no live Node uses that member now: clearing it/);
    });

    it("a Ready Node on the same host without a member yet: waits for it; kept when it appears, deleted as it is when it never does (an agent)", () => {
      // The second listing shows the member (K3s' metadata controller ran): a counter file picks the rows.
      const later = `[ "$2 $3" = "get nodes" ] && { n="$(cat "$(dirname "$0")/n" 2>/dev/null || echo 0)"; echo $((n + 1)) >"$(dirname "$0")/n"; if [ "$n" -lt 2 ]; then printf '%b' "$ROWS"; else printf '%b' "$ROWS2"; fi; exit 0; }`;
      const rows = (member: string) => `prod-agent-2 True 203.0.113.22 prod-agent-2-0c0ffee0 <none>\\nprod-server-7 True 203.0.113.22 ${member} <none>\\n`;
      const appears = run([], { READY: "True", ROWS: rows("<none>"), ROWS2: rows("prod-agent-2-0c0ffee0") }, later);
      assert.equal(appears.status, 0, appears.stderr);
      assert.deepEqual(appears.changing, [MARK, DELETE]);
      assert.match(appears.stdout, /Node prod-server-7 on the same host has no etcd member name yet .*waiting up to 60s/);
      const never = run([], { READY: "True", ROWS: rows("<none>"), ROWS2: rows("<none>") }, later);
      assert.equal(never.status, 0, never.stderr);
      assert.deepEqual(never.changing, [DELETE]);
      assert.equal(never.calls.split("\n").filter((l) => l.startsWith("sleep ")).length, 12, "60 s in 5 s polls");
    });

    it("kubectl's discovery errors on stderr are not read as data; an unexpected Ready value or an unlistable cluster deletes nothing", () => {
      const noisy = `[ "$2 $3" = "get node" ] && { echo 'E1130 memcache.go:265] couldn'"'"'t get resource list for metrics.k8s.io/v1beta1: the server is currently unable to handle the request' >&2; echo True; exit 0; }`;
      const r = run(["prod-agent-2 True 203.0.113.22 <none> <none>"], {}, noisy);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.changing.map((l) => l.split(" ")[2]), ["cordon", "drain", "delete"], "Ready=True: cordoned and drained");
      const odd = run([], { READY: "Maybe" });
      assert.equal(odd.status, 1);
      assert.match(odd.stderr, /cannot read Node prod-agent-2: unexpected Ready status: Maybe/);
      assert.deepEqual(odd.changing, []);
      const broken = run([], {}, `[ "$2 $3" = "get nodes" ] && { echo 'Unable to connect to the server' >&2; exit 1; }`);
      assert.equal(broken.status, 1);
      assert.match(broken.stderr, /decommission\[prod-agent-2\]: cannot list Nodes: Unable to connect to the server/);
      assert.deepEqual(broken.changing, []);
    });
  });

  it("the uninstall runs the install script's uninstaller and removes k3s-platform state; without one it says so", () => {
    const s = sandbox({});
    mkdirSync(join(s.root, "usr/local/bin"), { recursive: true });
    mkdirSync(join(s.root, "var/lib/k3s-platform/once"), { recursive: true });
    writeFileSync(join(s.root, "usr/local/bin/k3s-agent-uninstall.sh"), `#!/bin/sh\necho uninstalled >"${s.dir}/ran"\nrm -f "$0"\n`);
    chmodSync(join(s.root, "usr/local/bin/k3s-agent-uninstall.sh"), 0o755);
    const script = renderUninstallScript(config, config.nodes[4]!);
    const r = s.run(script);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(s.dir, "ran")));
    assert.ok(!existsSync(join(s.root, "var/lib/k3s-platform")));
    const again = s.run(script);
    // Air-gapped (the prod sample): BIN_DIR is INSTALL_K3S_BIN_DIR, the binary's directory.
    assert.match(again.stdout, /no \/usr\/local\/bin\/k3s-agent-uninstall\.sh or \/usr\/local\/bin\/k3s-uninstall\.sh: K3s is not installed/);
  });

  it("the uninstall finds the uninstaller where the install script put it: /opt/bin when /usr/local/bin is read-only; INSTALL_K3S_BIN_DIR when air-gapped", () => {
    // install.sh setup_env: BIN_DIR=/usr/local/bin unless root cannot write there and /opt/bin exists.
    const online = loadStackConfig(variant("prod", (r) => {
      r.environment = "staging";
      r.k3s = { ...r.k3s!, airgap: { enabled: false } };
    }));
    const agent = online.nodes.find((n) => n.role === "agent")!;
    const s = sandbox({});
    mkdirSync(join(s.root, "opt/bin"), { recursive: true });
    writeFileSync(join(s.root, "opt/bin/k3s-agent-uninstall.sh"), `#!/bin/sh\necho opt >"${s.dir}/ran"\nrm -f "$0"\n`);
    chmodSync(join(s.root, "opt/bin/k3s-agent-uninstall.sh"), 0o755);
    const r = s.run(renderUninstallScript(online, agent));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(s.dir, "ran"), "utf8"), "opt\n");
    assert.match(r.stdout, /uninstall: \/opt\/bin\/k3s-agent-uninstall\.sh/);
    assert.match(s.run(renderUninstallScript(online, agent)).stdout, /no \/usr\/local\/bin\/k3s-agent-uninstall\.sh or \/opt\/bin\/k3s-agent-uninstall\.sh or \/usr\/local\/bin\/k3s-uninstall\.sh or \/opt\/bin\/k3s-uninstall\.sh: K3s is not installed/);
    // Air-gapped: only the directory the binary was pre-staged in (INSTALL_K3S_BIN_DIR) is BIN_DIR.
    const airgap = loadStackConfig(variant("prod", (r) => {
      r.environment = "staging";
      r.k3s = { ...r.k3s!, airgap: { enabled: true, binaryPath: "/opt/k3s/bin/k3s" } };
    }));
    const a = sandbox({});
    mkdirSync(join(a.root, "opt/k3s/bin"), { recursive: true });
    writeFileSync(join(a.root, "opt/k3s/bin/k3s-uninstall.sh"), `#!/bin/sh\necho airgap >"${a.dir}/ran"\nrm -f "$0"\n`);
    chmodSync(join(a.root, "opt/k3s/bin/k3s-uninstall.sh"), 0o755);
    const server = airgap.nodes.find((n) => n.role === "server")!;
    const script = renderUninstallScript(airgap, server);
    assert.doesNotMatch(script, /\/usr\/local\/bin|\/opt\/bin\//);
    const ar = a.run(script);
    assert.equal(ar.status, 0, ar.stderr);
    assert.equal(readFileSync(join(a.dir, "ran"), "utf8"), "airgap\n");
  });

  it("the uninstall removes K3s whatever the host runs: an agent entry on a host with the server's uninstaller", () => {
    const s = sandbox({});
    mkdirSync(join(s.root, "usr/local/bin"), { recursive: true });
    writeFileSync(join(s.root, "usr/local/bin/k3s-uninstall.sh"), `#!/bin/sh\necho server-uninstalled >"${s.dir}/ran"\nrm -f "$0"\n`);
    chmodSync(join(s.root, "usr/local/bin/k3s-uninstall.sh"), 0o755);
    const r = s.run(renderUninstallScript(config, config.nodes[4]!));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(s.dir, "ran")), "the server's uninstaller ran");
    assert.doesNotMatch(r.stdout, /not installed/);
  });

  it("a host that runs another entry's node by now (renamed while armed, or re-used in the same up) is left installed", () => {
    const s = sandbox({});
    mkdirSync(join(s.root, "usr/local/bin"), { recursive: true });
    mkdirSync(join(s.root, "etc/rancher/k3s"), { recursive: true });
    mkdirSync(join(s.root, "var/lib/k3s-platform"), { recursive: true });
    writeFileSync(join(s.root, "usr/local/bin/k3s-agent-uninstall.sh"), `#!/bin/sh\necho ran >"${s.dir}/ran"\n`);
    chmodSync(join(s.root, "usr/local/bin/k3s-agent-uninstall.sh"), 0o755);
    const script = renderUninstallScript(config, config.nodes[4]!); // prod-agent-2
    for (const other of ["node-name: prod-agent-7\n", 'node-name: "prod-agent-7"\n']) {
      writeFileSync(join(s.root, "etc/rancher/k3s/config.yaml"), `cluster-init: false\n${other}`);
      const r = s.run(script);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /this host runs node prod-agent-7 now/);
      assert.ok(!existsSync(join(s.dir, "ran")) && existsSync(join(s.root, "var/lib/k3s-platform")), "nothing removed");
    }
    // Its own name (quoted or not): uninstalled as usual.
    writeFileSync(join(s.root, "etc/rancher/k3s/config.yaml"), "node-name: 'prod-agent-2'\n");
    const own = s.run(script);
    assert.equal(own.status, 0, own.stderr);
    assert.ok(existsSync(join(s.dir, "ran")) && !existsSync(join(s.root, "var/lib/k3s-platform")));
  });

  it("a host installed once per role (both uninstallers): both run, the entry's role's first — the real one skips the cleanup while another k3s unit is left", () => {
    const s = sandbox({});
    mkdirSync(join(s.root, "usr/local/bin"), { recursive: true });
    for (const u of ["k3s-uninstall.sh", "k3s-agent-uninstall.sh"]) {
      writeFileSync(join(s.root, "usr/local/bin", u), `#!/bin/sh\necho ${u} >>"${s.dir}/ran"\nrm -f "$0"\n`);
      chmodSync(join(s.root, "usr/local/bin", u), 0o755);
    }
    const r = s.run(renderUninstallScript(config, config.nodes[4]!)); // an agent entry
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(s.dir, "ran"), "utf8"), "k3s-agent-uninstall.sh\nk3s-uninstall.sh\n");
  });

  it("the inventory warns about registered nodes without an entry", () => {
    const s = sandbox({ k3s: `printf 'node/prod-server-2\\nnode/old-agent-9\\n'` });
    const r = s.run(renderInventoryScript(config));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: node old-agent-9 is registered in the cluster but has no entry in the stack config\./);
    // The engine deletes last: a decommissioned entry removed in this up is still registered when
    // the inventory runs (its drain comes after), so the warning must not claim it was skipped.
    assert.match(r.stderr, /If the entry had decommission: true, its teardown runs after this step in this same up/);
    assert.match(r.stderr, /otherwise it was removed without decommission: true, so K3s still runs on it/);
    assert.doesNotMatch(r.stderr, /prod-server-2/);
  });
});

describe("rebuild: the first server joins a running cluster instead of initialising one", () => {
  const config = loadStackConfig(variant("prod", () => {}));
  const guard = (snippet: string) => sh`set -euo pipefail
ROOT="\${K3S_PLATFORM_ROOT:-}"
NODE=prod-server-1
fail() { echo "apply[$NODE]: $*" >&2; exit 1; }
${raw(snippet)}`.text;
  const script = guard(rejoinSnippet(config).text);
  const curl = (answering: string) => `case "$*" in *${answering}/cacerts*) echo '-----BEGIN CERTIFICATE-----' ;; *) exit 7 ;; esac`;

  it("probes the other managed servers in order", () => {
    assert.deepEqual(peerServerUrls(config), ["https://203.0.113.12:6443", "https://203.0.113.13:6443"]);
  });

  it("empty data directory and a server answering: a join drop-in (server: that one, cluster-init: false)", () => {
    const s = sandbox({ curl: curl("203.0.113.13:6443") });
    const r = s.run(script);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /the data directory is empty and https:\/\/203\.0\.113\.13:6443 serves: joining the running cluster through it/);
    assert.equal(readFileSync(join(s.root, JOIN_DROPIN), "utf8").split("\n").slice(1).join("\n"), "server: https://203.0.113.13:6443\ncluster-init: false\n");
  });

  it("any valid server address (IPv4, IPv6, DNS name) reaches the probe and the join drop-in intact", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()), (address) => {
        const parsed = parseStackConfig(
          variant("prod", (r) => {
            const n = r.nodes[2] as { host: string; nodeIp?: string };
            n.host = address;
            delete n.nodeIp;
            delete (r.k3s as { nodeNetworks?: string[] }).nodeNetworks; // any address, not only the sample's network
          }),
        );
        fc.pre(parsed.ok);
        const c = loadStackConfig(variant("prod", (r) => {
          const n = r.nodes[2] as { host: string; nodeIp?: string };
          n.host = address;
          delete n.nodeIp;
          delete (r.k3s as { nodeNetworks?: string[] }).nodeNetworks;
        }));
        const want = peerServerUrls(c)[1]!;
        // The fake curl answers only for the third server's exact URL (its last argument).
        const s = sandbox({ curl: `[ "\${*: -1}" = "$EXPECT/cacerts" ] && echo '-----BEGIN CERTIFICATE-----' || exit 7` });
        const r = s.run(guard(rejoinSnippet(c).text), { EXPECT: want });
        assert.equal(r.status, 0, r.stderr);
        const dropIn = YAML.parse(readFileSync(join(s.root, JOIN_DROPIN), "utf8")) as Record<string, unknown>;
        assert.deepEqual(dropIn, { server: want, "cluster-init": false });
        const url = new URL(dropIn.server as string);
        assert.equal(url.port, "6443");
        // What curl reads from the configured host (WHATWG URL parser), independent of ipaddr.js.
        const host = c.nodes[2]!.host;
        assert.equal(url.hostname, new URL(`https://${host.includes(":") ? `[${host}]` : host}:6443`).hostname);
      }),
      { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 30) },
    );
  });

  it("no server answers: a new cluster (no drop-in, a stale one removed); data present: nothing probed", () => {
    const s = sandbox({ curl: "exit 7" });
    mkdirSync(join(s.root, "etc/rancher/k3s/config.yaml.d"), { recursive: true });
    writeFileSync(join(s.root, JOIN_DROPIN), "server: https://old:6443\n");
    const r = s.run(script);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /initialising a new cluster \(cluster-init\)/);
    assert.ok(!existsSync(join(s.root, JOIN_DROPIN)));
    const d = sandbox({ curl: curl("203.0.113.12:6443") });
    mkdirSync(join(d.root, "var/lib/rancher/k3s/server/db/etcd"), { recursive: true });
    const withData = d.run(script);
    assert.equal(withData.status, 0, withData.stderr);
    assert.equal(d.calls(), "", "a server with data asks nobody");
    assert.ok(!existsSync(join(d.root, JOIN_DROPIN)));
  });

  it("sqlite and external datastores have no guard", () => {
    const ext = loadStackConfig(variant("dev", (r) => (r.k3s!.datastore = { type: "sqlite" })));
    assert.equal(rejoinSnippet(ext).text, "");
  });
});

describe("rebuild: nodes[].rebuild", () => {
  const withRebuild = (value: unknown, at = 0) =>
    parseStackConfig(variant("prod", (r) => ((r.nodes[at] as Record<string, unknown>).rebuild = value)));

  it("takes a counter or a date string; refuses other values with the config path and node", () => {
    for (const ok of [0, 1, 42, "2026-11-30", "x"]) assert.ok(withRebuild(ok).ok, String(ok));
    for (const bad of [-1, 1.5, "", "a\nb", true, null, { n: 1 }]) {
      const found = issues(withRebuild(bad, 1));
      assert.ok(found.length > 0 && found.every((i) => i.startsWith("k3s-platform:nodes[1] (prod-server-2).rebuild")), `${JSON.stringify(bad)}: ${found.join("; ")}`);
    }
  });

  it("warns when the only server is rebuilt (a new, empty cluster) and when an armed node sets it; not otherwise", () => {
    const warnings = (r: ReturnType<typeof parseStackConfig>) => r.warnings.filter((w) => w.path.endsWith(".rebuild")).map((w) => `${w.path}: ${w.message}`);
    assert.deepEqual(warnings(withRebuild(1)), []);
    const single = parseStackConfig(variant("dev", (r) => (r.nodes[0]!.rebuild = 1)));
    assert.ok(single.ok);
    assert.deepEqual(warnings(single), [
      `k3s-platform:nodes[0] (dev-server-1).rebuild: node dev-server-1 is the only server: there is no cluster to join, so the rebuild starts a new, empty cluster (cluster-init) unless a snapshot is restored first (docs/backup-and-restore.md)`,
    ]);
    const armed = parseStackConfig(variant("prod", (r) => Object.assign(r.nodes[5]!, { rebuild: 1, decommission: true })));
    assert.ok(armed.ok);
    assert.match(warnings(armed).join("\n"), /^k3s-platform:nodes\[5\] \(prod-agent-3\)\.rebuild: node prod-agent-3: rebuild is ignored while decommission is true/);
  });

  it("adds the value as a trigger only when set (unset: none, so unchanged configs keep their triggers)", () => {
    const config = loadStackConfig(variant("prod", (r) => (r.nodes[0]!.rebuild = 3)));
    assert.deepEqual(rebuildTriggers(config.nodes[0]!), ["3"]);
    assert.deepEqual(rebuildTriggers(config.nodes[1]!), []);
    assert.deepEqual(rebuildTriggers({ rebuild: "2026-11-30" }), ["2026-11-30"]);
  });

  it("forget steps: the first server on the next managed server, any other node on the first server; none for the only server", () => {
    const config = loadStackConfig(
      variant("prod", (r) => {
        r.nodes[0]!.rebuild = 1;
        r.nodes[2]!.rebuild = 7;
        r.nodes[4]!.rebuild = "2026-11-30";
      }),
    );
    const steps = forgetSteps(config);
    assert.deepEqual(
      steps.map((f) => [f.name, f.on.name, f.triggers, f.update, f.afterFirstServer]),
      [
        ["prod-server-1-rebuild-forget", "prod-server-2", ["1"], NO_OP_UPDATE, false],
        ["prod-server-3-rebuild-forget", "prod-server-1", ["7"], NO_OP_UPDATE, true],
        ["prod-agent-2-rebuild-forget", "prod-server-1", ["2026-11-30"], NO_OP_UPDATE, true],
      ],
    );
    const oneServer = loadStackConfig(variant("staging", () => {}));
    assert.equal(forgetServer(oneServer, oneServer.nodes[0]!), undefined, "the only server: nobody to forget it");
    assert.equal(forgetServer(oneServer, oneServer.nodes[1]!)!.name, oneServer.nodes[0]!.name, "an agent: the first server");
    // The first slot moves with a decommissioned first server: the new first one is forgotten on the third.
    const armed = loadStackConfig(
      variant("prod", (r) => {
        r.environment = "staging";
        r.nodes[0]!.decommission = true;
        r.nodes[1]!.rebuild = 1;
      }),
    );
    assert.deepEqual(forgetSteps(armed).map((f) => [f.node.name, f.on.name]), [["prod-server-2", "prod-server-3"]]);
    const single = loadStackConfig(variant("dev", (r) => (r.nodes[0]!.rebuild = 1)));
    assert.deepEqual(forgetSteps(single), []);
  });

  describe("the forget script, with a fake kubectl", () => {
    const config = loadStackConfig(variant("prod", () => {}));
    const script = renderForgetScript(config.nodes[0]!, config.nodes[1]!);
    /** A fake `k3s`: the API answers; `get node` prints READY (or NotFound); the secret exists when HAS_SECRET=1. */
    const k3s = (ready: string) => `case "$2 $3" in
  "get --raw=/readyz") exit 0 ;;
  "get node") ${ready === "absent" ? `echo 'Error from server (NotFound): nodes "prod-server-1" not found' >&2; exit 1` : `echo ${ready}`} ;;
  "get nodes") echo "prod-server-1 ${ready} 203.0.113.11 \${MEMBER_1:-<none>} <none>"; echo "prod-server-2 True 203.0.113.12 prod-server-2-0a1b2c3d <none>"; [ -z "\${MEMBER_OTHER:-}" ] || echo "prod-server-9 True 203.0.113.19 $MEMBER_OTHER <none>" ;;
  "annotate node") exit 0 ;;
  "get secret") if [ "\${HAS_SECRET:-0}" = 1 ]; then echo "secret/$6"; else echo "Error from server (NotFound): secrets \"$6\" not found" >&2; exit 1; fi ;;
  "delete node" | "delete secret") exit 0 ;;
  *) exit 9 ;;
esac`;
    const deletes = (calls: string) => calls.split("\n").filter((l) => / delete /.test(l));

    it("NotReady or Unknown: deletes the Node (waiting), then nothing else when K3s removed the secret", () => {
      for (const ready of ["False", "Unknown"]) {
        const s = sandbox({ k3s: k3s(ready) });
        const r = s.run(script);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`Node prod-server-1 is not Ready \\(Ready=${ready}\\): deleting it`));
        assert.deepEqual(deletes(s.calls()), ["k3s kubectl delete node prod-server-1 --wait=true --timeout=300s"]);
      }
    });

    it("an old server Node whose etcd member another Node carries now: marked removed first, so K3s keeps the member", () => {
      const s = sandbox({ k3s: k3s("Unknown") });
      const r = s.run(script, { MEMBER_1: "prod-server-1-9a8b7c6d", MEMBER_OTHER: "prod-server-1-9a8b7c6d" });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(
        s.calls().split("\n").filter((l) => /kubectl (annotate|delete) /.test(l)),
        [
          "k3s kubectl annotate node prod-server-1 --overwrite etcd.k3s.cattle.io/remove=true etcd.k3s.cattle.io/removed-node-name=prod-server-1-9a8b7c6d",
          "k3s kubectl delete node prod-server-1 --wait=true --timeout=300s",
        ],
      );
      const alone = sandbox({ k3s: k3s("Unknown") });
      assert.equal(alone.run(script, { MEMBER_1: "prod-server-1-9a8b7c6d" }).status, 0);
      assert.doesNotMatch(alone.calls(), /annotate/, "its own member: K3s removes it with the Node, as a rebuild needs");
    });

    it("Ready: skipped with a message, never deleted (the host still runs K3s), the secret untouched", () => {
      const s = sandbox({ k3s: k3s("True") });
      const r = s.run(script, { HAS_SECRET: "1" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Node prod-server-1 is Ready: its host still runs K3s, so it is kept/);
      assert.deepEqual(deletes(s.calls()), []);
    });

    it("absent: nothing to delete; a left-over password secret is deleted", () => {
      const gone = sandbox({ k3s: k3s("absent") });
      const r = gone.run(script);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /no Node prod-server-1 is registered: nothing to delete/);
      assert.deepEqual(deletes(gone.calls()), []);
      const left = sandbox({ k3s: k3s("absent") });
      const l = left.run(script, { HAS_SECRET: "1" });
      assert.equal(l.status, 0, l.stderr);
      assert.deepEqual(deletes(left.calls()), ["k3s kubectl delete secret -n kube-system prod-server-1.node-password.k3s --wait=true --timeout=300s"]);
    });

    it("the API does not answer, or the Node cannot be read: fails naming the node and the server, deleting nothing", () => {
      const down = sandbox({ k3s: "exit 1" });
      const r = down.run(script);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /rebuild\[prod-server-1\]: the API server on prod-server-2 does not answer, so the old Node cannot be forgotten; nothing was changed/);
      assert.deepEqual(deletes(down.calls()), []);
      const forbidden = sandbox({ k3s: `[ "$2 $3" = "get node" ] && { echo 'Error from server (Forbidden): nodes is forbidden' >&2; exit 1; }; exit 0` });
      const f = forbidden.run(script);
      assert.equal(f.status, 1);
      assert.match(f.stderr, /cannot read Node prod-server-1: Error from server \(Forbidden\)/);
      assert.deepEqual(deletes(forbidden.calls()), []);
    });

    it("any rebuild value the schema accepts reaches the host verbatim, never as shell (the once-marker holds it)", () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ minLength: 1 }), fc.nat().map(String)), (value) => {
          const parsed = parseStackConfig(variant("prod", (r) => ((r.nodes[3] as Record<string, unknown>).rebuild = value)));
          fc.pre(parsed.ok);
          const step = forgetSteps(parsed.ok ? parsed.config : (undefined as never))[0]!;
          assert.deepEqual(step.triggers, [value]);
          const s = sandbox({ k3s: k3s("Unknown") });
          const r = s.run(step.stdin);
          assert.equal(r.status, 0, r.stderr);
          assert.equal(readFileSync(join(s.root, "var/lib/k3s-platform/once/forget-prod-agent-1"), "utf8"), value);
          rmSync(s.dir, { recursive: true, force: true });
        }),
        { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 20) },
      );
    });

    it("once per value on a host (the step's guard): the same value again runs nothing", () => {
      const step = forgetSteps(loadStackConfig(variant("prod", (r) => (r.nodes[3]!.rebuild = 5))))[0]!;
      const s = sandbox({ k3s: k3s("Unknown") });
      assert.equal(s.run(step.stdin).status, 0);
      const again = s.run(step.stdin);
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /already done for trigger 5/);
      assert.equal(deletes(s.calls()).length, 1);
    });
  });

  describe("join-only guard on a rebuilt first server", () => {
    const guard = (snippet: string) => sh`set -euo pipefail
ROOT="\${K3S_PLATFORM_ROOT:-}"
NODE=prod-server-1
fail() { echo "apply[$NODE]: $*" >&2; exit 1; }
${raw(snippet)}`.text;
    const rebuilt = loadStackConfig(variant("prod", (r) => (r.nodes[0]!.rebuild = 1)));
    const script = guard(rejoinSnippet(rebuilt).text);

    it("empty data directory and no server answering: fails naming the node and the servers tried, never cluster-init", () => {
      const s = sandbox({ curl: "exit 7", wget: "exit 4" });
      const r = s.run(script);
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr.trim(),
        `apply[prod-server-1]: the data directory is empty and no other server answers on :6443 (tried prod-server-2 https://203.0.113.12:6443, prod-server-3 https://203.0.113.13:6443); this server is being rebuilt (nodes[].rebuild), so the cluster exists: refusing to cluster-init a second cluster; bring a server back, or restore a snapshot: docs/backup-and-restore.md`,
      );
      assert.doesNotMatch(r.stdout, /cluster-init\)/);
      assert.equal(s.calls().split("\n").filter((l) => l.startsWith("curl")).length, 2, "asked both servers");
      assert.ok(!existsSync(join(s.root, JOIN_DROPIN)));
    });

    it("a server answering: joins through it, as without rebuild", () => {
      const s = sandbox({ curl: `case "$*" in *203.0.113.13:6443/cacerts*) echo '-----BEGIN CERTIFICATE-----' ;; *) exit 7 ;; esac` });
      const r = s.run(script);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(s.root, JOIN_DROPIN), "utf8").split("\n").slice(1).join("\n"), "server: https://203.0.113.13:6443\ncluster-init: false\n");
    });

    it("without rebuild, or on the only server, no answer still initialises (first creation must)", () => {
      for (const config of [loadStackConfig(variant("prod", () => {})), loadStackConfig(variant("dev", (r) => (r.nodes[0]!.rebuild = 1)))]) {
        const s = sandbox({ curl: "exit 7" });
        const r = s.run(guard(rejoinSnippet(config).text));
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /initialising a new cluster \(cluster-init\)/);
      }
    });

    it("a server with data is left alone, rebuild or not", () => {
      const d = sandbox({ curl: "exit 7" });
      mkdirSync(join(d.root, "var/lib/rancher/k3s/server/db/etcd"), { recursive: true });
      const r = d.run(script);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(d.calls(), "");
    });

    it("the rebuild value never reaches the script (only the mode): a new value changes triggers, not apply.sh", () => {
      const other = loadStackConfig(variant("prod", (r) => (r.nodes[0]!.rebuild = "2026-12-01")));
      assert.equal(rejoinSnippet(other).text, rejoinSnippet(rebuilt).text);
      assert.notEqual(rejoinSnippet(loadStackConfig(variant("prod", () => {}))).text, rejoinSnippet(rebuilt).text);
    });
  });
});

describe("rotation", () => {
  const config = loadStackConfig(variant("prod", (r) => (r.certificates = { rotation: 3 })));
  const first = config.nodes[0]!;
  /** A CA hash as K3s writes it in server/token: 64 hex digits (parseToken refuses other lengths). */
  const CA_HASH = createHash("sha256").update("stand-in CA").digest("hex");
  /** The first server: its token file, its server CA, K3s' token endpoint (the curl stand-in: test/helpers/stubs-backup/curl). */
  const tokenHost = (token: string, active = true) => {
    const s = sandbox({ systemctl: active ? "exit 0" : "exit 3", k3s: "", curl: `K3SP_ROOT="$K3S_PLATFORM_ROOT" K3SP_ACTIVE="$K3S_PLATFORM_ROOT/run/active/k3s" K3SP_LOG="$(dirname "$0")/../calls" exec python3 ${TOKEN_ENDPOINT_MODEL} "$@"` });
    mkdirSync(join(s.root, "var/lib/rancher/k3s/server/tls"), { recursive: true });
    writeFileSync(join(s.root, "var/lib/rancher/k3s/server/token"), `K10${CA_HASH}::server:${token}\n`);
    writeFileSync(join(s.root, SERVER_CA_FILE), "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n");
    if (active) {
      mkdirSync(join(s.root, "run/active"), { recursive: true });
      writeFileSync(join(s.root, "run/active/k3s"), "");
    }
    return s;
  };
  const passwordIn = (s: ReturnType<typeof tokenHost>) => readFileSync(join(s.root, "var/lib/rancher/k3s/server/token"), "utf8").trim().replace(/^K10[0-9a-f]*::server:/, "");

  it("the token fingerprint is salted and never contains the token", () => {
    const a = tokenFingerprint("salt-a", "secret-token");
    assert.notEqual(a, tokenFingerprint("salt-b", "secret-token"));
    assert.notEqual(a, tokenFingerprint("salt-a", "secret-token2"));
    assert.match(a, /^[0-9a-f]{64}$/);
  });

  it("token rotate: once, with the running token from the server's token file; a rerun or the same token does nothing", () => {
    const s = tokenHost("old-token");
    const script = renderTokenRotateScript(config, first, `K10${"f".repeat(64)}::server:new-token`);
    const r = s.run(script);
    assert.equal(r.status, 0, r.stderr);
    // K3s' endpoint authenticated the old token's password and rotated to the new one.
    assert.equal(passwordIn(s), "new-token");
    assert.match(s.calls(), new RegExp(`^token endpoint: rotated new-token-sha256=${createHash("sha256").update("new-token").digest("hex")}$`, "m"));
    assert.deepEqual([...new Set(s.calls().split("\n").filter((l) => l.startsWith("curl")))], ["curl -K -"], "curl's only arguments: read the configuration from stdin");
    assert.match(s.run(script).stdout, /the cluster already runs with this token/, "K3s wrote its token file: a rerun sees it");
    assert.equal(s.calls().split("\n").filter((l) => l.startsWith("token endpoint: rotated")).length, 1);
    // The marker alone (K3s restarted since with an older drop-in, say) also stops a second rotation.
    writeFileSync(join(s.root, "var/lib/rancher/k3s/server/token"), `K10${CA_HASH}::server:old-token\n`);
    assert.match(s.run(script).stdout, /already rotated to this token/);
    const same = tokenHost("new-token");
    assert.match(same.run(script).stdout, /the cluster already runs with this token/);
    // A cluster exists (token file) but K3s is stopped on the first server: skipping would spend
    // the trigger while every node restarts with a token the datastore does not know. It fails.
    const down = tokenHost("old-token", false);
    const stopped = down.run(script);
    assert.equal(stopped.status, 1);
    assert.match(stopped.stderr, /installed here .* but not running, so the token cannot be rotated; start k3s on this server and run pulumi up again/);
    assert.doesNotMatch(down.calls(), /curl|token endpoint/);
    assert.ok(!existsSync(join(down.root, "var/lib/k3s-platform/token-rotated")), "no marker: the next up retries");
    // Stopped but already on this token: nothing to do, no failure.
    assert.equal(tokenHost("new-token", false).run(script).status, 0);
    // No token file: no cluster here yet (a new cluster starts with the configured token).
    const fresh = tokenHost("old-token", false);
    rmSync(join(fresh.root, "var/lib/rancher/k3s/server/token"));
    assert.match(fresh.run(script).stdout, /K3s does not run here yet/);
  });

  it("token rotate: neither token is an argument of any process (every execve traced); K3s' refusal and a host without curl stop the step naming host and step, nothing rotated", () => {
    const s = tokenHost("old-secret-9f2a");
    const trace = join(s.dir, "execve.log");
    const r = spawnSync("strace", ["-f", "-qq", "-e", "trace=execve", "-s", "65536", "-o", trace, "bash", "-s"], {
      input: renderTokenRotateScript(config, first, "new-secret-71c3"),
      encoding: "utf8",
      env: { ...process.env, PATH: `${join(s.dir, "bin")}:${process.env.PATH}`, K3S_PLATFORM_ROOT: s.root },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(passwordIn(s), "new-secret-71c3", "rotated");
    const execs = readFileSync(trace, "utf8").split("\n").filter((l) => l.includes("execve("));
    assert.ok(execs.some((l) => /"curl", "-K", "-"\]/.test(l)), "curl ran, its configuration on stdin");
    for (const secret of ["old-secret-9f2a", "new-secret-71c3"]) assert.ok(!execs.some((l) => l.includes(secret)), `${secret} in no process's argv`);

    // K3s refuses the old token (the token file holds another password than the one sent): 403, named.
    const refused = tokenHost("old-token");
    const model = join(refused.dir, "bin", "curl");
    writeFileSync(model, readFileSync(model, "utf8").replace("K3SP_ROOT=", 'printf "%s" "K10abc::server:other" >"$K3S_PLATFORM_ROOT/var/lib/rancher/k3s/server/token"; K3SP_ROOT='));
    const no = refused.run(renderTokenRotateScript(config, first, "new-token"));
    assert.equal(no.status, 1);
    assert.match(no.stderr, /^rotate-token\[prod-server-1\]: K3s refused the token rotation \(HTTP 403\): the old token is not the one this server runs with; nothing was rotated$/m);
    assert.ok(!existsSync(join(refused.root, "var/lib/k3s-platform/token-rotated")), "no marker: the next up retries");

    // No curl on the host: refused before anything changes, naming host, step and why.
    const bare = tokenHost("old-token");
    const tools = join(bare.dir, "tools");
    mkdirSync(tools);
    for (const t of ["bash", "cat", "sha256sum", "cut", "mkdir", "dirname", "sleep"]) symlinkSync(execFileSync("bash", ["-c", `command -v ${t}`], { encoding: "utf8" }).trim(), join(tools, t));
    rmSync(join(bare.dir, "bin", "curl"));
    const noCurl = spawnSync("/bin/bash", ["-s"], { input: renderTokenRotateScript(config, first, "new-token"), encoding: "utf8", env: { PATH: `${join(bare.dir, "bin")}:${tools}`, K3S_PLATFORM_ROOT: bare.root } });
    assert.equal(noCurl.status, 1);
    assert.match(noCurl.stderr, /^rotate-token\[prod-server-1\]: curl is not installed on prod-server-1, which step token-rotate needs: K3s' token rotation request is sent with curl .* no token is ever on a command line; install curl there and run pulumi up again \(nothing was changed\)$/m);
    assert.equal(passwordIn(bare), "old-token", "nothing rotated");
  });

  it("token rotate: any token reaches K3s verbatim, never as shell", function () {
    // Each run spawns bash and a stand-in: seconds apiece on a loaded machine, so the budget is
    // the property's, not mocha's 60 s default (the injection property test does the same).
    this.timeout(600_000);
    fc.assert(
      // Control characters are refused (K3s' token file is one line); a bare token (not K10..., not a
      // bootstrap token) is its own password, `server:x` too (parseToken, rotation/token-request.ts).
      fc.property(fc.string({ minLength: 1, maxLength: 40 }).filter((t) => !/[\x00-\x1f\x7f]/.test(t) && !t.startsWith("K10") && !/^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(t) && t.trim() === t), (token) => {
        const s = tokenHost("old");
        const r = s.run(renderTokenRotateScript(config, first, token));
        assert.equal(r.status, 0, r.stderr);
        assert.equal(passwordIn(s), token);
      }),
      { numRuns: Number(process.env.K3SP_PROPERTY_RUNS ?? 25) },
    );
  });

  it("certificate rotation: one-shot steps, servers one after another, then agents; stop, rotate, start", () => {
    const steps = certificateRotationSteps(config, planCluster(config).nodes);
    assert.deepEqual(steps.map((s) => [s.name, s.dependsOn]), [
      ["prod-server-1-rotate-certificates", []],
      ["prod-server-2-rotate-certificates", ["prod-server-1-rotate-certificates"]],
      ["prod-server-3-rotate-certificates", ["prod-server-2-rotate-certificates"]],
      ["prod-agent-1-rotate-certificates", ["prod-server-3-rotate-certificates"]],
      ["prod-agent-2-rotate-certificates", ["prod-server-3-rotate-certificates"]],
      ["prod-agent-3-rotate-certificates", ["prod-server-3-rotate-certificates"]],
    ]);
    for (const s of steps) {
      assert.deepEqual(s.triggers, ["3"], "its own counter only");
      assert.equal(s.update, NO_OP_UPDATE);
    }
    assert.deepEqual(certificateRotationSteps(loadStackConfig(variant("prod", () => {})), planCluster(config).nodes), []);
    const s = sandbox({ systemctl: "exit 0", k3s: "exit 0" });
    const r = s.run(renderCertificateRotateScript(config.nodes[3]!));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(s.calls().trim().split("\n"), ["systemctl stop k3s-agent", "k3s certificate rotate", "systemctl start --no-block k3s-agent", "systemctl is-active --quiet k3s-agent"]);
    const failing = sandbox({ systemctl: "exit 0", k3s: "exit 1" });
    const f = failing.run(renderCertificateRotateScript(config.nodes[0]!));
    assert.equal(f.status, 1);
    assert.match(failing.calls(), /systemctl start --no-block k3s\n$/, "K3s is started again with its old certificates");
  });

  it("reads `k3s certificate check` in both formats; the check uses --output table only where the release has it", () => {
    const table = `FILENAME                    SUBJECT                     USAGES       EXPIRES                  RESIDUAL TIME   STATUS
--------                    -------                     ------       -------                  -------------   ------
client-kube-proxy.crt       system:kube-proxy           ClientAuth   Jun 09, 2026 10:17 UTC   1 year          OK
client-kube-proxy.crt       k3s-client-ca@1749464211    CertSign     Jun 07, 2035 10:16 UTC   10 years        OK
serving-kubelet.crt         ip-10-11-0-14               ServerAuth   Feb 01, 2026 08:05 UTC   1 year          WARNING`;
    const t = parseCertificateCheck(table);
    assert.equal(t.certificates.length, 3);
    assert.deepEqual(t.earliest, { file: "serving-kubelet.crt", subject: "ip-10-11-0-14", expires: "2026-02-01T08:05:00.000Z", status: "WARNING" });
    const text = `time="2026-09-08T18:17:37+08:00" level=info msg="Server detected, checking agent and server certificates"
time="2026-09-08T18:17:37+08:00" level=info msg="client-kube-apiserver.crt: certificate system:apiserver (ClientAuth) is ok, expires at 2027-09-08T08:45:21Z"
time="2026-09-08T18:17:37+08:00" level=warning msg="client-admin.crt: certificate system:admin will expire within 120 days at 2026-12-01T00:00:00Z"`;
    const l = parseCertificateCheck(text);
    assert.deepEqual(l.earliest, { file: "client-admin.crt", subject: "system:admin", expires: "2026-12-01T00:00:00.000Z", status: "WARNING" });
    assert.equal(l.certificates[0]!.subject, "system:apiserver");
    assert.match(renderCertificateCheckScript(loadStackConfig(variant("prod", (r) => Object.assign(r.k3s!, { version: "v1.31.4+k3s1", unsupportedReleaseReason: "test of an old line: certificate check output format" })))), /k3s certificate check 2>&1/);
    assert.match(renderCertificateCheckScript(loadStackConfig(variant("prod", (r) => Object.assign(r.k3s!, { version: "v1.33.1+k3s1", unsupportedReleaseReason: "test of an old line: certificate check output format" })))), /k3s certificate check --output table 2>&1/);
  });
});

describe("lifecycle scripts pass shellcheck and never pipe into an early-exit consumer", () => {
  it("every generated lifecycle script", () => {
    const config = loadStackConfig(variant("prod", (r) => {
      r.environment = "staging";
      r.certificates = { rotation: 1 };
      r.nodes[0]!.decommission = true;
      r.nodes[5]!.decommission = false;
    }));
    const scripts: string[] = [
      ...teardownCommands(config).flatMap((c) => [...(c.create === undefined ? [] : [c.create]), c.delete]),
      ...teardownPlans(config).flatMap((t) => [t.armScript, t.drainScript, t.uninstallScript]),
      renderInventoryScript(config),
      renderTokenRotateScript(config, config.nodes[1]!, "tok"),
      renderCertificateCheckScript(config),
      ...config.nodes.map(renderCertificateRotateScript),
      ...certificateRotationSteps(config, planCluster(config).nodes).map((s) => s.stdin),
      sh`set -euo pipefail\nROOT=""\nNODE=x\nfail() { exit 1; }\n${rejoinSnippet(config)}`.text,
      // Rebuild: the join-only guard and the forget steps.
      ...(() => {
        const rebuilt = loadStackConfig(variant("prod", (r) => {
          r.nodes[0]!.rebuild = 1;
          r.nodes[4]!.rebuild = "2026-11-30";
        }));
        return [sh`set -euo pipefail\nROOT=""\nNODE=x\nfail() { exit 1; }\n${rejoinSnippet(rebuilt)}`.text, ...forgetSteps(rebuilt).map((f) => f.stdin)];
      })(),
    ];
    const dir = mkdtempSync(join(tmpdir(), "k3sp-life-lint-"));
    const files = scripts.map((s, i) => {
      assert.doesNotMatch(s, EARLY_EXIT_PIPE, `script ${i}`);
      const path = join(dir, `s${i}.sh`);
      writeFileSync(path, s.startsWith("#!") ? s : `#!/usr/bin/env bash\n${s}`);
      return path;
    });
    const lint = spawnSync("shellcheck", ["--severity=style", ...files], { encoding: "utf8" });
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  });
});
