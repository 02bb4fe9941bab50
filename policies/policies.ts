import type {
  EnforcementLevel,
  PolicyResource,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import {
  asList,
  clusterNetworkFindings,
  coversSecrets,
  decommissionChecks,
  nodeAddressesInClusterNetworks,
  nodeFamilyFindings,
  prodServerCountFindings,
  restrictedNodeLabels,
  serverCounts,
} from "../components/config/rules";
import { FlagValue, isReservedNamespace, ResolvedConfig, TAINT } from "../components/config/schema";
import { cisWeakenings, FLAG_BY_NAME, SECRET_FLAGS } from "../components/config/flags";
import { cniFindings, dnsReachabilityFindings, podCidrAllocationFindings } from "../components/config/network-rules";
import { surfaceIssues, surfaceVerdict } from "../components/config/surfaces";
import { formatPath } from "../components/config/validate";
import { childName, clusterChildOf, NODE_CHILDREN, nodeChildOf, nodeResourceName, parseUrn, TYPES } from "../components/names";
import { operationSteps } from "../components/operations";
import { planCluster } from "../components/plan/node";
import { LB_POOL_LABEL, lbPools } from "../components/servicelb/pools";
import { maxUnavailableCount, upgradeProblem } from "../components/upgrade/versions";

/**
 * k3s-platform's CrossGuard policies. They read what the program registers: the K3sCluster
 * component's validated config (its only input), K3sNode inputs, the command/file resources and
 * the Kubernetes objects. Types come from the project's schema module, never re-declared.
 */

// Type tokens and child names come from the one names module (components/names.ts).
export { TYPES };

const TENANT_LABEL = "k3s-platform.io/tenant";

type Policy = ResourceValidationPolicy | StackValidationPolicy;
type ClusterCheck = (config: ResolvedConfig, args: ResourceValidationArgs, report: ReportViolation) => void;

/**
 * The policies that read only the K3sCluster component's config (clusterPolicy below): `npm run
 * render` runs these same objects on a config (tools/pack-check.ts), so it warns about what
 * preview will refuse without a rule of its own.
 */
export const clusterConfigPolicies: ResourceValidationPolicy[] = [];

/** A resource policy over the K3sCluster component's config. */
function clusterPolicy(
  name: string,
  description: string,
  enforcementLevel: EnforcementLevel,
  check: ClusterCheck,
  configSchema?: ResourceValidationPolicy["configSchema"],
): ResourceValidationPolicy {
  const policy: ResourceValidationPolicy = {
    name,
    description,
    enforcementLevel,
    configSchema,
    validateResource: (args, report) => {
      if (args.type !== TYPES.cluster) return;
      const config = args.props.config as ResolvedConfig | undefined;
      if (config) check(config, args, report);
    },
  };
  clusterConfigPolicies.push(policy);
  return policy;
}

/** Same, applied only to prod stacks. */
function prodPolicy(name: string, description: string, check: ClusterCheck, configSchema?: ResourceValidationPolicy["configSchema"]) {
  return clusterPolicy(name, description, "mandatory", (config, args, report) => {
    if (config.environment === "prod") check(config, args, report);
  }, configSchema);
}


interface K8sMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}
const meta = (r: { props: Record<string, unknown> }) => (r.props.metadata ?? {}) as K8sMeta;

/**
 * The object behind @pulumi/policy's props proxy. Policies get `props` wrapped in its
 * unknown-checking proxies (server.js: `unknownCheckingProxy(deserializeProperties(...))`), which
 * wrap every nested value, Promises included: awaiting a proxied Promise throws "Method
 * Promise.prototype.then called on incompatible receiver". The proxy answers the key
 * `__getSpecialProxyTarget` (proxy.js) with its target; plain objects (no proxy) are returned as is.
 */
function unproxied<T>(value: T): T {
  if (!value || typeof value !== "object") return value;
  const target = (value as Record<string, unknown>)["__getSpecialProxyTarget"];
  return target && typeof target === "object" ? (target as T) : value;
}

/** A possibly-Promise property of a props object, awaited on the real Promise, not its proxy. */
async function settled(obj: unknown, key: string): Promise<unknown> {
  if (!obj || typeof obj !== "object") return undefined;
  return await (unproxied(obj) as Record<string, unknown>)[key];
}

