import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { readStackFile, splitStackConfig, StackFile } from "../components/config/stack-file";
import { parseStackConfig } from "../components/config/validate";
import { planCluster } from "../components/node/plan";

/**
 * `npm run render -- --stack <env> --out <dir>` or `-- --config <file> --out <dir>`:
 * validates a stack's config and writes what every node would get, without the Pulumi engine.
 * Secrets are written as placeholders naming their config key.
 */

function usage(message: string): never {
  console.error(`render: ${message}\nusage: npm run render -- (--stack <env> | --config <file>) --out <dir>`);
  process.exit(2);
}

function load(stack?: string, configFile?: string): StackFile {
  if (stack) return readStackFile(`Pulumi.${stack}.yaml`);
  if (!configFile) usage("give --stack or --config");
  const doc = parse(readFileSync(configFile, "utf8")) as { config?: Record<string, unknown> } | null;
  // A --config file is either a Pulumi stack file or the bare `k3s-platform:*` map.
  return splitStackConfig(doc?.config ?? (doc as Record<string, unknown>) ?? {});
}

export function placeholder(key: string): string {
  return `<redacted: secret k3s-platform:${key}>`;
}

function main(): void {
  const { values } = parseArgs({
    options: { stack: { type: "string" }, config: { type: "string" }, out: { type: "string" } },
  });
  if (!values.out) usage("--out is required");
  const file = load(values.stack, values.config);
  const result = parseStackConfig(file.raw);
  if (!result.ok) {
    console.error(`invalid configuration${values.stack ? ` in Pulumi.${values.stack}.yaml` : ""}:`);
    for (const issue of result.issues) console.error(`  - ${issue.path}: ${issue.message}`);
    process.exit(1);
  }
  const plan = planCluster(result.config, { hasRegistryAuth: file.secrets.has("registryAuth") });
  const secrets = {
    token: placeholder("token"),
    agentToken: file.secrets.has("agentToken") ? placeholder("agentToken") : undefined,
    datastoreEndpoint: placeholder("datastoreEndpoint"),
    registryAuth: file.secrets.has("registryAuth") ? { "<registry>": { username: placeholder("registryAuth"), password: placeholder("registryAuth") } } : undefined,
  };
  let count = 0;
  for (const [order, nodePlan] of plan.nodes.entries()) {
    const dir = join(values.out, nodePlan.node.name);
    mkdirSync(join(dir, "secrets"), { recursive: true });
    for (const f of nodePlan.files) {
      writeFileSync(join(dir, f.name), f.content, { mode: f.mode === "0700" ? 0o755 : 0o644 });
      count++;
    }
    for (const s of nodePlan.secretFiles) {
      writeFileSync(join(dir, "secrets", s.name), s.render(secrets));
      count++;
    }
    const summary = {
      node: nodePlan.node.name,
      role: nodePlan.role,
      order,
      files: Object.fromEntries(nodePlan.files.map((f) => [f.name, f.target ?? "(runs from staging)"])),
      secretFiles: Object.fromEntries(nodePlan.secretFiles.map((s) => [s.name, s.target])),
      postRegistrationLabels: nodePlan.postRegistrationLabels,
      commands: nodePlan.commands,
      hashes: nodePlan.hashes,
    };
    writeFileSync(join(dir, "plan.json"), JSON.stringify(summary, null, 2) + "\n");
    count++;
  }
  console.log(`rendered ${count} files for ${plan.nodes.length} nodes into ${values.out}`);
}

main();
