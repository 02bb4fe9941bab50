import { z } from "zod";
import {
  AGENT_FLAG_SET,
  COMPONENT_ARG,
  COMPONENT_ARG_FLAGS,
  FLAG_BY_NAME,
  isSupportedRelease,
  type K3sRelease,
  MANAGED_COMPONENT_ARGS,
  OLDEST_SUPPORTED,
  passThroughRefusal,
  releaseOf,
  SERVER_FLAGS,
} from "./flags";
import { featureChecks } from "./feature-checks";
import { intermediateStep } from "../upgrade/versions";
import { isSupportedLine, newerThanKnown, NEWEST_KNOWN, newestOnLine, SUPPORTED_LINES_TEXT } from "./releases";
import { cidrContains, indexedIp, isCanonicalIp, isIp, nodeAddressProblem, normalizeHost } from "./net";
import { authenticationChecks } from "./authentication";
import { hookSelectorChecks, resolveHookPools } from "./hooks";
import { PoolResolution, resolvePools } from "./pools";
import { surfaceIssues } from "./surfaces";
import { maintenanceCommandProblem } from "./maintenance-commands";
import { proxyBypassAddresses, uncoveredAddresses } from "./node-networks";
import { nodeAddressesOf } from "./topology";
import { cniFindings, defaultFlannelBackend, defaultFlannelIpv6Masq, dnsReachabilityFindings, ipv6EgressFindings, podCidrAllocationFindings } from "./network-rules";
import { clusterNetworkFindings, coversSecrets, decommissionChecks, flannelIpv6MasqFinding, nodeAddressesInClusterNetworks, nodeFamilyFindings, restrictedNodeLabels } from "./rules";
import { CONFIG_KEYS, PROJECT, ResolvedConfig, SECRET_KEYS, SecretKey, StackConfig, stackSchema } from "./schema";

export type ConfigPath = ReadonlyArray<string | number>;

export interface ConfigIssue {
  /** e.g. `k3s-platform:nodes[2] (prod-agent-1).labels["kubernetes.io/role"]` */
  path: string;
  message: string;
}