/** Text of a CopyToRemote source (a StringAsset in the engine, whose text is a promise). */
async function assetText(source: unknown): Promise<string> {
  const text = await settled(source, "text");
  return typeof text === "string" ? text : "";
}

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/^\s*(token|agent-token|datastore-endpoint)\s*:\s*\S/m, "a K3s token or datastore URL"],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
  [/^\s*password\s*:\s*\S/m, "a password"],
  [/^\s*-?\s*secret\s*:\s*\S/m, "an encryption key"],
  [/K3S_(AGENT_)?TOKEN=\S/, "a K3s token"],
];

// ---------------------------------------------------------------- cluster shape (prod)

const prodServerQuorum = prodPolicy(
  "prod-server-quorum",
  "Prod runs at least `minServers` servers after every up, an odd number, so embedded etcd keeps quorum through a failure (armed servers count: they run until their entry is deleted).",
  (config, args, report) => {
    const { minServers } = args.getConfig<{ minServers: number }>();
    for (const message of prodServerCountFindings(config, minServers)) report(message);
  },
  { properties: { minServers: { type: "integer", minimum: 1, default: 3 } } },
);

const prodDatastore = prodPolicy(
  "prod-datastore-ha",
  "Prod uses embedded etcd or an external datastore, never sqlite (single server, no HA).",
  (config, _args, report) => {
    if (config.k3s.datastore.type === "sqlite") report("prod must not use the sqlite datastore");
  },
);

const prodEncryption = prodPolicy(
  "prod-secrets-encryption",
  "Prod encrypts secrets at rest with a provider stronger than aescbc (secretbox, or a custom configuration).",
  (config, _args, report) => {
    const enc = config.encryption;
    if (!enc.enabled) return report("k3s-platform:encryption.enabled: prod must enable secrets encryption at rest (set encryption.enabled: true)");
    if (enc.mode === "k3s" && enc.provider === "aescbc") {
      report("k3s-platform:encryption.provider: aescbc (the default) is rated weak (padding oracle): set encryption.provider: secretbox, or a custom configuration");
    }
    if (enc.mode === "custom") {
      const group = enc.custom?.resources.find((g) => coversSecrets(g.resources));
      const first = group?.providers[0];
      if (first === "aescbc" || first === "identity") report(`k3s-platform:encryption.custom.resources: secrets are written with ${first}; put secretbox, aesgcm or kms first`);
    }
  },
);

const prodHardening = prodPolicy("prod-cis-hardening", "Prod applies the K3s CIS hardening profile.", (config, _args, report) => {
  if (config.k3s.hardening !== "cis") report(`prod hardening is "${config.k3s.hardening}"; set k3s.hardening: cis`);
});

const prodPinnedVersion = prodPolicy(
  "prod-pinned-version",
  "Prod pins an exact K3s release (v1.x.y+k3sN); channels move under you.",
  (config, _args, report) => {
    if (config.k3s.channel) report(`prod follows channel "${config.k3s.channel}"; pin k3s.version`);
    if (!config.k3s.version) report("prod has no exact k3s.version");
  },
);

const oddServerCount = clusterPolicy(
  "odd-server-count",
  "With more than one server, an even count adds no fault tolerance to etcd.",
  "advisory",
  (config, _args, report) => {
    const n = serverCounts(config).standing;
    if (config.k3s.datastore.type === "etcd" && n > 1 && n % 2 === 0) report(`${n} servers: etcd tolerates no more failures than with ${n - 1}`);
  },
);

const decommissionQuorum = clusterPolicy(
  "decommission-keeps-quorum",
  "Node removal keeps etcd quorum: never the last server, at most floor((n-1)/2) of n servers decommissioned at once (prod-server-quorum judges the count left when their entries are deleted).",
  "mandatory",
  (config, _args, report) => {
    const issues: string[] = [];
    decommissionChecks(config, (_path, message) => issues.push(message));
    for (const message of issues) report(message);
  },
);

// ---------------------------------------------------------------- free-form surfaces (allowlist)

const freeFormAllowlisted = clusterPolicy(
  "free-form-settings-allowlisted",
  "Prod's free-form settings (pass-through flags, *-arg entries, Traefik values, the containerd template, registry and S3 transport, firewall, images) are on the allowlist of settings known not to weaken the cluster, or carry a reasoned exception; no credential sits in a document in any environment.",
  "mandatory",
  (config, _args, report) => {
    for (const issue of surfaceIssues(config)) if (issue.refused) report(`${formatPath(issue.path)}: ${issue.message}`);
  },
);

