import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ResolvedConfig } from "../../components/config/schema";
import { managedNodesManifest } from "../../components/decommission/nodes";
import { DESTROY_MARK_FILE, destroyPlan, renderDestroyArmScript, renderDestroyBeginScript, renderDestroyUninstallScript } from "../../components/destroy/render";
import { clusterSteps } from "../../components/operations";
import { destroy } from "../../components/operations/destroy";
import { planCluster, planNode } from "../../components/plan/node";
import { parseStackConfig, loadStackConfig } from "../../components/stack/load";
import { osPrepRoot } from "../helpers/os-prep-root";
import { programConfig, registeredGraph } from "../helpers/resource-graph";
import { fixtureConfig, REPO, variant } from "../helpers/samples";

/** `uninstallOnDestroy` (issue 23, op 2): the plan, the steps' order, and the scripts run in a sandbox. */

const armed = (edit: (r: Parameters<Parameters<typeof variant>[1]>[0]) => void = () => {}) =>
  loadStackConfig(variant("prod", (r) => {
    r.uninstallOnDestroy = true;
    edit(r);
  }));

/** The order the engine deletes `steps` in: dependents (their `after`) before what they wait for. */
function deleteOrder(steps: Array<{ name: string; after: string[] }>): string[] {
  const order: string[] = [];
  const visit = (name: string) => {
    if (order.includes(name)) return;
    for (const s of steps) if (s.after.includes(name)) visit(s.name);
    order.push(name);
  };
  for (const s of steps) visit(s.name);
  return order;
}

describe("uninstallOnDestroy: the plan and the steps", () => {
  it("is off unless set: no step, and the managed-node list carries no key", () => {
    const config = loadStackConfig(variant("prod", () => {}));
    assert.equal(destroyPlan(config), undefined);
    assert.deepEqual(destroy.steps(config, planCluster(config)), []);
    assert.ok(!("uninstallOnDestroy" in (JSON.parse(managedNodesManifest(config)) as { data: object }).data));
  });

  it("a typed setting: a string is refused naming the key", () => {
    const r = parseStackConfig(variant("prod", (raw) => ((raw as Record<string, unknown>).uninstallOnDestroy = "yes")));
    assert.ok(!r.ok);
    assert.match(r.issues.map((i) => `${i.path}: ${i.message}`).join("\n"), /uninstallOnDestroy/);
  });

  it("the engine runs destroy-begin, then agents, the other servers (last first), the first server last; one at a time; an armed entry keeps its own teardown", () => {
    const config = armed((r) => ((r.nodes[4] as { decommission?: boolean }).decommission = true));
    const steps = destroy.steps(config, planCluster(config));
    assert.deepEqual(deleteOrder(steps), [
      "destroy-begin",
      "prod-agent-1-destroy-uninstall",
      "prod-agent-3-destroy-uninstall",
      "prod-server-3-destroy-uninstall",
      "prod-server-2-destroy-uninstall",
      "prod-server-1-destroy-uninstall",
    ]);
    for (const s of steps) {
      assert.equal(s.runs, "on-delete", s.name);
      if (s.name !== "destroy-begin") assert.ok(s.create === undefined && s.update === undefined, `${s.name}: an up never reaches the node`);
    }
    assert.deepEqual(steps.find((s) => s.name === "destroy-begin")!.after, ["prod-agent-1-destroy-uninstall", "prod-server-1-apply"]);
    // Declared in the one run order with every other step (no cycle, names resolve).
    const names = clusterSteps(config, planCluster(config)).map((s) => s.name);
    assert.ok(names.indexOf("prod-server-1-destroy-uninstall") < names.indexOf("destroy-begin"));
    assert.equal(JSON.parse(managedNodesManifest(config)).data.uninstallOnDestroy, "true");
  });

  it("pulumi destroy runs every armed entry's own teardown before destroy-begin, so no removal overlaps the destroy's uninstalls (two servers never leave at once)", () => {
    const check = (config: ResolvedConfig) => {
      const steps = clusterSteps(config, planCluster(config));
      // The engine deletes a resource before everything it depends on, and only then: a teardown
      // that (through its after) depends on destroy-begin is deleted (runs) before it.
      const waitsFor = (name: string, seen = new Set<string>()): Set<string> => {
        for (const a of steps.find((s) => s.name === name)?.after ?? []) if (!seen.has(a)) (seen.add(a), waitsFor(a, seen));
        return seen;
      };
      const teardowns = steps.filter((s) => s.operation === "decommission").map((s) => s.name);
      assert.ok(teardowns.length >= 2, "an armed entry: a drain and an uninstall");
      for (const t of teardowns) assert.ok(waitsFor(t).has("destroy-begin"), `${t} is deleted before destroy-begin (it waits for: ${[...waitsFor(t)].join(", ")})`);
    };
    check(armed((r) => ((r.nodes[4] as { decommission?: boolean }).decommission = true)));
    check(fixtureConfig("topology"));
  });
});

