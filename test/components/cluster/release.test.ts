import { strict as assert } from "node:assert";
import type { ResolvedConfig } from "../../../components/config/schema";
import { parseRelease, recordedChannel, renderReleaseScript } from "../../../components/k3s/release";
import { CLUSTER_CHILDREN } from "../../../components/names";
import { loadStackConfig } from "../../../components/stack/load";
import { upgradeBatches } from "../../../components/upgrade/render";
import { buildClusterWithStdout } from "../../helpers/cluster-mocks";
import type { Registered } from "../../helpers/pulumi-mocks";
import { variant } from "../../helpers/samples";

/**
 * Issue 28: a channel stack's release is the cluster's, resolved once (the k3s-release step) and
 * passed to every node's apply; a node added or rebuilt later installs it, not what the channel
 * serves by then. Under Pulumi mocks, the release step answering `stdout`.
 */
function build(config: ResolvedConfig, stdout: string) {
  return buildClusterWithStdout(config, { [`${config.environment}-${CLUSTER_CHILDREN.k3sRelease}`]: stdout });
}

const channelStack = () => loadStackConfig(variant("staging", (r) => Object.assign(r.k3s!, { version: undefined, channel: "stable" })));
const applies = (registered: Map<string, Registered>) => [...registered.values()].filter((r) => r.type === "command:remote:Command" && r.name.endsWith("-apply"));

describe("a channel stack's cluster release (issue 28)", function () {
  this.timeout(60_000);

  it("every node's apply installs the release the k3s-release step recorded; the step runs once per stack, before the first server's steps", async () => {
    const config = channelStack();
    const { registered, options } = await build(config, "stg-server-1: channel stable at https://update.k3s.io/v1-release/channels\nk3s-platform cluster release: v1.36.3+k3s1\n");
    const step = registered.get(`staging-${CLUSTER_CHILDREN.k3sRelease}`);
    assert.ok(step, "the k3s-release step is declared");
    assert.match(String(step.inputs.stdin), /curl -w '%\{url_effective\}' -L -s -S .*"\$CHANNEL_URL\/\$CHANNEL" -o \/dev\/null/);
    assert.deepEqual(options.get(step.name)?.ignoreChanges, ["connection", "create", "update", "stdin", "addPreviousOutputInEnv"], "never re-run: its stdout stays the release of the first up");
    const nodes = applies(registered);
    assert.equal(nodes.length, config.nodes.length);
    for (const apply of nodes) {
      assert.ok(String(apply.inputs.create).includes("env K3S_PLATFORM_CLUSTER_RELEASE=v1.36.3+k3s1 bash /var/lib/k3s-platform/staging/bundle.sh apply.sh"), `${apply.name}: ${String(apply.inputs.create)}`);
      assert.equal(apply.inputs.update, apply.inputs.create);
    }
    // The first server's own steps wait for it (it resolves before the first install).
    const firstStage = registered.get(`staging-${config.nodes[0]!.name}-stage`)!;
    assert.ok(firstStage.dependsOn.includes(step.name), firstStage.dependsOn.join(", "));
    // Issue 26: the agents' upgrade batches run at that release; each agent's preflight checks it.
    const batches = [...registered.values()].filter((r) => /-agent-batch-\d+-(drain|uncordon)$/.test(r.name));
    assert.equal(batches.length, 2 * upgradeBatches(config).length);
    assert.ok(batches.length > 0);
    for (const b of batches) assert.match(String(b.inputs.stdin), /^TARGET_VERSION=v1\.36\.3\+k3s1$/m, b.name);
    for (const agent of config.nodes.filter((n) => n.role === "agent")) {
      const preflight = registered.get(`staging-${agent.name}-preflight`)!;
      assert.ok(String(preflight.inputs.create).includes("env K3S_PLATFORM_CLUSTER_RELEASE=v1.36.3+k3s1 bash /var/lib/k3s-platform/staging/bundle.sh preflight.sh"), String(preflight.inputs.create));
    }
  });

  it("an unreadable record gives an empty release, which apply.sh refuses in preflight; a pinned stack has no step and an unchanged apply command", async () => {
    const unreadable = await build(channelStack(), "k3s-platform cluster release: latest\n");
    for (const apply of applies(unreadable.registered)) assert.ok(String(apply.inputs.create).includes("env K3S_PLATFORM_CLUSTER_RELEASE='' bash"), String(apply.inputs.create));
    const pinned = await build(loadStackConfig(variant("staging", () => {})), "");
    assert.equal(pinned.registered.get(`staging-${CLUSTER_CHILDREN.k3sRelease}`), undefined);
    for (const apply of applies(pinned.registered)) assert.doesNotMatch(String(apply.inputs.create), /CLUSTER_RELEASE/);
  });

  it("a k3s.channel changed after the release was recorded is warned about on every run, not silent; the release stays (review of issue 28)", async () => {
    const stable = channelStack();
    const latest = loadStackConfig(variant("staging", (r) => Object.assign(r.k3s!, { version: undefined, channel: "latest" })));
    const name = `staging-${CLUSTER_CHILDREN.k3sRelease}`;
    // Pulumi kept the first up's stdin (the step ignores every input): the script for channel stable.
    const firstUp = { [name]: { stdin: renderReleaseScript(stable, stable.nodes[0]!) } };
    const stdout = "stg-server-1: channel stable at https://update.k3s.io/v1-release/channels\nk3s-platform cluster release: v1.36.3+k3s1\n";
    const moved = await buildClusterWithStdout(latest, { [name]: stdout }, firstUp);
    const warning = await new Promise<string | undefined>((resolve) => moved.cluster.channelChange!.apply(resolve));
    assert.match(warning ?? "", /^k3s-platform:k3s\.channel: latest, but the cluster's release was recorded from channel stable .*this change has no effect; to move the cluster, set k3s\.version/);
    for (const apply of applies(moved.registered)) assert.ok(String(apply.inputs.create).includes("K3S_PLATFORM_CLUSTER_RELEASE=v1.36.3+k3s1 "), "the release stays");
    const same = await buildClusterWithStdout(stable, { [name]: stdout }, firstUp);
    assert.equal(await new Promise((resolve) => same.cluster.channelChange!.apply(resolve)), undefined);
    for (const channel of ["stable", "latest", "testing", "v1.31"]) assert.equal(recordedChannel(renderReleaseScript(loadStackConfig(variant("staging", (r) => Object.assign(r.k3s!, { version: undefined, channel }))), stable.nodes[0]!), undefined), channel);
  });

  it("parseRelease reads the release line only, and only a K3s release", () => {
    assert.equal(parseRelease("x\nk3s-platform cluster release: v1.31.4+k3s1\n"), "v1.31.4+k3s1");
    for (const bad of ["", "k3s-platform cluster release: v1.31.4", "k3s-platform cluster release: v1.31.4+k3s1; rm -rf /", "release: v1.31.4+k3s1"]) assert.equal(parseRelease(bad), undefined, bad);
  });
});
