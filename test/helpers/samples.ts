import { join } from "node:path";
import { readStackFile } from "../../components/config/stack-file";
import { Environment, ResolvedConfig, StackInput } from "../../components/config/schema";
import { loadStackConfig } from "../../components/config/validate";

export const REPO = join(__dirname, "..", "..");
export const ENVS: Environment[] = ["dev", "staging", "prod"];

export function sampleRaw(env: Environment): StackInput {
  return readStackFile(join(REPO, `Pulumi.${env}.yaml`)).raw as StackInput;
}

export function sampleConfig(env: Environment): ResolvedConfig {
  return loadStackConfig(sampleRaw(env));
}

/** A deep copy of a sample's raw config, for building variants. */
export function variant(env: Environment, edit: (raw: StackInput) => void): StackInput {
  const raw = structuredClone(sampleRaw(env));
  edit(raw);
  return raw;
}