const exceptionsReported = clusterPolicy(
  "allowlist-exceptions-reported",
  "Every exception to the free-form allowlist (k3s.exceptions) is reported on every preview with its reason, so reviewers see what a stack keeps off the list.",
  "advisory",
  (config, _args, report) => {
    for (const { finding, exception } of surfaceVerdict(config).excepted) {
      report(`exception for ${exception.setting} at ${formatPath(finding.path)}: ${finding.message} — reason: ${exception.reason}`);
    }
  },
);

// ---------------------------------------------------------------- nodes and networks

const restrictedLabels = clusterPolicy(
  "no-restricted-node-labels",
  "No node label in the kubernetes.io / k8s.io namespaces that NodeRestriction refuses (K3s would not start).",
  "mandatory",
  (config, _args, report) => {
    for (const { node, key } of restrictedNodeLabels(config.nodes)) report(`node ${node}: label ${key} is refused by NodeRestriction`);
  },
);

const wellFormedTaints = clusterPolicy(
  "well-formed-taints",
  "Node taints are key[=value]:NoSchedule|PreferNoSchedule|NoExecute.",
  "mandatory",
  (config, _args, report) => {
    for (const node of config.nodes) for (const t of node.taints) if (!TAINT.test(t)) report(`node ${node.name}: malformed taint "${t}"`);
  },
);

const disjointNetworks = clusterPolicy(
  "disjoint-networks",
  "Pod and service CIDRs (per IP family) do not overlap each other or any node address; a dual-stack cluster is dual-stack on every node.",
  "mandatory",
  (config, _args, report) => {
    for (const f of clusterNetworkFindings(config.k3s)) {
      if (f.field !== "serviceCidr") continue;
      const service = f.index === undefined ? asList(config.k3s.serviceCidr).join(",") : asList(config.k3s.serviceCidr)[f.index];
      report(f.message.startsWith("overlaps") ? `serviceCidr ${service} ${f.message}` : `serviceCidr ${f.message}`);
    }
    for (const hit of nodeAddressesInClusterNetworks(config)) report(`node ${hit.node} address ${hit.address} is inside ${hit.range}`);
    for (const f of nodeFamilyFindings(config)) report(`node ${f.node} ${f.field} ${f.message}`);
  },
);

const clusterDnsInServiceCidr = clusterPolicy(
  "cluster-dns-in-service-cidr",
  "Each cluster DNS address lies inside the service CIDR of its IP family.",
  "mandatory",
  (config, _args, report) => {
    for (const f of clusterNetworkFindings(config.k3s)) if (f.field === "clusterDns") report(`clusterDns ${f.message}`);
  },
);

// Settings K3s accepts but that cannot work where they land (issue 27): the same rules validation
// applies (components/config/network-rules.ts), on the config the program registers.
const networkSettingsWorkable = clusterPolicy(
  "network-settings-workable",
  "The CNI has its companion flags (flannel-backend none only with a CNI choice, which turns K3s' policy controller off), nodes across networks have the transport they need, every node gets a pod CIDR block kube-controller-manager can allocate, and no DNS upstream is out of a pod's reach (loopback, a family the pod network lacks).",
  "mandatory",
  (config, _args, report) => {
    for (const f of [...cniFindings(config), ...podCidrAllocationFindings(config), ...dnsReachabilityFindings(config)]) if (!f.warning) report(`${f.path.join(".")}: ${f.message}`);
  },
);

// Upgrades. The pack sees the config being deployed and, through the cluster's StackReference to
// its own stack (component.ts, CLUSTER_CHILDREN.deployed), the release the last `up` deployed: a
// change between the two is checked against the one table of upgrade rules (upgrade/paths.ts
// UPGRADE_RULES, through versions.ts upgradeProblem, as validation, preview:md and the host guard
// read it). What each host runs is checked on the host (components/upgrade/render.ts upgradeGuard).

/**
 * What the pack reads of the K3sCluster component's outputs (stack policies see outputs):
 * `deployed.k3sVersion`, the last `up`'s stack output, read through the `<cluster>-deployed`
 * StackReference (components/cluster/component.ts).
 */