/** Thrown before any resource is registered; lists every problem, each with its config path. */
export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[], where?: string) {
    super(
      `invalid ${PROJECT} stack configuration${where ? ` in ${where}` : ""} (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** What a list index stands for, so paths read `nodes[1] (dev-agent-1)`. */
export type PathNames = (path: ConfigPath, index: number) => string | undefined;

/**
 * Names list entries after the entry's own name: nodes by `name`, tenants by `namespace`. A node's
 * value that came from its pool (config/pools.ts) names the pool too: `nodes[3] (gpu-1, from pools.gpu)`.
 */
export function pathNamesFrom(raw: unknown, pools: PoolResolution = resolvePools(raw)): PathNames {
  const root = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  return (path, index) => {
    if (index !== 1 || typeof path[1] !== "number") return undefined;
    const list = root[String(path[0])];
    if (!Array.isArray(list)) return undefined;
    const entry = list[path[1]] as Record<string, unknown> | undefined;
    const name = path[0] === "nodes" || path[0] === "hooks" ? entry?.name : path[0] === "tenants" ? entry?.namespace : undefined;
    if (typeof name !== "string" || name.length === 0) return undefined;
    const pool = path[0] === "nodes" ? pools.inherited(path[1], path.slice(2)) : undefined;
    return pool === undefined ? name : `${name}, from pools.${pool}`;
  };
}

/** Formats a path as Pulumi users write it: `k3s-platform:nodes[2] (prod-agent-1).labels`. */
export function formatPath(path: ConfigPath, names?: PathNames): string {
  let out = `${PROJECT}:`;
  path.forEach((segment, index) => {
    if (typeof segment === "number") {
      out += `[${segment}]`;
      const name = names?.(path, index);
      if (name) out += ` (${name})`;
    } else if (index === 0) out += segment;
    else if (IDENTIFIER.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  });
  return out;
}

// ---------------------------------------------------------------- typo suggestions

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The nearest known key, when it is close enough to be a typo. */
export function nearest(key: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(key, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

const didYouMean = (key: string, candidates: Iterable<string>) => {
  const hit = nearest(key, candidates);
  return hit ? ` (did you mean ${hit}?)` : "";
};

type AnySchema = z.core.$ZodType;

/** Keys the schema accepts at `path` (object shapes, through optional/default/array/record/union). */
function keysAt(schema: AnySchema, path: ReadonlyArray<PropertyKey>): string[] {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
    case "catch":
    case "nonoptional":
      return keysAt(def.innerType as AnySchema, path);
    case "pipe": {
      // A preprocess is a pipe from a transform (no keys) into the schema that has them.
      const before = keysAt(def.in as AnySchema, path);
      return before.length ? before : keysAt(def.out as AnySchema, path);
    }
    case "union":
      return [...new Set((def.options as AnySchema[]).flatMap((o) => keysAt(o, path)))];
    case "array":
      return path.length ? keysAt(def.element as AnySchema, path.slice(1)) : [];
    case "record":
      return path.length ? keysAt(def.valueType as AnySchema, path.slice(1)) : [];
    case "object": {
      const shape = def.shape as Record<string, AnySchema>;
      if (!path.length) return Object.keys(shape);
      const next = shape[String(path[0])];
      return next ? keysAt(next, path.slice(1)) : [];
    }
    default:
      return [];
  }
}

// ---------------------------------------------------------------- checks

export type Report = (path: ConfigPath, message: string) => void;

/** Values as written, where a check must tell an explicit value from a resolved default. */
export interface AsWritten {
  /** encryption.enabled before the hardening default: `rotation` is refused only when it is explicitly false. */
  encryptionEnabled?: boolean;
}

/**
 * The pinned release against the release table (releases.ts): newer than every known release is a
 * warning naming the newest known one; a line past end of support is refused in prod unless
 * k3s.unsupportedReleaseReason says why, a warning elsewhere; a stale acknowledgement is a warning.
 */
function releaseSupportChecks(k3s: ResolvedConfig["k3s"], release: K3sRelease, environment: ResolvedConfig["environment"], report: Report, warn: Report): void {
  const at: ConfigPath = ["k3s", k3s.version ? "version" : "channel"];
  if (k3s.version && newerThanKnown(k3s.version)) {
    warn(at, `${k3s.version} is newer than the newest K3s release k3s-platform knows (${NEWEST_KNOWN.version}, ${NEWEST_KNOWN.date}): flags, upgrade paths and defaults are not checked against it; check the K3s release notes and add it to components/config/releases.ts`);
  }
  // Upgrade paths the config alone decides (components/upgrade/paths.ts): a pinned embedded-etcd
  // release below a required patch release cannot move to the next line from here.
  if (k3s.version && k3s.datastore.type === "etcd") {
    const next = `v1.${release.minor + 1}.0+k3s1`;
    const step = intermediateStep(k3s.version, next, true);
    if (step) warn(at, `the upgrade to v1.${release.minor + 1} will be refused from ${k3s.version} (embedded etcd): ${step}`);
  }
  if (!Number.isFinite(release.minor) || release.minor < OLDEST_SUPPORTED.minor) return;
  if (isSupportedLine(release.minor)) {
    if (k3s.unsupportedReleaseReason !== undefined) warn(["k3s", "unsupportedReleaseReason"], `K3s v1.${release.minor} is supported (${SUPPORTED_LINES_TEXT}): remove the acknowledgement`);
    return;
  }
  const newest = newestOnLine(release.minor);
  const message =
    `${release.text}: K3s v1.${release.minor} is past end of support (K3s supports the newest three lines: ${SUPPORTED_LINES_TEXT}; newest known release ${NEWEST_KNOWN.version}` +
    `${newest ? `; the last v1.${release.minor} release was ${newest.version} of ${newest.date}` : ""}): no security fixes reach it. Upgrade one minor at a time`;
  if (environment !== "prod") warn(at, message);
  else if (k3s.unsupportedReleaseReason === undefined) report(at, `${message}, or set k3s.unsupportedReleaseReason (why, at least 20 characters) to run it anyway`);
  else warn(at, `${message} (accepted: k3s.unsupportedReleaseReason "${k3s.unsupportedReleaseReason}")`);
}

/**
 * Checks that span several fields, on the resolved config (defaults such as hardening filled in
 * once, by resolveDefaults); the schema has already checked each field alone.
 */
export function crossFieldChecks(config: ResolvedConfig, report: Report, warn: Report = () => {}, written: AsWritten = { encryptionEnabled: config.encryption.enabled }): void {
  const { k3s, nodes, environment } = config;

  // --- version pinning
  if (k3s.version && k3s.channel) report(["k3s", "channel"], "set either k3s.version or k3s.channel, not both");
  if (!k3s.version && !k3s.channel) report(["k3s", "version"], "an exact K3s version (or, outside prod, a channel) is required");
  if (environment === "prod" && k3s.channel) report(["k3s", "channel"], "prod must pin an exact k3s.version; channels move");
  if (k3s.airgap.enabled && !k3s.version) report(["k3s", "version"], "air-gap installs need an exact k3s.version matching the pre-staged binary");
  const release = releaseOf(k3s);
  if (release && !isSupportedRelease(release)) {
    report([ "k3s", k3s.version ? "version" : "channel"], `${release.text} is older than the oldest supported K3s release ${OLDEST_SUPPORTED.text}`);
  }
  if (release) releaseSupportChecks(k3s, release, environment, report, warn);
  if (k3s.binarySha256 !== undefined && k3s.airgap.enabled) report(["k3s", "binarySha256"], "air-gapped, the pre-staged binary's digest is k3s.airgap.binarySha256; k3s.binarySha256 is for download mode");
  if (k3s.binarySha256 !== undefined && !k3s.version) report(["k3s", "binarySha256"], "a binary digest belongs to one release: pin k3s.version");
  // The install script runs as root: prod pins what it runs (install-k3s.sh checks it).
  if (environment === "prod" && !k3s.airgap.enabled && !k3s.installScriptSha256) {
    report(["k3s", "installScriptSha256"], `prod downloads the install script from ${k3s.installScriptUrl}: set its sha256 (sha256sum of the file) so it is checked before it runs as root`);
  }
  for (const [path, address] of [[["k3s", "apiEndpoint"], k3s.apiEndpoint], [["k3s", "apiVip", "address"], k3s.apiVip?.address]] as const) {
    const problem = address && isCanonicalIp(address) ? nodeAddressProblem(address) : undefined;
    if (problem) report([...path], `${address} is ${problem}; nodes and clients dial this address`);
  }
  // firewall.mode open scopes the K3s ports to node addresses: each node needs one.
  if (k3s.firewall.mode === "open") {
    nodes.forEach((node, i) => {
      if (!node.nodeIp && !isCanonicalIp(node.host)) {
        report(["nodes", i, "nodeIp"], `node ${node.name}: host ${node.host} is a name; k3s.firewall.mode open opens the cluster ports to node addresses, so set nodeIp`);
      }
    });
  }

  // --- networks, single- and dual-stack (rules.ts: the policy pack checks the same)
  const indexed = (path: ConfigPath, index: number | undefined): ConfigPath => (index === undefined ? path : [...path, index]);
  const masq = flannelIpv6MasqFinding(k3s);
  for (const f of [...clusterNetworkFindings(k3s), ...(masq ? [masq] : [])]) report(indexed(["k3s", f.field], f.index), f.message);
  for (const f of nodeFamilyFindings(config)) report(indexed(["nodes", f.nodeIndex, f.field], f.index), f.message);
  for (const hit of nodeAddressesInClusterNetworks(config)) {
    report(indexed(["nodes", hit.nodeIndex, hit.field], hit.index), `${hit.address} lies inside k3s.${hit.network} ${hit.range}; pod/service networks must not overlap host addresses`);
  }
  // The fault kind "accepted by K3s, cannot work where it lands" (network-rules.ts): CNI companion flags, IPv6 egress.
  for (const f of [...cniFindings(config), ...podCidrAllocationFindings(config), ...ipv6EgressFindings(config)]) (f.warning ? warn : report)(f.path, f.message);
  const restricted = restrictedNodeLabels(nodes);

  // --- nodes
  const servers = nodes.filter((n) => n.role === "server");
  if (servers.length === 0) report(["nodes"], "at least one node must have role: server");
  if (k3s.datastore.type === "sqlite" && servers.length > 1) {
    report(
      ["k3s", "datastore"],
      `sqlite supports a single server, but ${servers.length} nodes have role: server: to grow a sqlite server into an HA control plane, set k3s.datastore.type: etcd in this same change (the server restarts with cluster-init and K3s converts its sqlite data to embedded etcd, then the new servers join one at a time: docs.k3s.io/datastore/ha-embedded); or use external`,
    );
  }
  const seenNames = new Map<string, number>();
  const seenHosts = new Map<string, number>();
  nodes.forEach((node, i) => {
    const firstName = seenNames.get(node.name);
    if (firstName !== undefined) report(["nodes", i, "name"], `duplicate node name "${node.name}" (also nodes[${firstName}])`);
    else seenNames.set(node.name, i);
    const hostKey = `${normalizeHost(node.host)}:${node.ssh.port ?? config.ssh.port}`;
    const firstHost = seenHosts.get(hostKey);
    if (firstHost !== undefined) report(["nodes", i, "host"], `duplicate host "${node.host}" (also nodes[${firstHost}] (${nodes[firstHost]!.name}))`);
    else seenHosts.set(hostKey, i);

    for (const { key } of restricted.filter((r) => r.nodeIndex === i)) {
      report(
        ["nodes", i, "labels", key],
        "labels in the kubernetes.io/k8s.io namespaces are refused by NodeRestriction and K3s would fail to start; " +
          "use your own prefix, or node-role.kubernetes.io/* (applied after registration)",
      );
    }
    // Addresses other nodes dial (join URL, node-ip, firewall rules, ipBlocks) must be unicast.
    if (isCanonicalIp(node.host)) {
      const problem = nodeAddressProblem(node.host, node.nodeIp !== undefined);
      if (problem) {
        const fix = problem.startsWith("a loopback") ? "; for an SSH tunnel, set nodeIp to where the other nodes reach it" : "";
        report(["nodes", i, "host"], `node ${node.name}: ${node.host} is ${problem}${fix}`);
      }
    }
    for (const field of ["nodeIp", "externalIp"] as const) {
      (node[field] ?? []).forEach((address, j) => {
        const problem = nodeAddressProblem(address);
        if (problem) report(["nodes", i, field, ...(node[field]!.length > 1 ? [j] : [])], `node ${node.name}: ${address} is ${problem}`);
      });
    }
    // Without a pinned host key a swapped host receives the token and SSH session.
    if (!node.ssh.hostKey) {
      const message = "no ssh.hostKey: the SSH connection is not verified (pin it with `ssh-keyscan -t ed25519 <host>`)";
      if (environment === "prod") report(["nodes", i, "ssh", "hostKey"], `${message}; required in prod`);
      else warn(["nodes", i, "ssh", "hostKey"], message);
    }
  });
  if (config.ssh.bastion && !config.ssh.bastion.hostKey) {
    const message = "no hostKey for the bastion: the jump connection is not verified";
    if (environment === "prod") report(["ssh", "bastion", "hostKey"], `${message}; required in prod`);
    else warn(["ssh", "bastion", "hostKey"], message);
  }

  // --- etcd snapshots
  if (k3s.etcdSnapshots && k3s.datastore.type !== "etcd") {
    report(["k3s", "etcdSnapshots"], `etcd snapshots need k3s.datastore.type etcd (it is ${k3s.datastore.type})`);
  }

  // --- pass-through flag maps
  const checkFlags = (mapName: "extraServerConfig" | "extraAgentConfig", known: ReadonlySet<string>, role: "server" | "agent") => {
    for (const [key, value] of Object.entries(k3s[mapName])) {
      const path = ["k3s", mapName, key];
      const spec = FLAG_BY_NAME.get(key);
      if (!spec) {
        report(path, `"${key}" is not a k3s ${role} flag${didYouMean(key, known)}`);
        continue;
      }
      const refusal = passThroughRefusal(spec);
      if (refusal) {
        report(path, refusal);
        continue;
      }
      if (!known.has(key)) {
        report(path, `"${key}" is not a k3s ${role} flag (it is a server-only flag; k3s agent would refuse to start)`);
        continue;
      }
      if (COMPONENT_ARG_FLAGS.includes(key)) {
        const entries = Array.isArray(value) ? value : [value];
        entries.forEach((entry, j) => {
          const at = [...path, ...(Array.isArray(value) ? [j] : [])];
          if (typeof entry !== "string" || !COMPONENT_ARG.test(entry)) {
            report(at, `"${String(entry)}" is not name=value (a component flag without leading dashes)`);
            return;
          }
          const typed = MANAGED_COMPONENT_ARGS[key]?.[entry.split("=")[0]!];
          if (typed) report(at, `"${entry.split("=")[0]}" is rendered by k3s-platform; set ${typed} instead`);
        });
      }
    }
  };
  checkFlags("extraServerConfig", SERVER_FLAGS, "server");
  checkFlags("extraAgentConfig", AGENT_FLAG_SET, "agent");

  featureChecks(config, report, warn);
  authenticationChecks(config, report);
  surfaceChecks(config, report, warn);
  encryptionChecks(config, report, written);
  tenantChecks(config, report);
  dnsChecks(config, report, warn);
  decommissionChecks(config, report, warn);
  rebuildChecks(config, warn);
  restoreChecks(config, report);
  maintenanceChecks(config, report);
  nodeNetworkChecks(config, report, warn);
}

/**
 * `restore` (docs/backup-and-restore.md): embedded etcd only (K3s' cluster reset restores etcd
 * snapshots, docs.k3s.io/cli/etcd-snapshot); an S3 source needs k3s.etcdSnapshots.s3 (K3s reads the
 * bucket from config.yaml) and takes the snapshot's file name only ("give only the filename").
 */
function restoreChecks(config: ResolvedConfig, report: Report): void {
  const r = config.restore;
  if (!r) return;
  if (config.k3s.datastore.type !== "etcd") {
    report(["restore"], `restores an embedded-etcd snapshot, but k3s.datastore.type is ${config.k3s.datastore.type}: restore that datastore with its own tools and remove restore`);
  }
  if (r.source === "s3" && !config.k3s.etcdSnapshots?.s3) report(["restore", "source"], "s3 needs k3s.etcdSnapshots.s3 (K3s reads the bucket, folder and credentials from it); use source: local for a file on the first server");
  if (r.source === "s3" && r.snapshot.includes("/")) report(["restore", "snapshot"], "an S3 snapshot is named by its file name only (K3s adds the bucket and folder from k3s.etcdSnapshots.s3)");
}

/**
 * `maintenance` (docs/maintenance.md): listed nodes exist and are managed; a reboot of the only
 * server is refused (no other server can watch it come back: cordon, drain and the wait run on a
 * server's API); in prod the command must be one of MAINTENANCE_COMMANDS (it runs as root on
 * every node it covers: allowlisted, not filtered).
 */
function maintenanceChecks(config: ResolvedConfig, report: Report): void {
  const m = config.maintenance;
  if (!m) return;
  const managed = config.nodes.filter((n) => n.decommission !== true);
  if (m.nodes !== "all") {
    const seen = new Set<string>();
    m.nodes.forEach((name, i) => {
      const node = config.nodes.find((n) => n.name === name);
      if (!node) report(["maintenance", "nodes", i], `no node named ${name} (nodes: ${config.nodes.map((n) => n.name).join(", ")})`);
      else if (node.decommission === true) report(["maintenance", "nodes", i], `node ${name} is armed for decommission: it gets no maintenance`);
      if (seen.has(name)) report(["maintenance", "nodes", i], `node ${name} is listed twice`);
      seen.add(name);
    });
  }
  const servers = managed.filter((n) => n.role === "server");
  const covered = m.nodes === "all" ? managed : managed.filter((n) => (m.nodes as string[]).includes(n.name));
  if (m.reboot && servers.length === 1 && covered.some((n) => n.name === servers[0]!.name)) {
    report(["maintenance", "reboot"], `node ${servers[0]!.name} is the only server: no other server can watch it come back (the wait and uncordon run on a server's API); reboot it by hand, or leave it out of maintenance.nodes`);
  }
  if (!m.command && !m.reboot) report(["maintenance"], "sets neither command nor reboot: nothing to do on a drained node");
  if (m.command && config.environment === "prod") {
    const problem = maintenanceCommandProblem(m.command);
    if (problem) report(["maintenance", "command"], problem);
  }
}

/**
 * Node networks (config/node-networks.ts, issue 26): each node's own address (nodeIp, else the
 * host) lies in a declared `k3s.nodeNetworks` CIDR; with a proxy, every address K3s dials a node on in one of the node networks or a CIDR/address of
 * the NO_PROXY entries the user gave (noProxy; containerdNoProxy for containerd's). NO_PROXY no
 * longer lists node addresses one by one, so an address outside them would go to the proxy.
 */
function nodeNetworkChecks(config: ResolvedConfig, report: Report, warn: Report): void {
  const { k3s } = config;
  const declared = k3s.nodeNetworks ?? [];
  if (declared.length > 0) {
    // The firewall admits node traffic from these networks: each node's own address must be in one.
    for (const { node, index, address } of uncoveredAddresses(config.nodes, declared, nodeAddressesOf)) {
      report(["nodes", index], `node ${node.name}: address ${address} is in none of k3s.nodeNetworks (${declared.join(", ")}), so the other nodes' firewalls would refuse its traffic: add its network there`);
    }
  }
  const p = k3s.proxy;
  if (!p) return;
  // One issue per setting, naming the first uncovered addresses: a 1,000-node cluster outside its
  // noProxy gets one actionable line, not a thousand.
  const check = (entries: string[], path: ConfigPath, variable: string) => {
    const uncovered = uncoveredAddresses(config.nodes, [...declared, ...entries], proxyBypassAddresses);
    if (uncovered.length === 0) return;
    const named = uncovered.slice(0, 3).map(({ node, index, address }) => `node ${node.name} (nodes[${index}]): address ${address}`);
    const more = uncovered.length > 3 ? ` and ${uncovered.length - 3} more address(es)` : "";
    report(
      path,
      `${named.join("; ")}${more} ${uncovered.length === 1 ? "is" : "are"} covered by no CIDR or address of k3s.nodeNetworks or ${path.join(".")}, so ${variable} would send that traffic through the proxy: declare the node networks in k3s.nodeNetworks (K3s' proxy docs recommend CIDRs), or add them to ${path.join(".")}`,
    );
  };
  // Covered, but only by entries naming a node's own address (review of issue 26): the next node
  // added or removed means editing that list, which changes NO_PROXY on every node, and each
  // restarts. A warning: it works, it just costs what the node networks were made to avoid.
  const byAddress = (entries: string[], path: ConfigPath, variable: string) => {
    if (uncoveredAddresses(config.nodes, [...declared, ...entries], proxyBypassAddresses).length > 0) return;
    const ranges = [...declared, ...entries.filter((e) => e.includes("/") || e === "*")];
    const listed = uncoveredAddresses(config.nodes, ranges, proxyBypassAddresses);
    if (listed.length === 0) return;
    const named = listed.slice(0, 3).map(({ node, address }) => `${address} (${node.name})`);
    const more = listed.length > 3 ? ` and ${listed.length - 3} more` : "";
    warn(
      path,
      `${variable} covers node address(es) ${named.join(", ")}${more} only by listing them: adding or removing a node then means editing ${path.join(".")}, which changes ${variable} on every node and restarts each; declare the node networks in k3s.nodeNetworks (or a CIDR in ${path.join(".")}) instead (docs/adding-nodes.md)`,
    );
  };
  if (p.httpProxy || p.httpsProxy) {
    check(p.noProxy, ["k3s", "proxy", "noProxy"], "NO_PROXY");
    byAddress(p.noProxy, ["k3s", "proxy", "noProxy"], "NO_PROXY");
  }
  if (p.containerdHttpProxy || p.containerdHttpsProxy) {
    const path: ConfigPath = ["k3s", "proxy", p.containerdNoProxy ? "containerdNoProxy" : "noProxy"];
    check(p.containerdNoProxy ?? p.noProxy, path, "CONTAINERD_NO_PROXY");
    if (p.containerdNoProxy || !(p.httpProxy || p.httpsProxy)) byAddress(p.containerdNoProxy ?? p.noProxy, path, "CONTAINERD_NO_PROXY");
  }
  // A host that is a DNS name with no nodeIp (issue 26): K3s dials the node on the address it
  // detects on the host (--node-ip unset: the default route's interface, docs.k3s.io/cli/agent),
  // which the config does not know, so whether NO_PROXY covers it cannot be checked. Refused in
  // prod, a warning elsewhere; `*` in noProxy keeps every address off the proxy.
  const proxied = !!(p.httpProxy || p.httpsProxy || p.containerdHttpProxy || p.containerdHttpsProxy);
  if (!proxied || [...p.noProxy, ...(p.containerdNoProxy ?? [])].includes("*")) return;
  const unknown = config.nodes.map((node, index) => ({ node, index })).filter(({ node }) => !node.decommission && !isIp(node.host) && !node.nodeIp?.length);
  for (const { node, index } of unknown) {
    (config.environment === "prod" ? report : warn)(
      ["nodes", index, "nodeIp"],
      `node ${node.name}: host ${node.host} is a name and nodeIp is not set, so K3s dials this node on the address it detects on the host, which k3s.proxy's NO_PROXY must cover and this config cannot check: set nodes[${index}].nodeIp to that address (inside k3s.nodeNetworks or k3s.proxy.noProxy; docs/configuration.md, proxy)`,
    );
  }
}

/**
 * Free-form surfaces against the allowlist (surfaces.ts): in prod a finding without an exception is
 * refused, elsewhere a warning; a credential in a document is refused everywhere (it would reach
 * state and staged files); an exception that covers nothing, or what cannot be excepted, is refused
 * in prod so it cannot silently cover a later change.
 */
function surfaceChecks(config: ResolvedConfig, report: Report, warn: Report): void {
  for (const issue of surfaceIssues(config)) (issue.refused ? report : warn)(issue.path, issue.message);
}

/**
 * `nodes[].rebuild` (docs/rebuilding.md): ignored with `decommission: true` (an armed node
 * has no steps to re-run; a warning); on the only server there is no cluster to join: the rebuild starts a new,
 * empty one unless a snapshot is restored first (a warning: that is what a user may want).
 */
function rebuildChecks(config: ResolvedConfig, warn: Report): void {
  const managedServers = config.nodes.filter((n) => n.role === "server" && n.decommission !== true);
  config.nodes.forEach((node, i) => {
    if (node.rebuild === undefined) return;
    if (node.decommission === true) {
      warn(["nodes", i, "rebuild"], `node ${node.name}: rebuild is ignored while decommission is true (an armed node gets no steps to re-run)`);
      return;
    }
    if (node.role === "server" && managedServers.length === 1) {
      warn(
        ["nodes", i, "rebuild"],
        `node ${node.name} is the only server: there is no cluster to join, so the rebuild starts a new, empty cluster (cluster-init) unless a snapshot is restored first (docs/backup-and-restore.md)`,
      );
    }
  });
}

function encryptionChecks(config: ResolvedConfig, report: Report, written: AsWritten): void {
  const { encryption: enc } = config;
  if (config.k3s.hardening === "cis" && !enc.enabled) {
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
    if (!enc.custom.resources.some((g) => coversSecrets(g.resources))) report(["encryption", "custom", "resources"], "no resource group covers secrets");
  }
  if (enc.rotation !== undefined && written.encryptionEnabled === false) {
    report(["encryption", "rotation"], "rotation needs encryption enabled");
  }
}

function tenantChecks(config: ResolvedConfig, report: Report): void {
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
    // The API-server allow becomes ipBlock CIDRs: the API server refuses a host name there.
    if (tenant.network.allowApiServer) {
      config.nodes.forEach((node, j) => {
        if (node.role === "server" && !node.nodeIp && !isCanonicalIp(node.host)) {
          report(
            ["tenants", i, "network", "allowApiServer"],
            `server nodes[${j}] (${node.name}) has host "${node.host}" (a DNS name) and no nodeIp; a NetworkPolicy ipBlock needs an address: set nodes[${j}].nodeIp`,
          );
        }
      });
    }
  });
}

