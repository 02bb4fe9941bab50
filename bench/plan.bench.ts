import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { performance } from "node:perf_hooks";
import { StackInput } from "../components/config/schema";
import { readStackFile } from "../components/config/stack-file";
import { loadStackConfig, parseStackConfig } from "../components/stack/load";
import { NodePlan, planCluster } from "../components/plan/node";
import { renderTree } from "../tools/tree";
import { ControlPlane, missingTools } from "../tools/harness/apiserver";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { engineMissing, engineWorkspace, inClusterProgram, inlineStack, projectEngineMissing, projectStack } from "../tools/harness/engine";
import { BenchResource, buildGraph, prodWithNodes, REPO, runPack, withNoProxyNamingEveryNode, withoutNodeNetworks } from "./graph";
import { runCli, UsageError } from "../tools/cli";
import { churnTable } from "./churn";

/**
 * `npm run bench`: what the program costs as a cluster grows, in one run. The prod sample's
 * settings with 3 servers and N-3 agents. Everything is warmed up before it is timed; times are
 * wall clock and CPU (CPU is what a busy machine distorts least). Sizes: BENCH_SMALL (100) and
 * BENCH_LARGE (1000) nodes; BENCH_RUNS (3) runs at the small size, one at the large.
 *
 * Source-mapped stack traces are off for the timed runs (BENCH_SOURCE_MAPS=1 keeps them): the
 * Pulumi SDK captures a stack for every promise it makes (runtime/debuggable.js) and for every
 * resource, and tsx makes Node map each frame through the source maps, which costs more than the
 * program itself. That is the runner's cost, not the program's; one extra row shows it.
 */

