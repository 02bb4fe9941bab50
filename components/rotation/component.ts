import * as command from "@pulumi/command";
import { joinOnly, rebuildTriggers } from "../decommission/rebuild";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ResolvedConfig } from "../config/schema";
import { customTimeouts, stepBounds } from "../k3s/timeouts";
import { childName, CLUSTER_CHILDREN, nodeLifecycleName } from "../names";
import type { Connection } from "../ssh/connection";
import { NodePlan } from "../plan/node";
import { sha256 } from "../plan/hash";
import { stdinScriptCommand } from "../shell/root";
import { Baseline, NO_OP_UPDATE, oneShotValues, parseBaseline, renderBaselineScript } from "../encryption/once";
import { CertificateExpiry, certificateRotationSteps, parseCertificateCheck, renderCertificateCheckScript, tokenFingerprint, tokenRotateStep } from "./render";

export interface RotationNode {
  plan: NodePlan;
  connection: Connection;
}

/**
 * The token-rotate step (render.ts): on the first server, before any node's secrets write. Its
 * only trigger is the salted fingerprint of the token, secret in state; other changes are a
 * no-op Update (one-shot, as encryption/once.ts).
 */
export function createTokenRotation(
  name: string,
  config: ResolvedConfig,
  first: RotationNode,
  token: pulumi.Input<string>,
  parent: pulumi.Resource,
): command.remote.Command {
  const salt = new random.RandomPassword(childName(name, CLUSTER_CHILDREN.tokenSalt), { length: 32, special: false }, { parent });
  const fingerprint = pulumi.secret(pulumi.all([salt.result, token]).apply(([s, t]) => [tokenFingerprint(s, t)]));
  const step = pulumi.output(token).apply((t) => tokenRotateStep(config, first.plan, t));
  // The step's name and commands do not depend on the token; only its stdin does.
  const step0 = tokenRotateStep(config, first.plan, "");
  return new command.remote.Command(
    childName(name, step0.name),
    {
      connection: first.connection,
      create: stdinScriptCommand(first.plan.sshUser),
      update: step0.update,
      stdin: pulumi.secret(step.stdin),
      triggers: fingerprint,
      addPreviousOutputInEnv: false,
    },
    { parent, additionalSecretOutputs: ["stdin"] },
  );
}

/**
 * The one-shot baseline (encryption/once.ts): on the first server, before its first install, once
 * per stack. Every input is in `ignoreChanges`, so the engine never updates it (an Update would
 * replace its stdout) and never re-runs it: its stdout stays what it saw in the up that created
 * it, and the values that up armed. The first server's steps wait for it (`before`).
 */
export function createBaseline(name: string, config: ResolvedConfig, first: RotationNode, parent: pulumi.Resource): { step: command.remote.Command; baseline: pulumi.Output<Baseline> } {
  const joined = joinOnly(config);
  const step = new command.remote.Command(
    childName(name, CLUSTER_CHILDREN.oneShotBaseline),
    {
      connection: first.connection,
      create: stdinScriptCommand(first.plan.sshUser),
      update: NO_OP_UPDATE,
      // A first server rebuilt with other servers joins a running cluster (decommission/rejoin.ts): not new.
      stdin: renderBaselineScript(oneShotValues(config), joined),
      addPreviousOutputInEnv: false,
      // The one input that re-takes the baseline: join-only is decided from the config, not the host,
      // so an up that failed with `rebuild` on a new stack's first server (its forget step finds no
      // cluster) must not leave "existing" behind once the user removes it (the host is checked then).
      triggers: [joined ? "first server joins" : "first server's own state"],
    },
    { parent, ignoreChanges: ["connection", "create", "update", "stdin", "addPreviousOutputInEnv"] },
  );
  return { step, baseline: step.stdout.apply(parseBaseline) };
}

/**
 * `certificates.rotation`: one-shot steps, servers one after another, then the agents. Returns
 * what must wait for the rotation (the last steps, or `after` when there is none). `after` must
 * hold every node's apply (agents included: their joins must not meet a server stopped for its
 * rotation, issue 21); the agents' steps wait for the last server's, so for those too. `baseline`:
 * nothing rotates on the up that created the cluster (encryption/once.ts).
 */
export function createCertificateRotation(
  name: string,
  config: ResolvedConfig,
  nodes: RotationNode[],
  after: Promise<pulumi.Resource[]>,
  parent: pulumi.Resource,
  baseline: pulumi.Output<Baseline> = pulumi.output<Baseline>({}),
): Promise<pulumi.Resource[]> {
  const hosts = nodes.map((n) => n.plan);
  const steps = certificateRotationSteps(config, hosts);
  if (steps.length === 0) return after;
  const stdin = baseline.apply((b) => new Map(certificateRotationSteps(config, hosts, [], b).map((s) => [s.name, s.stdin])));
  const created = new Map<string, command.remote.Command>();
  const connectionOf = new Map(nodes.map((n) => [n.plan.node.name, n.connection]));
  for (const s of steps) {
    const dependsOn: pulumi.Input<pulumi.Resource[]> = s.dependsOn.length ? s.dependsOn.map((d) => created.get(d)!) : after;
    created.set(
      s.name,
      new command.remote.Command(
        childName(name, s.name),
        { connection: connectionOf.get(s.on.name)!, create: s.create, update: s.update, stdin: stdin.apply((m) => m.get(s.name)!), triggers: s.triggers, addPreviousOutputInEnv: false },
        { parent, dependsOn, customTimeouts: customTimeouts(stepBounds().certificateRotation) },
      ),
    );
  }
  const dependedOn = new Set(steps.flatMap((s) => s.dependsOn));
  return Promise.resolve(steps.filter((s) => !dependedOn.has(s.name)).map((s) => created.get(s.name)!));
}

/** Per server: `k3s certificate check`, re-read after a re-apply or a rotation. */
export function createCertificateChecks(
  name: string,
  config: ResolvedConfig,
  servers: RotationNode[],
  after: pulumi.Input<pulumi.Resource[]>,
  parent: pulumi.Resource,
): pulumi.Output<Record<string, CertificateExpiry>> {
  const rotation = String(config.certificates?.rotation ?? "");
  const script = renderCertificateCheckScript(config);
  const checks = servers.map((s) => {
    const check = new command.remote.Command(
      childName(name, nodeLifecycleName(s.plan.node.name, "certificateCheck")),
      {
        connection: s.connection,
        create: stdinScriptCommand(s.plan.sshUser),
        update: stdinScriptCommand(s.plan.sshUser),
        stdin: script,
        // A rebuilt server has new certificates: re-read (rebuild value only when set).
        triggers: [rotation, sha256(s.plan.hashes.apply), ...rebuildTriggers(s.plan.node)],
        addPreviousOutputInEnv: false,
      },
      { parent, dependsOn: after },
    );
    return check.stdout.apply((out) => [s.plan.node.name, parseCertificateCheck(out)] as const);
  });
  return pulumi.all(checks).apply((pairs) => Object.fromEntries(pairs));
}
