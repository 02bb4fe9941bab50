import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "../../components/cluster/component";
import type { ResolvedConfig } from "../../components/config/schema";
import { installMocks, mockId, mockState, Registered, unwrapSecrets } from "./pulumi-mocks";

/**
 * A recorded output that is unknown in a preview (the engine's wire sentinel, sdk/nodejs/runtime/rpc
 * `unknownValue`): what a step the preview will create or replace gives its readers.
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * The cluster under Pulumi mocks, with some steps answering a recorded stdout (by resource name:
 * what they printed on the hosts in an earlier up, e.g. the one-shot baseline or the k3s-release
 * step). Resolves once every resource is registered, those that wait for such a stdout included.
 */
export async function buildClusterWithStdout(
  config: ResolvedConfig,
  stdout: Record<string, string> = {},
  /** Other recorded outputs by resource name (e.g. the stdin Pulumi kept for a step whose inputs are ignored). */
  recorded: Record<string, Record<string, unknown>> = {},
  /** As `pulumi preview` runs the program: a stdout given as UNKNOWN is unknown (a step the preview replaces). */
  preview = false,
): Promise<{ registered: Map<string, Registered>; options: Map<string, pulumi.CustomResourceOptions>; cluster: K3sCluster }> {
  const stack = config.environment;
  const recorder = installMocks(stack);
  // The same mocks as installMocks, except the recorded stdouts and outputs.
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const entry = recorder.registered.get(args.name);
        if (entry) entry.inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
        const state = { ...mockState(args), ...recorded[args.name] };
        if (stdout[args.name] !== undefined) state.stdout = stdout[args.name];
        return { id: mockId(args, state), state };
      },
      call: (args) => args.inputs,
    },
    "k3s-platform",
    stack,
    preview,
    // The organization the file backend reports (StackReference names are <organization>/<project>/<stack>).
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
  // Steps whose inputs wait for a recorded stdout register later: wait until every URN is known.
  for (let seen = -1; seen !== resources.length; ) {
    seen = resources.length;
    await Promise.all(resources.map((r) => new Promise((resolve) => r.urn.apply(resolve))));
    await recorder.settle();
  }
  return { registered: recorder.registered, options, cluster };
}
