import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { ResolvedConfig } from "../../components/config/schema";
import { CoreDnsTuning } from "../../components/dns/component";
import { TenantNamespaces } from "../../components/tenants/component";
/** The repository root (tools/harness/ is two levels down). */
export const REPO = join(__dirname, "..", "..");

/**
 * The real Pulumi engine for the test suites: the CLI built by scripts/install-pulumi.sh, the
 * analyzer launcher in scripts/bin, and plugins found on PATH (pulumi-resource-kubernetes from
 * the same cache). Programs run as Automation API inline programs, so no language host is needed.
 */

export const ENGINE_BIN = process.env.PULUMI_ENGINE_BIN ?? join(process.env.K3S_PLATFORM_CACHE ?? join(homedir(), ".cache", "k3s-platform"), "pulumi", "bin");

export function engineMissing(plugins: string[] = ["kubernetes"]): string {
  const onPath = (name: string) => [ENGINE_BIN, ...(process.env.PATH ?? "").split(delimiter)].some((d) => d && existsSync(join(d, name)));
  const missing = ["pulumi", ...plugins.map((p) => `pulumi-resource-${p}`)].filter((b) => !onPath(b));
  return missing.length ? `${missing.join(", ")} not found (scripts/install-pulumi.sh builds what the Go module proxy serves)` : "";
}

/** PATH with the engine and the analyzer launcher first; the CLI finds plugins there. */
export function enginePath(): string {
  return [ENGINE_BIN, join(REPO, "scripts", "bin"), process.env.PATH ?? ""].join(delimiter);
}

/**
 * The engine's workspace options for a test stack whose state and plugin home live in `dir`
 * (created here): the built CLI, its environment (engineEnv), PATH set for this process too.
 */
export async function engineWorkspace(dir: string): Promise<{ pulumiCommand: PulumiCommand; envVars: Record<string, string>; pulumiHome: string }> {
  mkdirSync(join(dir, "state"), { recursive: true });
  const envVars = engineEnv(dir);
  process.env.PATH = envVars.PATH;
  const pulumiCommand = await PulumiCommand.get({ root: join(ENGINE_BIN, ".."), skipVersionCheck: false });
  return { pulumiCommand, envVars, pulumiHome: envVars.PULUMI_HOME! };
}

/** A stack on a file:// backend in `dir`, running `program` inline. */
export async function inlineStack(dir: string, stackName: string, program: PulumiFn): Promise<Stack> {
  const workspace = await engineWorkspace(dir);
  return LocalWorkspace.createOrSelectStack(
    { projectName: "k3s-platform", stackName, program },
    { ...workspace, projectSettings: { name: "k3s-platform", runtime: "nodejs", backend: { url: workspace.envVars.PULUMI_BACKEND_URL! } } },
  );
}

/** The Node.js language host the CLI starts for a project directory (not needed by inline programs). */
export const LANGUAGE_HOST = "pulumi-language-nodejs";

/** Like engineMissing, for a project run as users run it: the language host too. */
export function projectEngineMissing(plugins: string[]): string {
  const missing = engineMissing(plugins);
  const onPath = [ENGINE_BIN, ...(process.env.PATH ?? "").split(delimiter)].some((d) => d && existsSync(join(d, LANGUAGE_HOST)));
  return [missing, onPath ? "" : `${LANGUAGE_HOST} not found (the Go module proxy does not serve it)`].filter(Boolean).join("; ");
}

/**
 * A stack of THIS repository's program as users run it: the CLI starts the Node.js language host,
 * which loads index.ts with Pulumi.yaml's runtime options. The project directory is a scratch copy
 * (Pulumi.yaml, package.json, tsconfig.json, index.ts copied; components/ and node_modules/
 * linked), so the stack file `Pulumi.<stack>.yaml` never lands in the repository. `values` maps
 * full keys (`k3s-platform:nodes`) to structured values, as a stack file holds them; `secrets`
 * are set as a user sets them, `pulumi config set --secret KEY` reading the value on stdin (so it
 * is never on a command line or in an error message).
 */
export async function projectStack(dir: string, stackName: string, values: Record<string, unknown>, secrets: Record<string, string> = {}): Promise<Stack> {
  const project = join(dir, "project");
  if (!existsSync(project)) {
    mkdirSync(project, { recursive: true });
    for (const f of ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts"]) copyFileSync(join(REPO, f), join(project, f));
    for (const d of ["components", "node_modules"]) symlinkSync(join(REPO, d), join(project, d));
  }
  const workspace = await engineWorkspace(dir);
  const stack = await LocalWorkspace.createOrSelectStack({ stackName, workDir: project }, workspace);
  // `pulumi config set-all --json` takes the format `pulumi config --json` prints.
  const entries = Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? { value: v } : { value: JSON.stringify(v), objectValue: v }]);
  await stack.workspace.setAllConfigJson(stackName, JSON.stringify(Object.fromEntries(entries)));
  for (const [key, value] of Object.entries(secrets)) {
    execFileSync(join(ENGINE_BIN, "pulumi"), ["config", "set", "--secret", "--stack", stackName, key], { cwd: project, env: { ...process.env, ...workspace.envVars }, input: value, stdio: ["pipe", "ignore", "pipe"] });
  }
  return stack;
}

