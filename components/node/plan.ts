import { createHash } from "node:crypto";
import { parse, stringify } from "yaml";
import { splitNodeLabels } from "../config/labels";
import { FlagValue, NodeConfig, ResolvedConfig } from "../config/schema";
import { Placement, renderApplyScript, renderInstallScript, STAGING_DIR } from "../k3s/install";
import {
  ClusterSecrets,
  clusterTopology,
  ClusterTopology,
  mergeFlags,
  nodeRole,
  NodeRole,
  PATHS,
  RegistryAuth,
  renderAuditPolicy,
  renderConfigYaml,
  renderPsaYaml,
  renderRegistriesYaml,
  renderSecretDropIn,
  configYamlObject,
  secretDropInKeys,
} from "../k3s/render";
import { renderKeepKeysWrite } from "../encryption/keep-keys";
import { renderOsPrepScript } from "../os-prep/render";
import { vipWaitSnippet } from "../kube-vip/render";
import { containerdTemplateFile, serverManifests } from "../manifests/render";
import { runtimeNodeLabels } from "../runtimes/render";
import { serviceLbLabelsToRemove, serviceLbNodeLabels } from "../servicelb/pools";
import { joinShell, raw, Shell, sh } from "../shell/sh";
import { serverPreInstall, upgradeGuard, upgradePostInstall } from "../upgrade/render";
import { BUNDLE_NAME, renderBundle, secretsDocument, secretsWriteScript } from "./bundle";
import { renderUpstreamResolvConf } from "../dns/render";
import {
  ENCRYPTION_CONFIG_PATH,
  EncryptionKeys,
  enableOnExistingClusterSnippet,
  encryptionModeGuard,
  encryptionServerFlags,
  renderEncryptionConfig,
} from "../encryption/render";

/**
 * The per-node plan: every file and command a node gets, computed from config alone. Components
 * turn it into resources; `npm run render` writes it to disk. Pure: no Pulumi, no I/O.
 */

export interface StagedFile {
  /** Name in the staging directory, also the resource-name suffix. */
  name: string;
  content: string;
  /** Where apply.sh installs it; scripts that only run from staging have none. */
  target?: string;
  mode: string;
  /** `false`: K3s picks the file up while running (manifests directory); placing it restarts nothing. */
  restart?: boolean;
}

export interface NodeSecrets extends ClusterSecrets {
  registryAuth?: RegistryAuth;
  encryptionKeys?: EncryptionKeys;
}

/** A file that carries secrets: written over SSH from Pulumi secrets, never staged in clear. */
export interface SecretFile {
  name: string;
  target: string;
  mode: string;
  render: (secrets: NodeSecrets) => string;
  /** Shell that writes stdin to `target` instead of a plain atomic write (e.g. keeping deployed keys). */
  writeScript?: string;
}

export interface NodePlan {
  node: NodeConfig;
  role: NodeRole;
  hardening: ResolvedConfig["k3s"]["hardening"];
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
  /** `secrets` writes every secret file from one stdin document (secretsDocument). */
  commands: { stage: string; secrets: string; osPrep: string; apply: string };
}

export interface ClusterPlan {
  topology: ClusterTopology;
  /** Servers in join order (first server first), then agents. */
  nodes: NodePlan[];
  kubeconfigCommand: string;
}

/** Extra server-side material from other components (e.g. secrets encryption). */
export interface ServerExtension {
  config?: Record<string, FlagValue>;
  files?: StagedFile[];
  secretFiles?: SecretFile[];
  directories?: string[];
}

