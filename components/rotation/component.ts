import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ResolvedConfig } from "../config/schema";
import { guardOnce, NO_OP_UPDATE } from "../encryption/once";
import { Connection } from "../node/component";
import { NodePlan, sha256, stdinScriptCommand } from "../node/plan";
import {
  CertificateExpiry,
  parseCertificateCheck,
  renderCertificateCheckScript,
  renderCertificateRotateScript,
  renderTokenRotateScript,
  tokenFingerprint,
} from "./render";

export interface RotationNode {
  plan: NodePlan;
  connection: Connection;
}

/**
 * The token-rotate step (render.ts): on the first server, before any node's secrets write.
 * Its only trigger is the salted fingerprint of the token, secret in state.
 */
export function createTokenRotation(
  name: string,
  config: ResolvedConfig,
  first: RotationNode,
  token: pulumi.Input<string>,
  parent: pulumi.Resource,
): command.remote.Command {
  const salt = new random.RandomPassword(`${name}-token-salt`, { length: 32, special: false }, { parent });
  const fingerprint = pulumi.secret(pulumi.all([salt.result, token]).apply(([s, t]) => [tokenFingerprint(s, t)]));
  return new command.remote.Command(
    `${name}-token-rotate`,
    {
      connection: first.connection,
      create: stdinScriptCommand(first.plan.sshUser),
      // One-shot: only a new token (the trigger) runs it again; other changes are a no-op Update.
      update: NO_OP_UPDATE,
      stdin: pulumi.secret(pulumi.output(token).apply((t) => renderTokenRotateScript(config, first.plan.node, t))),
      triggers: fingerprint,
      addPreviousOutputInEnv: false,
    },
    { parent, additionalSecretOutputs: ["stdin"] },
  );
}

/**
 * `certificates.rotation`: one-shot steps, servers one after another, then the agents (each after
 * the last server). Returns the last step of each chain, for what must wait for the rotation.
 */
export function createCertificateRotation(
  name: string,
  config: ResolvedConfig,
  nodes: RotationNode[],
  after: pulumi.Resource[],
  parent: pulumi.Resource,
): pulumi.Resource[] {
  const rotation = config.certificates?.rotation;
  if (rotation === undefined) return after;
  const value = String(rotation);
  const step = (n: RotationNode, dependsOn: pulumi.Resource[]) =>
    new command.remote.Command(
      `${name}-${n.plan.node.name}-rotate-certificates`,
      {
        connection: n.connection,
        create: stdinScriptCommand(n.plan.sshUser),
        update: NO_OP_UPDATE,
        stdin: guardOnce("certificate-rotation", value, renderCertificateRotateScript(n.plan.node)),
        triggers: [value],
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn },
    );
  let previous = after;
  for (const server of nodes.filter((n) => n.plan.node.role === "server")) previous = [step(server, previous)];
  const agents = nodes.filter((n) => n.plan.node.role !== "server").map((agent) => step(agent, previous));
  return [...previous, ...agents];
}

/** Per server: `k3s certificate check`, re-read after a re-apply or a rotation. */
export function createCertificateChecks(
  name: string,
  config: ResolvedConfig,
  servers: RotationNode[],
  after: pulumi.Resource[],
  parent: pulumi.Resource,
): pulumi.Output<Record<string, CertificateExpiry>> {
  const rotation = String(config.certificates?.rotation ?? "");
  const script = renderCertificateCheckScript(config);
  const checks = servers.map((s) => {
    const check = new command.remote.Command(
      `${name}-${s.plan.node.name}-certificate-check`,
      {
        connection: s.connection,
        create: stdinScriptCommand(s.plan.sshUser),
        update: stdinScriptCommand(s.plan.sshUser),
        stdin: script,
        triggers: [rotation, sha256(s.plan.hashes.apply)],
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn: after },
    );
    return check.stdout.apply((out) => [s.plan.node.name, parseCertificateCheck(out)] as const);
  });
  return pulumi.all(checks).apply((pairs) => Object.fromEntries(pairs));
}
