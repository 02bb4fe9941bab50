import { strict as assert } from "node:assert";
import { join } from "../../../components/operations/join";
import { day2, sample, stepsOf } from "./helpers";

describe("operation join", () => {
  it("servers in config order, each after the one before; agents after their batch's drain (pinned version)", () => {
    const config = day2();
    const { steps } = stepsOf(join, config);
    const managed = config.nodes.filter((n) => n.decommission !== true);
    const servers = managed.filter((n) => n.role === "server").map((n) => n.name);
    assert.deepEqual(steps.map((s) => s.name), [...servers, ...managed.filter((n) => n.role === "agent").map((n) => n.name)]);
    servers.forEach((s, i) => assert.deepEqual(steps[i]!.after, i === 0 ? [] : [`${servers[i - 1]}-apply`]));
    // maxUnavailable 1: each agent is its own batch.
    assert.deepEqual(steps.slice(servers.length).map((s) => s.after), [["agent-batch-1-drain"], ["agent-batch-2-drain"]]);
    assert.ok(steps.every((s) => s.runs === "node" && s.restartsK3s));
  });

  it("a channel stack's agents join after their batch's drain, as a pinned stack's (issue 26)", () => {
    const { steps } = stepsOf(join, sample("staging", (r) => ((r.k3s!.version = undefined), (r.k3s!.channel = "stable"), (r.upgrade = { maxUnavailable: 1 }))));
    assert.deepEqual(steps.filter((s) => s.host.role === "agent").map((s) => s.after), [["agent-batch-1-drain"], ["agent-batch-2-drain"]]);
  });
});