interface DeployedView {
  deployed?: { k3sVersion?: unknown };
}

const upgradePathAllowed: StackValidationPolicy = {
  name: "upgrade-path-allowed",
  description:
    "A change of k3s.version from the release the last `up` deployed follows the upgrade rules (components/upgrade/paths.ts): no downgrade, one minor at a time, the required patch releases first (etcd 3.5.26 before etcd 3.6, 3.6.11 before 3.7).",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const cluster = args.resources.find((r) => r.type === TYPES.cluster);
    const config = cluster?.props.config as ResolvedConfig | undefined;
    const to = config?.k3s.version;
    const from = (cluster?.props as DeployedView | undefined)?.deployed?.k3sVersion;
    // A new stack has no outputs yet. A channel stack's output is the release its k3s-release step
    // recorded (program.ts), so its move to k3s.version is checked like any other; `channel:<name>`
    // (an unreadable record, or an output written before the record existed) has nothing to compare.
    if (!config || !to || typeof from !== "string" || !from.startsWith("v")) return;
    const problem = upgradeProblem(from, to, config.k3s.datastore.type === "etcd");
    if (problem) report(`k3s.version: the last up deployed ${from}; ${problem}`, cluster!.urn);
  },
};

const upgradeHonoursBudgets = clusterPolicy(
  "upgrade-drain-honours-disruption-budgets",
  "Upgrade drains evict pods through the Eviction API, so PodDisruptionBudgets hold (upgrade.drain.disableEviction is off).",
  "mandatory",
  (config, _args, report) => {
    if (config.upgrade.drain.disableEviction) report("upgrade.drain.disableEviction deletes pods instead of evicting them: PodDisruptionBudgets are bypassed during upgrades");
  },
);

const upgradeKeepsCapacity = clusterPolicy(
  "upgrade-keeps-agent-capacity",
  "An upgrade never takes every agent down at once (upgrade.maxUnavailable is below the agent count).",
  "mandatory",
  (config, _args, report) => {
    const agents = config.nodes.filter((n) => n.role === "agent" && n.decommission !== true).length;
    const batch = maxUnavailableCount(config.upgrade.maxUnavailable, agents);
    if (agents > 1 && batch >= agents) report(`upgrade.maxUnavailable ${config.upgrade.maxUnavailable} drains all ${agents} agents at once; no agent is left to run the workloads`);
  },
);

// ---------------------------------------------------------------- final node flags

/** What K3sNode registers (components/node/component.ts nodeInputs): the flags the node really gets. */
interface NodeProps {
  node?: { name?: string };
  role?: string;
  hardening?: string;
  /** What enforces NetworkPolicy instead of K3s' controller (registered only then). */
  networkPolicyBy?: string;
  flags?: Record<string, FlagValue>;
  secretFlags?: string[];
}

/** Applies `check` to every registered K3sNode that carries its final flags. */
function nodeFlagsPolicy(name: string, description: string, check: (props: Required<Pick<NodeProps, "flags">> & NodeProps, report: ReportViolation) => void): ResourceValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    validateResource: (args, report) => {
      if (args.type !== TYPES.node) return;
      const props = args.props as NodeProps;
      if (!props.flags) return report(`${props.node?.name ?? args.name}: the node registers no final flags`);
      check(props as Required<Pick<NodeProps, "flags">> & NodeProps, report);
    },
  };
}

const finalFlagsCis = nodeFlagsPolicy(
  "node-final-flags-cis",
  "Under CIS hardening, the flags a node finally gets (config.yaml and its drop-ins, pass-through included) keep the CIS profile.",
  (props, report) => {
    if (props.hardening !== "cis") return;
    const role = props.role === "agent" ? "agent" : "server";
    for (const [flag, message] of cisWeakenings(props.flags, role, props.networkPolicyBy)) report(`node ${props.node?.name}: ${flag}: ${message}`);
  },
);

const finalFlagsSafe = nodeFlagsPolicy(
  "node-final-flags-safe",
  "No node's config.yaml carries a credential, a destructive flag (cluster-reset…) or a flag k3s-platform refuses (data-dir, config…).",
  (props, report) => {
    for (const flag of Object.keys(props.flags)) {
      const spec = FLAG_BY_NAME.get(flag);
      if (SECRET_FLAGS.has(flag)) report(`node ${props.node?.name}: ${flag} is a credential in config.yaml (a staged file): it belongs in the secrets drop-in`);
      else if (spec?.class === "destructive" || spec?.class === "refused") report(`node ${props.node?.name}: ${flag} (${spec.class}): ${spec.use}`);
    }
  },
);