function dnsChecks(config: ResolvedConfig, report: Report, warn: Report): void {
  const { dns, k3s } = config;
  for (const f of dnsReachabilityFindings(config)) (f.warning ? warn : report)(f.path, f.message);
  const customised =
    dns.upstreams.length > 0 || Object.keys(dns.stubDomains).length > 0 || Object.keys(dns.hosts).length > 0 || dns.log || dns.nodeLocal.enabled || dns.autoscaler.enabled;
  if (customised && k3s.disable.includes("coredns")) {
    report(["dns"], "DNS settings tune K3s' CoreDNS, but k3s.disable lists coredns");
  }
  dns.upstreams.forEach((ip, i) => {
    for (const [name, ranges] of [["serviceCidr", k3s.serviceCidr], ["clusterCidr", k3s.clusterCidr]] as const) {
      for (const range of ranges) if (cidrContains(range, ip)) report(["dns", "upstreams", i], `${ip} is inside k3s.${name}: CoreDNS would forward to itself`);
    }
  });
  if (dns.stubDomains[k3s.clusterDomain]) {
    report(["dns", "stubDomains", k3s.clusterDomain], "the cluster domain cannot be a stub domain");
  }
  if (dns.nodeLocal.enabled) {
    if (!cidrContains("169.254.0.0/16", dns.nodeLocal.localIp)) {
      report(["dns", "nodeLocal", "localIp"], "NodeLocal DNSCache needs a link-local address (169.254.0.0/16)");
    }
    // Pods of an IPv6-only cluster have no IPv4 route to the IPv4 link-local listener.
    if (!k3s.clusterCidr.some((c) => !c.includes(":"))) {
      report(["dns", "nodeLocal", "enabled"], `NodeLocal DNSCache listens on the IPv4 link-local ${dns.nodeLocal.localIp}, which pods of an IPv6-only cluster cannot reach`);
    }
  }
  if (dns.autoscaler.max !== undefined && dns.autoscaler.max < dns.autoscaler.min) {
    report(["dns", "autoscaler", "max"], `max ${dns.autoscaler.max} is below min ${dns.autoscaler.min}`);
  }
}

