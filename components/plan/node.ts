import { networkPolicyEnforcer } from "../config/network-rules";
import { NodeContext, nodeContext } from "../config/context";
import type { FlagValue, NodeConfig, ResolvedConfig } from "../config/schema";
import type { NodeSecrets } from "../config/secrets";
import { ClusterTopology, clusterTopology, NodeRole } from "../config/topology";
import { FlagMap, mergeFlags, renderConfigYaml } from "../k3s/config-yaml";
import { APPLY_SCRIPT, CLUSTER_RELEASE_VARIABLE, INSTALL_SCRIPT, Placement, renderApplyScript, renderInstallScript, STAGING_DIR } from "../k3s/install";
import { parseRelease } from "../k3s/release";
import { PATHS } from "../k3s/paths";
import { PREFLIGHT_SCRIPT, renderPreflightScript } from "../k3s/agent-preflight";
import { applyBoundSeconds } from "../k3s/timeouts";
import { secretDropInKeys } from "../k3s/secrets-dropin";
import { BUNDLE_NAME, checkBundleFiles, renderBundle, secretsDocument, secretsWriteScript } from "../node/bundle";
import { HOOKS_SCRIPT, hookTriggers } from "../hooks/render";
import { OS_PREP_SCRIPT } from "../os-prep/render";
import { childName, NODE_CHILDREN, NodeChild } from "../names";
import { reportFailure } from "../shell/report";
import { asRoot } from "../shell/root";
import { joinShell, raw, Shell, sh } from "../shell/sh";
import { managedNodes } from "../decommission/nodes";
import { CONCERNS } from "./concerns";
import type { Concern, Contribution, SecretFile, StagedFile } from "./contribution";
import { sha256 } from "./hash";

/**
 * The per-node plan: every file and command a node gets, computed from config alone by folding
 * the contributions of CONCERNS in order. Components turn it into resources; `npm run render`
 * (tools/render.ts) writes it to disk. Pure: no Pulumi, no I/O.
 */

export type { SecretFile, StagedFile };

/** The name of config.yaml in the bundle: rendered by the plan from every concern's flags. */
export const CONFIG_YAML_FILE = "config.yaml";

export interface NodePlan {
  node: NodeConfig;
  role: NodeRole;
  hardening: ResolvedConfig["k3s"]["hardening"];
  /** What enforces NetworkPolicy instead of K3s' controller (cilium, or the stack's statement); unset with flannel. */
  networkPolicyBy?: string;
  /** What K3s reads on this node (config.yaml + drop-in keys), secrets left out. */
  finalFlags: { flags: Record<string, FlagValue>; secretFlags: string[] };
  sshUser: string;
  files: StagedFile[];
  secretFiles: SecretFile[];
  /** node-role.kubernetes.io/* and similar: applied with kubectl after the node registers. */
  postRegistrationLabels: Record<string, string>;
  /** Every staged file in one self-extracting script (bundle.ts): one copy per node. */
  bundle: { name: string; content: string; sha256: string };
  /** Labels k3s-platform manages that this node must not carry (e.g. ServiceLB pool labels). */
  removedLabels: string[];
  /** sha256 of what each step runs; used as the steps' triggers. */
  hashes: { osPrep: string; apply: string };
  /** The pinned release (`k3s.version`), when there is one. */
  targetVersion?: string;
  /** Seconds apply.sh may wait in all (its bounded waits summed): the apply step's customTimeouts sit above it. */
  applyBoundSeconds: number;
  /** `secrets` writes every secret file from one stdin document (secretsDocument); `preflight`: agents only. */
  commands: { stage: string; secrets: string; osPrep: string; apply: string; preflight?: string };
}

export interface ClusterPlan {
  topology: ClusterTopology;
  /** Servers in join order (first server first), then agents; nodes armed for removal are left out. */
  nodes: NodePlan[];
  /** Entries with `decommission: true`: nothing is installed or changed on them any more. */
  decommissioned: NodeConfig[];
  kubeconfigCommand: string;
}

export interface PlanOptions {
  /** Whether registry credentials exist; if so registries.yaml becomes a secret file. */
  hasRegistryAuth?: boolean;
}

/** Every contribution folded into one, in `concerns` order (hooks joined, empty ones dropped). */
type ApplyHookKey = "preflight" | "preInstall" | "postInstall" | "final" | "upToDate";

