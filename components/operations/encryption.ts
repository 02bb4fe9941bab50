import { stepBounds } from "../k3s/timeouts";
import { renderEncryptionConfig, renderRestartScript, renderVerifyScript, rotationPhases } from "../encryption/render";
import { guardOnce, NO_OP_UPDATE, ONE_SHOT_KEYS } from "./once";
import { childName, CLUSTER_CHILDREN, ENCRYPTION_CHILDREN, encryptionRestartName, encryptionStepName } from "../names";
import { sha256 } from "../plan/hash";
import { stdinScriptCommand } from "../shell/root";
import { joinedRefs } from "./order";
import { Operation, Step } from "./step";

/** The SecretsEncryption component's name without the stack prefix: its children are named after it. */
const PARENT = CLUSTER_CHILDREN.encryption;

/** The verify step's name (without the stack prefix): the last encryption step, which later restarts wait for. */
export const ENCRYPTION_VERIFY = childName(PARENT, ENCRYPTION_CHILDREN.verify);

/**
 * The secrets-encryption lifecycle once every node joined (encryption/render.ts): each rotation
 * phase on the first server, then the servers restarted strictly one after another (etcd keeps
 * its quorum), then the verification whose JSON becomes `encryptionStatus`. The phases and
 * restarts are one-shot (their trigger is `encryption.rotation` alone; the host skips a value it
 * completed, and records without running the value the cluster was created with).
 */
export const encryption: Operation = {
  name: "encryption",
  description: "secrets encryption: key rotation phases (each followed by a rolling server restart), then verification",
  // Every command under the SecretsEncryption component (its keys are random resources, not commands).
  owns: (name) => name.startsWith(`${PARENT}-`),
  steps(config, plan) {
    if (!config.encryption.enabled) return [];
    const servers = plan.nodes.filter((n) => n.node.role === "server");
    const first = servers[0]!;
    const rotation = String(config.encryption.rotation ?? "");
    const steps: Step[] = [];
    let previous = joinedRefs(config, plan);
    const oneShot = (name: string, host: (typeof servers)[number], id: string, script: string, restartsK3s: boolean, summary: string): Step => ({
      name,
      operation: "encryption",
      host: host.node,
      parent: "encryption",
      runs: "once",
      restartsK3s,
      summary,
      after: previous,
      create: stdinScriptCommand(host.sshUser),
      update: NO_OP_UPDATE,
      stdin: { needs: ["baseline"], render: (facts) => guardOnce(id, rotation, script, facts.baseline[ONE_SHOT_KEYS.encryption]) },
      triggers: [rotation],
      timeoutSeconds: restartsK3s ? stepBounds().encryptionRestart : stepBounds().encryptionStage,
    });
    rotationPhases(config).forEach((phase, i) => {
      const step = oneShot(encryptionStepName(PARENT, phase.name), first, `encryption-rotation-step-${i + 1}`, phase.script, false, `phase ${phase.name} on ${first.node.name}, once per encryption.rotation value ${rotation}`);
      steps.push(step);
      previous = [step.name];
      for (const server of servers) {
        const restart = oneShot(
          encryptionRestartName(PARENT, phase.name, server.node.name),
          server,
          `encryption-rotation-step-${i + 1}-restart`,
          renderRestartScript(server.node.name),
          true,
          `restart K3s on ${server.node.name} after ${phase.name} (servers one at a time)`,
        );
        steps.push(restart);
        previous = [restart.name];
      }
    });
    const custom = config.encryption.mode === "custom";
    // Not one-shot: a read-only check (it finishes a pending enable's re-encryption, which marks
    // itself done) whose stdout is the `encryptionStatus` output, so Update re-runs it.
    const verify: Step = {
      name: ENCRYPTION_VERIFY,
      operation: "encryption",
      host: first.node,
      parent: "encryption",
      runs: "on-change",
      restartsK3s: false,
      summary: `on ${first.node.name}: read the encryption status (stack output encryptionStatus)${custom ? ", and check the deployed config against the keys" : ""}`,
      after: previous,
      create: stdinScriptCommand(first.sshUser),
      update: stdinScriptCommand(first.sshUser),
      stdin: custom
        ? { needs: ["encryptionKeys"], render: (facts) => renderVerifyScript(config, sha256(renderEncryptionConfig(config.encryption, facts.encryptionKeys))) }
        : { needs: [], render: () => renderVerifyScript(config, undefined) },
      secretInputs: ["stdin"],
      // Re-verify whenever a server was re-applied or a rotation ran.
      triggers: [rotation, sha256(servers.map((n) => n.hashes.apply).join())],
      timeoutSeconds: stepBounds().encryptionStage,
    };
    return [...steps, verify];
  },
};