/**
 * Schema issues with pool provenance: a bad value a node inherited from its pool is reported once,
 * at the pool's path, naming the nodes that inherit it (the pool's own check gives the same issue).
 */
function poolIssues(zodIssues: z.core.$ZodIssue[], pools: PoolResolution, names: PathNames): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const byPoolPath = new Map<string, { issue: ConfigIssue; nodes: string[] }>();
  for (const zi of zodIssues) {
    const path = zi.path.map((p) => (typeof p === "symbol" ? String(p) : p));
    const nodeIndex = path[0] === "nodes" && typeof path[1] === "number" ? path[1] : undefined;
    const pool = nodeIndex === undefined ? undefined : pools.inherited(nodeIndex, path.slice(2));
    const issue = zodIssue(pool === undefined ? zi : { ...zi, path: ["pools", pool, ...path.slice(2)] }, names);
    const atPool = pool !== undefined || path[0] === "pools";
    if (!atPool) {
      out.push(issue);
      continue;
    }
    const key = `${issue.path}\0${issue.message}`;
    let entry = byPoolPath.get(key);
    if (!entry) {
      entry = { issue, nodes: [] };
      byPoolPath.set(key, entry);
      out.push(issue);
    }
    const nodeName = nodeIndex === undefined ? undefined : names(path, 1);
    if (nodeName) entry.nodes.push(nodeName.replace(/, from pools\..*$/, ""));
  }
  for (const { issue, nodes } of byPoolPath.values()) {
    if (nodes.length === 0) continue;
    const shown = nodes.length > 5 ? `${nodes.slice(0, 5).join(", ")} and ${nodes.length - 5} more` : nodes.join(", ");
    issue.message += ` (inherited by node${nodes.length === 1 ? "" : "s"} ${shown})`;
  }
  return out;
}

