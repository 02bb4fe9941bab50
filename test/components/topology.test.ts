import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { SERVER_DB_DIR, sqliteGuard, sqliteHolderGuard } from "../../components/decommission/rejoin";
import { lifecycleLines } from "../../tools/preview-lifecycle";
import type { PreviewStep } from "../../tools/preview-markdown";
import { planNode } from "../../components/plan/node";
import { loadStackConfig, parseStackConfig } from "../../components/stack/load";
import { variant } from "../helpers/samples";

/** Topology changes (issue 23, op 4): a sqlite server becoming HA embedded etcd, and never back. */

const dev = (edit: Parameters<typeof variant>[1]) => variant("dev", edit);
const server = (name: string, host: string) => ({ name, host, role: "server" as const });

describe("topology: a single sqlite server becomes HA embedded etcd", () => {
  it("validation names the path: sqlite with more servers is refused, naming etcd in the same change; etcd with the new servers passes", () => {
    const grown = parseStackConfig(dev((r) => {
      r.k3s!.datastore = { type: "sqlite" };
      r.nodes.push(server("dev-server-2", "192.0.2.102"), server("dev-server-3", "192.0.2.103"));
    }));
    assert.ok(!grown.ok);
    const message = grown.issues.map((i) => `${i.path}: ${i.message}`).join("\n");
    assert.match(message, /k3s-platform:k3s\.datastore: sqlite supports a single server, but 3 nodes have role: server: to grow a sqlite server into an HA control plane, set k3s\.datastore\.type: etcd in this same change \(the server restarts with cluster-init and K3s converts its sqlite data to embedded etcd, then the new servers join one at a time/);
    const converted = parseStackConfig(dev((r) => {
      r.k3s!.datastore = { type: "etcd" };
      r.nodes.push(server("dev-server-2", "192.0.2.102"), server("dev-server-3", "192.0.2.103"));
    }));
    assert.ok(converted.ok, JSON.stringify(!converted.ok && converted.issues));
  });

  it("the conversion is the first server's config change: cluster-init appears (one restart), the others join it; a sqlite server carries the one-way guard instead of the rejoin probe", () => {
    const sqlite = loadStackConfig(dev((r) => (r.k3s!.datastore = { type: "sqlite" })));
    const etcd = loadStackConfig(dev((r) => {
      r.k3s!.datastore = { type: "etcd" };
      r.nodes.push(server("dev-server-2", "192.0.2.102"));
    }));
    const file = (p: ReturnType<typeof planNode>, name: string) => p.files.find((f) => f.name === name)!.content;
    const before = planNode(sqlite, sqlite.nodes[0]!);
    const after = planNode(etcd, etcd.nodes[0]!);
    assert.doesNotMatch(file(before, "config.yaml"), /cluster-init/);
    assert.match(file(after, "config.yaml"), /^cluster-init: true$/m);
    assert.notEqual(before.hashes.apply, after.hashes.apply, "the first server's apply runs (and restarts K3s)");
    assert.match(file(planNode(etcd, etcd.nodes.find((n) => n.name === "dev-server-2")!), "config.yaml"), /^server: https:\/\//m);
    assert.match(file(before, "apply.sh"), /K3s converts sqlite to embedded etcd, never back/);
    assert.doesNotMatch(file(after, "apply.sh"), /never back/);
  });

  it("the guard, run: a server with etcd data refuses sqlite before anything changes; a sqlite server passes", () => {
    const run = (withEtcd: boolean) => {
      const root = mkdtempSync(join(tmpdir(), "k3sp-topology-"));
      mkdirSync(join(root, SERVER_DB_DIR, withEtcd ? "etcd" : ""), { recursive: true });
      const script = `set -euo pipefail\nROOT=${JSON.stringify(root)}\nfail() { echo "apply[n]: $*" >&2; exit 1; }\n${sqliteGuard().text}\necho passed`;
      return spawnSync("bash", ["-c", script], { encoding: "utf8" });
    };
    const refused = run(true);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /apply\[n\]: this server runs embedded etcd \(\/var\/lib\/rancher\/k3s\/server\/db\/etcd exists\) and K3s does not convert etcd back to sqlite: keep k3s\.datastore\.type: etcd .*nothing was changed/);
    const passed = run(false);
    assert.equal(passed.status, 0, passed.stderr);
  });

  it("a new server listed above the sqlite server: that server's apply refuses before anything is placed, naming the first server and the fix; preview:md says it from the previous config", () => {
    const wrong = loadStackConfig(dev((r) => {
      r.k3s!.datastore = { type: "etcd" };
      r.nodes.unshift(server("dev-server-0", "192.0.2.100"));
      r.nodes.push(server("dev-server-3", "192.0.2.103"));
    }));
    const holder = wrong.nodes.find((n) => n.name !== "dev-server-0" && n.role === "server")!;
    const apply = planNode(wrong, holder).files.find((f) => f.name === "apply.sh")!.content;
    assert.ok(apply.includes(sqliteHolderGuard("dev-server-0").text), "the other servers' apply.sh carries the guard");
    const sqlite = loadStackConfig(dev((r) => (r.k3s!.datastore = { type: "sqlite" })));
    assert.doesNotMatch(planNode(sqlite, sqlite.nodes[0]!).files.find((f) => f.name === "apply.sh")!.content, /holds the cluster's sqlite data/, "not on a sqlite stack");

    const run = (db: "sqlite" | "converted" | "empty") => {
      const root = mkdtempSync(join(tmpdir(), "k3sp-topology-"));
      mkdirSync(join(root, SERVER_DB_DIR, db === "converted" ? "etcd" : ""), { recursive: true });
      if (db !== "empty") writeFileSync(join(root, SERVER_DB_DIR, "state.db"), "");
      const script = `set -euo pipefail\nROOT=${JSON.stringify(root)}\nfail() { echo "apply[n]: $*" >&2; exit 1; }\n${sqliteHolderGuard("dev-server-0").text}\necho passed`;
      return spawnSync("bash", ["-c", script], { encoding: "utf8" });
    };
    const refused = run("sqlite");
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /^apply\[n\]: this server holds the cluster's sqlite data \(\/var\/lib\/rancher\/k3s\/server\/db\/state\.db, no embedded etcd yet\), but dev-server-0 is the first server \(cluster-init\): .*list this server first in nodes, and if dev-server-0 started a new cluster of its own, remove K3s there \(k3s-uninstall\.sh\) before the next up .*this apply changed nothing here: K3s keeps running on its sqlite data$/m);
    assert.equal(run("converted").status, 0, "converted (etcd beside state.db): a server may be listed anywhere");
    assert.equal(run("empty").status, 0, "a new server");

    const before = loadStackConfig(dev((r) => (r.k3s!.datastore = { type: "sqlite" })));
    const cluster = (old: object, now: object): PreviewStep => ({ op: "update", urn: "urn:pulumi:dev::k3s-platform::k3s-platform:index:K3sCluster::dev", oldState: { inputs: { config: old } }, newState: { inputs: { config: now } } });
    assert.deepEqual(lifecycleLines([cluster(before, wrong)], "dev"), [
      `⚠️ sqlite → embedded etcd: ${holder.name} holds the sqlite data, but dev-server-0 is listed first (cluster-init): K3s converts the data only on the server started with cluster-init, so it would not be converted; list ${holder.name} first in nodes (docs/removing-and-replacing-nodes.md)`,
    ]);
    const right = loadStackConfig(dev((r) => {
      r.k3s!.datastore = { type: "etcd" };
      r.nodes.push(server("dev-server-0", "192.0.2.100"), server("dev-server-3", "192.0.2.103"));
    }));
    assert.deepEqual(lifecycleLines([cluster(before, right)], "dev"), [], "the sqlite server first: nothing said");
  });
});
