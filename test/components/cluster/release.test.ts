import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "../../../components/cluster/component";
import type { ResolvedConfig } from "../../../components/config/schema";
import { parseRelease } from "../../../components/k3s/release";
import { CLUSTER_CHILDREN } from "../../../components/names";
import { loadStackConfig } from "../../../components/stack/load";
import { installMocks, mockId, mockState, Registered, unwrapSecrets } from "../../helpers/pulumi-mocks";
import { variant } from "../../helpers/samples";

/**
 * Issue 28: a channel stack's release is the cluster's, resolved once (the k3s-release step) and
 * passed to every node's apply; a node added or rebuilt later installs it, not what the channel
 * serves by then. Under Pulumi mocks, the release step answering `stdout`.
 */
async function build(config: ResolvedConfig, stdout: string) {
  const stack = config.environment;
  const recorder = installMocks(stack);
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const entry = recorder.registered.get(args.name);
        if (entry) entry.inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
        const state = mockState(args);
        if (args.name === `${stack}-${CLUSTER_CHILDREN.k3sRelease}`) state.stdout = stdout;
        return { id: mockId(args, state), state };
      },
      call: (args) => args.inputs,
    },
    "k3s-platform",
    stack,
    false,
    "organization",
  );
  const options = new Map<string, pulumi.CustomResourceOptions>();
  const resources: pulumi.Resource[] = [];
  const capture: pulumi.ResourceTransformation = (args) => {
    options.set(args.name, args.opts as pulumi.CustomResourceOptions);
    resources.push(args.resource);
    return undefined;
  };
  const cluster = new K3sCluster(stack, { config, token: pulumi.secret("t") }, { transformations: [recorder.transformation, capture] });
  await recorder.settle(cluster.kubeconfig, cluster.registered, cluster.certificateExpiry);
  for (let seen = -1; seen !== resources.length; ) {
    seen = resources.length;
    await Promise.all(resources.map((r) => new Promise((resolve) => r.urn.apply(resolve))));
    await recorder.settle();
  }
  return { registered: recorder.registered, options };
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
  });

  it("an unreadable record gives an empty release, which apply.sh refuses in preflight; a pinned stack has no step and an unchanged apply command", async () => {
    const unreadable = await build(channelStack(), "k3s-platform cluster release: latest\n");
    for (const apply of applies(unreadable.registered)) assert.ok(String(apply.inputs.create).includes("env K3S_PLATFORM_CLUSTER_RELEASE='' bash"), String(apply.inputs.create));
    const pinned = await build(loadStackConfig(variant("staging", () => {})), "");
    assert.equal(pinned.registered.get(`staging-${CLUSTER_CHILDREN.k3sRelease}`), undefined);
    for (const apply of applies(pinned.registered)) assert.doesNotMatch(String(apply.inputs.create), /CLUSTER_RELEASE/);
  });

  it("parseRelease reads the release line only, and only a K3s release", () => {
    assert.equal(parseRelease("x\nk3s-platform cluster release: v1.31.4+k3s1\n"), "v1.31.4+k3s1");
    for (const bad of ["", "k3s-platform cluster release: v1.31.4", "k3s-platform cluster release: v1.31.4+k3s1; rm -rf /", "release: v1.31.4+k3s1"]) assert.equal(parseRelease(bad), undefined, bad);
  });
});
