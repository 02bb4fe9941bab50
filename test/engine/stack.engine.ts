import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { StackInput } from "../../components/config/schema";
import { loadStackConfig } from "../../components/stack/load";
import { buildProgram } from "../../components/program";
import { engineMissing, inlineStack } from "../../tools/harness/engine";
import { REPO } from "../helpers/samples";
import { TestHost } from "../e2e/ssh";

/**
 * `npm run test:engine`: the whole stack as an Automation API inline program through the real
 * engine and the real command and random providers, over SSH to the netns test hosts
 * (test/e2e/hosts; K3s is their stand-in). The command and random plugins are not served by the
 * Go module proxy, so this suite runs only where `pulumi-resource-command` and
 * `pulumi-resource-random` are on PATH (the official installer brings them) and otherwise says
 * it skipped and why.
 */

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");
const TOKEN = "engine-test-token-8c1e5a7f3d";
const ROLES = ["server", "server", "server", "agent"] as const;

/** Remote commands each host ran so far (the stand-ins log every K3s/systemd call; sshd logs sessions). */
function hostRecords(host: TestHost): string {
  const dir = join(host.upper, "var/log/k3sp");
  try {
    return readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
  } catch {
    return "";
  }
}

describe("test:engine — the whole stack through the real engine over SSH", function () {
  this.timeout(900_000);
  const missing = engineMissing(["command", "random"]);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-engine-"));
  let hosts: TestHost[] = [];
  let stack: Stack;
  let events: EngineEvent[] = [];
  const onEvent = (e: EngineEvent) => events.push(e);
  const changed = () =>
    events.filter((e) => e.resOutputsEvent && e.resOutputsEvent.metadata.op !== "same").map((e) => `${e.resOutputsEvent!.metadata.op} ${e.resOutputsEvent!.metadata.urn.split("::").pop()}`);

  const raw = (edit: (r: StackInput) => void = () => {}): StackInput => {
    const r: StackInput = {
      environment: "dev",
      k3s: { version: "v1.31.4+k3s1", hardening: "cis", airgap: { enabled: true }, firewall: { mode: "open" } },
      encryption: { enabled: true, provider: "secretbox", rotation: 1 },
      ssh: { user: "deploy" },
      nodes: hosts.map((h, i) => ({ name: `eng-${ROLES[i]}-${i + 1}`, host: h.address, nodeIp: h.address, role: ROLES[i]!, ssh: { hostKey: h.hostKey } })),
    } as StackInput;
    edit(r);
    return r;
  };
  const program = (input: StackInput) => async () => {
    const out = buildProgram(
      { config: loadStackConfig(input), token: pulumi.secret(TOKEN), sshPrivateKey: pulumi.secret(readFileSync(join(dir, "hosts", "id_ed25519"), "utf8")) },
      "dev",
    );
    return { kubeconfig: out.kubeconfig, encryptionStatus: out.encryptionStatus };
  };
  const withProgram = (input: StackInput) => inlineStack(join(dir, "engine"), "dev", program(input));

  before(function () {
    if (missing) {
      console.log(`    SKIPPED test:engine: ${missing}. The Go module proxy does not serve pulumi-command or pulumi-random; install them (e.g. the official Pulumi installer) to run this suite.`);
      this.skip();
    }
    execFileSync("bash", [HOSTS, "up", String(ROLES.length), join(dir, "hosts")], { stdio: "inherit" });
    hosts = JSON.parse(readFileSync(join(dir, "hosts", "hosts.json"), "utf8")) as TestHost[];
  });
  after(() => {
    if (hosts.length) execFileSync("bash", [HOSTS, "down", join(dir, "hosts")], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  });

  it("preview with the policy pack passes; up converges", async () => {
    stack = await withProgram(raw());
    const pre = await stack.preview({ policyPacks: [join(REPO, "policies")], policyPackConfigs: [join(REPO, "policies", "config", "dev.json")] });
    assert.ok((pre.changeSummary.create ?? 0) > 0);
    const up = await stack.up({ onEvent });
    assert.equal(up.summary.result, "succeeded");
  });

  it("a second up changes nothing and runs no remote command", async () => {
    const before = hosts.map(hostRecords);
    events = [];
    await stack.up({ onEvent });
    assert.deepEqual(changed(), []);
    assert.deepEqual(hosts.map(hostRecords), before);
  });

  it("one agent changed: only that agent's steps run", async () => {
    stack = await withProgram(raw((r) => (r.nodes![3]!.labels = { "example.com/ssd": "true" })));
    events = [];
    await stack.up({ onEvent });
    assert.ok(changed().length > 0 && changed().every((c) => c.includes("eng-agent-4")), changed().join("\n"));
  });

  it("an SSH setting changed: no lifecycle step re-runs", async () => {
    const before = hosts.map(hostRecords);
    stack = await withProgram(raw((r) => {
      r.nodes![3]!.labels = { "example.com/ssd": "true" };
      r.ssh = { ...r.ssh, perDialTimeout: 20 };
    }));
    events = [];
    await stack.up({ onEvent });
    assert.deepEqual(changed().filter((c) => /encryption-(rotate|prepare|reencrypt)|-restart-/.test(c) && !c.startsWith("update ")), []);
    const after = hosts.map(hostRecords);
    for (let i = 0; i < hosts.length; i++) {
      const added = after[i]!.slice(before[i]!.length);
      assert.doesNotMatch(added, /rotate-keys|systemctl restart/, `host ${i + 1} re-ran a lifecycle step:\n${added}`);
    }
  });

  it("one host down, then back: the rest converge, then all", async () => {
    execFileSync("bash", [HOSTS, "stop", "4", join(dir, "hosts")]);
    stack = await withProgram(raw((r) => (r.k3s = { ...r.k3s!, kubelet: { maxPods: 150 } })));
    await assert.rejects(stack.up({ onEvent }));
    execFileSync("bash", [HOSTS, "start", "4", join(dir, "hosts")]);
    const up = await stack.up({ onEvent });
    assert.equal(up.summary.result, "succeeded");
  });

  it("stack export holds no secret value in plaintext, IDs included", async () => {
    const exported = JSON.stringify(await stack.exportStack());
    const key = readFileSync(join(dir, "hosts", "id_ed25519"), "utf8");
    for (const secret of [TOKEN, key.split("\n")[1]!]) assert.ok(!exported.includes(secret), "a secret is in the state in plaintext");
    const state = JSON.parse(exported) as { deployment: { resources: Array<{ id?: string; type: string; outputs?: Record<string, unknown> }> } };
    const generated = state.deployment.resources.filter((r) => r.type.startsWith("random:"));
    for (const r of generated) assert.ok(!r.id || r.id === "none" || r.type.endsWith("RandomString"), `${r.type} ID ${r.id}`);
  });
});
