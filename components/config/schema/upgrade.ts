import { z } from "zod";

// ---------------------------------------------------------------- upgrades (components/upgrade)

/** `kubectl drain` options for upgrades (kubectl drain flags of the same names). */
export const drainSchema = z.strictObject({
  timeout: z.number().int().min(1).max(86400).default(300).describe("Seconds `kubectl drain` may take (`--timeout`); a drain still blocked then fails the step."),
  deleteEmptyDirData: z.boolean().default(true).describe("`--delete-emptydir-data`: pods with emptyDir volumes (metrics-server has one) are evicted, their scratch data lost."),
  ignoreDaemonSets: z.boolean().default(true).describe("`--ignore-daemonsets`: DaemonSet pods stay (K3s runs several: svclb, kube-vip); without it drain refuses."),
  disableEviction: z.boolean().default(false).describe("`--disable-eviction`: delete pods instead of evicting them, bypassing PodDisruptionBudgets."),
});

/**
 * How a `k3s.version` change rolls out (components/upgrade): servers one at a time, agents in
 * batches of at most `maxUnavailable` (a count, or a percentage of the agents rounded down, at least 1).
 */
export const upgradeSchema = z.strictObject({
  maxUnavailable: z
    .union([
      z.number().int().min(1),
      z.string().regex(/^(100|[1-9][0-9]?)%$/, "a percentage must be 1% to 100% (e.g. 25%)"),
    ])
    .default("10%").describe("Agents upgraded at once: a count, or a percentage of the agents (rounded down, at least 1)."),
  drain: drainSchema.prefault({}).describe("`kubectl drain` options for nodes being upgraded."),
  readyTimeout: z.number().int().min(10).max(86400).default(600).describe("Seconds to wait, after the install, for the node to be Ready with the new kubelet version."),
});
