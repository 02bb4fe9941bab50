import { performance } from "node:perf_hooks";
import { StackInput } from "../components/config/schema";
import { loadStackConfig, parseStackConfig } from "../components/config/validate";
import { planCluster } from "../components/node/plan";
import { renderTree } from "../components/node/tree";
import { collectGraph, evaluatePack } from "../test/helpers/policy-harness";
import { sampleRaw } from "../test/helpers/samples";

/**
 * `npm run bench`: what validation, planning, rendering and the policy pack cost as a cluster
 * grows. The prod sample's settings with 3 servers and N-3 agents; median of repeated runs.
 */

function withNodes(total: number): StackInput {
  const raw = structuredClone(sampleRaw("prod"));
  const template = raw.nodes.find((n) => n.role === "agent")!;
  const servers = raw.nodes.filter((n) => n.role === "server");
  const agents = Array.from({ length: total - servers.length }, (_, i) => ({
    ...structuredClone(template),
    name: `prod-agent-${i + 1}`,
    host: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  }));
  raw.nodes = [...servers, ...agents];
  return raw;
}

function median(fn: () => void, runs: number): number {
  fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

async function main(): Promise<void> {
  const rows: string[][] = [["nodes", "validate ms", "plan ms", "render tree ms", "files", "rendered KiB"]];
  for (const n of [3, 30, 300]) {
    const raw = withNodes(n);
    const config = loadStackConfig(raw);
    const runs = n >= 300 ? 5 : 20;
    const tree = renderTree(config, new Set());
    const bytes = [...tree.values()].reduce((a, c) => a + Buffer.byteLength(c), 0);
    rows.push([
      String(n),
      median(() => parseStackConfig(raw), runs).toFixed(2),
      median(() => planCluster(config), runs).toFixed(2),
      median(() => renderTree(config, new Set()), runs).toFixed(2),
      String(tree.size),
      (bytes / 1024).toFixed(0),
    ]);
  }
  console.log("Pure layer (median):");
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(6) : c.padStart(15))).join(""));

  console.log("\nResource graph under Pulumi mocks + whole policy pack (one run each):");
  for (const n of [6, 30]) {
    const config = loadStackConfig(withNodes(n));
    let t = performance.now();
    const graph = await collectGraph(config, "prod");
    const graphMs = performance.now() - t;
    t = performance.now();
    const violations = await evaluatePack(graph, "prod");
    const packMs = performance.now() - t;
    console.log(`${String(n).padEnd(6)}${String(graph.length).padStart(8)} resources${graphMs.toFixed(0).padStart(8)} ms graph${packMs.toFixed(0).padStart(8)} ms pack  ${violations.filter((v) => v.level === "mandatory").length} mandatory violations`);
  }
}

void main();