export function foldContributions(ctx: NodeContext, concerns: readonly Concern[] = CONCERNS): Required<Omit<Contribution, ApplyHookKey>> & {
  hooks: Record<ApplyHookKey, Shell>;
} {
  const parts = concerns.map((c) => c.contribute(ctx));
  const hook = (key: ApplyHookKey) => joinShell(parts.map((p) => p[key]).filter((s): s is Shell => !!s?.text));
  return {
    files: parts.flatMap((p) => p.files ?? []),
    secretFiles: parts.flatMap((p) => p.secretFiles ?? []),
    flags: parts.reduce<FlagMap>((acc, p) => (p.flags ? mergeFlags(acc, p.flags) : acc), {}),
    directories: parts.flatMap((p) => p.directories ?? []),
    labels: Object.assign({}, ...parts.map((p) => p.labels ?? {})) as Record<string, string>,
    removedLabels: parts.flatMap((p) => p.removedLabels ?? []),
    hooks: { preflight: hook("preflight"), preInstall: hook("preInstall"), postInstall: hook("postInstall"), final: hook("final"), upToDate: hook("upToDate") },
  };
}

/**
 * The flags a node ends up with, as K3s merges them: config.yaml plus the keys of its drop-ins.
 * `flags` holds no secret (config.yaml never does); `secretFlags` names the drop-in's keys only.
 * Registered on each K3sNode so policies check what a node really gets.
 */
export function finalNodeFlags(config: ResolvedConfig, node: NodeConfig, options: PlanOptions = {}): { flags: Record<string, FlagValue>; secretFlags: string[] } {
  const ctx = { ...nodeContext(config, node), hasRegistryAuth: options.hasRegistryAuth };
  return { flags: foldContributions(ctx).flags, secretFlags: secretDropInKeys(ctx) };
}

export function planNode(config: ResolvedConfig, node: NodeConfig, options: PlanOptions = {}): NodePlan {
  return planNodeContext({ ...nodeContext(config, node), hasRegistryAuth: options.hasRegistryAuth });
}

export function planNodeContext(ctx: NodeContext): NodePlan {
  const { config, node, role, sshUser } = ctx;
  const folded = foldContributions(ctx);
  const files: StagedFile[] = [
    { name: CONFIG_YAML_FILE, content: renderConfigYaml(node.name, folded.flags), target: PATHS.configYaml, mode: "0600" },
    ...folded.files,
  ];
  const { secretFiles } = folded;

  const placements: Placement[] = files
    .filter((f): f is StagedFile & { target: string } => f.target !== undefined)
    .map((f) => ({ staged: f.name, target: f.target, mode: f.mode, ...(f.restart === false ? { restart: false } : {}) }));
  const install = renderInstallScript(config, node);
  const apply = renderApplyScript(ctx, placements, secretFiles.map((s) => s.target), folded.directories, folded.hooks);
  files.push({ name: INSTALL_SCRIPT, content: install, mode: "0700" }, { name: APPLY_SCRIPT, content: apply, mode: "0700" });
  // An agent (in upgrade batches, pinned and channel stacks alike) is cordoned and drained by the
  // first server before its own apply runs: its preconditions get a step of their own, which the
  // batch's drain waits for.
  const agentPreflight = node.role === "agent";
  if (agentPreflight) files.push({ name: PREFLIGHT_SCRIPT, content: renderPreflightScript(config, node), mode: "0700" });

  // Each step's trigger holds its own script and the hooks at its own points (hooks/render.ts):
  // hooks.sh itself is in neither, so a hook's change re-runs only the step at its point.
  const triggers = hookTriggers(config, node);
  const osPrep = [files.find((f) => f.name === OS_PREP_SCRIPT)?.content ?? "", ...triggers.osPrep];
  const applyInputs = [...files.filter((f) => f.name !== OS_PREP_SCRIPT && f.name !== HOOKS_SCRIPT).map((f) => `${f.name}\0${f.content}`), ...triggers.apply];
  // The bundle and the triggers are the node's bytes (without k3s.nodeNetworks os-prep.sh names
  // every node, so they grow with the cluster): rendered and hashed on first read, when the node's
  // resources are written. Validation plans every node but reads neither, and stays linear
  // (`npm run bench`, issue 26). A snapshot of the files, so a later change to `files` can't reach them.
  const label = `node ${node.name} (${role})`;
  const bundled = files.map(({ name, content, mode }) => ({ name, content, mode }));
  checkBundleFiles(label, bundled);
  const bundle = once(() => renderBundle(label, bundled));
  const bundleSha = once(() => sha256(bundle()));
  const osPrepHash = once(() => sha256(osPrep.join("\0")));
  const applyHash = once(() => sha256(applyInputs.join("\0")));
  // Each step unpacks the bundle before it runs its script: the copy is the only transfer.
  const runFromBundle = (script: string) => nodeCommand(node, stepOfScript(script), asRoot(sshUser, sh`bash ${`${STAGING_DIR}/${BUNDLE_NAME}`} ${script}`).text);
  return {
    node,
    role,
    hardening: config.k3s.hardening,
    ...(networkPolicyEnforcer(config.k3s) ? { networkPolicyBy: networkPolicyEnforcer(config.k3s)! } : {}),
    finalFlags: { flags: folded.flags, secretFlags: secretDropInKeys(ctx) },
    sshUser,
    files,
    secretFiles,
    postRegistrationLabels: folded.labels,
    removedLabels: folded.removedLabels,
    bundle: {
      name: BUNDLE_NAME,
      get content() {
        return bundle();
      },
      get sha256() {
        return bundleSha();
      },
    },
    hashes: {
      get osPrep() {
        return osPrepHash();
      },
      get apply() {
        return applyHash();
      },
    },
    applyBoundSeconds: applyBoundSeconds(config, node),
    ...(config.k3s.version ? { targetVersion: config.k3s.version } : {}),
    commands: {
      stage: nodeCommand(node, "stage", asRoot(sshUser, sh`install -d -m 0700 -o ${sshUser} ${STAGING_DIR}`).text),
      secrets: nodeCommand(node, "secrets", asRoot(sshUser, sh`sh -c ${secretsWriteScript(secretFiles).text}`).text),
      osPrep: runFromBundle(OS_PREP_SCRIPT),
      apply: runFromBundle(APPLY_SCRIPT),
      ...(agentPreflight ? { preflight: runFromBundle(PREFLIGHT_SCRIPT) } : {}),
    },
  };
}

