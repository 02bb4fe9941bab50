import { join } from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { Environment, ResolvedConfig, StackInput } from "../../components/config/schema";
import { loadStackConfig } from "../../components/stack/load";

export const REPO = join(__dirname, "..", "..");
export const ENVS: Environment[] = ["dev", "staging", "prod"];

export function sampleRaw(env: Environment): StackInput {
  return readStackFile(join(REPO, `Pulumi.${env}.yaml`)).raw as StackInput;
}

export function sampleConfig(env: Environment): ResolvedConfig {
  return loadStackConfig(sampleRaw(env));
}

/**
 * Sample stacks beyond the three environments, each in its own file, with a golden directory of
 * the same name (test/golden/<name>): the dual-stack cluster (issue 14), every day-2 operation
 * armed at once (issue 23), pools, hooks and OIDC (issue 27), Cilium under CIS and nodes across
 * networks on WireGuard (issue 27), a control plane shrinking with uninstallOnDestroy (issue 23).
 */
export const FIXTURE_SAMPLES = {
  dualstack: join(REPO, "test", "fixtures", "dualstack", "Pulumi.dualstack.yaml"),
  day2: join(REPO, "test", "fixtures", "day2", "Pulumi.day2.yaml"),
  // Issue 27: 50 agents written as a pool, with hooks at every point and an OIDC provider.
  pools: join(REPO, "test", "fixtures", "pools", "Pulumi.pools.yaml"),
  cilium: join(REPO, "test", "fixtures", "cilium", "Pulumi.cilium.yaml"),
  wireguard: join(REPO, "test", "fixtures", "wireguard", "Pulumi.wireguard.yaml"),
  topology: join(REPO, "test", "fixtures", "topology", "Pulumi.topology.yaml"),
} as const;
export type FixtureSample = keyof typeof FIXTURE_SAMPLES;

export function fixtureRaw(name: FixtureSample): StackInput {
  return readStackFile(FIXTURE_SAMPLES[name]).raw as StackInput;
}

export function fixtureConfig(name: FixtureSample): ResolvedConfig {
  return loadStackConfig(fixtureRaw(name));
}

/** A deep copy of a sample's raw config, for building variants. */
export function variant(env: Environment, edit: (raw: StackInput) => void): StackInput {
  const raw = structuredClone(sampleRaw(env));
  edit(raw);
  return raw;
}