/** Fills the defaults that depend on the environment; drops `pools` (resolved into the nodes by parseConfig). */
export function resolveDefaults(config: StackConfig): ResolvedConfig {
  // The one place the hardening default is computed: CIS in prod, none elsewhere.
  const hardening = config.k3s.hardening ?? (config.environment === "prod" ? "cis" : "none");
  // An API VIP is the API endpoint unless one is named (a DNS name for it), and always a tls-san.
  const vip = config.k3s.apiVip?.address;
  // Pools are resolved into the nodes (config/pools.ts): what a node runs reads the same either way.
  const { pools, hooks: _hooks, ...rest } = config;
  const hooks = resolveHookPools(config);
  return {
    ...rest,
    ...(hooks ? { hooks } : {}),
    ...(pools === undefined && !config.nodes.some((n) => n.pool !== undefined) ? {} : { nodes: config.nodes.map(({ pool: _pool, ...node }) => node) }),
    k3s: {
      ...config.k3s,
      hardening,
      flannelBackend: defaultFlannelBackend(config.k3s),
      flannelIpv6Masq: defaultFlannelIpv6Masq(config.k3s),
      // K3s' own default: the 10th address of each service CIDR (10.43.0.10 for 10.43.0.0/16).
      clusterDns: config.k3s.clusterDns ?? config.k3s.serviceCidr.map((range) => indexedIp(range, 10)),
      apiEndpoint: config.k3s.apiEndpoint ?? vip,
      tlsSan: vip && !config.k3s.tlsSan.includes(vip) ? [...config.k3s.tlsSan, vip] : config.k3s.tlsSan,
    },
    encryption: { ...config.encryption, enabled: config.encryption.enabled ?? hardening === "cis" },
  };
}

