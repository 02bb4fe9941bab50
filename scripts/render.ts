import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { readStackFile, splitStackConfig, StackFile } from "../components/config/stack-file";
import { parseStackConfig } from "../components/config/validate";
import { renderTree } from "../components/node/tree";

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
  const doc = parse(readFileSync(configFile, "utf8")) as Record<string, unknown> | null;
  // A --config file is either a Pulumi stack file or the bare `k3s-platform:*` map.
  return splitStackConfig((doc?.config as Record<string, unknown> | undefined) ?? doc ?? {});
}

function main(): void {
  const { values } = parseArgs({
    options: { stack: { type: "string" }, config: { type: "string" }, out: { type: "string" } },
  });
  if (!values.out) usage("--out is required");
  const file = load(values.stack, values.config);
  const result = parseStackConfig(file.raw);
  if (!result.ok) {
    console.error(`invalid configuration in ${values.stack ? `Pulumi.${values.stack}.yaml` : values.config}:`);
    for (const issue of result.issues) console.error(`  - ${issue.path}: ${issue.message}`);
    process.exit(1);
  }
  const tree = renderTree(result.config, file.secrets);
  for (const [path, content] of tree) {
    const target = join(values.out, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content, { mode: path.endsWith(".sh") ? 0o755 : 0o644 });
  }
  const nodes = new Set([...tree.keys()].map((p) => p.split("/")[0]));
  console.log(`rendered ${tree.size} files for ${nodes.size} nodes into ${values.out}`);
}

main();
