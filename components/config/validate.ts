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
}

/** Fills the defaults that depend on the environment. */
export function resolveDefaults(config: StackConfig): ResolvedConfig {
  return {
    ...config,
    k3s: { ...config.k3s, hardening: config.k3s.hardening ?? (config.environment === "prod" ? "cis" : "none") },
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
