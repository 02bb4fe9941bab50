import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { CHURN_CHANGES, churnRow } from "../../bench/churn";
import { installEnv, renderNoProxyCarryOver } from "../../components/k3s/install";
import { raw } from "../../components/shell/sh";
import { loadStackConfig } from "../../components/stack/load";

/**
 * Issue 26's goals, on the churn table `npm run bench` prints (counts from the plans, not times):
 * adding or removing a node changes the K3s inputs of no other node, a tenant change touches no
 * host, a server-wide flag restarts the servers only, one at a time.
 */
describe("churn: what a change costs on the hosts (issue 26)", () => {
  const change = (name: string) => CHURN_CHANGES.find((c) => c.name === name)!;
  it("the covered noProxy row is one apply.sh keeps: no_proxy_equivalent(before's NO_PROXY, after's) holds on the host, so the count is an upper bound there", () => {
    const row = change("drop a covered noProxy");
    const [before, after] = [loadStackConfig(row.before(10)), loadStackConfig(row.after(10))];
    const node = after.nodes.at(-1)!;
    const [applied, planned] = [installEnv(before, node).NO_PROXY!, installEnv(after, node).NO_PROXY!];
    assert.notEqual(applied, planned);
    const carry = renderNoProxyCarryOver(after, node, raw("/dev/null")).shell.text;
    const functions = carry.slice(carry.indexOf("# applied_env"), carry.indexOf("# quoted V"));
    const run = (a: string, p: string) => spawnSync("bash", ["-c", `${functions}\nno_proxy_equivalent "$1" "$2"`, "_", a, p]).status;
    assert.equal(run(applied, planned), 0, "apply.sh keeps the host's value");
    assert.equal(run(planned, applied), 1, "the other way round (an entry added) is a real change");
  });

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

      it("drop a noProxy entry another covers: every node's K3s inputs change, only in NO_PROXY (apply.sh keeps the host's)", () => {
        const { churn: c } = churnRow(change("drop a covered noProxy"), nodes);
        assert.equal(c.restart.length, nodes);
        assert.deepEqual(c.noProxyOnly, c.restart);
      });

      it("a real K3s input change is not counted as NO_PROXY only", () => {
        for (const name of ["one agent's labels", "one server-wide flag"]) assert.deepEqual(churnRow(change(name), nodes).churn.noProxyOnly, [], name);
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
