import type { NodeContext } from "../config/context";
import { splitNodeLabels } from "../config/labels";
import type { Contribution } from "../plan/contribution";
import { configYamlObject } from "./config-yaml";
import { PATHS } from "./paths";
import { renderSecretDropIn } from "./secrets-dropin";

/** The secrets drop-in's name among the node's secret files. */
export const SECRET_DROPIN_FILE = "secrets-dropin";

/**
 * k3s concern: the node's own flags (config.yaml is rendered by the plan once every concern's
 * flags are folded in), its secrets drop-in, and the labels K3s refuses at registration.
 */
export function contribute(ctx: NodeContext): Contribution {
  return {
    flags: configYamlObject(ctx),
    secretFiles: [{ name: SECRET_DROPIN_FILE, target: PATHS.secretDropIn, mode: "0600", render: (s) => renderSecretDropIn(ctx, s) }],
    labels: splitNodeLabels(ctx.node.labels).postRegistration,
  };
}