describe("protect: pulumi destroy on prod needs a config change first (issue 23)", () => {
  const guardOf = async (edit: Parameters<typeof variant>[1], env: "prod" | "dev" = "prod") => {
    const config = loadStackConfig(variant(env, edit));
    const graph = await registeredGraph({ program: programConfig(config), stack: config.environment });
    return { graph, guard: graph.find((r) => r.type === "k3s-platform:index:DestroyGuard") };
  };
  it("prod: one protected guard that depends on the cluster and every in-cluster component (so on every resource under them); nothing else protected", async () => {
    const { graph, guard } = await guardOf(() => {});
    assert.ok(guard, "declared in prod");
    assert.equal(guard.name, "prod-destroy-guard");
    assert.deepEqual(guard.options, { protect: true });
    assert.deepEqual([...guard.dependsOn].sort(), ["prod", "prod-dns", "prod-k8s", "prod-runtimes", "prod-tenants"]);
    assert.deepEqual(graph.filter((r) => r.options.protect === true).map((r) => r.name), ["prod-destroy-guard"], "day-2 replacements and removals stay possible");
  });
  it("protect: false keeps the guard declared, unprotected (the engine must record it before destroy); dev has none unless it asks", async () => {
    assert.deepEqual((await guardOf((r) => (r.protect = false))).guard?.options, { protect: false });
    assert.equal((await guardOf(() => {}, "dev")).guard, undefined);
    assert.deepEqual((await guardOf((r) => (r.protect = true), "dev")).guard?.options, { protect: true });
  });
});

