import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResolvedConfig, StackInput } from "../../components/config/schema";
import type { NodeSecrets } from "../../components/config/secrets";
import { STAGING_DIR } from "../../components/k3s/install";
import { PATHS } from "../../components/k3s/paths";
import { planCluster } from "../../components/plan/node";
import { SECRET_INPUTS_ANNOTATION } from "../../components/upgrade/render";
import { loadStackConfig } from "../../components/stack/load";
import { REPO } from "../helpers/samples";
import { applyCluster, clusterEvents, installRuns, restarts, SshTarget, TestHost } from "./ssh";

/**
 * A secret file's content changed (issue 26): a registryAuth password changed on a pinned stack of
 * one server and three agents, `upgrade.maxUnavailable: 1`. Every agent reads registries.yaml,
 * so each restarts, but one batch at a time, each cordoned and drained on the first server before
 * its restart and uncordoned once Ready: the batch steps compare each agent's keyed digest of its
 * secret files with the one its Node records (k3s-platform.io/k3s-secret-inputs). Before, the
 * batch steps saw no change (the digest held only the files' paths) and nothing was drained.
 */

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");
const TOKEN = "e2e-secrets-token-4b7d91";
const AGENTS = ["sec-agent-1", "sec-agent-2", "sec-agent-3"];
const auth = (password: string): NodeSecrets => ({ token: TOKEN, registryAuth: { "registry.example.com": { username: "ci", password } } });

describe("e2e over SSH: a secret file's change restarts agents one batch at a time, drained (issue 26)", function () {
  this.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-e2e-secrets-"));
  let hosts: TestHost[];
  let targets: Map<string, SshTarget>;
  let config: ResolvedConfig;
  const plan = () => planCluster(config, { hasRegistryAuth: true });
  const up = (secrets: NodeSecrets) => applyCluster(plan(), targets, secrets, config);
  const host = (name: string) => hosts[["sec-server-1", ...AGENTS].indexOf(name)]!;

  before(() => {
    execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" });
    execFileSync("bash", [HOSTS, "up", "4", dir], { stdio: "inherit" });
    hosts = JSON.parse(readFileSync(join(dir, "hosts.json"), "utf8")) as TestHost[];
    const raw: StackInput = {
      environment: "dev",
      k3s: { version: "v1.31.4+k3s1", airgap: { enabled: true }, firewall: { mode: "open" } },
      upgrade: { maxUnavailable: 1 },
      ssh: { user: "deploy" },
      nodes: hosts.map((h, i) => ({ name: i === 0 ? "sec-server-1" : AGENTS[i - 1]!, host: h.address, nodeIp: h.address, role: i === 0 ? "server" : "agent", ssh: { hostKey: h.hostKey } })),
    };
    config = loadStackConfig(raw);
    targets = new Map(config.nodes.map((n, i) => [n.name, new SshTarget(hosts[i]!, join(dir, "id_ed25519"))]));
  });
  after(() => execFileSync("bash", [HOSTS, "down", dir], { stdio: "ignore" }));

  it("bootstrap: every agent's Node records the keyed digest of its secret files, which holds no password", async () => {
    const run = await up(auth("first-password-71c3"));
    assert.deepEqual([...run.failures], []);
    for (const agent of AGENTS) {
      const recorded = readFileSync(join(dir, "cluster", "nodes", agent, "annotations", SECRET_INPUTS_ANNOTATION.replace(/\//g, "_")), "utf8").trim();
      assert.match(recorded, /^[0-9a-f]{64}$/, agent);
      assert.match(readFileSync(join(host(agent).upper, PATHS.registriesYaml), "utf8"), /password: first-password-71c3/);
    }
  });

  it("a registryAuth password change: each agent cordoned and drained before its restart, one batch after another; the server restarts once; a second up is a no-op", async () => {
    const since = Date.now() / 1000;
    const installs = hosts.map((h) => installRuns(h).length);
    const run = await up(auth("second-password-9e05"));
    assert.deepEqual([...run.failures], []);
    assert.deepEqual(hosts.map((h, i) => installRuns(h).length - installs[i]!), [1, 1, 1, 1], "every node restarts once (each reads registries.yaml)");
    const events = clusterEvents(dir).filter((e) => e.at >= since);
    const at = (event: string, node: string) => events.find((e) => e.event === event && e.node === node)?.at;
    const windows = AGENTS.map((agent, i): [number, number] => {
      const restarted = restarts(host(agent), "k3s-agent").at(-1)!;
      const [cordon, drained, uncordon] = [at("cordon", agent), at("drained", agent), at("uncordon", agent)];
      assert.ok(restarted >= since, `${agent} restarted`);
      assert.ok(cordon! <= drained! && drained! < restarted && restarted < uncordon!, `${agent}: cordon → drained → restart → uncordon ${JSON.stringify({ cordon, drained, restarted, uncordon })}`);
      assert.match(run.batchSteps.get(`agent-batch-${i + 1}-drain`)!, new RegExp(`upgrade\\[${agent}\\]: its secret files changed: cordon and drain before its apply restarts it`));
      assert.match(readFileSync(join(host(agent).upper, PATHS.registriesYaml), "utf8"), /password: second-password-9e05/);
      return [cordon!, uncordon!];
    });
    for (let i = 1; i < windows.length; i++) assert.ok(windows[i - 1]![1] <= windows[i]![0], `batch ${i + 1} is cordoned after batch ${i} is uncordoned: ${JSON.stringify(windows)}`);
    // Never in a staged file, a script the first server ran, or the output of one.
    for (const h of hosts) for (const f of readdirSync(join(h.upper, STAGING_DIR))) assert.ok(!readFileSync(join(h.upper, STAGING_DIR, f), "utf8").includes("second-password"), f);
    for (const [name, out] of run.batchSteps) assert.ok(!out.includes("second-password"), name);

    const now = Date.now() / 1000;
    const again = await up(auth("second-password-9e05"));
    assert.deepEqual([...again.failures], []);
    assert.deepEqual([...again.batchSteps.keys()], [], "no batch step runs");
    assert.deepEqual(hosts.map((h, i) => installRuns(h).length - installs[i]!), [1, 1, 1, 1], "no install");
    for (const [name, r] of again.runs) assert.match(r.apply, /K3s is up to date/, name);
    assert.deepEqual(clusterEvents(dir).filter((e) => e.at >= now && /cordon|drain/.test(e.event)), [], "nothing cordoned");
  });
});
