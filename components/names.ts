/**
 * Every name k3s-platform gives a resource, in one place: component type tokens, the provider
 * types policies look at, and the child-name functions (`<parent>-<suffix>`). Components build
 * names with these; the policy pack and the preview summary parse names with these, exactly
 * (against the parent's name), never by substring. Pure: no Pulumi import.
 */

/** Pulumi type tokens of the components (`<package>:index:<Class>`) and the provider types policies read. */
export const TYPES = {
  cluster: "k3s-platform:index:K3sCluster",
  node: "k3s-platform:index:K3sNode",
  secretsEncryption: "k3s-platform:index:SecretsEncryption",
  coreDnsTuning: "k3s-platform:index:CoreDnsTuning",
  tenantNamespaces: "k3s-platform:index:TenantNamespaces",
  containerRuntimes: "k3s-platform:index:ContainerRuntimes",
  destroyGuard: "k3s-platform:index:DestroyGuard",
  command: "command:remote:Command",
  copy: "command:remote:CopyToRemote",
  namespace: "kubernetes:core/v1:Namespace",
  resourceQuota: "kubernetes:core/v1:ResourceQuota",
  limitRange: "kubernetes:core/v1:LimitRange",
  networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  configMap: "kubernetes:core/v1:ConfigMap",
  service: "kubernetes:core/v1:Service",
  stackReference: "pulumi:pulumi:StackReference",
} as const;

/** `<parent>-<suffix>`: how every child is named after its parent. */
export function childName(parent: string, suffix: string): string {
  return `${parent}-${suffix}`;
}

/** The suffix when `child` is exactly `<parent>-<suffix>` (suffix non-empty), else undefined. */
export function childSuffix(child: string, parent: string): string | undefined {
  const prefix = `${parent}-`;
  return child.length > prefix.length && child.startsWith(prefix) ? child.slice(prefix.length) : undefined;
}

/**
 * Names of a node's children (suffixes after `<stack>-<node>-`). Changed in 0.2 (one bundle copy
 * and one secrets command instead of one resource per file): see docs/changelog.md.
 */
export const NODE_CHILDREN = {
  stage: "stage",
  bundle: "bundle",
  secrets: "secrets",
  osPrep: "os-prep",
  apply: "apply",
  /** Agents in upgrade batches only: the host checks, before the batch's drain (k3s/preflight.ts). */
  preflight: "preflight",
} as const;
export type NodeChild = keyof typeof NODE_CHILDREN;

/** A K3sCluster's K3sNode: `<cluster>-<node name>`. */
export function nodeResourceName(cluster: string, node: string): string {
  return childName(cluster, node);
}

/**
 * The names of every resource a K3sNode registers, without the stack prefix they all share
 * (`<node>-<suffix>`). Children of different nodes are siblings of one type, so two equal names
 * would be one URN mid-`up`.
 */
export function nodeChildNames(plan: { node: { name: string } }): string[] {
  return Object.values(NODE_CHILDREN).map((suffix) => childName(plan.node.name, suffix));
}

/** Which node child `child` is, given its K3sNode parent's name; undefined when it is none. */
export function nodeChildOf(child: string, nodeResource: string): NodeChild | undefined {
  const suffix = childSuffix(child, nodeResource);
  return (Object.keys(NODE_CHILDREN) as NodeChild[]).find((k) => NODE_CHILDREN[k] === suffix);
}

/** A K3sCluster's own children (suffixes after `<cluster>-`). */
export const CLUSTER_CHILDREN = {
  token: "token",
  nodeLabels: "node-labels",
  kubeconfig: "kubeconfig",
  encryption: "encryption",
  /** Day-2 (issue 13): the token-rotate trigger's salt, the rotation step, the node inventory. */
  tokenSalt: "token-salt",
  tokenRotate: "token-rotate",
  nodeInventory: "node-inventory",
  /** Issue 21: the one-shot values the cluster was created with, taken once (operations/once.ts). */
  oneShotBaseline: "one-shot-baseline",
  /** Issue 28: a channel stack's K3s release, resolved once; every node installs it (operations/release.ts). */
  k3sRelease: "k3s-release",
  /** Issue 24: a StackReference to this stack itself, whose outputs are the last `up`'s (k3sVersion): the pack's upgrade-path check reads it. */
  deployed: "deployed",
  /** Issue 23: `uninstallOnDestroy`'s first step on destroy (marks the nodes), on the first server. */
  destroyBegin: "destroy-begin",
  /** Issue 23: the protected component that makes `pulumi destroy` refuse (program.ts). */
  destroyGuard: "destroy-guard",
} as const;
export type ClusterChild = keyof typeof CLUSTER_CHILDREN;

/** An upgrade batch step of the agents (components/upgrade): `<cluster>-agent-batch-<i>-drain|uncordon`, run on the first server. */
export function agentBatchStepName(cluster: string, index: number, step: "drain" | "uncordon"): string {
  return childName(cluster, agentBatchStepSuffix(index, step));
}

/** A maintenance group's step after `<cluster>-`: `maintenance-<i>-drain|wait|uncordon`, run on the group's watcher server. */
export function maintenanceGroupStepSuffix(index: number, step: "drain" | "wait" | "uncordon"): string {
  return `maintenance-${index}-${step}`;
}