export type ParseResult =
  | { ok: true; config: ResolvedConfig; warnings: ConfigIssue[] }
  | { ok: false; issues: ConfigIssue[]; warnings: ConfigIssue[] };

/**
 * Parses raw `k3s-platform:*` values (keys without the namespace) into a resolved config: schema,
 * defaults and the cross-field checks, which the config alone decides. `rendered` adds the checks
 * that need what the config renders; `parseStackConfig` (stack/load.ts) runs them all.
 */
export function parseConfig(raw: unknown, rendered?: (config: ResolvedConfig, report: Report) => void): ParseResult {
  // Pools first (config/pools.ts): the schema and every check below see whole nodes.
  const pools = resolvePools(raw);
  const names = pathNamesFrom(raw, pools);
  const unknownPools: ConfigIssue[] = pools.unknown.map(({ nodeIndex, pool, known }) => ({
    path: formatPath(["nodes", nodeIndex, "pool"], names),
    message: `no pool "${pool}" in k3s-platform:pools${known.length ? ` (pools: ${known.join(", ")})` : " (there is no pools section)"}${didYouMean(pool, known)}`,
  }));
  const parsed = stackSchema.safeParse(pools.raw);
  if (!parsed.success) {
    return { ok: false, issues: [...unknownPools, ...poolIssues(parsed.error.issues, pools, names)], warnings: [] };
  }
  if (unknownPools.length > 0) return { ok: false, issues: unknownPools, warnings: [] };
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const report: Report = (path, message) => issues.push({ path: formatPath(path, names), message });
  // Before resolveDefaults drops the pools the selectors name.
  hookSelectorChecks(parsed.data, report);
  const config = resolveDefaults(parsed.data);
  crossFieldChecks(config, report, (path, message) => warnings.push({ path: formatPath(path, names), message }), { encryptionEnabled: parsed.data.encryption.enabled });
  if (issues.length > 0) return { ok: false, issues, warnings };
  rendered?.(config, report);
  if (issues.length > 0) return { ok: false, issues, warnings };
  return { ok: true, config, warnings };
}