// ---------------------------------------------------------------- SSH and secrets

const hostKeysPinned: ResourceValidationPolicy = {
  name: "ssh-host-keys-pinned",
  description: "Every SSH connection (and its bastion) pins the host key, so a swapped host cannot receive secrets.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== TYPES.command && args.type !== TYPES.copy) return;
    const connection = args.props.connection as { host?: string; hostKey?: string; proxy?: { host?: string; hostKey?: string } } | undefined;
    if (!connection) return;
    if (!connection.hostKey) report(`${args.name}: no hostKey for ${connection.host}`);
    if (connection.proxy && !connection.proxy.hostKey) report(`${args.name}: no hostKey for bastion ${connection.proxy.host}`);
  },
};

const secretCommandsNotLogged: ResourceValidationPolicy = {
  name: "secret-commands-not-logged",
  description: "Commands that carry secrets (each node's secret file writes, kubeconfig fetch) log nothing and keep stdin/stdout/stderr secret.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== TYPES.command) return;
    // Parsed exactly against the parent's name (`<node>-secrets`, `<cluster>-kubeconfig`).
    const parent = args.opts.parent ? parseUrn(args.opts.parent) : undefined;
    const writesSecret = parent?.type === TYPES.node && nodeChildOf(args.name, parent.name) === "secrets";
    const readsSecret = parent?.type === TYPES.cluster && clusterChildOf(args.name, parent.name) === "kubeconfig";
    if (!writesSecret && !readsSecret) return;
    if (args.props.logging !== "none") report(`${args.name}: logging must be "none"`);
    const wanted = ["stdout", "stderr", ...(writesSecret ? ["stdin"] : [])];
    const missing = wanted.filter((o) => !args.opts.additionalSecretOutputs?.includes(o));
    if (missing.length) report(`${args.name}: ${missing.join(", ")} not in additionalSecretOutputs`);
  },
};

const noPlaintextSecrets: ResourceValidationPolicy = {
  name: "no-plaintext-secrets",
  description: "Tokens, private keys, passwords and encryption keys never travel in staged files or command lines.",
  enforcementLevel: "mandatory",
  validateResource: async (args, report) => {
    let texts: Array<[string, string]> = [];
    if (args.type === TYPES.copy) texts = [["source", await assetText(args.props.source)]];
    else if (args.type === TYPES.command) {
      texts = (["create", "update", "delete"] as const).map((k): [string, string] => [k, String(args.props[k] ?? "")]);
    } else return;
    for (const [field, text] of texts) {
      for (const [pattern, what] of SECRET_PATTERNS) if (pattern.test(text)) report(`${args.name}.${field} contains ${what} in plain text`);
    }
  },
};

// ---------------------------------------------------------------- encryption configuration

const identityNotFirst = clusterPolicy(
  "encryption-identity-not-first",
  "In an EncryptionConfiguration, identity is never first for secrets nor ahead of real providers (that stores data unencrypted).",
  "mandatory",
  (config, _args, report) => {
    const enc = config.encryption;
    if (!enc.enabled || enc.mode !== "custom" || !enc.custom) return;
    enc.custom.resources.forEach((group, i) => {
      if (group.providers[0] !== "identity") return;
      if (coversSecrets(group.resources)) report(`resources[${i}] (${group.resources.join(", ")}): identity first leaves secrets unencrypted`);
      else if (group.providers.length > 1) report(`resources[${i}]: identity first writes unencrypted although ${group.providers.slice(1).join(", ")} follow`);
    });
  },
);

const aesgcmRotation = clusterPolicy(
  "encryption-aesgcm-rotation",
  "aesgcm keys must be rotated every 200k writes; prefer secretbox or KMS v2.",
  "advisory",
  (config, _args, report) => {
    const uses = config.encryption.enabled && config.encryption.custom?.resources.some((g) => g.providers.includes("aesgcm"));
    if (uses) report("aesgcm is in use: rotate its key before 200k writes (set encryption.rotation) or switch to secretbox");
  },
);

