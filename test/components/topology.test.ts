import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { DB_INFO_WITHOUT_ETCD, JOIN_DROPIN, SERVER_DB_DIR, rejoinSnippet, sqliteGuard, sqliteHolderGuard } from "../../components/decommission/rejoin";
import { lifecycleLines } from "../../tools/preview-lifecycle";
import type { PreviewStep } from "../../tools/preview-markdown";
import { planNode } from "../../components/plan/node";
import { loadStackConfig, parseStackConfig } from "../../components/stack/load";
import { variant } from "../helpers/samples";

/** Topology changes (issue 23, op 4): a sqlite server becoming HA embedded etcd, and never back. */

const dev = (edit: Parameters<typeof variant>[1]) => variant("dev", edit);
const server = (name: string, host: string) => ({ name, host, role: "server" as const });
/** sqlite -> etcd with a new server (dev-server-0) listed above the sqlite server (`holder`). */
const newServerFirst = () => {
  const wrong = loadStackConfig(dev((r) => {
    r.k3s!.datastore = { type: "etcd" };
    r.nodes.unshift(server("dev-server-0", "192.0.2.100"));
    r.nodes.push(server("dev-server-3", "192.0.2.103"));
  }));
  return { wrong, holder: wrong.nodes.find((n) => n.name !== "dev-server-0" && n.role === "server")! };
};

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
    const { wrong, holder } = newServerFirst();
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

  describe("a new server listed above the running sqlite server: its own apply refuses before K3s is installed there", () => {
    const { wrong, holder } = newServerFirst();
    const holderUrl = `https://${holder.host}:6443`;
    /**
     * The first server's rebuild guard, run with fake curl/wget on PATH that answer as K3s does
     * (decommission/rejoin.ts names the sources): the holder serves /cacerts, and /db/info with
     * `dbInfo` (403: embedded etcd's auth wrapper; 401: kube-apiserver, no etcd route). Every call
     * is recorded; the scratch root is what the guard sees as `/`.
     */
    const run = (dbInfo: number, tool: "curl" | "wget" = "curl") => {
      const dir = mkdtempSync(join(tmpdir(), "k3sp-topology-"));
      const bin = join(dir, "bin");
      const root = join(dir, "root");
      mkdirSync(bin);
      mkdirSync(root);
      const fakes: Record<string, string> = {
        curl: `case "$*" in *${holderUrl}/cacerts*) echo '-----BEGIN CERTIFICATE-----' ;; *${holderUrl}/db/info*) printf '%s' ${dbInfo} ;; *) exit 7 ;; esac`,
        // wget -S prints the response headers on stderr, indented; an HTTP error exits 8.
        wget: `case "$*" in *${holderUrl}/cacerts*) echo '-----BEGIN CERTIFICATE-----' ;; *${holderUrl}/db/info*) printf '  HTTP/1.1 %s X\\n  Content-Type: application/json\\n' ${dbInfo} >&2; exit 8 ;; *) exit 4 ;; esac`,
      };
      for (const [name, body] of Object.entries(fakes)) {
        writeFileSync(join(bin, name), `#!/usr/bin/env bash\necho "${name} $*" >>"${dir}/calls"\n${body}\n`);
        chmodSync(join(bin, name), 0o755);
      }
      const script = `set -euo pipefail\nROOT=${JSON.stringify(root)}\nNODE=dev-server-0\nfail() { echo "apply[$NODE]: $*" >&2; exit 1; }\n${tool === "wget" ? `# curl is not installed here (a real one may be on the test machine's PATH).\ncommand() { if [ "$1 $2" = "-v curl" ]; then return 1; fi; builtin command "$@"; }\n` : ""}${rejoinSnippet(wrong).text}\necho passed`;
      const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      const calls = existsSync(join(dir, "calls")) ? readFileSync(join(dir, "calls"), "utf8") : "";
      return { ...r, root, calls };
    };

    it(`the holder answers /db/info ${DB_INFO_WITHOUT_ETCD} (no embedded etcd): refused naming both nodes and the fix; no join drop-in`, () => {
      for (const tool of ["curl", "wget"] as const) {
        const r = run(401, tool);
        assert.equal(r.status, 1, `${tool}: ${r.stdout}`);
        assert.equal(
          r.stderr.trim(),
          `apply[dev-server-0]: ${holder.name} (${holderUrl}) runs K3s without embedded etcd (it answers /db/info with 401, as a sqlite server does: K3s routes /db/info only with embedded etcd), so dev-server-0, listed first in nodes with an empty data directory, cannot join it (K3s refuses a server joining a sqlite one: k3s-io/k3s#2463) and must not start a second cluster beside it. K3s converts sqlite data to embedded etcd only on the server that holds it, restarted with cluster-init: list ${holder.name} first in nodes (docs/removing-and-replacing-nodes.md, From one sqlite server to HA embedded etcd); nothing was installed or started on dev-server-0`,
          tool,
        );
        assert.ok(!existsSync(join(r.root, JOIN_DROPIN)), `${tool}: no join drop-in`);
        assert.match(r.calls, new RegExp(`${tool} .*${holderUrl}/db/info`), `${tool}: asked /db/info`);
        assert.doesNotMatch(r.calls, /-u |--user|token/, "no credentials asked for or sent");
      }
    });

    it("the peer runs embedded etcd (403 to an anonymous remote /db/info), or /db/info gives no answer: joins as before", () => {
      for (const [status, tool] of [[403, "curl"], [403, "wget"], [0, "curl"], [503, "curl"]] as const) {
        const r = run(status, tool);
        assert.equal(r.status, 0, `${status} ${tool}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`the data directory is empty and ${holderUrl} serves: joining the running cluster through it`));
        assert.equal(readFileSync(join(r.root, JOIN_DROPIN), "utf8").split("\n").slice(1).join("\n"), `server: ${holderUrl}\ncluster-init: false\n`);
      }
    });

    it("the guard runs before the K3s install in the first server's apply.sh, and a server with data asks nobody", () => {
      const apply = planNode(wrong, wrong.nodes[0]!).files.find((f) => f.name === "apply.sh")!.content;
      const guard = apply.indexOf("/db/info");
      assert.ok(guard > 0);
      assert.ok(guard < apply.indexOf("install-k3s.sh"), "refused before install-k3s.sh runs");
      assert.ok(guard < apply.search(/systemctl (re)?start/), "and before any start");
      const dir = mkdtempSync(join(tmpdir(), "k3sp-topology-"));
      mkdirSync(join(dir, SERVER_DB_DIR, "etcd"), { recursive: true });
      const r = spawnSync("bash", ["-c", `set -euo pipefail\nROOT=${JSON.stringify(dir)}\nNODE=n\nfail() { exit 1; }\ncurl() { exit 99; }\n${rejoinSnippet(wrong).text}`], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    });
  });
});