/** What secretIssues reads of a config: a ResolvedConfig, or secretNeedsOf(raw) when the schema refused it. */
export interface SecretNeeds {
  k3s: { datastore: { type: string }; etcdSnapshots?: { s3?: unknown }; vpn?: unknown };
  restore?: unknown;
}

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/**
 * SecretNeeds read from raw values the schema refused (elsewhere, or here: a refused datastore is
 * reported by the schema itself), so a missing secret is reported together with the schema's
 * problems, not in a second round after they are fixed. Defaults as the schema's: etcd, no S3.
 */
export function secretNeedsOf(raw: unknown): SecretNeeds {
  const k3s = asRecord(asRecord(raw).k3s);
  const type = asRecord(k3s.datastore).type;
  const s3 = asRecord(k3s.etcdSnapshots).s3;
  const vpn = k3s.vpn === undefined || k3s.vpn === null ? undefined : k3s.vpn;
  const restore = asRecord(raw).restore;
  return {
    k3s: { datastore: { type: typeof type === "string" ? type : "etcd" }, etcdSnapshots: s3 === undefined || s3 === null ? undefined : { s3 }, vpn },
    ...(restore === undefined || restore === null ? {} : { restore }),
  };
}

/**
 * Secure keys the config needs or cannot use, given which are set (`present`). Run by the program
 * on its secrets and by `npm run render` on the stack file's `secure:` entries, alike.
 */
