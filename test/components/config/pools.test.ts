import { strict as assert } from "node:assert";
import { join } from "node:path";
import { parse } from "yaml";
import { readStackFile } from "../../../components/config/stack-file";
import { mergePoolValue } from "../../../components/config/pools";
import type { StackInput } from "../../../components/config/schema";
import { parseStackConfig } from "../../../components/stack/load";
import { planNode } from "../../../components/plan/node";
import { ENVS, REPO, sampleConfig, sampleRaw, variant } from "../../helpers/samples";

const POOLS_FIXTURE = join(REPO, "test", "fixtures", "pools", "Pulumi.pools.yaml");

function parsed(raw: unknown) {
  const r = parseStackConfig(raw);
  assert.ok(r.ok, r.ok ? "" : r.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return r.config;
}

function issues(raw: unknown): string[] {
  const r = parseStackConfig(raw);
  assert.equal(r.ok, false, "expected the config to be refused");
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}

type Node = StackInput["nodes"][number];

/** dev with its agent moved into a pool `apps` holding `pool`, the agent keeping `own`. */
function devPooled(pool: Record<string, unknown>, own: Partial<Node> & Record<string, unknown> = {}): StackInput {
  return variant("dev", (raw) => {
    const agent = raw.nodes[1]!;
    (raw as Record<string, unknown>).pools = { apps: pool };
    raw.nodes[1] = { name: agent.name, host: agent.host, pool: "apps", ...own } as Node;
  });
}

describe("node pools (issue 27)", () => {
  it("a 50-agent stack file written with pools validates and resolves to the same nodes as written out", () => {
    const file = readStackFile(POOLS_FIXTURE);
    const pooled = parsed(file.raw);
    assert.equal(pooled.nodes.length, 53);
    assert.equal(pooled.nodes.filter((n) => n.role === "agent").length, 50);
    // The same cluster written node by node, from the documented merge rules, not from the output.
    const raw = structuredClone(file.raw) as Record<string, unknown> & { nodes: Array<Record<string, unknown>> };
    const pools = raw.pools as Record<string, Record<string, unknown>>;
    delete raw.pools;
    raw.nodes = raw.nodes.map(({ pool, ...node }) => {
      const shared = pools[pool as string]!;
      const out: Record<string, unknown> = { ...shared, ...node };
      if (node.labels) out.labels = { ...(shared.labels as object), ...(node.labels as object) };
      return out;
    });
    const expanded = parsed(raw);
    assert.deepEqual(pooled, expanded);
    assert.ok(!("pools" in pooled), "pools are resolved away");
    assert.ok(pooled.nodes.every((n) => n.pool === undefined), "nodes keep no pool name: converting a stack file to pools changes nothing on any resource");
    const agent50 = pooled.nodes.find((n) => n.name === "agent-50")!;
    assert.deepEqual(agent50.labels, { "node-role.kubernetes.io/worker": "true", "example.com/tier": "apps", "topology.kubernetes.io/zone": "b" });
    assert.equal(agent50.ssh.port, 2222);
  });

  it("a stack file without pools parses exactly as before (no pools key, no pool on any node)", () => {
    for (const env of ENVS) {
      const config = sampleConfig(env);
      assert.ok(!("pools" in config), env);
      assert.ok(config.nodes.every((n) => !("pool" in n) && !("kubelet" in n)), env);
    }
  });

  it("merge rules: maps merge key by key (node wins), lists and scalars are replaced", () => {
    const config = parsed(
      devPooled(
        {
          role: "agent",
          labels: { "example.com/tier": "apps", "example.com/disk": "ssd" },
          taints: ["dedicated=apps:NoSchedule", "example.com/gpu:NoSchedule"],
          ssh: { user: "pool-user", port: 2200 },
          kubelet: { maxPods: 150, systemReserved: { cpu: "1", memory: "1Gi" } },
          raspberryPi: true,
        },
        {
          labels: { "example.com/disk": "nvme" },
          taints: ["dedicated=batch:NoSchedule"],
          ssh: { port: 2201 },
          kubelet: { systemReserved: { memory: "3Gi" } },
          raspberryPi: false,
        },
      ),
    );
    const node = config.nodes[1]!;
    assert.equal(node.role, "agent");
    assert.deepEqual(node.labels, { "example.com/tier": "apps", "example.com/disk": "nvme" });
    assert.deepEqual(node.taints, ["dedicated=batch:NoSchedule"]);
    assert.deepEqual(node.ssh, { user: "pool-user", port: 2201 });
    assert.deepEqual(node.kubelet, { maxPods: 150, systemReserved: { cpu: "1", memory: "3Gi" } });
    assert.equal(node.raspberryPi, false);
    // An empty list is a value: it drops the pool's taints.
    assert.deepEqual(parsed(devPooled({ role: "agent", taints: ["a=b:NoSchedule"] }, { taints: [] })).nodes[1]!.taints, []);
    assert.deepEqual(mergePoolValue({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: 3 }, l: [3] }), { a: { b: 1, c: 3 }, l: [3] });
  });

  it("a node's kubelet settings (from its pool) render over k3s.kubelet on that node only", () => {
    const config = parsed(devPooled({ role: "agent", kubelet: { maxPods: 180, kubeReserved: { cpu: "250m" } } }));
    const kubeletArgs = (i: number) => (parse(planNode(config, config.nodes[i]!).files.find((f) => f.name === "config.yaml")!.content) as Record<string, string[]>)["kubelet-arg"];
    assert.ok(kubeletArgs(1).includes("max-pods=180"));
    assert.ok(kubeletArgs(1).includes("kube-reserved=cpu=250m"));
    assert.ok(!kubeletArgs(0).some((a) => a.startsWith("max-pods=")), "the server is not in the pool");
  });

  it("a bad value in a pool is reported once, at the pool's path, naming the nodes that inherit it", () => {
    const raw = variant("dev", (r) => {
      (r as Record<string, unknown>).pools = { apps: { role: "agent", labels: { "bad key!": "x" } } };
      r.nodes.push({ name: "dev-agent-2", host: "192.0.2.21", pool: "apps" } as Node);
      r.nodes.push({ name: "dev-agent-3", host: "192.0.2.22", pool: "apps" } as Node);
    });
    const found = issues(raw);
    const atPool = found.filter((i) => i.startsWith('k3s-platform:pools.apps.labels["bad key!"]'));
    assert.equal(atPool.length, 1, found.join("\n"));
    assert.match(atPool[0]!, /not a valid label key .*inherited by nodes dev-agent-2, dev-agent-3/);
    assert.ok(!found.some((i) => i.startsWith("k3s-platform:nodes")), found.join("\n"));
  });

  it("a pool cannot carry per-host settings (a host key, a name)", () => {
    const found = issues(devPooled({ role: "agent", ssh: { hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMuI0vATPBWjGt10czbCiQYLg/ftrObRvUd/S8r4p4pw" }, host: "192.0.2.99" }));
    assert.ok(found.some((i) => /^k3s-platform:pools\.apps\.ssh: unknown key\(s\): hostKey/.test(i)), found.join("\n"));
    assert.ok(found.some((i) => /^k3s-platform:pools\.apps: unknown key\(s\): host/.test(i)), found.join("\n"));
  });

  it("a cross-field problem in an inherited value names the node and the pool", () => {
    const found = issues(devPooled({ role: "agent", labels: { "kubernetes.io/role": "x" } }));
    assert.ok(found.some((i) => i.startsWith('k3s-platform:nodes[1] (dev-agent-1, from pools.apps).labels["kubernetes.io/role"]: labels in the kubernetes.io')), found.join("\n"));
    // The node's own value names the node only.
    const own = issues(devPooled({ role: "agent" }, { labels: { "kubernetes.io/role": "x" } }));
    assert.ok(own.some((i) => i.startsWith('k3s-platform:nodes[1] (dev-agent-1).labels["kubernetes.io/role"]')), own.join("\n"));
  });

  it("a node naming a pool that does not exist is refused with the pools there are", () => {
    const raw = devPooled({ role: "agent" });
    (raw.nodes[1] as Record<string, unknown>).pool = "aps";
    const found = issues(raw);
    assert.ok(found.some((i) => i === 'k3s-platform:nodes[1] (dev-agent-1).pool: no pool "aps" in k3s-platform:pools (pools: apps) (did you mean apps?)'), found.join("\n"));
    // Without role in the pool or the node, the node's role is what is missing.
    const noRole = issues(devPooled({ labels: {} }));
    assert.ok(noRole.some((i) => i.startsWith("k3s-platform:nodes[1] (dev-agent-1).role:")), noRole.join("\n"));
  });

  it("the pooled sample's nodes render like nodes written out (same plan)", () => {
    const file = readStackFile(POOLS_FIXTURE);
    const config = parsed(file.raw);
    const agent = config.nodes.find((n) => n.name === "agent-7")!;
    const flags = parse(planNode(config, agent).files.find((f) => f.name === "config.yaml")!.content) as Record<string, unknown>;
    assert.deepEqual(flags["node-label"], ["example.com/tier=apps"]);
    assert.ok((flags["kubelet-arg"] as string[]).includes("system-reserved=cpu=500m,memory=2Gi"));
    assert.ok((flags["kubelet-arg"] as string[]).includes("max-pods=200"));
    assert.equal(sampleRaw("dev").nodes.length, 2);
  });
});
