import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { EnforcementLevel, ResourceValidation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import type { ResolvedConfig } from "../components/config/schema";
import { clusterConfigPolicies, TYPES } from "../policies/policies";

/**
 * The policy pack's rules on the cluster's config (prod shape, quorum, pinned version…), run
 * without the engine: the pack's own policy objects (policies.ts clusterConfigPolicies) on the
 * config the K3sCluster component would register, at the levels and with the settings of the
 * pack config preview uses for the environment (policies/config/<environment>.json). `npm run
 * render` prints what they report as warnings.
 */

/** A pack config file (`--policy-pack-config`): `all` and per-policy levels, or objects with a level and settings. */
export type PolicyConfigFile = Record<string, EnforcementLevel | ({ enforcementLevel?: EnforcementLevel } & Record<string, unknown>)>;

/** The pack config preview passes for `environment` (docs/policy-pack.md), or none (the pack's defaults). */
export function packConfigFor(environment: string): PolicyConfigFile {
  const file = join(__dirname, "..", "policies", "config", `${environment}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as PolicyConfigFile) : {};
}

/** A policy's level and settings as the engine derives them: schema defaults overlaid with the pack config's entry. */
export function policySettings(policy: ResourceValidationPolicy | StackValidationPolicy, file: PolicyConfigFile = {}): { level: EnforcementLevel; config: Record<string, unknown> } {
  const defaults = Object.fromEntries(
    Object.entries(policy.configSchema?.properties ?? {}).map(([k, s]) => [k, (s as { default?: unknown }).default]),
  );
  const entry = file[policy.name];
  const fromAll = typeof file.all === "string" ? file.all : undefined;
  const level = (typeof entry === "string" ? entry : entry?.enforcementLevel) ?? fromAll ?? policy.enforcementLevel ?? "mandatory";
  const extra = typeof entry === "object" ? Object.fromEntries(Object.entries(entry).filter(([k]) => k !== "enforcementLevel")) : {};
  return { level, config: { ...defaults, ...extra } };
}

export interface PackFinding {
  policy: string;
  level: EnforcementLevel;
  message: string;
}

/** Each cluster-config policy's violations of `config`, with its effective level; disabled policies are skipped. */
export async function clusterConfigFindings(config: ResolvedConfig, file: PolicyConfigFile = packConfigFor(config.environment)): Promise<PackFinding[]> {
  const findings: PackFinding[] = [];
  // JSON round trip: the pack sees the registered (serialized) config, never undefined fields.
  const props = { config: JSON.parse(JSON.stringify(config)) as unknown };
  for (const policy of clusterConfigPolicies) {
    const { level, config: settings } = policySettings(policy, file);
    if (level === "disabled") continue;
    // The cluster-config checks read only type, props and getConfig (clusterPolicy in policies.ts);
    // the engine's other fields have nothing to say about a config.
    const args = { type: TYPES.cluster, props, urn: "", name: "", getConfig: () => settings } as unknown as ResourceValidationArgs;
    for (const validate of ([] as ResourceValidation[]).concat(policy.validateResource ?? [])) {
      await validate(args, (message: string) => findings.push({ policy: policy.name, level, message }));
    }
  }
  return findings;
}
