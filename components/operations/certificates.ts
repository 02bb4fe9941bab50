import { stepBounds } from "../k3s/timeouts";
import { rebuildTriggers } from "../decommission/rebuild";
import { NODE_LIFECYCLE_CHILDREN, nodeLifecycleName } from "../names";
import type { ClusterPlan } from "../plan/node";
import type { ResolvedConfig } from "../config/schema";
import { sha256 } from "../plan/hash";
import { certificateRotationSteps, renderCertificateCheckScript } from "../rotation/render";
import { stdinScriptCommand } from "../shell/root";
import { ENCRYPTION_VERIFY } from "./encryption";
import { joinedRefs } from "./order";
import { endsWithAny, Operation, Step } from "./step";

/**
 * `certificates.rotation` (rotation/render.ts): one-shot, servers one after another, then every
 * agent; after every node joined and after the encryption steps, so their restarts never overlap.
 * Then `k3s certificate check` per server, re-read after a re-apply or a rotation: the stack
 * output `certificateExpiry`.
 */

/** What the rotation waits for: every node joined, and the encryption verification when enabled. */
function rotationAfter(config: ResolvedConfig, plan: ClusterPlan): string[] {
  return [...joinedRefs(config, plan), ...(config.encryption.enabled ? [ENCRYPTION_VERIFY] : [])];
}

/** The steps that end the rotation (none waits for them), or what it would wait for when none is armed. */
export function rotationDone(config: ResolvedConfig, plan: ClusterPlan): string[] {
  const steps = certificateRotationSteps(config, plan.nodes);
  if (steps.length === 0) return rotationAfter(config, plan);
  const dependedOn = new Set(steps.flatMap((s) => s.dependsOn));
  return steps.filter((s) => !dependedOn.has(s.name)).map((s) => s.name);
}

export const certificates: Operation = {
  name: "certificates",
  description: "certificates.rotation: stop, k3s certificate rotate, start; servers one at a time, then agents; then the expiry check per server",
  owns: endsWithAny(NODE_LIFECYCLE_CHILDREN.rotateCertificates, NODE_LIFECYCLE_CHILDREN.certificateCheck),
  steps(config, plan) {
    const after = rotationAfter(config, plan);
    const rotations = certificateRotationSteps(config, plan.nodes).map(
      (s): Step => ({
        name: s.name,
        operation: "certificates",
        host: s.on,
        parent: "cluster",
        runs: "once",
        restartsK3s: true,
        summary: `${s.on.name}: stop K3s, k3s certificate rotate, start; once per certificates.rotation value ${s.triggers[0]}`,
        after: s.dependsOn.length ? s.dependsOn : after,
        create: s.create,
        update: s.update,
        // The host records without running the value the cluster was created with (operations/once.ts).
        stdin: { needs: ["baseline"], render: (facts) => certificateRotationSteps(config, plan.nodes, [], facts.baseline).find((r) => r.name === s.name)!.stdin },
        triggers: s.triggers,
        timeoutSeconds: stepBounds().certificateRotation,
      }),
    );
    const rotation = String(config.certificates?.rotation ?? "");
    const script = renderCertificateCheckScript(config);
    const done = rotationDone(config, plan);
    const checks = plan.nodes
      .filter((n) => n.node.role === "server")
      .map(
        (s): Step => ({
          name: nodeLifecycleName(s.node.name, "certificateCheck"),
          operation: "certificates",
          host: s.node,
          parent: "cluster",
          runs: "on-change",
          restartsK3s: false,
          summary: `${s.node.name}: k3s certificate check (stack output certificateExpiry), re-read after a re-apply or a rotation`,
          after: done,
          create: stdinScriptCommand(s.sshUser),
          update: stdinScriptCommand(s.sshUser),
          stdin: script,
          // A rebuilt server has new certificates: re-read (rebuild value only when set).
          triggers: [rotation, sha256(s.hashes.apply), ...rebuildTriggers(s.node)],
        }),
      );
    return [...rotations, ...checks];
  },
};
