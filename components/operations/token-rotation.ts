import { tokenFingerprint, tokenRotateStep } from "../rotation/render";
import { CLUSTER_CHILDREN } from "../names";
import { stdinScriptCommand } from "../shell/root";
import { Operation } from "./step";

/**
 * A new `token` (rotation/render.ts): `k3s token rotate` on the first server before any node's
 * secrets write. Its only trigger is the salted fingerprint of the token, secret in state; other
 * changes are a no-op Update. The servers and agents then restart with the new token through their
 * own apply (the drop-in changed), in join order.
 */
export const tokenRotation: Operation = {
  name: "token-rotation",
  description: "a new token: k3s token rotate on the first server before any node gets it",
  owns: (name) => name === CLUSTER_CHILDREN.tokenRotate,
  steps(config, plan) {
    const first = plan.nodes[0]!;
    // The step's name and commands do not depend on the token; only its stdin does.
    const step0 = tokenRotateStep(config, first, "");
    return [
      {
        name: step0.name,
        operation: "token-rotation",
        host: first.node,
        parent: "cluster",
        runs: "once",
        restartsK3s: false,
        summary: `on ${first.node.name}: k3s token rotate when the token the cluster runs with differs (trigger: the token's salted fingerprint)`,
        after: [],
        gates: plan.nodes.map((n) => ({ node: n.node.name, steps: "secrets" as const })),
        create: stdinScriptCommand(first.sshUser),
        update: step0.update,
        stdin: { needs: ["token"], render: (facts) => tokenRotateStep(config, first, facts.token).stdin },
        triggers: { needs: ["tokenSalt", "token"], render: (facts) => [tokenFingerprint(facts.tokenSalt, facts.token)] },
        secretInputs: ["stdin", "triggers"],
        secretOutputs: ["stdin"],
      },
    ];
  },
};
