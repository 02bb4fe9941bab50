import type { NodePlan } from "./plan";

/**
 * Names of a node's children (suffixes after `<stack>-<node>-`). Changed in 0.2 (one bundle copy
 * and one secrets command instead of one resource per file): see README "Changelog".
 */
export const NODE_CHILDREN = {
  stage: "stage",
  bundle: "bundle",
  secrets: "secrets",
  osPrep: "os-prep",
  apply: "apply",
} as const;

/**
 * The names of every resource a K3sNode registers, without the stack prefix they all share
 * (`<node>-<suffix>`). Children of different nodes are siblings of one type, so two equal names
 * would be one URN mid-`up`.
 */
export function nodeChildNames(plan: Pick<NodePlan, "node">): string[] {
  return Object.values(NODE_CHILDREN).map((suffix) => `${plan.node.name}-${suffix}`);
}