const SMALL = Number(process.env.BENCH_SMALL ?? 100);
const LARGE = Number(process.env.BENCH_LARGE ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Timing {
  wallMs: number;
  cpuMs: number;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<Timing & { value: T }> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { value, wallMs, cpuMs: (used.user + used.system) / 1000 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Resources each node adds: its K3sNode and every resource under it. */
function perNode(graph: BenchResource[]): { max: number; min: number } {
  const counts = new Map<string, number>();
  for (const r of graph) if (r.type === "k3s-platform:index:K3sNode") counts.set(r.urn, 1);
  for (const r of graph) if (r.parent && counts.has(r.parent)) counts.set(r.parent, counts.get(r.parent)! + 1);
  const values = [...counts.values()];
  return { max: Math.max(...values), min: Math.min(...values) };
}

async function graphRun(nodes: number) {
  const config = loadStackConfig(prodWithNodes(nodes));
  const graph = await timed(() => buildGraph(config, "prod"));
  const pack = await timed(() => runPack(graph.value, "prod"));
  return { graph, pack, resources: graph.value.length, violations: pack.value.length, perNode: perNode(graph.value) };
}

/**
 * The real-engine comparison (issue 15): `pulumi preview` (Automation API, inline program) of the
 * in-cluster layer (tenants, DNS: components/tenants, components/dns, the way components/program.ts
 * wires them) against a real API server (tools/harness/apiserver.ts), next to a bare program that
 * registers the same number of resources: minimal ConfigMaps in one namespace through the same
 * provider and API server. Both previews start from an empty stack (every resource a create, so
 * the provider dry-runs each object on the server). One warm-up preview of each, then
 * BENCH_ENGINE_RUNS (3) alternating timed runs, medians. Goal: ratio ≤ 2.
 * Skips, saying why, where the engine or the API server binaries are missing.
 */
async function realEnginePreview(): Promise<string[]> {
  const missing = [engineMissing(), missingTools()].filter(Boolean).join("; ");
  if (missing) return [`skipped: ${missing}`];
  const runs = Number(process.env.BENCH_ENGINE_RUNS ?? 3);
  const work = mkdtempSync(join(tmpdir(), "k3sp-bench-engine-"));
  const cp = new ControlPlane();
  try {
    await cp.up();
    const kubeconfig = readFileSync(cp.kubeconfig, "utf8");
    const config = loadStackConfig(readStackFile(join(REPO, "Pulumi.prod.yaml")).raw as StackInput);
    const layer = await inlineStack(join(work, "layer"), "layer", inClusterProgram(config, kubeconfig, "prod"));
    // Resources the layer registers, counted from a preview's steps (stack, provider, components, objects).
    let count = 0;
    await layer.preview({ onEvent: (e) => { if (e.resourcePreEvent) count++; } });
    const bareProgram = async () => {
      const provider = new k8s.Provider("bare-k8s", { kubeconfig: pulumi.secret(kubeconfig), enableServerSideApply: true });
      // The stack and the provider are resources too: count - 2 ConfigMaps.
      for (let i = 0; i < count - 2; i++) {
        new k8s.core.v1.ConfigMap(`bare-${i}`, { metadata: { name: `bare-${i}`, namespace: "default" }, data: { k: "v" } }, { provider });
      }
      return {};
    };
    const bare = await inlineStack(join(work, "bare"), "bare", bareProgram);
    let bareCount = 0;
    await bare.preview({ onEvent: (e) => { if (e.resourcePreEvent) bareCount++; } });
    const times = { layer: [] as number[], bare: [] as number[] };
    for (let i = 0; i < runs; i++) {
      times.layer.push((await timed(() => layer.preview())).wallMs);
      times.bare.push((await timed(() => bare.preview())).wallMs);
    }
    const l = median(times.layer);
    const b = median(times.bare);
    return [
      `in-cluster layer (prod sample: tenants + DNS), ${count} resources: ${l.toFixed(0)} ms`,
      `bare program (${bareCount} resources: ConfigMaps, same provider and API server): ${b.toFixed(0)} ms`,
      `ratio ${(l / b).toFixed(2)} (goal ≤ 2; median of ${runs} after one warm-up each; pulumi preview from an empty stack)`,
    ];
  } catch (e) {
    return [`failed: ${(e as Error).message.split("\n").slice(0, 5).join(" | ")}`];
  } finally {
    await cp.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Resources a preview announces (the stack, providers and components included), counted from its events. */
async function previewedResources(stack: Stack): Promise<number> {
  let count = 0;
  await stack.preview({ onEvent: (e) => void (e.resourcePreEvent && count++) });
  return count;
}

/**
 * The preview users run (issue 21): `pulumi preview` of this project through the CLI and the
 * Node.js language host, loaded with Pulumi.yaml's runtime options (tsx, no type-check), for the
 * prod sample at BENCH_CLI_NODES (30) nodes from an empty stack, next to a bare JavaScript
 * project registering as many resources (all `remote.Command`, same provider) as the preview
 * announces (stack, providers and components included, as issue 21 counted them). One
 * warm-up preview of each, then BENCH_ENGINE_RUNS (3) alternating timed runs, medians. Goal: ratio
 * ≤ 1.3. Skips, saying why, where the language host or the command/random plugins are missing.
 */
async function cliProjectPreview(): Promise<string[]> {
  const missing = projectEngineMissing(["command", "random", "kubernetes"]);
  if (missing) return [`skipped: ${missing}`];
  const runs = Number(process.env.BENCH_ENGINE_RUNS ?? 3);
  const nodes = Number(process.env.BENCH_CLI_NODES ?? 30);
  const work = mkdtempSync(join(tmpdir(), "k3sp-bench-cli-"));
  try {
    const values = Object.fromEntries(Object.entries(prodWithNodes(nodes)).map(([k, v]) => [`k3s-platform:${k}`, v]));
    const real = await projectStack(join(work, "real"), "prod", values);
    const count = await previewedResources(real);
    // Its stack and its default command provider are resources too: count - 2 commands. The
    // second bare project also starts the other plugins this project's preview starts (random,
    // kubernetes), with one resource each in place of two commands: what is left is the program.
    const bare = await bareProject(work, "bare", count - 2, false);
    const plugins = await bareProject(work, "plugins", count - 4, true);
    const counts = { bare: await previewedResources(bare), plugins: await previewedResources(plugins) };

    const times = { real: [] as number[], bare: [] as number[], plugins: [] as number[] };
    for (let i = 0; i < runs; i++) {
      times.real.push((await timed(() => real.preview())).wallMs);
      times.bare.push((await timed(() => bare.preview())).wallMs);
      times.plugins.push((await timed(() => plugins.preview())).wallMs);
    }
    const r = median(times.real);
    const b = median(times.bare);
    const p = median(times.plugins);
    return [
      `this project (prod sample, ${nodes} nodes), ${count} resources: ${r.toFixed(0)} ms`,
      `bare JavaScript project (${counts.bare} resources: remote.Command, same provider): ${b.toFixed(0)} ms`,
      `ratio ${(r / b).toFixed(2)} (goal ≤ 1.3; median of ${runs} after one warm-up each; pulumi preview from an empty stack)`,
      `bare project that also starts the random and kubernetes plugins (${counts.plugins} resources): ${p.toFixed(0)} ms; ratio to it ${(r / p).toFixed(2)}`,
    ];
  } catch (e) {
    return [`failed: ${(e as Error).message.split("\n").filter((l) => /error|Error/.test(l)).slice(0, 8).join(" | ")}`];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A JavaScript project registering `commands` remote.Commands (plus, with `plugins`, one RandomPassword and one kubernetes ConfigMap). */
async function bareProject(work: string, name: string, commands: number, plugins: boolean): Promise<Stack> {
  const dir = join(work, name, "project");
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n`);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, main: "index.js" }));
  const extra = plugins
    ? 'new (require("@pulumi/random").RandomPassword)("bare-password", { length: 32 });\n' +
      'new (require("@pulumi/kubernetes").core.v1.ConfigMap)("bare-map", { data: { k: "v" } });\n'
    : "";
  writeFileSync(
    join(dir, "index.js"),
    `const command = require("@pulumi/command");\nfor (let i = 0; i < ${commands}; i++) new command.remote.Command("bare-" + i, { connection: { host: "198.18.0." + ((i % 250) + 1), user: "deploy" }, create: "true" });\n${extra}`,
  );
  return LocalWorkspace.createOrSelectStack({ stackName: name, workDir: dir }, await engineWorkspace(join(work, name)));
}

/**
 * The churn table (issue 26, bench/churn.ts): what one change costs on the hosts, counted from the
 * plans before and after it, at BENCH_CHURN_SIZES (10,100) nodes. Goals: adding or removing a node
 * changes no other node's K3s inputs; a tenant change touches no host; a server-wide flag restarts
 * the servers only, one at a time.
 */
function churnSection(): void {
  const sizes = (process.env.BENCH_CHURN_SIZES ?? "10,100").split(",").map(Number);
  console.log(`Churn: existing nodes whose os-prep / apply re-runs, whose K3s inputs change ("restart": apply.sh restarts it unless only NO_PROXY changed and the host's is equivalent); day-2 steps that run; existing hosts logged in to`);
  for (const line of churnTable(sizes)) console.log(`  ${line}`);
}

/**
 * The pure layer's scaling (issue 26): validation (parseStackConfig) and planning (planCluster) at
 * BENCH_PURE_SMALL (500) and BENCH_PURE_LARGE (5000) nodes, CPU ms, the least of BENCH_PURE_RUNS (5)
 * after a warm-up at the small size; linear is 10, the goal ≤ 10.5. The least, not the median: the
 * work is deterministic and other load on the machine only ever adds to it, and a 500-node run
 * (~0.2 s) is short enough for one burst to move a median of three by a fifth. Two stacks: the prod sample
 * (k3s.nodeNetworks declared) and the same without nodeNetworks, whose firewall sources name every
 * node address, and that one with a proxy whose noProxy names every node (each node's NO_PROXY then
 * does too, in its install script and apply.sh). Then the nodes' bytes: each plan's bundle and step triggers, which the plan renders
 * and hashes on first read (when the node's resources are written, components/node/component.ts).
 * Without nodeNetworks every os-prep.sh lists every node, so those bytes grow with the square of
 * the node count: the line says how many there are.
 */
async function pureScaling(): Promise<void> {
  const small = Number(process.env.BENCH_PURE_SMALL ?? 500);
  const large = Number(process.env.BENCH_PURE_LARGE ?? 5000);
  const runs = Number(process.env.BENCH_PURE_RUNS ?? 5);
  const least = (xs: number[]) => Math.min(...xs);
  const stacks = [
    { label: "with k3s.nodeNetworks (prod sample)", raw: (n: number) => prodWithNodes(n) },
    { label: "without k3s.nodeNetworks", raw: (n: number) => withoutNodeNetworks(prodWithNodes(n)) },
    { label: "without k3s.nodeNetworks, a proxy whose noProxy names every node", raw: (n: number) => withNoProxyNamingEveryNode(withoutNodeNetworks(prodWithNodes(n))) },
  ];
  const measure = async (raw: StackInput) => {
    const config = loadStackConfig(raw);
    const times = { validate: [] as number[], plan: [] as number[], bytes: [] as number[] };
    let megabytes = 0;
    for (let i = 0; i < runs; i++) {
      times.validate.push((await timed(() => parseStackConfig(raw))).cpuMs);
      times.plan.push((await timed(() => planCluster(config))).cpuMs);
    }
    // Apart, so no timed plan starts on a heap full of the bytes read before it. What the node
    // resources read from each plan: the bundle, its checksum and the step triggers; each node
    // dropped once read (without k3s.nodeNetworks, 5,000 nodes' bytes held at once are ~2 GB as
    // JavaScript strings, and two runs' worth exceed Node's default heap).
    for (let i = 0; i < runs; i++) {
      const nodes: Array<NodePlan | undefined> = planCluster(config).nodes;
      const bytes = await timed(() => {
        let sum = 0;
        nodes.forEach((n, j) => {
          sum += n!.bundle.content.length + n!.bundle.sha256.length + n!.hashes.osPrep.length + n!.hashes.apply.length;
          nodes[j] = undefined;
        });
        return sum;
      });
      times.bytes.push(bytes.cpuMs);
      megabytes = bytes.value / 1e6;
    }
    return { validate: least(times.validate), plan: least(times.plan), bytes: least(times.bytes), megabytes };
  };
  for (const s of stacks) await measure(s.raw(small)); // warm-up
  const ratio = (a: number, b: number) => (b / a).toFixed(2);
  console.log(`Pure layer, ${small} → ${large} nodes (cpu ms, least of ${runs} runs; linear ${(large / small).toFixed(0)}, goal ≤ 10.5):`);
  for (const s of stacks) {
    const a = await measure(s.raw(small));
    const b = await measure(s.raw(large));
    console.log(`  ${s.label}:`);
    console.log(`    validate ${a.validate.toFixed(0)} → ${b.validate.toFixed(0)} ms: ratio ${ratio(a.validate, b.validate)}`);
    console.log(`    plan     ${a.plan.toFixed(0)} → ${b.plan.toFixed(0)} ms: ratio ${ratio(a.plan, b.plan)}`);
    console.log(
      `    node bytes (bundles + triggers, rendered on first read) ${a.megabytes.toFixed(1)} → ${b.megabytes.toFixed(1)} MB (${ratio(a.megabytes, b.megabytes)}×), ` +
        `${a.bytes.toFixed(0)} → ${b.bytes.toFixed(0)} ms: ratio ${ratio(a.bytes, b.bytes)}`,
    );
  }
}

/** The sections BENCH_ONLY may name; anything else is refused before the bench starts (it takes minutes). */
const SECTIONS = ["cli-preview", "churn", "pure"];

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (only && !SECTIONS.includes(only)) throw new UsageError(`BENCH_ONLY=${only} names no section (${SECTIONS.join(", ")}); unset it for the whole bench`);
  const [l1] = loadavg();
  console.log(`k3s-platform bench · node ${process.version} · ${cpus().length} CPU(s) · load average ${l1!.toFixed(2)} at start`);
  // BENCH_ONLY=cli-preview: only the preview users run (the other sections take minutes).
  if (process.env.BENCH_ONLY === "cli-preview") {
    for (const line of await cliProjectPreview()) console.log(`  ${line}`);
    return;
  }
  if (process.env.BENCH_ONLY === "churn") {
    churnSection();
    return;
  }
  if (process.env.BENCH_ONLY === "pure") {
    await pureScaling();
    return;
  }
  console.log(`prod sample settings, 3 servers + N-3 agents; Pulumi mocks (bench/graph.ts) + the whole policy pack\n`);

  const sourceMaps = process.env.BENCH_SOURCE_MAPS === "1";
  process.setSourceMapsEnabled(sourceMaps);
  // Warm-up: module loading, JIT, the mock runtime.
  await graphRun(30);
  planCluster(loadStackConfig(prodWithNodes(SMALL)));

  const small: Awaited<ReturnType<typeof graphRun>>[] = [];
  for (let i = 0; i < RUNS; i++) small.push(await graphRun(SMALL));
  const large = await graphRun(LARGE);

  const s = { wall: median(small.map((r) => r.graph.wallMs)), cpu: median(small.map((r) => r.graph.cpuMs)), pack: median(small.map((r) => r.pack.wallMs)) };
  console.log(`Resources per node: ${large.perNode.max} (K3sNode + ${large.perNode.max - 1} steps; min ${large.perNode.min}); ` +
    `${large.resources} resources at ${LARGE} nodes, ${(large.resources / LARGE).toFixed(2)} per node overall`);
  console.log("");
  console.log("Graph under mocks (program + mock engine until every resource is registered):");
  console.log(`${"nodes".padEnd(7)}${"resources".padStart(10)}${"wall ms".padStart(10)}${"cpu ms".padStart(10)}${"pack ms".padStart(10)}  violations`);
  console.log(`${String(SMALL).padEnd(7)}${String(small[0]!.resources).padStart(10)}${s.wall.toFixed(0).padStart(10)}${s.cpu.toFixed(0).padStart(10)}${s.pack.toFixed(0).padStart(10)}  ${small[0]!.violations}   (median of ${RUNS})`);
  console.log(`${String(LARGE).padEnd(7)}${String(large.resources).padStart(10)}${large.graph.wallMs.toFixed(0).padStart(10)}${large.graph.cpuMs.toFixed(0).padStart(10)}${large.pack.wallMs.toFixed(0).padStart(10)}  ${large.violations}`);
  const ratio = large.graph.wallMs / s.wall;
  console.log(`Ratio ${LARGE}/${SMALL} nodes: wall ${ratio.toFixed(2)}, cpu ${(large.graph.cpuMs / s.cpu).toFixed(2)} (linear: ${(LARGE / SMALL).toFixed(0)}; goal ≤ 10)`);
  if (!sourceMaps) {
    process.setSourceMapsEnabled(true);
    const mapped = await graphRun(SMALL);
    process.setSourceMapsEnabled(false);
    console.log(`(${SMALL} nodes with source-mapped stack traces, as under tsx/mocha: wall ${mapped.graph.wallMs.toFixed(0)} ms, cpu ${mapped.graph.cpuMs.toFixed(0)} ms)`);
  } else {
    console.log("(source-mapped stack traces on: BENCH_SOURCE_MAPS=1)");
  }

  const raw = prodWithNodes(LARGE);
  const config = loadStackConfig(raw);
  const pure = await Promise.all([0, 1, 2].map(async () => ({
    validate: (await timed(() => parseStackConfig(raw))).wallMs,
    plan: (await timed(() => planCluster(config))).wallMs,
    render: (await timed(() => renderTree(config, new Set()))).wallMs,
  })));
  const m = (k: "validate" | "plan" | "render") => median(pure.map((p) => p[k]));
  console.log("");
  console.log(`Pure layer at ${LARGE} nodes (median of 3): validate ${m("validate").toFixed(0)} ms · plan ${m("plan").toFixed(0)} ms · render ${m("render").toFixed(0)} ms · total ${(m("validate") + m("plan") + m("render")).toFixed(0)} ms`);
  console.log(`Peak memory (max RSS of this process): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  console.log("");
  await pureScaling();
  console.log("");
  churnSection();
  console.log("");
  console.log("Real engine preview (pulumi CLI + kubernetes provider against a real kube-apiserver):");
  for (const line of await realEnginePreview()) console.log(`  ${line}`);
  console.log("");
  console.log("Preview as users run it (pulumi CLI + Node.js language host + command provider, no API server):");
  for (const line of await cliProjectPreview()) console.log(`  ${line}`);
  const [end] = loadavg();
  console.log(`\nload average ${end!.toFixed(2)} at end`);
}

void runCli(
  {
    name: "bench",
    usage: ["npm run bench", "BENCH_ONLY=cli-preview npm run bench", "BENCH_ONLY=churn npm run bench", "BENCH_ONLY=pure npm run bench"],
    description:
      "What the program costs as a cluster grows: the graph under mocks and the policy pack at BENCH_SMALL and\n" +
      "BENCH_LARGE nodes, the pure layer, then real-engine previews (each skips, saying why, without its tools).\n" +
      "Takes minutes and most of a small machine; prints as it goes.",
    options: {},
    notes: [
      "environment: BENCH_SMALL (100) and BENCH_LARGE (1000) nodes; BENCH_RUNS (3) runs at the small size;\n" +
        "BENCH_ENGINE_RUNS (3) timed previews each; BENCH_CLI_NODES (30) nodes in the CLI preview;\n" +
        "BENCH_ONLY=cli-preview only the CLI preview; BENCH_SOURCE_MAPS=1 keeps source-mapped stack traces on;\n" +
        "BENCH_ONLY=churn only the churn table (BENCH_CHURN_SIZES, 10,100); BENCH_ONLY=pure only the pure layer's\n" +
        "scaling (BENCH_PURE_SMALL 500, BENCH_PURE_LARGE 5000, BENCH_PURE_RUNS 5), with and without k3s.nodeNetworks",
    ],
  },
  main,
);
