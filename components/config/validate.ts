import { z } from "zod";
import { AGENT_FLAG_SET, MANAGED_FLAGS, SERVER_FLAGS } from "../k3s/flags";
import { classifyNodeLabel } from "./labels";
import { cidrContains, cidrsOverlap, isIp } from "./net";
import { PROJECT, ResolvedConfig, StackConfig, stackSchema } from "./schema";

export type ConfigPath = ReadonlyArray<string | number>;

export interface ConfigIssue {
  /** e.g. `k3s-platform:nodes[2].labels["kubernetes.io/role"]` */
  path: string;
  message: string;
}

/** Thrown before any resource is registered; lists every problem, each with its config path. */
export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(
      `invalid ${PROJECT} stack configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Formats a path as Pulumi users write it: `k3s-platform:nodes[2].labels`. */
export function formatPath(path: ConfigPath): string {
  let out = `${PROJECT}:`;
  path.forEach((segment, index) => {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (index === 0) out += segment;
    else if (IDENTIFIER.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  });
  return out;
}

type Report = (path: ConfigPath, message: string) => void;

/** Checks that span several fields; the schema has already checked each field alone. */
export function crossFieldChecks(config: StackConfig, report: Report): void {
  const { k3s, nodes, environment } = config;

  // --- version pinning
  if (k3s.version && k3s.channel) report(["k3s", "channel"], "set either k3s.version or k3s.channel, not both");
  if (!k3s.version && !k3s.channel) report(["k3s", "version"], "an exact K3s version (or, outside prod, a channel) is required");
  if (environment === "prod" && k3s.channel) report(["k3s", "channel"], "prod must pin an exact k3s.version; channels move");
  if (k3s.airgap.enabled && !k3s.version) report(["k3s", "version"], "air-gap installs need an exact k3s.version matching the pre-staged binary");
  // The install script runs as root: prod pins what it runs (install-k3s.sh checks it).
  if (environment === "prod" && !k3s.airgap.enabled && !k3s.installScriptSha256) {
    report(["k3s", "installScriptSha256"], `prod downloads the install script from ${k3s.installScriptUrl}: set its sha256 (sha256sum of the file) so it is checked before it runs as root`);
  }
  // firewall.mode open scopes the K3s ports to node addresses: each node needs one.
  if (k3s.firewall.mode === "open") {
    nodes.forEach((node, i) => {
      if (!node.nodeIp && !isIp(node.host)) {
        report(["nodes", i, "nodeIp"], `node ${node.name}: host ${node.host} is a name; k3s.firewall.mode open opens the cluster ports to node addresses, so set nodeIp`);
      }
    });
  }

  // --- networks
  if (cidrsOverlap(k3s.clusterCidr, k3s.serviceCidr)) {
    report(["k3s", "serviceCidr"], `overlaps clusterCidr ${k3s.clusterCidr}`);
  }
  if (!cidrContains(k3s.serviceCidr, k3s.clusterDns)) {
    report(["k3s", "clusterDns"], `${k3s.clusterDns} is outside serviceCidr ${k3s.serviceCidr}`);
  }
  nodes.forEach((node, i) => {
    const addresses: Array<[string, string]> = [["nodeIp", node.nodeIp ?? ""], ["externalIp", node.externalIp ?? ""], ["host", node.host]];
    for (const [field, address] of addresses) {
      if (!isIp(address)) continue;
      for (const [cidrName, range] of [["clusterCidr", k3s.clusterCidr], ["serviceCidr", k3s.serviceCidr]] as const) {
        if (cidrContains(range, address)) {
          report(["nodes", i, field], `${address} lies inside k3s.${cidrName} ${range}; pod/service networks must not overlap host addresses`);
        }
      }
    }
  });

  // --- nodes
  const servers = nodes.filter((n) => n.role === "server");
  if (servers.length === 0) report(["nodes"], "at least one node must have role: server");
  if (k3s.datastore.type === "sqlite" && servers.length > 1) {
    report(["k3s", "datastore"], `sqlite supports a single server, but ${servers.length} nodes have role: server (use etcd or external)`);
  }
  const seenNames = new Map<string, number>();
  const seenHosts = new Map<string, number>();
  nodes.forEach((node, i) => {
    const firstName = seenNames.get(node.name);
    if (firstName !== undefined) report(["nodes", i, "name"], `duplicate node name "${node.name}" (also nodes[${firstName}])`);
    else seenNames.set(node.name, i);
    const hostKey = `${node.host.toLowerCase()}:${node.ssh.port ?? config.ssh.port}`;
    const firstHost = seenHosts.get(hostKey);
    if (firstHost !== undefined) report(["nodes", i, "host"], `duplicate host "${node.host}" (also nodes[${firstHost}])`);
    else seenHosts.set(hostKey, i);

    for (const key of Object.keys(node.labels)) {
      if (classifyNodeLabel(key) === "restricted") {
        report(
          ["nodes", i, "labels", key],
          "labels in the kubernetes.io/k8s.io namespaces are refused by NodeRestriction and K3s would fail to start; " +
            "use your own prefix, or node-role.kubernetes.io/* (applied after registration)",
        );
      }
    }
  });

  // --- pass-through flag maps
  const checkFlags = (mapName: "extraServerConfig" | "extraAgentConfig", known: ReadonlySet<string>, role: string) => {
    for (const key of Object.keys(k3s[mapName])) {
      if (MANAGED_FLAGS[key]) {
        report(["k3s", mapName, key], `"${key}" is managed by k3s-platform; set ${MANAGED_FLAGS[key]} instead`);
      } else if (!known.has(key)) {
        const hint = role === "agent" && SERVER_FLAGS.has(key) ? " (it is a server-only flag; k3s agent would refuse to start)" : "";
        report(["k3s", mapName, key], `"${key}" is not a k3s ${role} flag${hint}`);
      }
    }
  };
  checkFlags("extraServerConfig", SERVER_FLAGS, "server");
  checkFlags("extraAgentConfig", AGENT_FLAG_SET, "agent");

  encryptionChecks(config, report);
  tenantChecks(config, report);
  dnsChecks(config, report);
}

function encryptionChecks(config: StackConfig, report: Report): void {
  const { encryption: enc, k3s } = config;
  const hardening = k3s.hardening ?? (config.environment === "prod" ? "cis" : "none");
  if (hardening === "cis" && enc.enabled === false) {
    report(["encryption", "enabled"], "CIS hardening requires secrets encryption at rest");
  }
  if (enc.mode === "custom" && !enc.custom) report(["encryption", "custom"], "mode: custom needs custom.resources");
  if (enc.mode === "k3s" && enc.custom) report(["encryption", "custom"], "custom is only read with mode: custom");
  if (enc.custom) {
    enc.custom.resources.forEach((group, i) => {
      if (group.providers.includes("kms") && !enc.custom!.kms) {
        report(["encryption", "custom", "kms"], `resources[${i}] uses the kms provider but no kms plugin is configured`);
      }
      if (new Set(group.providers).size !== group.providers.length) {
        report(["encryption", "custom", "resources", i, "providers"], "a provider is listed twice");
      }
    });
    const coversSecrets = enc.custom.resources.some((g) => g.resources.some((r) => r === "secrets" || r === "*.*" || r === "*."));
    if (!coversSecrets) report(["encryption", "custom", "resources"], "no resource group covers secrets");
  }
  if (enc.rotation !== undefined && enc.enabled === false) {
    report(["encryption", "rotation"], "rotation needs encryption enabled");
  }
}

function tenantChecks(config: StackConfig, report: Report): void {
  const seen = new Map<string, number>();
  config.tenants.forEach((tenant, i) => {
    const first = seen.get(tenant.namespace);
    if (first !== undefined) report(["tenants", i, "namespace"], `duplicate tenant namespace "${tenant.namespace}" (also tenants[${first}])`);
    else seen.set(tenant.namespace, i);
    const names = new Set<string>();
    tenant.network.allows.forEach((allow, j) => {
      if (names.has(allow.name)) report(["tenants", i, "network", "allows", j, "name"], `duplicate allow name "${allow.name}"`);
      names.add(allow.name);
    });
    if (config.environment === "prod") {
      if (!tenant.quota) report(["tenants", i, "quota"], "prod tenants need a ResourceQuota");
      else {
        if (tenant.quota.requestsCpu === undefined && tenant.quota.limitsCpu === undefined) report(["tenants", i, "quota"], "prod quotas must bound cpu (requestsCpu or limitsCpu)");
        if (tenant.quota.requestsMemory === undefined && tenant.quota.limitsMemory === undefined) report(["tenants", i, "quota"], "prod quotas must bound memory (requestsMemory or limitsMemory)");
      }
      if (!tenant.limits) report(["tenants", i, "limits"], "prod tenants need a LimitRange");
      if (!tenant.network.defaultDeny) report(["tenants", i, "network", "defaultDeny"], "prod tenants need default-deny network policies");
    }
  });
}

function dnsChecks(config: StackConfig, report: Report): void {
  const { dns, k3s } = config;
  const customised =
    dns.upstreams.length > 0 || Object.keys(dns.stubDomains).length > 0 || Object.keys(dns.hosts).length > 0 || dns.log || dns.nodeLocal.enabled || dns.autoscaler.enabled;
  if (customised && k3s.disable.includes("coredns")) {
    report(["dns"], "DNS settings tune K3s' CoreDNS, but k3s.disable lists coredns");
  }
  dns.upstreams.forEach((ip, i) => {
    for (const [name, range] of [["serviceCidr", k3s.serviceCidr], ["clusterCidr", k3s.clusterCidr]] as const) {
      if (cidrContains(range, ip)) report(["dns", "upstreams", i], `${ip} is inside k3s.${name}: CoreDNS would forward to itself`);
    }
  });
  if (dns.stubDomains[k3s.clusterDomain]) {
    report(["dns", "stubDomains", k3s.clusterDomain], "the cluster domain cannot be a stub domain");
  }
  if (dns.nodeLocal.enabled) {
    if (!cidrContains("169.254.0.0/16", dns.nodeLocal.localIp)) {
      report(["dns", "nodeLocal", "localIp"], "NodeLocal DNSCache needs a link-local address (169.254.0.0/16)");
    }
  }
  if (dns.autoscaler.max !== undefined && dns.autoscaler.max < dns.autoscaler.min) {
    report(["dns", "autoscaler", "max"], `max ${dns.autoscaler.max} is below min ${dns.autoscaler.min}`);
  }
}

/** Fills the defaults that depend on the environment. */
export function resolveDefaults(config: StackConfig): ResolvedConfig {
  const hardening = config.k3s.hardening ?? (config.environment === "prod" ? "cis" : "none");
  return {
    ...config,
    k3s: { ...config.k3s, hardening },
    encryption: { ...config.encryption, enabled: config.encryption.enabled ?? hardening === "cis" },
  };
}

export type ParseResult = { ok: true; config: ResolvedConfig } | { ok: false; issues: ConfigIssue[] };

/** Parses raw `k3s-platform:*` values (keys without the namespace) into a resolved config. */
export function parseStackConfig(raw: unknown): ParseResult {
  const parsed = stackSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, issues: parsed.error.issues.map(zodIssue) };
  }
  const issues: ConfigIssue[] = [];
  crossFieldChecks(parsed.data, (path, message) => issues.push({ path: formatPath(path), message }));
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, config: resolveDefaults(parsed.data) };
}

/** Like parseStackConfig, but throws a ConfigError. */
export function loadStackConfig(raw: unknown): ResolvedConfig {
  const result = parseStackConfig(raw);
  if (!result.ok) throw new ConfigError(result.issues);
  return result.config;
}

function zodIssue(issue: z.core.$ZodIssue): ConfigIssue {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  if (path.length === 0 && issue.code === "unrecognized_keys") {
    return { path: `${PROJECT}:${issue.keys.join(", ")}`, message: "unknown config key" };
  }
  if (issue.code === "unrecognized_keys") {
    return { path: formatPath(path), message: `unknown key(s): ${issue.keys.join(", ")}` };
  }
  if (path.length === 0) return { path: `${PROJECT}:`, message: issue.message };
  return { path: formatPath(path), message: issue.message };
}
