import { strict as assert } from "node:assert";
import { prodWithNodes, withoutNodeNetworks } from "../../../bench/graph";
import { planCluster } from "../../../components/plan/node";
import { loadStackConfig } from "../../../components/stack/load";

/**
 * A list every node's scripts carry is computed once per cluster, not once per node (issue 26): a
 * `k3s.proxy.noProxy` naming every node address made planning quadratic (each node's NO_PROXY
 * rebuilt from it, for its install script and again for apply.sh). Counted as reads of the list's
 * entries while planning, not timed.
 */
describe("plan: lists naming every node are computed once per cluster (issue 26)", () => {
  /** Reads of noProxy's entries while planning a stack of `nodes` whose noProxy names every node. */
  function entryReads(nodes: number): number {
    const raw = withoutNodeNetworks(prodWithNodes(nodes));
    raw.k3s!.proxy = { httpProxy: "http://proxy.example.com:3128", containerdHttpProxy: "http://proxy.example.com:3128", noProxy: raw.nodes.map((n) => n.host) };
    const config = loadStackConfig(raw);
    let reads = 0;
    const p = config.k3s.proxy!;
    p.noProxy = new Proxy(p.noProxy, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    planCluster(config);
    return reads;
  }

  it("a noProxy naming every node: each entry read a fixed number of times, whatever the node count", () => {
    const [small, large] = [entryReads(20), entryReads(60)];
    assert.ok(small > 0, "the probe sees the reads");
    // Linear: three times the nodes, three times the entries, each read as often.
    assert.equal(large / 60, small / 20, `${small} reads at 20 nodes, ${large} at 60`);
  });
});
