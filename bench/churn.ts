import type { ResolvedConfig, StackInput } from "../components/config/schema";
import { clusterSteps } from "../components/operations";
import { applyOf } from "../components/operations/step";
import { churn, type Churn } from "../components/plan/churn";
import { type ClusterPlan, planCluster } from "../components/plan/node";
import { loadStackConfig } from "../components/stack/load";
import { prodWithNodes } from "./graph";

/**
 * The churn table of `npm run bench` (issue 26): what one change costs on the hosts, from the plans
 * of the config before and after it (components/plan/churn.ts), on the prod sample with N nodes.
 * Counts, not times: how many existing nodes re-run os-prep, re-run apply, restart K3s; how many
 * day-2 steps run; how many existing hosts the change logs in to. "restart" counts the nodes whose
 * K3s inputs change (plan/restart.ts restartDigest, what apply.sh fingerprints): apply.sh restarts
 * each, except where only NO_PROXY changed and the host's value is equivalent (it keeps it), which
 * only the host knows; the "restarts" text names those rows (Churn.noProxyOnly).
 */

/** One change: the config before it and after it, from the prod sample at `nodes` nodes. */
export interface ChurnChange {
  name: string;
  before: (nodes: number) => StackInput;
  after: (nodes: number) => StackInput;
}

type Agent = StackInput["nodes"][number];
const edited = (nodes: number, edit: (raw: StackInput) => void): StackInput => {
  const raw = prodWithNodes(nodes);
  edit(raw);
  return raw;
};
const PROXY = "http://proxy.example.com:3128";
const lastAgent = (raw: StackInput): Agent => raw.nodes.at(-1)!;
const armed = (nodes: number) => edited(nodes, (r) => (lastAgent(r).decommission = true));

export const CHURN_CHANGES: readonly ChurnChange[] = [
  { name: "add one agent", before: prodWithNodes, after: (n) => prodWithNodes(n + 1) },
  // Removal is two ups (docs/removing-and-replacing-nodes.md): arm it, then delete the entry.
  { name: "remove one agent: arm", before: prodWithNodes, after: armed },
  { name: "remove one agent: delete", before: armed, after: (n) => prodWithNodes(n - 1) },
  { name: "one agent's labels", before: prodWithNodes, after: (n) => edited(n, (r) => (lastAgent(r).labels = { ...lastAgent(r).labels, "example.com/tier": "gold" })) },
  {
    name: "one tenant quota",
    before: prodWithNodes,
    after: (n) => edited(n, (r) => (r.tenants![0]!.quota!.requestsCpu = "17")),
  },
  {
    // The same without k3s.nodeNetworks: the firewall then lists each node, so every os-prep re-runs (no restart).
    name: "add one agent, no networks",
    before: (n) => edited(n, (r) => delete r.k3s!.nodeNetworks),
    after: (n) => {
      const raw = prodWithNodes(n + 1);
      delete raw.k3s!.nodeNetworks;
      return raw;
    },
  },
  {
    // apply.sh keeps the host's NO_PROXY (no restart) when the planned one only drops entries it
    // covers (k3s/install.ts renderNoProxyCarryOver): the plans count it as "restart" (noProxyOnly).
    name: "drop a covered noProxy",
    before: (n) => edited(n, (r) => (r.k3s = { ...r.k3s, proxy: { httpProxy: PROXY, noProxy: [".corp.example", "git.corp.example"] } })),
    after: (n) => edited(n, (r) => (r.k3s = { ...r.k3s, proxy: { httpProxy: PROXY, noProxy: [".corp.example"] } })),
  },
  {
    name: "one server-wide flag",
    before: prodWithNodes,
    // kube-apiserver default-not-ready-toleration-seconds: servers only (config.yaml kube-apiserver-arg).
    after: (n) => edited(n, (r) => (r.k3s!.apiServer = { ...r.k3s!.apiServer, defaultNotReadyTolerationSeconds: 90 })),
  },
];

export interface ChurnRow {
  change: string;
  nodes: number;
  churn: Churn;
  /** The restarted nodes that are servers, and whether their applies run one at a time (join order chains them). */
  restartedServers: string[];
  serversOneAtATime: boolean;
}

/** Config and plan per stack input (most changes start from the same sample): planned once. */
const planned = new Map<string, { config: ResolvedConfig; plan: ClusterPlan }>();
function plannedOf(raw: StackInput) {
  const key = JSON.stringify(raw);
  let hit = planned.get(key);
  if (!hit) {
    const config = loadStackConfig(raw);
    planned.set(key, (hit = { config, plan: planCluster(config) }));
    // A few are enough (the shared "before" of a size); the rest is garbage for the collector.
    if (planned.size > 4) planned.delete(planned.keys().next().value!);
  }
  return hit;
}

export function churnRow(change: ChurnChange, nodes: number): ChurnRow {
  const before = plannedOf(change.before(nodes));
  const { config: after, plan } = plannedOf(change.after(nodes));
  const c = churn(before.config, after, { before: before.plan, after: plan });
  const servers = plan.nodes.filter((n) => n.node.role === "server").map((n) => n.node.name);
  const restartedServers = servers.filter((s) => c.restart.includes(s));
  // Each server's apply waits for the one before it in join order (operations/join.ts).
  const steps = new Map(clusterSteps(after, plan).map((s) => [s.name, s]));
  const serversOneAtATime = servers.every((s, i) => i === 0 || steps.get(s)!.after.includes(applyOf(servers[i - 1]!)));
  return { change: change.name, nodes, churn: c, restartedServers, serversOneAtATime };
}

/** The table as `npm run bench` prints it. */
export function churnTable(sizes: readonly number[]): string[] {
  const head = `${"change".padEnd(26)}${"nodes".padStart(6)}${"os-prep".padStart(9)}${"apply".padStart(7)}${"restart".padStart(9)}${"day-2".padStart(7)}${"hosts".padStart(7)}  restarts`;
  const lines = [head];
  for (const nodes of sizes) {
    for (const change of CHURN_CHANGES) {
      const r = churnRow(change, nodes);
      const c = r.churn;
      const restarts =
        c.restart.length === 0
          ? "none"
          : c.noProxyOnly.length === c.restart.length
            ? "NO_PROXY only: no restart or drain where the host's is equivalent"
            : r.restartedServers.length === c.restart.length
              ? `servers only${r.serversOneAtATime ? ", one at a time" : ""}`
              : c.restart.join(", ");
      lines.push(
        `${change.name.padEnd(26)}${String(nodes).padStart(6)}${String(c.osPrep.length).padStart(9)}${String(c.apply.length).padStart(7)}${String(c.restart.length).padStart(9)}${String(c.steps.length).padStart(7)}${String(c.hosts.length).padStart(7)}  ${restarts}`,
      );
    }
  }
  return lines;
}