describe("uninstallOnDestroy: the scripts, run in a sandbox", function () {
  this.timeout(120_000);
  const config = armed();
  const plan = destroyPlan(config)!;
  const node = (name: string) => config.nodes.find((n) => n.name === name)!;

  /** A fake `k3s` (test-specific answers first) and the uninstallers under ROOT, recording calls. */
  function sandbox(k3s: string, role: "server" | "agent" = "server") {
    const dir = mkdtempSync(join(tmpdir(), "k3sp-destroy-"));
    const bin = join(dir, "bin");
    const root = join(dir, "root");
    mkdirSync(bin);
    mkdirSync(root);
    writeFileSync(join(bin, "k3s"), `#!/usr/bin/env bash\necho "k3s $*" >>"${dir}/calls"\n${k3s}\nexit 0\n`);
    chmodSync(join(bin, "k3s"), 0o755);
    // prod is air-gapped with the default binaryPath: the uninstallers sit next to /usr/local/bin/k3s.
    // The role's uninstaller, as the install script writes it (install.sh create_uninstall).
    for (const u of [role === "server" ? "k3s-uninstall.sh" : "k3s-agent-uninstall.sh"]) {
      const path = join(root, "usr/local/bin", u);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `#!/bin/sh\necho "${u}" >>"${dir}/calls"\n`);
      chmodSync(path, 0o755);
    }
    const run = (script: string) => {
      const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, K3S_PLATFORM_ROOT: root } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const calls = () => (existsSync(join(dir, "calls")) ? readFileSync(join(dir, "calls"), "utf8").trim().split("\n").filter(Boolean) : []);
    return { dir, root, run, calls };
  }
  const nodesRows = `[ "$2 $3" = "get nodes" ] && { printf 'prod-server-1 <none>\\nprod-agent-1 true\\n'; exit 0; }`;

  it("destroy-begin marks every Node and the first server when the cluster's list says true; otherwise (an up turned it off) marks nothing", () => {
    const names = `[ "$2 $3" = "get nodes" ] && { printf 'prod-server-1\\nprod-agent-1\\n'; exit 0; }`;
    const on = sandbox(`[ "$2 $3" = "get configmap" ] && { printf true; exit 0; }\n${names}`);
    const r = on.run(renderDestroyBeginScript(plan.first));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(on.calls().filter((c) => /annotate/.test(c)), [
      "k3s kubectl annotate node prod-server-1 --overwrite k3s-platform.io/destroy=true",
      "k3s kubectl annotate node prod-agent-1 --overwrite k3s-platform.io/destroy=true",
    ]);
    assert.ok(existsSync(join(on.root, DESTROY_MARK_FILE)));
    for (const value of ["false", ""]) {
      const off = sandbox(`[ "$2 $3" = "get configmap" ] && { printf '%s' ${JSON.stringify(value)}; exit 0; }\n${names}`);
      const o = off.run(renderDestroyBeginScript(plan.first));
      assert.equal(o.status, 0, o.stderr);
      assert.match(o.stdout, /not a destroy, nothing marked/);
      assert.deepEqual(off.calls().filter((c) => /annotate/.test(c)), []);
      assert.ok(!existsSync(join(off.root, DESTROY_MARK_FILE)));
    }
    const down = sandbox(`[ "$2 $3" = "get configmap" ] && { echo 'Unable to connect to the server' >&2; exit 1; }`);
    const d = down.run(renderDestroyBeginScript(plan.first));
    assert.equal(d.status, 1);
    assert.match(d.stderr, /destroy\[prod-server-1\]: cannot read k3s-platform-managed-nodes .*nothing was uninstalled/);
  });

  it("every destroy script passes shellcheck (style) and pipes into no early-exit consumer", () => {
    const dir = mkdtempSync(join(tmpdir(), "k3sp-destroy-sc-"));
    const scripts = [renderDestroyArmScript(plan.first), renderDestroyBeginScript(plan.first), ...plan.order.map((n) => renderDestroyUninstallScript(config, n, plan.first))];
    const paths = scripts.map((text, i) => {
      const path = join(dir, `s${i}.sh`);
      writeFileSync(path, text);
      return path;
    });
    const lint = spawnSync("shellcheck", ["--severity=style", ...paths], { encoding: "utf8" });
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    for (const text of scripts) assert.doesNotMatch(text, /\|\s*(grep\s+-q|head\b)/);
  });

  it("destroy-begin's create (an up) clears marks an interrupted destroy left, and changes nothing else", () => {
    const s = sandbox(nodesRows);
    mkdirSync(dirname(join(s.root, DESTROY_MARK_FILE)), { recursive: true });
    writeFileSync(join(s.root, DESTROY_MARK_FILE), "");
    const r = s.run(renderDestroyArmScript(plan.first));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(s.calls().filter((c) => !/get nodes/.test(c)), ["k3s kubectl annotate node prod-agent-1 k3s-platform.io/destroy-"]);
    assert.ok(!existsSync(join(s.root, DESTROY_MARK_FILE)));
  });

  it("an agent uninstalls only when its Node is marked (read with the kubelet's kubeconfig); unmarked: K3s stays; unreadable: fails naming it, nothing run", () => {
    const script = renderDestroyUninstallScript(config, node("prod-agent-1"), plan.first);
    const marked = sandbox(`[ "$2 $3" = "get node" ] && { echo true; exit 0; }`, "agent");
    const r = marked.run(script);
    assert.equal(r.status, 0, r.stderr);
    assert.match(marked.calls()[0]!, /^k3s kubectl get node prod-agent-1 --no-headers -o custom-columns=MARK:\.metadata\.annotations\.k3s-platform\\\.io\/destroy --kubeconfig=\/var\/lib\/rancher\/k3s\/agent\/kubelet\.kubeconfig$/);
    assert.deepEqual(marked.calls().slice(1), ["k3s-agent-uninstall.sh"]);
    assert.match(r.stdout, /K3s uninstalled/);
    for (const answer of ["echo '<none>'", `echo 'Error from server (NotFound): nodes "prod-agent-1" not found' >&2; exit 1`]) {
      const unmarked = sandbox(`[ "$2 $3" = "get node" ] && { ${answer}; }`);
      const u = unmarked.run(script);
      assert.equal(u.status, 0, u.stderr);
      assert.match(u.stdout, /not marked by destroy-begin .*K3s stays installed/);
      assert.ok(!unmarked.calls().some((c) => /uninstall/.test(c)));
    }
    const broken = sandbox(`[ "$2 $3" = "get node" ] && { echo 'Unable to connect to the server' >&2; exit 1; }`);
    const b = broken.run(script);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /destroy\[prod-agent-1\]: cannot read Node prod-agent-1: Unable to connect .*nothing was changed/);
    assert.ok(!broken.calls().some((c) => /uninstall/.test(c)));
  });

  it("a server other than the first deletes its own Node through the first server (its etcd member goes) before it uninstalls; the first server goes on its own mark", () => {
    const s = sandbox(`[ "$2 $3" = "get node" ] && { echo true; exit 0; }`);
    const r = s.run(renderDestroyUninstallScript(config, node("prod-server-2"), plan.first));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(s.calls().slice(1), ["k3s kubectl delete node prod-server-2 --wait=true --timeout=300s --server=https://203.0.113.11:6443", "k3s-uninstall.sh"]);
    assert.ok(existsSync(join(s.root, DESTROY_MARK_FILE)) === false, "the node's own mark goes with k3s-platform's state");
    // Resumed after a failure past the Node's deletion (the uninstall failed): its own mark decides.
    const resumed = sandbox(`[ "$2 $3" = "get node" ] && { echo 'Error from server (NotFound): nodes "prod-server-2" not found' >&2; exit 1; }
[ "$2 $3" = "delete node" ] && { echo 'Error from server (NotFound): nodes "prod-server-2" not found' >&2; exit 1; }`);
    mkdirSync(dirname(join(resumed.root, DESTROY_MARK_FILE)), { recursive: true });
    writeFileSync(join(resumed.root, DESTROY_MARK_FILE), "");
    const again = resumed.run(renderDestroyUninstallScript(config, node("prod-server-2"), plan.first));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Node prod-server-2 is gone already/);
    assert.deepEqual(resumed.calls().filter((c) => !/kubectl/.test(c)), ["k3s-uninstall.sh"]);
    const first = renderDestroyUninstallScript(config, plan.first, plan.first);
    const unmarked = sandbox("");
    assert.match(unmarked.run(first).stdout, /not marked by destroy-begin/);
    assert.deepEqual(unmarked.calls(), []);
    const markedFirst = sandbox("");
    mkdirSync(dirname(join(markedFirst.root, DESTROY_MARK_FILE)), { recursive: true });
    writeFileSync(join(markedFirst.root, DESTROY_MARK_FILE), "");
    assert.equal(markedFirst.run(first).status, 0);
    assert.deepEqual(markedFirst.calls(), ["k3s-uninstall.sh"], "no kubectl: the API may be gone with the others");
    assert.ok(!existsSync(join(markedFirst.root, "var/lib/k3s-platform")), "k3s-platform state removed");
  });

  describe("the firewall rules os-prep opened are removed; a rule it did not open stays", function () {
    const STUBS = join(REPO, "test", "helpers", "stubs");
    const dual = fixtureConfig("dualstack");
    const ds = { ...dual, uninstallOnDestroy: true } as ResolvedConfig;
    const first = destroyPlan(ds)!.first;
    const scratch = mkdtempSync(join(tmpdir(), "k3sp-destroy-fw-"));
    after(() => rmSync(scratch, { recursive: true, force: true }));
    const run = (root: string, script: string) => {
      const path = join(root, `${Math.random().toString(36).slice(2)}.sh`);
      writeFileSync(path, script);
      const r = spawnSync("bash", [path], { encoding: "utf8", env: { ...process.env, K3S_PLATFORM_ROOT: root, STUB_LOG: join(root, "stub.log"), PATH: `${STUBS}:${process.env.PATH}` } });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const prepared = (active: "firewalld" | "ufw") => {
      const root = osPrepRoot(scratch, active, active === "ufw" ? "IPV6=yes\n" : undefined);
      const prep = run(root, planNode(dual, first).files.find((f) => f.name === "os-prep.sh")!.content);
      assert.equal(prep.status, 0, prep.out);
      mkdirSync(dirname(join(root, DESTROY_MARK_FILE)), { recursive: true });
      writeFileSync(join(root, DESTROY_MARK_FILE), "");
      return root;
    };
    for (const [active, file, foreign] of [
      ["firewalld", "fw/rules", "port 22/tcp"],
      ["ufw", "ufw/rules", "22/tcp                     ALLOW       Anywhere"],
    ] as const) {
      it(`${active}: every rule os-prep added goes, the operator's own stays; a second run changes nothing`, () => {
        const root = prepared(active);
        const rulesPath = join(root, file);
        assert.ok(readFileSync(rulesPath, "utf8").trim().split("\n").length > 5, "os-prep opened rules");
        writeFileSync(rulesPath, `${readFileSync(rulesPath, "utf8")}${foreign}\n`);
        // A source an earlier config listed, still in os-prep's record (issue 26): it goes too.
        const recordPath = join(root, "var/lib/k3s-platform/firewall-sources");
        const dropped = active === "firewalld" ? 'rich rule family="ipv4" source address="198.18.0.0/15" port port="10250" protocol="tcp" accept' : `${"10250/tcp".padEnd(26)} ALLOW       198.18.0.0/15`;
        writeFileSync(rulesPath, `${readFileSync(rulesPath, "utf8")}${dropped}\n`);
        writeFileSync(recordPath, `${readFileSync(recordPath, "utf8")}${active} 10250 tcp 198.18.0.0/15\n`);
        const script = renderDestroyUninstallScript(ds, first, first);
        const r = run(root, script);
        assert.equal(r.status, 0, r.out);
        assert.deepEqual(readFileSync(rulesPath, "utf8").trim().split("\n"), [foreign]);
        assert.ok(!existsSync(recordPath), "the record goes with the rules");
        mkdirSync(dirname(join(root, DESTROY_MARK_FILE)), { recursive: true });
        writeFileSync(join(root, DESTROY_MARK_FILE), "");
        const again = run(root, script);
        assert.equal(again.status, 0, again.out);
        assert.doesNotMatch(again.out, /closed|removed [0-9]|removed from|no longer trusts/);
      });
    }
  });
});
