import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseYamlFile, readStackFile, splitStackConfig, StackFile, StackFileError, stackFilePath } from "../components/config/stack-file";
import { secretIssues } from "../components/config/validate";
import { parseStackConfig } from "../components/stack/load";
import { renderTree } from "./tree";

/**
 * `npm run render -- --stack <env> --out <dir>` or `-- --config <file> --out <dir>`:
 * validates a stack's config exactly as the program does (same reader, same schema, same secret
 * requirements: a `secure:` value in the stack file counts as set) and writes what every node
 * would get, without the Pulumi engine. Secrets are written as placeholders naming their config
 * key. A reused --out loses only the files the previous render wrote (listed in MANIFEST).
 */

const MANIFEST = ".k3s-platform-render.json";

function usage(message: string): never {
  console.error(`render: ${message}\nusage: npm run render -- (--stack <env> | --config <file>) --out <dir>`);
  process.exit(2);
}

function load(stack?: string, configFile?: string): { file: StackFile; source: string } {
  if (stack) {
    const source = stackFilePath(".", stack);
    return { file: readStackFile(source), source };
  }
  if (!configFile) usage("give --stack or --config");
  const doc = parseYamlFile(configFile) as Record<string, unknown> | null;
  // A --config file is either a Pulumi stack file or the bare `k3s-platform:*` map.
  return { file: splitStackConfig((doc?.config as Record<string, unknown> | undefined) ?? doc ?? {}), source: configFile };
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

function fail(source: string, lines: string[]): never {
  console.error(`invalid configuration in ${source}:`);
  for (const l of lines) console.error(`  - ${l}`);
  process.exit(1);
}

function main(): void {
  const { values } = parseArgs({
    options: { stack: { type: "string" }, config: { type: "string" }, out: { type: "string" } },
  });
  if (!values.out) usage("--out is required");
  let loaded: { file: StackFile; source: string };
  try {
    loaded = load(values.stack, values.config);
  } catch (e) {
    if (e instanceof StackFileError) {
      console.error(`render: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
  const { file, source } = loaded;
  const result = parseStackConfig(file.raw);
  for (const w of result.warnings) console.error(`warning: ${w.path}: ${w.message}`);
  const issues = [...file.issues, ...(result.ok ? secretIssues(result.config, file.secrets) : result.issues)];
  if (!result.ok || issues.length > 0) fail(source, issues.map((i) => `${i.path}: ${i.message}`));

  const tree = renderTree(result.config, file.secrets);
  clearPrevious(values.out);
  for (const [path, content] of tree) {
    const target = join(values.out, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content, { mode: path.endsWith(".sh") ? 0o755 : 0o644 });
  }
  writeFileSync(join(values.out, MANIFEST), JSON.stringify([...tree.keys()].sort(), null, 2) + "\n");
  console.log(`rendered ${tree.size} files for ${result.config.nodes.length} nodes into ${values.out}`);
}

main();
