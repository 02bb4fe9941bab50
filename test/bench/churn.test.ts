import { strict as assert } from "node:assert";
import { CHURN_CHANGES, churnRow } from "../../bench/churn";

/**
 * Issue 26's goals, on the churn table `npm run bench` prints (counts from the plans, not times):
 * adding or removing a node changes the K3s inputs of no other node, a tenant change touches no
 * host, a server-wide flag restarts the servers only, one at a time.
 */
describe("churn: what a change costs on the hosts (issue 26)", () => {
  const change = (name: string) => CHURN_CHANGES.find((c) => c.name === name)!;
  for (const nodes of [10, 100]) {
    describe(`prod sample at ${nodes} nodes`, () => {
      for (const name of ["add one agent", "remove one agent: arm", "remove one agent: delete"]) {
        it(`${name}: no other node's os-prep, apply or K3s; day-2 steps on the first server only`, () => {
          const { churn: c } = churnRow(change(name), nodes);
          assert.deepEqual([c.osPrep, c.apply, c.restart, c.bundle], [[], [], [], []]);
          assert.deepEqual(c.hosts, ["prod-server-1"], "the node list and labels are written in one place");
          assert.deepEqual(c.restartingSteps, []);
        });
      }

      it("without k3s.nodeNetworks, adding an agent re-runs every node's os-prep (its firewall lists each node) but restarts nothing", () => {
        const { churn: c } = churnRow(change("add one agent, no networks"), nodes);
        assert.equal(c.osPrep.length, nodes);
        assert.deepEqual([c.apply, c.restart], [[], []]);
      });

      it("one tenant quota: no host at all", () => {
        const { churn: c } = churnRow(change("one tenant quota"), nodes);
        assert.deepEqual([c.hosts, c.steps, c.osPrep, c.apply, c.restart], [[], [], [], [], []]);
      });

      it("one agent's labels: that agent only", () => {
        const { churn: c } = churnRow(change("one agent's labels"), nodes);
        const agent = `prod-agent-${nodes - 3}`;
        assert.deepEqual([c.apply, c.restart, c.osPrep], [[agent], [agent], []]);
      });

      it("one server-wide flag: the servers restart, one at a time; no agent", () => {
        const r = churnRow(change("one server-wide flag"), nodes);
        assert.deepEqual(r.churn.restart, ["prod-server-1", "prod-server-2", "prod-server-3"]);
        assert.deepEqual(r.restartedServers, r.churn.restart);
        assert.ok(r.serversOneAtATime);
        assert.deepEqual(r.churn.osPrep, []);
        assert.deepEqual(r.churn.restartingSteps, []);
      });
    });
  }
});
