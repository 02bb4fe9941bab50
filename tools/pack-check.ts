import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { EnforcementLevel, ResourceValidation, ResourceValidationArgs } from "@pulumi/policy";
import type { ResolvedConfig } from "../components/config/schema";
import { clusterConfigPolicies, TYPES } from "../policies/policies";

/**
 * The policy pack's rules on the cluster's config (prod shape, quorum, pinned version…), run
 * without the engine: the pack's own policy objects (policies.ts clusterConfigPolicies) on the
 * config the K3sCluster component would register, at the levels and with the settings of the
 * pack config preview uses for the environment (policies/config/<environment>.json). `npm run
 * render` prints what they report as warnings.
 */

export interface PackFinding {
  policy: string;
  level: EnforcementLevel;
  message: string;
}

/** The pack config preview passes for `environment` (README "Policy pack"), or none (the pack's defaults). */
export function packConfigFor(environment: string): Record<string, unknown> {
  const file = join(__dirname, "..", "policies", "config", `${environment}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
}

/** Each cluster-config policy's violations of `config`, with its effective level; disabled policies are skipped. */
export async function clusterConfigFindings(config: ResolvedConfig, packConfig: Record<string, unknown> = packConfigFor(config.environment)): Promise<PackFinding[]> {
  const findings: PackFinding[] = [];
  for (const policy of clusterConfigPolicies) {
    // As the engine reads a pack config: "all" sets every level; an entry is a level or an object with one and settings.
    const entry = packConfig[policy.name];
    const settings = entry && typeof entry === "object" ? (entry as Record<string, unknown>) : {};
    const level = ((typeof entry === "string" ? entry : settings.enforcementLevel) ?? packConfig.all ?? policy.enforcementLevel ?? "advisory") as EnforcementLevel;
    if (level === "disabled") continue;
    const defaults = Object.fromEntries(
      Object.entries(policy.configSchema?.properties ?? {}).flatMap(([k, p]) => (typeof p === "object" && p && "default" in p ? [[k, p.default]] : [])),
    );
    const given = Object.fromEntries(Object.entries(settings).filter(([k]) => k !== "enforcementLevel"));
    // JSON round trip: the pack sees the registered (serialized) config, never undefined fields.
    const props = { config: JSON.parse(JSON.stringify(config)) as unknown };
    // The cluster-config checks read only type, props and getConfig (clusterPolicy in policies.ts);
    // the other fields of the engine's arguments have nothing to say about a config.
    const args = { type: TYPES.cluster, props, urn: "", name: "", getConfig: () => ({ ...defaults, ...given }) } as unknown as ResourceValidationArgs;
    for (const validate of ([] as ResourceValidation[]).concat(policy.validateResource ?? [])) {
      await validate(args, (message: string) => findings.push({ policy: policy.name, level, message }));
    }
  }
  return findings;
}