// ---------------------------------------------------------------- Kubernetes objects

const quotaBoundsCpuMemory: ResourceValidationPolicy = {
  name: "quota-bounds-cpu-memory",
  description: "Every ResourceQuota bounds cpu and memory.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== TYPES.resourceQuota) return;
    const hard = ((args.props.spec as { hard?: Record<string, string> } | undefined)?.hard ?? {}) as Record<string, string>;
    const bounds = (r: string) => [`requests.${r}`, `limits.${r}`, r].some((k) => k in hard);
    if (!bounds("cpu")) report(`${meta(args).namespace}/${meta(args).name}: no cpu bound`);
    if (!bounds("memory")) report(`${meta(args).namespace}/${meta(args).name}: no memory bound`);
  },
};

const corednsUntouched: ResourceValidationPolicy = {
  name: "no-coredns-configmap-edits",
  description: "K3s rewrites kube-system/coredns; customise through coredns-custom instead.",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type === TYPES.configMap && meta(args).namespace === "kube-system" && meta(args).name === "coredns") {
      report("kube-system/coredns is managed by K3s and will be overwritten; use coredns-custom");
    }
  },
};

const netpolMetadataName: ResourceValidationPolicy = {
  name: "netpol-select-namespaces-by-metadata-name",
  description: "NetworkPolicies select namespaces by kubernetes.io/metadata.name, which Kubernetes sets, not by labels anyone can set.",
  enforcementLevel: "advisory",
  validateResource: (args, report) => {
    if (args.type !== TYPES.networkPolicy) return;
    const text = JSON.stringify(args.props.spec ?? {});
    const selectors = [...text.matchAll(/"namespaceSelector":\{"matchLabels":\{([^}]*)\}/g)].map((m) => m[1]!);
    for (const labels of selectors) {
      const keys = [...labels.matchAll(/"([^"]+)":/g)].map((m) => m[1]);
      if (keys.some((k) => k !== "kubernetes.io/metadata.name")) report(`${meta(args).namespace}/${meta(args).name}: namespaceSelector uses ${keys.join(", ")}`);
    }
  },
};

const tenantNotReserved: ResourceValidationPolicy = {
  name: "tenant-not-reserved-namespace",
  description: "No tenant is a system or Pod-Security-exempt namespace (kube-system, cis-operator-system, …).",
  enforcementLevel: "mandatory",
  validateResource: (args, report) => {
    if (args.type !== TYPES.namespace || meta(args).labels?.[TENANT_LABEL] !== "true") return;
    if (isReservedNamespace(meta(args).name ?? "")) report(`namespace ${meta(args).name} is reserved or exempt from Pod Security; it cannot be a tenant`);
  },
};

const LEVELS = ["privileged", "baseline", "restricted"];
const tenantPodSecurity: ResourceValidationPolicy = {
  name: "tenant-pod-security",
  description: "Tenant namespaces enforce a Pod Security level at least `minimumLevel`.",
  enforcementLevel: "mandatory",
  configSchema: { properties: { minimumLevel: { type: "string", enum: LEVELS, default: "baseline" } } },
  validateResource: (args, report) => {
    if (args.type !== TYPES.namespace || meta(args).labels?.[TENANT_LABEL] !== "true") return;
    const { minimumLevel } = args.getConfig<{ minimumLevel: string }>();
    const level = meta(args).labels?.["pod-security.kubernetes.io/enforce"];
    if (!level) return report(`namespace ${meta(args).name}: no pod-security.kubernetes.io/enforce label`);
    if (LEVELS.indexOf(level) < LEVELS.indexOf(minimumLevel)) report(`namespace ${meta(args).name} enforces ${level}; at least ${minimumLevel} is required`);
  },
};

// ---------------------------------------------------------------- stack-wide

/** Objects of `type` grouped by namespace, in one pass (a per-namespace scan is O(n²) in big stacks). */
function byNamespace(resources: PolicyResource[], type: string): Map<string, PolicyResource[]> {
  const out = new Map<string, PolicyResource[]>();
  for (const r of resources) {
    if (r.type !== type) continue;
    const ns = meta(r).namespace ?? "";
    const list = out.get(ns);
    if (list) list.push(r);
    else out.set(ns, [r]);
  }
  return out;
}