/** The CLI's environment for a test stack whose state and plugin home live in `dir`. */
export function engineEnv(dir: string): Record<string, string> {
  return {
    PULUMI_CONFIG_PASSPHRASE: "k3s-platform-test",
    PULUMI_BACKEND_URL: `file://${join(dir, "state")}`,
    PULUMI_HOME: join(dir, "home"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_DEBUG_COMMANDS: "true",
    PATH: enginePath(),
  };
}

/**
 * What the provider awaits that needs running Pods: Deployments and DaemonSets become Ready, and a
 * Service with a selector waits for Endpoints naming a ready Pod (pulumi-kubernetes' await logic;
 * measured: `kube-system/kube-dns-upstream` held `up` for its full 10-minute timeout here).
 */
const AWAITED_WORKLOADS = new Set(["kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:DaemonSet", "kubernetes:core/v1:Service"]);

/**
 * The in-cluster layer the way components/program.ts builds it (TenantNamespaces, CoreDnsTuning,
 * one server-side-apply provider), against `kubeconfig`. The test API server has no nodes, so
 * workloads (NodeLocal DNS, the DNS autoscaler) never become Ready and Services never get
 * Endpoints: THIS TEST PROGRAM, not the product, marks them `pulumi.com/skipAwait` so `up` does
 * not wait ten minutes for them. On a K3s cluster the product awaits them.
 */
export function inClusterProgram(config: ResolvedConfig, kubeconfig: string, stack: string): PulumiFn {
  return async () => {
    const skipAwait: pulumi.ResourceTransformation = (args) => {
      if (!AWAITED_WORKLOADS.has(args.type)) return undefined;
      const props = args.props as { metadata?: { annotations?: Record<string, string> } };
      const metadata = { ...(props.metadata ?? {}), annotations: { ...(props.metadata?.annotations ?? {}), "pulumi.com/skipAwait": "true" } };
      return { props: { ...args.props, metadata }, opts: args.opts };
    };
    // Secret, as the product's kubeconfig output is (components/program.ts).
    const provider = new k8s.Provider(`${stack}-k8s`, { kubeconfig: pulumi.secret(kubeconfig), enableServerSideApply: true });
    new TenantNamespaces(`${stack}-tenants`, { config, provider }, { transformations: [skipAwait] });
    new CoreDnsTuning(`${stack}-dns`, { config, provider }, { transformations: [skipAwait] });
    return {};
  };
}

/**
 * `pulumi preview --json --event-log FILE` through the real CLI for an inline program: the
 * output preview:md parses (the Automation API's own preview streams events but gives no JSON
 * digest). Serves the program's language runtime the way the Automation API does (its
 * LanguageServer, passed to the CLI with --client). Needs PULUMI_DEBUG_COMMANDS=true for
 * --event-log (pulumi 3.260).
 */
export async function cliPreview(stack: Stack, program: PulumiFn, extraArgs: string[] = []): Promise<{ status: number; json: string; events: string; stderr: string }> {
  // Internal to @pulumi/pulumi, the same modules automation/stack.js uses.
  const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const { LanguageServer } = require("@pulumi/pulumi/automation/server") as { LanguageServer: new (p: PulumiFn) => { onPulumiExit(e: boolean): void } };
  const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb") as { LanguageRuntimeService: import("@grpc/grpc-js").ServiceDefinition };
  const server = new grpc.Server({ "grpc.max_receive_message_length": 500 * 1024 * 1024 });
  const language = new LanguageServer(program);
  server.addService(langrpc.LanguageRuntimeService, language as unknown as import("@grpc/grpc-js").UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const eventLog = join(stack.workspace.workDir, `preview-${port}.events.jsonl`);
  const env = { ...process.env, ...(stack.workspace as LocalWorkspace).envVars, PULUMI_DEBUG_COMMANDS: "true" };
  const child = spawn(
    join(ENGINE_BIN, "pulumi"),
    ["preview", "--json", "--event-log", eventLog, "--non-interactive", "--stack", stack.name, `--client=127.0.0.1:${port}`, "--exec-kind", "inline", ...extraArgs],
    { cwd: stack.workspace.workDir, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let json = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (json += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const status = await new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  language.onPulumiExit(status !== 0);
  server.forceShutdown();
  const events = existsSync(eventLog) ? readFileSync(eventLog, "utf8") : "";
  return { status, json, events, stderr };
}