/** `make()` on the first call, the same value after. */
function once<T>(make: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: make() }).v;
}

/**
 * The apply command of a node on a channel stack: apply.sh with the cluster's release (the
 * k3s-release step's stdout, k3s/release.ts) in K3S_PLATFORM_CLUSTER_RELEASE. An unreadable stdout
 * gives an empty value, which apply.sh refuses in preflight, naming the host.
 */
export function applyWithRelease(plan: NodePlan, releaseStdout: string | undefined): string {
  return runWithRelease(plan, APPLY_SCRIPT, releaseStdout);
}

/** A bundle script (apply.sh, an agent's preflight.sh) with the cluster's release in K3S_PLATFORM_CLUSTER_RELEASE, as above. */
export function runWithRelease(plan: NodePlan, script: string, releaseStdout: string | undefined): string {
  const release = parseRelease(releaseStdout) ?? "";
  return nodeCommand(plan.node, stepOfScript(script), asRoot(plan.sshUser, sh`env ${raw(CLUSTER_RELEASE_VARIABLE)}=${release} bash ${`${STAGING_DIR}/${BUNDLE_NAME}`} ${script}`).text);
}

/**
 * A K3sNode command in the form that ends a failure with a line naming node, host and step
 * (`<node>-<child>`, its resource name without the stack prefix: shell/report.ts).
 */
function nodeCommand(node: NodeConfig, child: Exclude<NodeChild, "bundle">, command: string): string {
  return reportFailure({ node: node.name, host: node.host, step: childName(node.name, NODE_CHILDREN[child]) }, command);
}

/** The K3sNode step that runs a bundle script. */
function stepOfScript(script: string): "osPrep" | "apply" | "preflight" {
  const step = ({ [OS_PREP_SCRIPT]: "osPrep", [APPLY_SCRIPT]: "apply", [PREFLIGHT_SCRIPT]: "preflight" } as const)[script];
  if (!step) throw new Error(`${script} is not a node step's script`);
  return step;
}

export function planCluster(config: ResolvedConfig, options: PlanOptions = {}): ClusterPlan {
  const topology = clusterTopology(config);
  const plan = (n: NodeConfig) => planNodeContext({ ...nodeContext(config, n, topology), hasRegistryAuth: options.hasRegistryAuth });
  // The first server in config order initialises the cluster; the others join in config order.
  // Entries armed for removal get no steps at all (docs/removing-and-replacing-nodes.md "Removing a node").
  const managed = managedNodes(config);
  const ordered = [...managed.filter((n) => n.role === "server"), ...managed.filter((n) => n.role === "agent")];
  const first = plan(topology.firstServer);
  return {
    topology,
    nodes: ordered.map((n) => (n === topology.firstServer ? first : plan(n))),
    decommissioned: config.nodes.filter((n) => n.decommission === true),
    kubeconfigCommand: asRoot(first.sshUser, sh`cat ${PATHS.kubeconfig}`).text,
  };
}

/** The stdin of a node's `secrets` command: every secret file rendered, in plan order. */
export function renderSecretsDocument(plan: Pick<NodePlan, "secretFiles">, secrets: NodeSecrets): string {
  return secretsDocument(plan.secretFiles.map((f) => f.render(secrets)));
}
