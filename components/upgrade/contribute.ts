import type { Contribution, NodeContext } from "../plan/contribution";
import { serverPreInstall, upgradeGuard, upgradePostInstall } from "./render";

/**
 * The upgrade concern's contribution to a node's apply.sh (render.ts): the version guards before
 * anything is placed, the server's backup/cordon/drain before the install, the wait/uncordon and
 * the version record after it. Hooks only: no file, no flag.
 */
export function contribute(ctx: NodeContext): Contribution {
  return {
    preflight: upgradeGuard(ctx.config, ctx.node),
    preInstall: serverPreInstall(ctx.config, ctx.node),
    postInstall: upgradePostInstall(ctx.config, ctx.node),
  };
}
