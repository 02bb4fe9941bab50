import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { isSecretKey, StackInput } from "../../components/config/schema";
import { K3S_IMAGES_DIR } from "../../components/k3s/install";
import { childName, NODE_CHILDREN, nodeResourceName } from "../../components/names";
import { MOCK_ANSWERS } from "../../tools/harness/mock-providers";
import { runProgram, settle } from "../helpers/program";
import { REPO, variant } from "../helpers/samples";

/**
 * The program as the Pulumi CLI runs it. The Node.js language host (pulumi/pulumi
 * sdk/nodejs/cmd/pulumi-language-nodejs, RunRequest) starts `node <nodeargs> @pulumi/pulumi/cmd/run`
 * in the project directory and sets PULUMI_NODEJS_TYPESCRIPT=true unless Pulumi.yaml says
 * `typescript: false` (then run.js registers ts-node, TypeScript's CommonJS emit). The suites load
 * the code with tsx. test/helpers/cli-path-probe.js does what the language host does with the
 * options Pulumi.yaml holds today; only the engine is mocked. Whatever loader Pulumi.yaml picks,
 * what reaches the hosts must be byte for byte what the suites see.
 */

interface RuntimeOptions {
  typescript: boolean;
  nodeargs: string[];
  main?: string;
}

function runtimeOptions(): RuntimeOptions {
  const project = parse(readFileSync(join(REPO, "Pulumi.yaml"), "utf8")) as {
    main?: string;
    runtime: string | { name: string; options?: { typescript?: boolean; nodeargs?: string; tsconfig?: string } };
  };
  const options = typeof project.runtime === "string" ? {} : (project.runtime.options ?? {});
  const nodeargs = options.nodeargs ?? "";
  // The language host splits nodeargs with shlex; this probe handles plain words only.
  assert.doesNotMatch(nodeargs, /["'\\]/, "Pulumi.yaml nodeargs: quoting is not modelled by this test");
  assert.equal(options.tsconfig, undefined, "Pulumi.yaml tsconfig: not modelled by this test");
  return { typescript: options.typescript ?? true, nodeargs: nodeargs.split(/\s+/).filter(Boolean), main: project.main };
}

/** What the program registers when the language host runs it, as JSON. */
function runThroughCliPath(config: StackInput, stack: string): { resources: Registration[]; status: number | null; output: string } {
  const opts = runtimeOptions();
  const dir = mkdtempSync(join(tmpdir(), "k3sp-cli-path-"));
  try {
    const out = join(dir, "registrations.json");
    const entries = Object.entries(config) as Array<[string, unknown]>;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PULUMI_CONFIG: JSON.stringify(Object.fromEntries(entries.map(([k, v]) => [`k3s-platform:${k}`, typeof v === "string" ? v : JSON.stringify(v)]))),
      PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(entries.filter(([k]) => isSecretKey(k)).map(([k]) => `k3s-platform:${k}`)),
      PROBE_OUT: out,
      PROBE_ANSWERS: JSON.stringify(MOCK_ANSWERS),
      PROBE_PROJECT: "k3s-platform",
      PROBE_STACK: stack,
    };
    // The test runner's own loader must not leak into the child.
    delete env.NODE_OPTIONS;
    delete env.PULUMI_NODEJS_TYPESCRIPT;
    if (opts.typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
    const child = spawnSync(process.execPath, [...opts.nodeargs, join(REPO, "test", "helpers", "cli-path-probe.js")], { cwd: opts.main ? join(REPO, opts.main) : REPO, env, encoding: "utf8" });
    const output = `${child.stdout}${child.stderr}`;
    return { ...(JSON.parse(readFileSync(out, "utf8")) as { resources: Registration[] }), status: child.status, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The inputs with each asset's text (a promise under mocks) in place, as the probe records them. */
async function resolveAssets(value: unknown): Promise<unknown> {
  if (value instanceof pulumi.asset.Asset) return { asset: await (value as pulumi.asset.StringAsset).text };
  if (Array.isArray(value)) return Promise.all(value.map(resolveAssets));
  if (value && typeof value === "object") return Object.fromEntries(await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolveAssets(v)])));
  return value;
}

type Registration = { type: string; name: string; inputs: unknown };

/** Registrations as plain JSON, ordered by name. */
function canonical(resources: Registration[]): Registration[] {
  return resources.map((r) => ({ type: r.type, name: r.name, inputs: JSON.parse(JSON.stringify(r.inputs ?? null)) as unknown })).sort((a, b) => a.name.localeCompare(b.name));
}

/** The files a node's bundle.sh stages, written by running it in a scratch directory. */
function stagedFiles(bundle: string): Map<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "k3sp-bundle-"));
  try {
    writeFileSync(join(dir, "bundle.sh"), bundle);
    execFileSync("bash", [join(dir, "bundle.sh")], { stdio: "ignore" });
    const names = execFileSync("ls", ["-A", dir], { encoding: "utf8" }).split("\n").filter((n) => n && n !== "bundle.sh");
    return new Map(names.map((n) => [n, readFileSync(join(dir, n), "utf8")]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bundleText(resources: Registration[], stack: string, node: string): string {
  const copy = resources.find((r) => r.type === "command:remote:CopyToRemote" && r.name === childName(nodeResourceName(stack, node), NODE_CHILDREN.bundle));
  assert.ok(copy, `${node}-bundle is registered`);
  const text = (copy.inputs as { source?: { asset?: unknown } }).source?.asset;
  assert.equal(typeof text, "string", `${node}-bundle carries its bundle as text`);
  return text as string;
}

describe("the program through the CLI's load path (Pulumi.yaml runtime options)", function () {
  // Two program runs, one in a fresh Node process that loads the SDK and the program from cold.
  this.timeout(180_000);

  it("air-gap with imagesDir: every staged file and input equals the suites' rendering; the images directory is right", async () => {
    const config = variant("prod", (r) => (r.k3s!.airgap = { ...r.k3s!.airgap!, enabled: true, imagesDir: "/opt/k3s/images" }));
    const cli = runThroughCliPath(config, "prod");
    assert.equal(cli.status, 0, cli.output);

    const suite = runProgram(config, "prod");
    assert.equal(suite.error, undefined);
    await settle(suite.stackExports);

    // run.js registers the root Stack resource itself; the suites' mocks have no such step.
    const viaCli = canonical(cli.resources.filter((r) => r.type !== "pulumi:pulumi:Stack"));
    const viaSuite = canonical(await Promise.all(suite.resources.map(async (r) => ({ type: r.type, name: r.name, inputs: await resolveAssets(r.rawInputs) }))));
    assert.ok(viaCli.length > 20, `the CLI path registered ${viaCli.length} resources`);
    assert.deepEqual(viaCli.map((r) => `${r.type} ${r.name}`), viaSuite.map((r) => `${r.type} ${r.name}`));
    for (let i = 0; i < viaCli.length; i++) assert.deepEqual(viaCli[i]!.inputs, viaSuite[i]!.inputs, `${viaCli[i]!.name}: inputs differ between the CLI's load path and the suites'`);

    const servers = config.nodes!.filter((n) => n.role === "server");
    for (const node of [servers[0]!, config.nodes!.find((n) => n.role === "agent")!]) {
      const files = stagedFiles(bundleText(cli.resources, "prod", node.name));
      const install = files.get("install-k3s.sh");
      assert.ok(install, `${node.name}: install-k3s.sh is staged`);
      assert.ok(install.split("\n").includes(`K3S_IMAGES=${K3S_IMAGES_DIR}`), `${node.name}: install-k3s.sh sets K3S_IMAGES=${K3S_IMAGES_DIR}`);
      for (const [name, text] of files) assert.doesNotMatch(text, /\bundefined\b/, `${node.name}: ${name} holds "undefined"`);
    }
  });
});
