import { cisWeakenings, FLAG_BY_NAME, releaseOf, versionGaps } from "../config/flags";
import type { ResolvedConfig } from "../config/schema";
import type { StackFile } from "../config/stack-file";
import { ConfigError, ConfigPath, formatPath, parseConfig, ParseResult, Report, secretIssues, secretNeedsOf } from "../config/validate";
import { kubeResourceName } from "../kube/objects";
import { nodeChildNames } from "../names";
import { planCluster } from "../plan/node";
import { renderTenant } from "../tenants/render";

/**
 * Loading a stack's configuration: config/validate.ts decides what the config alone can, then
 * the checks on what it renders (they need the plan and the tenants' objects, which sit above
 * config/ in the layout, so they run from here and config/ imports nothing above it).
 */

/** Parses raw `k3s-platform:*` values into a resolved config; every check, rendered ones included. */
export function parseStackConfig(raw: unknown): ParseResult {
  return parseConfig(raw, renderedChecks);
}

/**
 * Every check on a stack's values in one round: plaintext secure values (the reader's), the
 * schema or, when it parses, the cross-field and rendered checks, and the secure keys the config
 * needs (read from the raw values when the schema refused them). The program and `npm run
 * render` both call this, so they refuse the same stacks with the same messages.
 */
export function checkStackFile(file: StackFile): ParseResult {
  const result = parseStackConfig(file.raw);
  const secrets = secretIssues(result.ok ? result.config : secretNeedsOf(file.raw), file.secrets);
  const issues = [...file.issues, ...(result.ok ? [] : result.issues), ...secrets];
  return issues.length > 0 ? { ok: false, issues, warnings: result.warnings } : result;
}

/** Like parseStackConfig, but throws a ConfigError. */
export function loadStackConfig(raw: unknown): ResolvedConfig {
  const result = parseStackConfig(raw);
  if (!result.ok) throw new ConfigError(result.issues);
  return result.config;
}

/** Where a final flag comes from in the config, for error paths. */
const TYPED_FLAG_PATHS: Readonly<Record<string, ConfigPath>> = {
  "secrets-encryption": ["encryption", "enabled"],
  "secrets-encryption-provider": ["encryption", "provider"],
  "flannel-backend": ["k3s", "flannelBackend"],
  "flannel-ipv6-masq": ["k3s", "flannelIpv6Masq"],
  "flannel-external-ip": ["k3s", "flannelExternalIp"],
  "disable-network-policy": ["k3s", "cni"],
  "disable-kube-proxy": ["k3s", "cni"],
  "disable": ["k3s", "disable"],
  "protect-kernel-defaults": ["k3s", "hardening"],
  "kubelet-arg": ["k3s", "kubelet"],
  "kube-apiserver-arg": ["k3s", "apiServer"],
  "write-kubeconfig-mode": ["k3s", "hardening"],
};

function flagPath(config: ResolvedConfig, role: "server" | "agent", flag: string): ConfigPath {
  const map = role === "server" ? "extraServerConfig" : "extraAgentConfig";
  if (flag in config.k3s[map]) return ["k3s", map, flag];
  if (flag.startsWith("etcd-")) return ["k3s", "etcdSnapshots"];
  return TYPED_FLAG_PATHS[flag] ?? ["k3s"];
}

/**
 * Checks on what the config renders: each node's final flags against the pinned release (flags,
 * flag values) and, under CIS, against the hardening profile (the same predicate the policy runs
 * on registered nodes); subcommands the lifecycle needs; generated-name collisions.
 */
export function renderedChecks(config: ResolvedConfig, report: Report): void {
  const release = releaseOf(config.k3s);
  const seen = new Set<string>();
  // One plan for every check below (the plan lists servers first; checks report in config order).
  const plan = planCluster(config);
  const planOf = new Map(plan.nodes.map((p) => [p.node, p]));
  for (const node of config.nodes) {
    const role = node.role;
    // A node armed for removal gets no plan (nothing is installed on it any more).
    const nodePlan = planOf.get(node);
    if (!nodePlan) continue;
    const { flags } = nodePlan.finalFlags;
    if (release) {
      for (const gap of versionGaps(flags, release)) {
        const key = `${gap.flag}=${gap.value ?? ""}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const what = gap.value !== undefined && FLAG_BY_NAME.get(gap.flag)?.class !== "pass-through" ? gap.value : `"${gap.flag}"`;
        report(flagPath(config, role, gap.flag), `${what} ${gap.why}`);
      }
    }
    if (config.k3s.hardening === "cis") {
      for (const [flag, message] of cisWeakenings(flags, role, nodePlan.networkPolicyBy)) {
        const key = `cis:${role}:${flag}:${message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        report(flagPath(config, role, flag), `${message} (k3s.hardening is cis)`);
      }
    }
  }

  // Subcommands: key rotation falls back to prepare/rotate/reencrypt where rotate-keys is missing
  // (encryption/render.ts, through hasSubcommand); every other subcommand the lifecycle scripts
  // run predates the oldest supported release (flags.ts SUBCOMMANDS).

  // Generated resource names of the nodes' children (`<stack>-<node>-<suffix>`), across nodes.
  const childOwner = new Map<string, number>();
  const indexOf = new Map(config.nodes.map((n, i) => [n, i]));
  for (const nodePlan of plan.nodes) {
    const i = indexOf.get(nodePlan.node)!;
    for (const name of nodeChildNames(nodePlan)) {
      const other = childOwner.get(name);
      if (other !== undefined && other !== i) {
        report(["nodes", i, "name"], `generates the resource name <stack>-${name}, which nodes[${other}] (${config.nodes[other]!.name}) also generates; rename one of them`);
      } else childOwner.set(name, i);
    }
  }

  // Generated object names: an allow named `dns` renders `allow-dns`, the generated DNS allow.
  const owners = new Map<string, ConfigPath>();
  config.tenants.forEach((tenant, i) => {
    const objects = renderTenant(config, tenant);
    // renderNetworkPolicies emits the user's allows last, in order.
    const allowStart = objects.length - tenant.network.allows.length;
    objects.forEach((obj, k) => {
      const allowIndex = k >= allowStart ? k - allowStart : -1;
      const path: ConfigPath = allowIndex >= 0 && obj.kind === "NetworkPolicy" ? ["tenants", i, "network", "allows", allowIndex, "name"] : ["tenants", i, "namespace"];
      const identities = [`${obj.kind}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`, `resource:${kubeResourceName("tenants", obj)}`];
      for (const id of identities) {
        const other = owners.get(id);
        if (other && formatPath(other) !== formatPath(path)) {
          report(allowIndex >= 0 ? path : other, `generates ${obj.kind} "${obj.metadata.namespace}/${obj.metadata.name}", which collides with the object generated for ${formatPath(allowIndex >= 0 ? other : path)}`);
          break;
        }
        if (!other) owners.set(id, path);
      }
    });
  });
}
