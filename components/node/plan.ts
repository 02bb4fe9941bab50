/**
 * Moved: the node plan lives in components/plan/ (node.ts folds the concerns' contributions).
 * This module re-exports it for branches written against the old path; new code imports plan/.
 */
export { finalNodeFlags, planCluster, planNode, planNodeContext, renderSecretsDocument } from "../plan/node";
export type { ClusterPlan, NodePlan, PlanOptions, SecretFile, StagedFile } from "../plan/node";
export type { NodeSecrets } from "../config/secrets";
export { sha256 } from "../plan/hash";
export { asRoot, stdinScriptCommand } from "../shell/root";
export { rewriteKubeconfig } from "./kubeconfig";
