import { followsChannel, RELEASE_TIMEOUT_SECONDS, renderReleaseScript } from "../k3s/release";
import { CLUSTER_CHILDREN } from "../names";
import { stdinScriptCommand } from "../shell/root";
import { NO_OP_UPDATE } from "./once";
import { Operation } from "./step";

/**
 * The cluster's K3s release on a channel stack (issue 28; k3s/release.ts): on the first server,
 * before its first install, once per stack. Every input is ignored after creation, so the engine
 * never re-runs it: its stdout keeps the release it resolved (or adopted), and every node's apply
 * installs exactly that one, whenever the node is added or rebuilt. A moved channel, or a changed
 * `channel` value, moves nothing: `k3s.version` does, through the upgrade flow.
 */
export const release: Operation = {
  name: "release",
  description: "the K3s release a channel stack runs on every node, resolved once before the first server's first install",
  owns: (name) => name === CLUSTER_CHILDREN.k3sRelease,
  steps(config, plan) {
    if (!followsChannel(config)) return [];
    const first = plan.nodes[0]!;
    return [
      {
        name: CLUSTER_CHILDREN.k3sRelease,
        operation: "release",
        host: first.node,
        parent: "cluster",
        runs: "once-per-stack",
        restartsK3s: false,
        summary: `on ${first.node.name}: resolve channel ${config.k3s.channel ?? "stable"} once (or adopt the release K3s runs there); every node installs that release`,
        after: [],
        gates: [{ node: first.node.name, steps: "all" }],
        create: stdinScriptCommand(first.sshUser),
        update: NO_OP_UPDATE,
        timeoutSeconds: RELEASE_TIMEOUT_SECONDS,
        stdin: renderReleaseScript(config, first.node),
        ignoreChanges: ["connection", "create", "update", "stdin", "addPreviousOutputInEnv"],
      },
    ];
  },
};