export interface PlanOptions {
  /** Whether registry credentials exist; if so registries.yaml becomes a secret file. */
  hasRegistryAuth?: boolean;
  server?: ServerExtension;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Runs a command as root: directly for root, through non-interactive sudo otherwise. */
export function asRoot(user: string, command: Shell): Shell {
  return user === "root" ? command : sh`sudo -n ${command}`;
}

/** Runs the script given on stdin as root (no staging needed: lifecycle steps send scripts this way). */
export function stdinScriptCommand(user: string): string {
  return asRoot(user, sh`bash -s`).text;
}

/** Server flags other components contribute (secrets encryption, program extensions). */
function serverExtraFlags(config: ResolvedConfig, node: NodeConfig, options: PlanOptions): Record<string, FlagValue> {
  return node.role === "server" ? mergeFlags(encryptionServerFlags(config), options.server?.config ?? {}) : {};
}

/**
 * The flags a node ends up with, as K3s merges them: config.yaml plus the keys of its drop-ins.
 * `flags` holds no secret (config.yaml never does); `secretFlags` names the drop-in's keys only.
 * Registered on each K3sNode so policies check what a node really gets.
 */
export function finalNodeFlags(config: ResolvedConfig, node: NodeConfig, options: PlanOptions = {}): { flags: Record<string, FlagValue>; secretFlags: string[] } {
  return { flags: configYamlObject(config, node, serverExtraFlags(config, node, options)), secretFlags: secretDropInKeys(config, node) };
}

export function planNode(config: ResolvedConfig, node: NodeConfig, options: PlanOptions = {}): NodePlan {
  const role = nodeRole(config, node);
  const isServer = node.role === "server";
  const cis = config.k3s.hardening === "cis";
  const sshUser = node.ssh.user ?? config.ssh.user;
  const ext = isServer ? options.server ?? {} : {};
  const serverFlags = serverExtraFlags(config, node, options);

  const files: StagedFile[] = [
    { name: "config.yaml", content: renderConfigYaml(config, node, serverFlags), target: PATHS.configYaml, mode: "0600" },
  ];
  const secretFiles: SecretFile[] = [
    {
      name: "secrets-dropin",
      target: PATHS.secretDropIn,
      mode: "0600",
      render: (s) => renderSecretDropIn(config, node, s),
    },
  ];

  const publicRegistries = renderRegistriesYaml(config.k3s, node.name);
  if (options.hasRegistryAuth) {
    secretFiles.push({
      name: "registries",
      target: PATHS.registriesYaml,
      mode: "0600",
      render: (s) => renderRegistriesYaml(config.k3s, node.name, s.registryAuth ?? {}) ?? "",
    });
  } else if (publicRegistries) {
    files.push({ name: "registries.yaml", content: publicRegistries, target: PATHS.registriesYaml, mode: "0600" });
  }

  const resolvConf = renderUpstreamResolvConf(config);
  if (resolvConf) files.push({ name: "resolv.conf", content: resolvConf, target: PATHS.upstreamResolvConf, mode: "0644" });

  const directories = [...(ext.directories ?? [])];
  if (isServer && cis) {
    files.push({ name: "psa.yaml", content: renderPsaYaml(), target: PATHS.psaYaml, mode: "0600" });
    files.push({ name: "audit.yaml", content: renderAuditPolicy(), target: PATHS.auditYaml, mode: "0600" });
    directories.push(PATHS.auditLogDir);
  }
  if (isServer && config.encryption.enabled && config.encryption.mode === "custom") {
    secretFiles.push({
      name: "encryption-config",
      target: ENCRYPTION_CONFIG_PATH,
      mode: "0600",
      render: (s) => renderEncryptionConfig(config.encryption, s.encryptionKeys ?? {}),
      writeScript: renderKeepKeysWrite(ENCRYPTION_CONFIG_PATH, "0600"),
    });
  }
  if (isServer) {
    for (const m of serverManifests(config)) files.push({ name: m.name, content: m.content, target: m.target, mode: "0600", restart: false });
  }
  const template = containerdTemplateFile(config, node);
  if (template) files.push({ ...template, mode: "0600" });
  files.push(...(ext.files ?? []));
  secretFiles.push(...(ext.secretFiles ?? []));

  const placements: Placement[] = files
    .filter((f): f is StagedFile & { target: string } => f.target !== undefined)
    .map((f) => ({ staged: f.name, target: f.target, mode: f.mode, ...(f.restart === false ? { restart: false } : {}) }));

  const osPrep = renderOsPrepScript(config, node);
  const install = renderInstallScript(config, node);
  // Agents join through the API VIP only once it answers (kube-vip comes up after the servers).
  // Upgrades (components/upgrade): guards first, the server's backup/cordon/drain before the
  // install, wait/uncordon/record after it.
  const preInstall = joinShell([
    role === "first-server" ? enableOnExistingClusterSnippet(config) : role === "agent" ? vipWaitSnippet(config) : raw(""),
    serverPreInstall(config, node),
  ]);
  // The first server sees the running cluster's encryption state before anything is placed.
  const preflight = joinShell([role === "first-server" ? encryptionModeGuard(config) : raw(""), upgradeGuard(config, node)]);
  const apply = renderApplyScript(config, node, placements, secretFiles.map((s) => s.target), directories, preInstall, preflight, upgradePostInstall(config, node));
  files.push(
    { name: "os-prep.sh", content: osPrep, mode: "0700" },
    { name: "install-k3s.sh", content: install, mode: "0700" },
    { name: "apply.sh", content: apply, mode: "0700" },
  );

  const applyInputs = files.filter((f) => f.name !== "os-prep.sh").map((f) => `${f.name}\0${f.content}`);
  const bundle = renderBundle(`node ${node.name} (${role})`, files);
  // Each step unpacks the bundle before it runs its script: the copy is the only transfer.
  const runFromBundle = (script: string) => asRoot(sshUser, sh`bash ${`${STAGING_DIR}/${BUNDLE_NAME}`} ${script}`).text;
  return {
    node,
    role,
    hardening: config.k3s.hardening,
    finalFlags: finalNodeFlags(config, node, options),
    sshUser,
    files,
    secretFiles,
    postRegistrationLabels: {
      ...splitNodeLabels(node.labels).postRegistration,
      ...serviceLbNodeLabels(config, node),
      ...runtimeNodeLabels(node),
    },
    removedLabels: serviceLbLabelsToRemove(config, node),
    bundle: { name: BUNDLE_NAME, content: bundle, sha256: sha256(bundle) },
    hashes: { osPrep: sha256(osPrep), apply: sha256(applyInputs.join("\0")) },
    commands: {
      stage: asRoot(sshUser, sh`install -d -m 0700 -o ${sshUser} ${STAGING_DIR}`).text,
      secrets: asRoot(sshUser, sh`sh -c ${secretsWriteScript(secretFiles).text}`).text,
      osPrep: runFromBundle("os-prep.sh"),
      apply: runFromBundle("apply.sh"),
    },
  };
}

export function planCluster(config: ResolvedConfig, options: PlanOptions = {}): ClusterPlan {
  const topology = clusterTopology(config);
  const servers = config.nodes.filter((n) => n.role === "server");
  // The first server in config order initialises the cluster; the others join in config order.
  const ordered = [...servers, ...config.nodes.filter((n) => n.role === "agent")];
  const first = planNode(config, topology.firstServer, options);
  return {
    topology,
    nodes: ordered.map((n) => (n === topology.firstServer ? first : planNode(config, n, options))),
    kubeconfigCommand: asRoot(first.sshUser, sh`cat ${PATHS.kubeconfig}`).text,
  };
}

/** The stdin of a node's `secrets` command: every secret file rendered, in plan order. */
export function renderSecretsDocument(plan: Pick<NodePlan, "secretFiles">, secrets: NodeSecrets): string {
  return secretsDocument(plan.secretFiles.map((f) => f.render(secrets)));
}

/**
 * Rewrites the kubeconfig K3s writes (server https://127.0.0.1:6443, every name "default") so
 * it points at the cluster's API endpoint and names the cluster after the stack.
 */
export function rewriteKubeconfig(kubeconfig: string, apiEndpoint: string, clusterName: string): string {
  const doc = parse(kubeconfig) as KubeconfigDoc | null;
  if (!doc || !Array.isArray(doc.clusters)) {
    throw new Error(`the kubeconfig read from the first server (${PATHS.kubeconfig}) is empty or not a kubeconfig`);
  }
  const host = apiEndpoint.includes(":") ? `[${apiEndpoint}]` : apiEndpoint;
  for (const c of doc.clusters ?? []) {
    c.name = clusterName;
    if (c.cluster?.server) c.cluster.server = c.cluster.server.replace(/^https:\/\/[^/]+:(\d+)/, `https://${host}:$1`);
  }
  for (const u of doc.users ?? []) u.name = clusterName;
  for (const c of doc.contexts ?? []) {
    c.name = clusterName;
    if (c.context) Object.assign(c.context, { cluster: clusterName, user: clusterName });
  }
  doc["current-context"] = clusterName;
  return stringify(doc);
}

interface KubeconfigDoc {
  clusters?: Array<{ name: string; cluster?: { server?: string } }>;
  users?: Array<{ name: string }>;
  contexts?: Array<{ name: string; context?: Record<string, unknown> }>;
  "current-context"?: string;
}