function isDefaultDeny(p: PolicyResource): boolean {
  const spec = (p.props.spec ?? {}) as { podSelector?: { matchLabels?: object; matchExpressions?: unknown[] }; policyTypes?: string[]; ingress?: unknown[]; egress?: unknown[] };
  const allPods = !spec.podSelector || (!Object.keys(spec.podSelector.matchLabels ?? {}).length && !(spec.podSelector.matchExpressions ?? []).length);
  const types = spec.policyTypes ?? [];
  return allPods && types.includes("Ingress") && types.includes("Egress") && !(spec.ingress ?? []).length && !(spec.egress ?? []).length;
}

function allowsDns(p: PolicyResource): boolean {
  const spec = (p.props.spec ?? {}) as { egress?: Array<{ ports?: Array<{ port?: number | string; protocol?: string }> }> };
  const ports = (spec.egress ?? []).flatMap((e) => e.ports ?? []);
  return ["UDP", "TCP"].every((proto) => ports.some((x) => Number(x.port) === 53 && (x.protocol ?? "TCP") === proto));
}

const tenantGuardrails: StackValidationPolicy = {
  name: "tenant-namespace-guardrails",
  description: "Every tenant namespace has exactly one ResourceQuota, one LimitRange, a default-deny NetworkPolicy and a DNS allow.",
  enforcementLevel: "mandatory",
  validateStack: (args: StackValidationArgs, report) => {
    const tenants = args.resources.filter((r) => r.type === TYPES.namespace && meta(r).labels?.[TENANT_LABEL] === "true");
    const [allQuotas, allLimits, allPolicies] = [TYPES.resourceQuota, TYPES.limitRange, TYPES.networkPolicy].map((t) => byNamespace(args.resources, t));
    for (const ns of tenants) {
      const name = meta(ns).name!;
      const quotas = allQuotas!.get(name)?.length ?? 0;
      const limits = allLimits!.get(name)?.length ?? 0;
      const policies = allPolicies!.get(name) ?? [];
      if (quotas !== 1) report(`namespace ${name}: ${quotas} ResourceQuotas (want exactly 1)`, ns.urn);
      if (limits !== 1) report(`namespace ${name}: ${limits} LimitRanges (want exactly 1)`, ns.urn);
      if (!policies.some(isDefaultDeny)) report(`namespace ${name}: no default-deny NetworkPolicy`, ns.urn);
      if (!policies.some(allowsDns)) report(`namespace ${name}: no NetworkPolicy allows DNS (TCP+UDP 53)`, ns.urn);
    }
  },
};

/**
 * All resources a resource depends on, transitively. Memoised per stack check: agents share the
 * servers' chain, so walking it afresh for every agent would be O(n²) in the number of nodes.
 */
function ancestorsOf(): (from: PolicyResource) => Set<string> {
  const memo = new Map<string, Set<string>>();
  const visit = (r: PolicyResource): Set<string> => {
    const known = memo.get(r.urn);
    if (known) return known;
    const seen = new Set<string>();
    memo.set(r.urn, seen); // a cycle (which the engine refuses anyway) ends here
    for (const d of r.dependencies ?? []) {
      seen.add(d.urn);
      for (const u of visit(d)) seen.add(u);
    }
    return seen;
  };
  return visit;
}

/** Each K3sNode's role by URN, looked up once (a search per child would be O(n²)). */
function nodeRoles(resources: PolicyResource[]): Map<string, string> {
  return new Map(resources.filter((r) => r.type === TYPES.node).map((r) => [r.urn, String(r.props.role)]));
}

/** The `<node>-apply` command of every K3sNode whose role is in `roles`. */
function applySteps(resources: PolicyResource[], roles: string[], nodes = nodeRoles(resources)): PolicyResource[] {
  return resources.filter(
    (r) => r.type === TYPES.command && r.parent?.type === TYPES.node && nodeChildOf(r.name, r.parent.name) === "apply" && roles.includes(nodes.get(r.parent.urn) ?? ""),
  );
}

/**
 * The steps that stop or restart K3s on a server, as the operations list declares them
 * (components/operations: every step with `restartsK3s` on a server; a node step restarts through
 * its apply), from each K3sCluster's registered config: the list the program declared its steps
 * from, so a new restarting operation is checked without a line here. Matched by exact name.
 */