export function secretIssues(config: SecretNeeds, present: ReadonlySet<SecretKey>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const need = (key: SecretKey, message: string) => issues.push({ path: `${PROJECT}:${key}`, message });
  if (config.k3s.datastore.type === "external" && !present.has("datastoreEndpoint")) {
    need("datastoreEndpoint", `required (as a secret: pulumi config set --secret ${PROJECT}:datastoreEndpoint <url>) when k3s.datastore.type is external`);
  }
  const s3 = config.k3s.etcdSnapshots?.s3;
  const access = present.has("etcdS3AccessKey");
  const secret = present.has("etcdS3SecretKey");
  if ((access || secret) && !s3) need(access ? "etcdS3AccessKey" : "etcdS3SecretKey", "set, but k3s.etcdSnapshots.s3 is not configured");
  else if (access !== secret) need(access ? "etcdS3SecretKey" : "etcdS3AccessKey", "etcdS3AccessKey and etcdS3SecretKey are set together (or neither, for instance credentials)");
  if (present.has("restoreToken") && config.restore === undefined) need("restoreToken", "set, but restore is not configured (it is read only by a restore; remove it: pulumi config rm restoreToken)");
  if (config.k3s.vpn && !present.has("vpnAuthKey")) {
    need("vpnAuthKey", `required (as a secret: pulumi config set --secret ${PROJECT}:vpnAuthKey <tailscale auth key>) when k3s.vpn is set`);
  } else if (!config.k3s.vpn && present.has("vpnAuthKey")) need("vpnAuthKey", "set, but k3s.vpn is not configured");
  return issues;
}

/** The config keys of the project namespace, for unknown-key suggestions. */
export const ALL_KEYS: readonly string[] = [...CONFIG_KEYS, ...SECRET_KEYS];

/** Keys earlier releases read, with what replaced them (docs/changelog.md). */
export const REMOVED_KEYS: Readonly<Record<string, string>> = {
  "k3s.previousVersion":
    "is no longer needed: each host reads the version it runs and refuses a downgrade or a skipped minor itself; remove it (docs/changelog.md, 0.2)",
};

function zodIssue(issue: z.core.$ZodIssue, names: PathNames): ConfigIssue {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  if (issue.code === "unrecognized_keys") {
    const removed = issue.keys.filter((k) => REMOVED_KEYS[[...path, k].join(".")]);
    if (removed.length === issue.keys.length) {
      const k = removed[0]!;
      return { path: formatPath([...path, k], names), message: `${REMOVED_KEYS[[...path, k].join(".")]}` };
    }
    const known = path.length === 0 ? ALL_KEYS : keysAt(stackSchema, path);
    if (path.length === 0) {
      return { path: `${PROJECT}:${issue.keys.join(", ")}`, message: `unknown config key${issue.keys.map((k) => didYouMean(k, known)).join("")}` };
    }
    return { path: formatPath(path, names), message: `unknown key(s): ${issue.keys.map((k) => `${k}${didYouMean(k, known)}`).join(", ")}` };
  }
  // A bad record key (a registry host, a DNS name): say why the key is bad, not just "Invalid key".
  const message = issue.code === "invalid_key" && issue.issues[0] ? `invalid key: ${issue.issues[0].message}` : issue.message;
  if (path.length === 0) return { path: `${PROJECT}:`, message };
  return { path: formatPath(path, names), message };
}