/** The suffix of an agent batch step after `<cluster>-`: `agent-batch-<i>-drain|uncordon`. */
export function agentBatchStepSuffix(index: number, step: "drain" | "uncordon"): string {
  return `agent-batch-${index}-${step}`;
}

/**
 * Day-2 children of a K3sCluster that belong to one node: `<cluster>-<node>-<suffix>` (siblings
 * of the K3sNode `<cluster>-<node>`, never its children: a decommissioned node has no K3sNode).
 */
export const NODE_LIFECYCLE_CHILDREN = {
  drain: "decommission-drain",
  uninstall: "decommission-uninstall",
  rotateCertificates: "rotate-certificates",
  certificateCheck: "certificate-check",
  /** `nodes[].rebuild`: deletes the old Node on a surviving server before the node's steps re-run. */
  forget: "rebuild-forget",
  /** `restore` (operations/restore.ts): check the snapshot, stop every server, reset, rejoin, restart agents. */
  restoreCheck: "restore-check",
  restoreStop: "restore-stop",
  restoreReset: "restore-reset",
  restoreRejoin: "restore-rejoin",
  restoreRestart: "restore-restart",
  /** While no restore is armed (operations/restore-abandoned.ts): converge what an unfinished restore left stopped. */
  restoreAbandoned: "restore-abandoned",
  /** `maintenance` (operations/maintenance.ts): the node's command and reboot, then its check over SSH. */
  maintenanceRun: "maintenance-run",
  maintenanceBack: "maintenance-back",
  /** `uninstallOnDestroy`: the node's uninstall, run by `pulumi destroy` (destroy/render.ts). */
  destroyUninstall: "destroy-uninstall",
} as const;
export type NodeLifecycleChild = keyof typeof NODE_LIFECYCLE_CHILDREN;

/** `<node>-<suffix>` of a lifecycle step (without the cluster prefix). */
export function nodeLifecycleName(node: string, child: NodeLifecycleChild): string {
  return childName(node, NODE_LIFECYCLE_CHILDREN[child]);
}

/** Which lifecycle step `child` is and for which node, given the cluster's name; undefined when none. */
export function nodeLifecycleOf(child: string, cluster: string): { node: string; child: NodeLifecycleChild } | undefined {
  const rest = childSuffix(child, cluster);
  if (!rest) return undefined;
  for (const key of Object.keys(NODE_LIFECYCLE_CHILDREN) as NodeLifecycleChild[]) {
    const suffix = `-${NODE_LIFECYCLE_CHILDREN[key]}`;
    if (rest.length > suffix.length && rest.endsWith(suffix)) return { node: rest.slice(0, -suffix.length), child: key };
  }
  return undefined;
}

/** Which cluster child `child` is, given its K3sCluster parent's name. */
export function clusterChildOf(child: string, cluster: string): ClusterChild | undefined {
  const suffix = childSuffix(child, cluster);
  return (Object.keys(CLUSTER_CHILDREN) as ClusterChild[]).find((k) => CLUSTER_CHILDREN[k] === suffix);
}

/** Secrets-encryption lifecycle phases (encryption/render.ts rotationPhases), each a one-shot step. */
export const ENCRYPTION_PHASES = { rotateKeys: "rotate-keys", prepare: "prepare", rotate: "rotate", reencrypt: "reencrypt" } as const;

/** Generated encryption keys of a keyed provider: `<cluster>-encryption-key-<type>` and its `-name`. */
export function encryptionKeyNames(cluster: string, type: string): { key: string; name: string } {
  const key = childName(cluster, `encryption-key-${type}`);
  return { key, name: childName(key, "name") };
}

/** SecretsEncryption children: `<enc>-<phase>`, `<enc>-<phase>-restart-<server>`, `<enc>-verify`. */
export const ENCRYPTION_CHILDREN = { verify: "verify", restart: "restart" } as const;

export function encryptionStepName(parent: string, phase: string): string {
  return childName(parent, phase);
}

export function encryptionRestartName(parent: string, phase: string, server: string): string {
  return childName(parent, `${phase}-${ENCRYPTION_CHILDREN.restart}-${server}`);
}

/**
 * Parses a SecretsEncryption child against its parent's name and the phase names: a server
 * restart after a phase, or undefined.
 */
export function encryptionRestartOf(child: string, parent: string, phases: readonly string[] = Object.values(ENCRYPTION_PHASES)): { phase: string; server: string } | undefined {
  const suffix = childSuffix(child, parent);
  if (!suffix) return undefined;
  // Longest phase first: "rotate-keys" before "rotate".
  for (const phase of [...phases].sort((a, b) => b.length - a.length)) {
    const server = childSuffix(suffix, `${phase}-${ENCRYPTION_CHILDREN.restart}`);
    if (server) return { phase, server };
  }
  return undefined;
}

/** `urn:pulumi:stack::project::parent$child$type::name` → its type, name and parent types. */
export function parseUrn(urn: string): { type: string; name: string; parents: string[] } {
  const parts = urn.split("::");
  const qualified = parts[2] ?? "";
  const chain = qualified.split("$");
  return { type: chain[chain.length - 1] ?? "", name: parts.slice(3).join("::"), parents: chain.slice(0, -1) };
}
