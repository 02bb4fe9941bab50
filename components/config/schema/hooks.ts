import { z } from "zod";
import { singleLine } from "../single-line";
import { DNS_LABEL } from "./primitives";
import { poolName } from "./nodes";

/** The `hooks[]` section: the user's own commands at named points of a node's life (docs/hooks.md). */

/**
 * The points a hook can run at, in the order a node meets them. `step` is the resource whose run
 * carries the point; `rerunsOnChange`: whether a change of the point's hooks re-runs that step on
 * the nodes they apply to (the install and OS points do; the upgrade points run at the next upgrade,
 * so a change only re-copies the bundle). Adding a point is a line here and its call where the step
 * runs (components/hooks/render.ts HOOK_CALLS says where each is called).
 */
export const HOOK_POINTS = [
  { name: "beforeOsPrep", step: "os-prep", rerunsOnChange: true, when: "before OS preparation (os-prep.sh), each time it runs" },
  { name: "afterInstall", step: "apply", rerunsOnChange: true, when: "after K3s is installed or restarted and serves, and when the hook changed" },
  { name: "beforeUpgrade", step: "apply", rerunsOnChange: false, when: "on a node being upgraded (k3s.version), after its cordon and drain, before the new release starts" },
  { name: "afterUpgrade", step: "apply", rerunsOnChange: false, when: "on a node upgraded, once it serves the new release (servers: Ready and uncordoned)" },
] as const;
export type HookPoint = (typeof HOOK_POINTS)[number]["name"];
export const HOOK_POINT_NAMES = HOOK_POINTS.map((p) => p.name) as unknown as readonly [HookPoint, ...HookPoint[]];

/** The longest a hook may run (one hour): a bound, so a hung hook fails its step naming it. */
export const HOOK_MAX_SECONDS = 3600;

export const hookSchema = z.strictObject({
  name: z.string().max(63).regex(DNS_LABEL, "hook name must be a lowercase DNS label (a-z, 0-9, -)").describe("Names the hook in logs, render, preview and its prod exception."),
  at: z.enum(HOOK_POINT_NAMES, { error: `one of ${HOOK_POINTS.map((p) => p.name).join(", ")}` }).describe("The point of the node's life it runs at (docs/hooks.md)."),
  command: z.array(singleLine(z.string().max(4096))).min(1, "a command needs at least the program to run").refine((c) => c[0] !== "", { message: "the program (first entry) is empty" }).describe("The command as an argument list, run as root without a shell (`[\"/usr/local/bin/mount-data\", \"--fs\", \"xfs\"]`): each entry is one argument, quoted byte for byte; for shell syntax, write `[\"sh\", \"-c\", \"…\"]`."),
  /** Where it runs: nodes named here, members of these pools, nodes of these roles (any that matches); none: every node. */
  nodes: z.array(z.string().min(1)).min(1).optional().describe("Where it runs: nodes named here, members of the pools below, nodes of the roles below (any that matches); none of the three: every node."),
  pools: z.array(poolName).min(1).optional().describe("Pools whose members it runs on."),
  roles: z.array(z.enum(["server", "agent"])).min(1).optional().describe("Roles whose nodes it runs on."),
  timeoutSeconds: z.number().int().min(1).max(HOOK_MAX_SECONDS).default(300).describe("Seconds the hook may run before it is stopped and its step fails (default 300)."),
});
export type HookConfig = z.output<typeof hookSchema>;
