import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseYamlFile, readStackFile, splitStackConfig, StackFile, stackFilePath } from "../components/config/stack-file";
import { checkStackFile } from "../components/stack/load";
import { checkPath, CliOption, CliSpec, ConfigFailure, runCli, UsageError } from "./cli";
import { clusterConfigFindings } from "./pack-check";
import { renderTree } from "./tree";

/**
 * `npm run render -- --stack <env> --out <dir>` or `-- --config <file> --out <dir>`:
 * validates a stack's config exactly as the program does (same reader, same schema, same secret
 * requirements: a `secure:` value in the stack file counts as set) and writes what every node
 * would get, without the Pulumi engine. Secrets are written as placeholders naming their config
 * key. A reused --out loses only the files the previous render wrote (listed in MANIFEST).
 */

const MANIFEST = ".k3s-platform-render.json";

const SPEC = {
  name: "render",
  usage: ["npm run render -- --stack <env> --out <dir>", "npm run render -- --config <file> --out <dir>"],
  description:
    "Validates a stack's configuration as the program does and writes what every node would get (secrets as\n" +
    "placeholders), without the Pulumi engine. Then warns about the policy pack's rules on the cluster's config\n" +
    "that the config breaks; the rest of the pack and the day-2 operations are checked at preview.",
  options: {
    stack: { type: "string", value: "<env>", help: "the stack file ./Pulumi.<env>.yaml" },
    config: { type: "string", value: "<file>", help: "a stack file elsewhere, or a bare map of k3s-platform:* keys" },
    out: { type: "string", value: "<dir>", help: "where to write (created when missing; a reused one loses only what render wrote)" },
  },
  notes: ["exit status: 0 rendered, 1 the configuration is invalid, 2 a usage error"],
} satisfies CliSpec<Record<string, CliOption>>;

/** The stack file named by --stack, or the --config file (either a Pulumi stack file or the bare `k3s-platform:*` map). */
function load(from: { stack: string } | { config: string }): { file: StackFile; source: string } {
  if ("stack" in from) {
    const source = stackFilePath(".", from.stack);
    return { file: readStackFile(source), source };
  }
  const doc = parseYamlFile(from.config) as Record<string, unknown> | null;
  return { file: splitStackConfig((doc?.config as Record<string, unknown> | undefined) ?? doc ?? {}), source: from.config };
}

/** Removes what the previous render wrote into `out` (and directories it leaves empty); nothing else. */
function clearPrevious(out: string): void {
  const manifest = join(out, MANIFEST);
  if (!existsSync(manifest)) return;
  const files = JSON.parse(readFileSync(manifest, "utf8")) as string[];
  const root = resolve(out);
  for (const f of files) {
    const target = resolve(root, f);
    if (relative(root, target).startsWith("..")) continue; // never outside --out
    rmSync(target, { force: true });
    for (let dir = dirname(target); dir !== root && dir.startsWith(root); dir = dirname(dir)) {
      if (!existsSync(dir) || readdirSync(dir).length > 0) break;
      rmdirSync(dir);
    }
  }
  rmSync(manifest, { force: true });
}

async function main(values: { stack?: string; config?: string; out?: string }): Promise<number> {
  if (values.stack !== undefined && values.config !== undefined) throw new UsageError("give --stack or --config, not both");
  if (values.stack === undefined && values.config === undefined) throw new UsageError("give --stack <env> or --config <file>");
  if (values.out === undefined) throw new UsageError("--out <dir> is required");
  checkPath("out", values.out, "directory", true);
  const out = values.out;
  let from: { stack: string } | { config: string };
  if (values.config !== undefined) {
    checkPath("config", values.config, "file");
    from = { config: values.config };
  } else from = { stack: values.stack! };

  const { file, source } = load(from);
  const result = checkStackFile(file);
  for (const w of result.warnings) console.error(`warning: ${w.path}: ${w.message}`);
  if (!result.ok) throw new ConfigFailure([`invalid configuration in ${source}:`, ...result.issues.map((i) => `  - ${i.path}: ${i.message}`)].join("\n"));

  const tree = renderTree(result.config, file.secrets);
  clearPrevious(out);
  for (const [path, content] of tree) {
    const target = join(out, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content, { mode: path.endsWith(".sh") ? 0o755 : 0o644 });
  }
  writeFileSync(join(out, MANIFEST), JSON.stringify([...tree.keys()].sort(), null, 2) + "\n");
  console.log(`rendered ${tree.size} files for ${result.config.nodes.length} nodes into ${out}`);

  // What preview's policy pack will say about this config, from the pack's own rules.
  const env = result.config.environment;
  for (const f of await clusterConfigFindings(result.config)) {
    const verdict = f.level === "mandatory" ? "preview with the policy pack refuses this" : `${f.level}: preview reports it`;
    console.error(`warning: policy ${f.policy} (${verdict}): ${f.message}`);
  }
  const stack = values.stack ?? "<stack>";
  console.log(
    `not checked by render: the policy pack's rules on what the program registers (nodes' flags, commands, Kubernetes objects) and the ` +
      `day-2 operations against the running cluster (upgrades, removals, rotations); preview checks them: ` +
      `pulumi preview --stack ${stack} --policy-pack policies --policy-pack-config policies/config/${env}.json`,
  );
  return 0;
}

void runCli(SPEC, main);
