import type { NodePlan } from "./plan";

/** Names of a node's children; shipped names change only with an alias. */
export const NODE_CHILDREN = {
  stage: "stage",
  file: (name: string) => `file-${name.replace(/[^A-Za-z0-9-]/g, "-")}`,
  secret: (name: string) => `secret-${name}`,
  osPrep: "os-prep",
  apply: "apply",
} as const;

/**
 * The names of every resource a K3sNode registers, without the stack prefix they all share
 * (`<node>-<suffix>`). Children of different nodes are siblings of one type, so two equal names
 * would be one URN mid-`up`; validation refuses that.
 */
export function nodeChildNames(plan: NodePlan): string[] {
  const child = (suffix: string) => `${plan.node.name}-${suffix}`;
  return [
    child(NODE_CHILDREN.stage),
    ...plan.files.map((f) => child(NODE_CHILDREN.file(f.name))),
    ...plan.secretFiles.map((f) => child(NODE_CHILDREN.secret(f.name))),
    child(NODE_CHILDREN.osPrep),
    child(NODE_CHILDREN.apply),
  ];
}
