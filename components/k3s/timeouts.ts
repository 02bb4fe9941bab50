import type * as pulumi from "@pulumi/pulumi";
import { hooksAt } from "../config/hooks";
import type { NodeConfig, ResolvedConfig } from "../config/schema";
import { HOOK_POINTS } from "../config/schema/hooks";
import { DRAIN_TIMEOUT_SECONDS, JOIN_WAIT_SECONDS } from "../decommission/render";
import { FORGET_TIMEOUT_SECONDS } from "../decommission/rebuild";
import { MEMBER_WAIT_SECONDS } from "../decommission/node-ops";
import { ENCRYPTION_RESTART_READY_SECONDS, ENCRYPTION_STAGE_WAIT_SECONDS } from "../encryption/render";
import { VIP_WAIT_SECONDS } from "../kube-vip/render";
import { ROTATION_READY_SECONDS } from "../rotation/render";
import { SNAPSHOT_TIMEOUT_SECONDS } from "../upgrade/render";
import { INSTALL_TIMEOUT_SECONDS, READY_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS } from "./install";

/**
 * Pulumi `customTimeouts` for the remote commands that start, restart or wait for K3s (issue 28).
 * Each step's script bounds its own waits and names host and step when one runs out; the
 * customTimeouts sit above the sum of those bounds (plus SSH and command overhead), so the script's
 * message is what the user sees, and Pulumi's timeout is only the backstop for what no script
 * bounds (an SSH session that hangs). A step that times out fails; the next `up` runs it again.
 */

/** SSH logins, kubectl calls between the waits, the bundle's unpacking. */
export const STEP_OVERHEAD_SECONDS = 300;
/** `systemctl stop` in apply.sh runs under `timeout` with this bound (install.ts). */
export const STOP_BOUND_SECONDS = STOP_TIMEOUT_SECONDS + 30;
/** The install script download checked in preflight (curl --max-time, preflight.ts). */
export const DOWNLOAD_CHECK_SECONDS = 120;

/** The same bound for create, update and delete, in whole minutes (a Go duration for the engine). */
export function customTimeouts(boundSeconds: number): pulumi.CustomTimeouts {
  const t = `${Math.ceil((boundSeconds + STEP_OVERHEAD_SECONDS) / 60)}m`;
  return { create: t, update: t, delete: t };
}

/** The sum of apply.sh's bounded waits on `node` (preflight, install, stop, readiness, the concerns' hooks). */
export function applyBoundSeconds(config: ResolvedConfig, node: NodeConfig): number {
  const { k3s } = config;
  const download = !k3s.airgap.enabled && k3s.installScriptSha256 ? DOWNLOAD_CHECK_SECONDS : 0;
  const start = INSTALL_TIMEOUT_SECONDS + STOP_BOUND_SECONDS + READY_TIMEOUT_SECONDS;
  // A server being upgraded: snapshot, drain, then the wait for Ready at the new version (upgrade/render.ts).
  const upgrade = k3s.version && node.role === "server" ? SNAPSHOT_TIMEOUT_SECONDS + config.upgrade.drain.timeout + config.upgrade.readyTimeout : 0;
  // The first server enabling encryption on a running cluster waits for the re-encryption (encryption/render.ts).
  const encryption = config.encryption.enabled !== false && node.role === "server" ? ENCRYPTION_STAGE_WAIT_SECONDS : 0;
  // Agents wait for the API VIP before they join (kube-vip/render.ts).
  const vip = node.role === "agent" ? VIP_WAIT_SECONDS : 0;
  // The user's hooks at apply's points, each bounded by its own timeout (hooks/render.ts).
  const hooks = HOOK_POINTS.filter((p) => p.step === "apply").flatMap((p) => hooksAt(config, node, p.name)).reduce((sum, h) => sum + h.timeoutSeconds, 0);
  return download + start + upgrade + encryption + vip + hooks;
}

/** Bounds of the other steps that restart or wait for K3s (a function: read at call time, never during module loading). */
export function stepBounds() {
  return {
    /** encryption/render.ts renderRestartScript: stop, then the readiness loop. */
    encryptionRestart: STOP_TIMEOUT_SECONDS + ENCRYPTION_RESTART_READY_SECONDS,
    /** A secrets-encryption phase (prepare/rotate/reencrypt) or the verify step: one stage wait. */
    encryptionStage: ENCRYPTION_STAGE_WAIT_SECONDS,
    /** rotation/render.ts: stop, rotate, start, readiness loop. */
    certificateRotation: STOP_TIMEOUT_SECONDS + ROTATION_READY_SECONDS,
    /** decommission/render.ts: a server's wait for its peers to join, drain, then deleting the Node (after waiting for a carrier's member). */
    decommission: JOIN_WAIT_SECONDS + DRAIN_TIMEOUT_SECONDS + MEMBER_WAIT_SECONDS + DRAIN_TIMEOUT_SECONDS,
    /** decommission/rebuild.ts: the forget step's deletes. */
    forget: FORGET_TIMEOUT_SECONDS * 2 + MEMBER_WAIT_SECONDS,
  } as const;
}

/** An agent batch step on the first server: each agent's drain, or each agent's wait for Ready, one after another. */
export function batchBoundSeconds(config: ResolvedConfig, agents: number, step: "drain" | "uncordon"): number {
  return agents * (step === "drain" ? config.upgrade.drain.timeout : config.upgrade.readyTimeout);
}