function serverRestarts(resources: PolicyResource[]): PolicyResource[] {
  const names = new Set<string>();
  for (const cluster of resources.filter((r) => r.type === TYPES.cluster && r.props.config)) {
    // A plain copy: the policy SDK hands props over as proxies.
    const config = JSON.parse(JSON.stringify(cluster.props.config)) as ResolvedConfig;
    for (const step of operationSteps(config, planCluster(config))) {
      if (!step.restartsK3s || step.host.role !== "server" || step.runs === "on-delete") continue;
      names.add(step.runs === "node" ? childName(nodeResourceName(cluster.name, step.name), NODE_CHILDREN.apply) : childName(cluster.name, step.name));
    }
  }
  return resources.filter((r) => r.type === TYPES.command && names.has(r.name));
}

const serversOneAtATime: StackValidationPolicy = {
  name: "servers-restart-one-at-a-time",
  description: "Every step that restarts a K3s server (apply, encryption restarts, certificate rotation) is ordered against every other, so two servers never restart at once.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const restarts = serverRestarts(args.resources);
    const ancestors = ancestorsOf();
    const before = new Map(restarts.map((r) => [r.urn, ancestors(r)]));
    for (let i = 0; i < restarts.length; i++) {
      for (let j = i + 1; j < restarts.length; j++) {
        const [a, b] = [restarts[i]!, restarts[j]!];
        if (!before.get(a.urn)!.has(b.urn) && !before.get(b.urn)!.has(a.urn)) {
          report(`${a.name} and ${b.name} may restart servers at the same time`, a.urn);
        }
      }
    }
  },
};

const agentsAfterServers: StackValidationPolicy = {
  name: "agents-join-after-servers",
  description: "Agents install only after every server has applied.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const nodes = nodeRoles(args.resources);
    const ancestors = ancestorsOf();
    const serverApplies = applySteps(args.resources, ["first-server", "server"], nodes);
    for (const agent of applySteps(args.resources, ["agent"], nodes)) {
      const before = ancestors(agent);
      const missing = serverApplies.filter((s) => !before.has(s.urn)).map((s) => s.name);
      if (missing.length) report(`${agent.name} does not wait for ${missing.join(", ")}`, agent.urn);
    }
  },
};

const lbNeedsPool: StackValidationPolicy = {
  name: "loadbalancer-needs-pool",
  description: "When ServiceLB pools are configured, every LoadBalancer Service names one of them.",
  enforcementLevel: "mandatory",
  validateStack: (args, report) => {
    const cluster = args.resources.find((r) => r.type === TYPES.cluster);
    const config = cluster?.props.config as ResolvedConfig | undefined;
    // The pools as configured (k3s.serviceLb.pools): the same definition the node labels come from.
    const pools = new Set(config ? lbPools(config) : []);
    if (pools.size === 0) return;
    for (const svc of args.resources.filter((r) => r.type === TYPES.service)) {
      if ((svc.props.spec as { type?: string } | undefined)?.type !== "LoadBalancer") continue;
      const pool = meta(svc).labels?.[LB_POOL_LABEL];
      if (!pool || !pools.has(pool)) report(`Service ${meta(svc).namespace}/${meta(svc).name}: LoadBalancer without a configured pool (${[...pools].join(", ")})`, svc.urn);
    }
  },
};

export const policies: Policy[] = [
  prodServerQuorum,
  prodDatastore,
  prodEncryption,
  prodHardening,
  prodPinnedVersion,
  oddServerCount,
  decommissionQuorum,
  restrictedLabels,
  freeFormAllowlisted,
  exceptionsReported,
  finalFlagsCis,
  finalFlagsSafe,
  tenantNotReserved,
  wellFormedTaints,
  disjointNetworks,
  clusterDnsInServiceCidr,
  networkSettingsWorkable,
  upgradeHonoursBudgets,
  upgradeKeepsCapacity,
  upgradePathAllowed,
  hostKeysPinned,
  secretCommandsNotLogged,
  noPlaintextSecrets,
  identityNotFirst,
  aesgcmRotation,
  quotaBoundsCpuMemory,
  corednsUntouched,
  netpolMetadataName,
  tenantPodSecurity,
  tenantGuardrails,
  serversOneAtATime,
  agentsAfterServers,
  lbNeedsPool,
];
