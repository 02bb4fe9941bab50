import { strict as assert } from "node:assert";
import { prodWithNodes, withNoProxyNamingEveryNode, withoutNodeNetworks } from "../../bench/graph";
import { parseStackConfig } from "../../components/stack/load";

/**
 * The stacks `npm run bench` times must be valid at every size it runs (BENCH_LARGE 1,000 and
 * BENCH_PURE_LARGE 5,000 nodes): a refused stack stops the bench (issue 26; the pod-range check of
 * issue 27 refused the sample's /16 past 256 nodes).
 */
describe("bench stacks (bench/graph.ts)", () => {
  for (const [label, nodes, raw] of [
    ["with k3s.nodeNetworks", 5000, () => prodWithNodes(5000)],
    ["without k3s.nodeNetworks", 1000, () => withoutNodeNetworks(prodWithNodes(1000))],
    ["without k3s.nodeNetworks, noProxy naming every node", 1000, () => withNoProxyNamingEveryNode(withoutNodeNetworks(prodWithNodes(1000)))],
  ] as const) {
    it(`prod sample at ${nodes} nodes ${label} validates`, function () {
      this.timeout(60_000);
      const result = parseStackConfig(raw());
      assert.deepEqual(result.ok ? [] : result.issues, []);
      assert.equal(result.ok && result.config.nodes.length, nodes);
    });
  }
});
