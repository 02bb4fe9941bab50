import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_CHILDREN } from "../../components/names";
import { clusterSteps } from "../../components/operations";
import { planCluster } from "../../components/plan/node";
import { recordedChannel, renderReleaseScript } from "../../components/k3s/release";
import { inputDiffPaths, NODE_STEPS, parsePropertyPath, parseUrn, PreviewDigest, policyEventsFromLog, previewMarkdown, releaseFromApplyStdout, splitPolicyMessage } from "../../tools/preview-markdown";
import { renderDns } from "../../components/dns/render";
import { renderTenants } from "../../components/tenants/render";
import { secretMaterial } from "../../tools/harness/preview-output";
import { REPO, sampleConfig } from "../helpers/samples";

const FIXTURES = join(REPO, "test", "fixtures", "preview");
const digest = JSON.parse(readFileSync(join(FIXTURES, "prod-upgrade.json"), "utf8")) as PreviewDigest;
const events = policyEventsFromLog(readFileSync(join(FIXTURES, "prod-upgrade.events.jsonl"), "utf8"));
const md = previewMarkdown(digest, { stack: "prod", policyEvents: events });
const rows = (title: string) => {
  const section = md.split(`#### ${title}`)[1]?.split("\n####")[0] ?? "";
  return section.split("\n").filter((l) => l.startsWith("| `"));
};

describe("preview:md", () => {
  it("policy event messages as the engine writes them: description, then the violation", () => {
    // pulumi 3.260 + @pulumi/policy 1.21 (test:cluster (c) saves real ones in fixtures/preview/cluster-violation.events.jsonl)
    assert.deepEqual(splitPolicyMessage("Tenant namespaces enforce a Pod Security level.\nnamespace web enforces privileged; at least restricted is required\n"), {
      description: "Tenant namespaces enforce a Pod Security level.",
      violation: "namespace web enforces privileged; at least restricted is required",
    });
    assert.deepEqual(splitPolicyMessage("only a violation"), { violation: "only a violation" });
    const md = previewMarkdown({}, { stack: "x", policyEvents: [{ policyName: "p", policyPackName: "k", enforcementLevel: "mandatory", message: "The description.\nthe violation\n" }] });
    assert.match(md, /\| `p` \| \(stack\) \| the violation \|/);
    assert.doesNotMatch(md, /The description/);
  });

  it("parses URNs and property paths", () => {
    assert.deepEqual(parseUrn("urn:pulumi:prod::k3s-platform::a:b:C$command:remote:Command::prod-x-apply"), {
      type: "command:remote:Command",
      name: "prod-x-apply",
      parents: ["a:b:C"],
    });
    assert.deepEqual(parsePropertyPath('spec.hard["requests.cpu"]'), ["spec", "hard", "requests.cpu"]);
    assert.deepEqual(parsePropertyPath("triggers[1]"), ["triggers", 1]);
  });

  it("explains the node steps the component registers", () => {
    assert.deepEqual(NODE_STEPS, { bundle: NODE_CHILDREN.bundle, secrets: NODE_CHILDREN.secrets });
  });

  it("starts with a marker (one comment per stack) and counts by operation", () => {
    assert.ok(md.startsWith("<!-- k3s-platform-preview:prod -->\n"));
    assert.match(md, /\*\*1 to create · 9 to update · 1 to replace · 101 unchanged\*\*/);
    assert.match(previewMarkdown(JSON.parse(readFileSync(join(FIXTURES, "prod-nochange.json"), "utf8")) as PreviewDigest, { stack: "prod" }), /112 unchanged/);
    assert.match(previewMarkdown({}, { stack: "dev" }), /No changes\./);
  });

  it("highlights each replacement once, with its reason", () => {
    assert.match(md, /> \[!WARNING\]\n> \*\*1 replacement\(s\)\*\*/);
    assert.match(md, /> - `prod-prod-agent-3-stage` \(command:remote:Command\) because `connection`/);
    assert.equal(rows("Nodes").filter((r) => r.includes("`stage`")).length, 1);
  });

  it("lists per node which files and commands change and why, grouped by node", () => {
    const nodes = rows("Nodes");
    assert.deepEqual(nodes.map((r) => r.split("|")[1]!.trim()), [
      "`prod-agent-1`", "`prod-agent-1`", "`prod-agent-3`", "`prod-server-1`", "`prod-server-1`", "`prod-server-1`", "`prod-server-2`", "`prod-server-2`",
    ]);
    assert.ok(nodes.includes("| `prod-server-2` | `apply` | 🟡 update | a file K3s reads changed |"));
    assert.ok(nodes.includes("| `prod-agent-1` | `bundle` | 🟡 update | a staged file changed |"));
    assert.ok(nodes.some((r) => r.includes("`connection.host`: `203.0.113.23` → `203.0.113.33` **(forces replacement)**")));
    assert.ok(!nodes.some((r) => r.includes("os-prep")), "unchanged steps are not listed");
  });

  it("shows old → new for cluster config and Kubernetes objects", () => {
    const other = rows("Cluster and Kubernetes objects");
    assert.ok(other.includes("| `prod` | K3sCluster | 🟡 update | `config.k3s.version`: `v1.31.4+k3s1` → `v1.31.5+k3s1` |"));
    assert.ok(other.includes("| `prod-tenants-resourcequota-web-quota` | ResourceQuota | 🟡 update | `spec.hard.pods`: `200` → `300` |"));
  });

  it("never prints a secret: masked values, secret steps without details", () => {
    const leaky: PreviewDigest = {
      steps: [
        {
          op: "update",
          urn: "urn:pulumi:prod::k3s-platform::kubernetes:core/v1:Secret::prod-db",
          oldState: { inputs: { stringData: { password: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: "hunter2" } } } },
          newState: { inputs: { stringData: { password: "[secret]" } } },
          detailedDiff: { "stringData.password": { kind: "update", inputDiff: true } },
        },
      ],
      changeSummary: { update: 1 },
    };
    const out = previewMarkdown(leaky, { stack: "prod" });
    assert.ok(!out.includes("hunter2"));
    assert.match(out, /`stringData\.password`: \[secret\] → \[secret\]/);
    assert.match(md, /\| `prod-server-1` \| `secrets` \| 🟡 update \| secret content changed \(\[secret\]\) \|/);
  });

  it("lists policy violations from the event log, mandatory first, table-safe", () => {
    const violations = rows("Policy violations (2, 1 mandatory: this change cannot be applied)");
    assert.equal(violations.length, 0, "policy rows start with the level, not a backtick");
    const section = md.split("#### Policy violations")[1]!;
    const lines = section.split("\n").filter((l) => l.startsWith("| 🛑") || l.startsWith("| ⚠️"));
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\| 🛑 mandatory \| `upgrade-one-minor-at-a-time` \| `prod` \|/);
    assert.match(lines[1]!, /\(stack\) \| .*restart servers \\\| at the same time \|$/);
    assert.match(previewMarkdown(digest, { stack: "prod", policyEvents: [] }), /No policy violations\./);
  });

  it("draws the rollout (issue 25): the stack's steps as a Mermaid flowchart, the ones this preview runs filled", () => {
    const config = sampleConfig("prod");
    const rollout = clusterSteps(config, planCluster(config));
    const withRollout = previewMarkdown(digest, { stack: "prod", policyEvents: events, rollout });
    const section = withRollout.split("#### Rollout\n\n")[1]!.split("\n####")[0]!;
    assert.match(section, /^```mermaid\nflowchart TD\n[\s\S]*\n```\n\nOrange border: restarts K3s/);
    const id = (label: string) => new RegExp(String.raw`([sb]\d+)\["${label}"\]`).exec(section)?.[1];
    const runs = /^  class (\S+) run$/m.exec(section)![1]!.split(",");
    const idle = /^  class (\S+) idle$/m.exec(section)![1]!.split(",");
    // The fixture changes servers 1 and 2, agents 1 and 3; server 3, agent 2 and the kubeconfig read stay as they are.
    for (const changed of [id("prod-server-1"), id("prod-server-2"), id("1 agent: prod-agent-1"), id("1 agent: prod-agent-3")]) assert.ok(runs.includes(changed!), `${changed} in ${runs.join(",")}`);
    for (const same of [id("prod-server-3"), id("1 agent: prod-agent-2"), id("kubeconfig: kubeconfig")]) assert.ok(idle.includes(same!), `${same} in ${idle.join(",")}`);
    // Without the stack's steps, or without changes, no picture.
    assert.doesNotMatch(md, /#### Rollout/);
    assert.doesNotMatch(previewMarkdown(JSON.parse(readFileSync(join(FIXTURES, "prod-nochange.json"), "utf8")) as PreviewDigest, { stack: "prod", rollout }), /#### Rollout/);
  });

  it("the rollout fills a one-shot step only when it runs: an agent batch's drain replaced (its trigger), not updated (its no-op update, e.g. a preflight's new answer in its script; issue 26)", () => {
    const config = sampleConfig("prod");
    const rollout = clusterSteps(config, planCluster(config));
    const urn = (name: string) => `urn:pulumi:prod::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::prod-${name}`;
    const filled = (ops: Record<string, string>) => {
      const md = previewMarkdown({ steps: Object.entries(ops).map(([name, op]) => ({ op, urn: urn(name) })) }, { stack: "prod", rollout });
      const section = md.split("#### Rollout\n\n")[1]!.split("\n####")[0]!;
      const ids = (state: string) => new RegExp(`^  class (\\S+) ${state}$`, "m").exec(section)?.[1]?.split(",") ?? [];
      const box = /([sb]\d+)\["upgrade-batches: agent-batch-1-drain"\]/.exec(section)?.[1];
      assert.ok(box, section);
      return ids("run").includes(box);
    };
    assert.equal(filled({ "agent-batch-1-drain": "update", "agent-batch-1-uncordon": "update" }), false, "a no-op update runs nothing");
    assert.equal(filled({ "agent-batch-1-drain": "replace", "agent-batch-1-uncordon": "replace" }), true, "a trigger runs it");
  });

  it("says which release the hosts ran at the last up, from each apply step's recorded stdout; a channel stack names the cluster's recorded release (issue 28)", () => {
    const applyStep = (node: string, stdout: string, op = "same") => ({ op, urn: `urn:pulumi:dev::k3s-platform::k3s-platform:index:K3sCluster$k3s-platform:index:K3sNode$command:remote:Command::dev-${node}-apply`, oldState: { inputs: {}, outputs: { stdout } } });
    const steps = [
      applyStep("dev-server-1", "apply[dev-server-1]: channel stable: pinned to the running v1.36.3+k3s1 (upgrade by setting k3s.version)\napply[dev-server-1]: K3s v1.36.3+k3s1 is running (channel stable, pinned to this release)\n", "update"),
      applyStep("dev-agent-1", "apply[dev-agent-1]: K3s is up to date (v1.36.3+k3s1)\n"),
      applyStep("dev-agent-2", "apply[dev-agent-2]: K3s is up to date (v1.36.2+k3s1)\n"),
    ];
    // The cluster's release as the k3s-release step recorded it (components/k3s/release.ts).
    const releaseStep = { op: "same", urn: "urn:pulumi:dev::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::dev-k3s-release", oldState: { inputs: {}, outputs: { stdout: "dev-server-1: channel stable at https://update.k3s.io/v1-release/channels\nk3s-platform cluster release: v1.36.3+k3s1\n" } } };
    const out = previewMarkdown({ steps: [releaseStep, ...steps] }, { stack: "dev", channel: "stable" });
    assert.match(out, /- channel stable: the cluster's release is v1\.36\.3\+k3s1 \(recorded at its first up\); every node installs it, nodes added later included; this up keeps it \(the hosts ran v1\.36\.2\+k3s1 \(dev-agent-2\); v1\.36\.3\+k3s1 \(dev-agent-1, dev-server-1\)\); to move the cluster, set k3s\.version/);
    assert.match(previewMarkdown({ steps }, { stack: "dev" }), /- K3s on the hosts at the last up: v1\.36\.2\+k3s1 \(dev-agent-2\); v1\.36\.3\+k3s1/);
    // Before the first up (no recorded stdout) the channel's release is not known: said so.
    assert.match(previewMarkdown({ steps: [applyStep("dev-server-1", "")] }, { stack: "dev", channel: "stable" }), /channel stable: resolved once, on the first server before its first install \(`dev-k3s-release`; preview asks no channel\); every node installs that release, nodes added later included/);
    assert.equal(releaseFromApplyStdout("apply[x]: K3s v1.37.1+k3s1 is running\n"), "v1.37.1+k3s1");
    assert.equal(releaseFromApplyStdout("apply[x]: K3s is up to date (v1.37.1+k3s1; unit files recorded)\n"), "v1.37.1+k3s1");
    assert.equal(releaseFromApplyStdout("apply[x]: K3s  is running\n"), undefined);
  });

  it("a changed k3s.channel is named, not silent: the recorded release stays (issue 28 review)", () => {
    // The step as the first up ran it for channel stable: its stdin (kept: every input is ignored) and stdout.
    const dev = sampleConfig("dev");
    const stableConfig = { ...dev, k3s: { ...dev.k3s, version: undefined, channel: "stable" } } as typeof dev;
    const stdin = renderReleaseScript(stableConfig, dev.nodes[0]!);
    const releaseStep = (inputs: Record<string, unknown>, stdout: string) => ({ op: "same", urn: "urn:pulumi:dev::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::dev-k3s-release", oldState: { inputs, outputs: { stdout } } });
    const adopted = "dev-server-1: the release dev-server-1 runs (adopted: nothing upgrades)\nk3s-platform cluster release: v1.36.3+k3s1\n";
    const moved = previewMarkdown({ steps: [releaseStep({ stdin }, adopted)] }, { stack: "dev", channel: "latest" });
    assert.match(moved, /- channel latest \(k3s\.channel changed from stable: that moves nothing, the release stays\): the cluster's release is v1\.36\.3\+k3s1/);
    // From the stdout when no inputs are in the digest; unchanged: no such note.
    const resolved = "dev-server-1: channel v1.31 at https://update.k3s.io/v1-release/channels\nk3s-platform cluster release: v1.31.4+k3s1\n";
    assert.match(previewMarkdown({ steps: [releaseStep({}, resolved)] }, { stack: "dev", channel: "stable" }), /channel stable \(k3s\.channel changed from v1\.31:/);
    assert.doesNotMatch(previewMarkdown({ steps: [releaseStep({ stdin }, adopted)] }, { stack: "dev", channel: "stable" }), /changed from/);
    assert.equal(recordedChannel(undefined, adopted), undefined, "adopted, no inputs: unknown, not guessed");
  });

  it("the CLI reads saved files (--from, --events) and prints the same Markdown", () => {
    const r = spawnSync(join(REPO, "node_modules", ".bin", "tsx"), [
      join(REPO, "tools", "preview-md.ts"), "--stack", "prod",
      "--from", join(FIXTURES, "prod-upgrade.json"), "--events", join(FIXTURES, "prod-upgrade.events.jsonl"),
    ], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    // It reads ./Pulumi.prod.yaml too: the rollout of the prod sample is drawn.
    const prod = sampleConfig("prod");
    assert.equal(r.stdout, previewMarkdown(digest, { stack: "prod", policyEvents: events, rollout: clusterSteps(prod, planCluster(prod)) }));
  });
});

/**
 * The fixtures scripts/preview-fixtures.sh regenerates from real runs (test:cluster (b), (c): the
 * real pulumi CLI and kubernetes provider, the in-cluster layer of the prod sample against a real
 * API server). Expected values come from the prod sample and the renderers, not from the files.
 */
describe("preview:md on real engine output (test/fixtures/preview/cluster-*)", () => {
  const prod = sampleConfig("prod");
  const read = (name: string) => readFileSync(join(FIXTURES, name), "utf8");
  const real = (name: string, stack = "prod") =>
    previewMarkdown(JSON.parse(read(`${name}.json`)) as PreviewDigest, { stack, policyEvents: policyEventsFromLog(read(`${name}.events.jsonl`)) });
  // Stack, provider, TenantNamespaces, CoreDnsTuning and one resource per rendered object.
  const resources = 4 + renderTenants(prod).length + renderDns(prod).length;

  it("no fixture carries secret material (kubeconfig keys, PEM blocks, token or password values)", () => {
    const files = readdirSync(FIXTURES);
    assert.ok(files.some((f) => f.startsWith("cluster-")), "the real fixtures are there");
    // Every saved engine output (README.md describes them, naming what is left out).
    for (const f of files.filter((f) => f.endsWith(".json") || f.endsWith(".jsonl"))) assert.deepEqual(secretMaterial(read(f)), [], f);
  });

  it("the secret scan finds what it looks for (so a clean result means something)", () => {
    const kubeconfig = `users:\n- name: a\n  user:\n    client-key-data: ${Buffer.from("-----BEGIN RSA PRIVATE KEY-----").toString("base64")}\n`;
    assert.deepEqual(secretMaterial(kubeconfig), ["kubeconfig client key", "base64 PEM block"]);
    assert.deepEqual(secretMaterial("-----BEGIN CERTIFICATE-----"), ["PEM block"]);
    assert.deepEqual(secretMaterial('{"token":"K10abc"}'), ["token value"]);
    assert.deepEqual(secretMaterial("token: s3cr3t"), ["token value"]);
    assert.deepEqual(secretMaterial('{"token":"[secret]","password":"[secret]","tokenFile":"/x"}'), []);
    assert.deepEqual(secretMaterial('{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","plaintext":"\\"x\\""}'), ["secret envelope with plaintext"]);
  });

  it("a second preview with nothing changed: every resource unchanged", () => {
    const md = real("cluster-nochange");
    assert.match(md, new RegExp(`\\*\\*${resources} unchanged\\*\\*`));
    assert.doesNotMatch(md, /#### (Nodes|Cluster and Kubernetes objects)/);
  });

  it("one quota change: that ResourceQuota's field old → new, its TenantNamespaces' input, nothing else", () => {
    const tenant = prod.tenants[0]!;
    const pods = tenant.quota!.pods!;
    const md = real("cluster-quota");
    assert.match(md, new RegExp(`\\*\\*2 to update · ${resources - 2} unchanged\\*\\*`));
    const objects = md.split("#### Cluster and Kubernetes objects")[1]!.split("\n").filter((l) => l.startsWith("| `"));
    assert.equal(objects.length, 2, objects.join("\n"));
    assert.ok(objects.includes(`| \`prod-tenants-resourcequota-${tenant.namespace}-quota\` | ResourceQuota | 🟡 update | \`spec.hard.pods\`: \`${pods}\` → \`${pods + 1}\` |`), objects.join("\n"));
    // A component: the real engine gives it no detailedDiff, so the row comes from its inputs.
    assert.ok(objects.includes(`| \`prod-tenants\` | TenantNamespaces | 🟡 update | \`tenants[0].quota.pods\`: \`${pods}\` → \`${pods + 1}\` |`), objects.join("\n"));
  });

  it("a mandatory violation from the real policy pack: one row naming the policy, the namespace and the violation only", () => {
    const tenant = prod.tenants[1]!;
    const md = real("cluster-violation");
    const section = md.split("#### Policy violations (1, 1 mandatory: this change cannot be applied)")[1];
    assert.ok(section, md);
    const rows = section.split("\n").filter((l) => l.startsWith("| 🛑"));
    assert.deepEqual(rows, [`| 🛑 mandatory | \`tenant-pod-security\` | \`prod-tenants-namespace-${tenant.namespace}\` | namespace ${tenant.namespace} enforces privileged; at least restricted is required |`]);
    // Built on what (b) deployed: the only object change is the tenant's Pod Security labels.
    const objects = md.split("#### Cluster and Kubernetes objects")[1]!.split("####")[0]!.split("\n").filter((l) => l.startsWith("| `"));
    assert.deepEqual(objects.map((r) => r.split("|")[1]!.trim()).sort(), ["`prod-tenants-namespace-" + tenant.namespace + "`", "`prod-tenants`"].sort());
    assert.ok(objects.find((r) => r.includes("namespace-"))!.includes(`\`metadata.labels["pod-security.kubernetes.io/enforce"]\`: \`${tenant.podSecurity}\` → \`privileged\``));
    // The CLI failed the preview: its error diagnostic is listed.
    assert.match(md, /#### Errors\n\n- error: /);
  });

  it("changed input paths of a step without detailedDiff (components), secrets compared but never shown", () => {
    assert.deepEqual(inputDiffPaths({ a: { b: [1, 2], "x.y": "s" }, k: "[secret]" }, { a: { b: [1, 3], "x.y": "t" }, k: "[secret]", n: true }), [
      "a.b[1]", 'a["x.y"]', "n",
    ]);
    assert.deepEqual(parsePropertyPath('a["x.y"]'), ["a", "x.y"]);
    assert.deepEqual(inputDiffPaths({ k: "plain" }, { k: "[secret]" }), ["k"]);
  });

  it("the CLI prints the same Markdown from the real files", () => {
    const r = spawnSync(join(REPO, "node_modules", ".bin", "tsx"), [
      join(REPO, "tools", "preview-md.ts"), "--stack", "prod",
      "--from", join(FIXTURES, "cluster-violation.json"), "--events", join(FIXTURES, "cluster-violation.events.jsonl"),
    ], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, previewMarkdown(JSON.parse(read("cluster-violation.json")) as PreviewDigest, { stack: "prod", policyEvents: policyEventsFromLog(read("cluster-violation.events.jsonl")), rollout: clusterSteps(prod, planCluster(prod)) }));
  });
});

describe("preview:md usage (one parser: tools/cli.ts)", () => {
  const work = mkdtempSync(join(tmpdir(), "preview-md-cli-"));
  after(() => rmSync(work, { recursive: true, force: true }));
  const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const r = spawnSync(join(REPO, "node_modules", ".bin", "tsx"), [join(REPO, "tools", "preview-md.ts"), ...args], { cwd: REPO, encoding: "utf8", env });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const saved = join(FIXTURES, "prod-upgrade.json");

  it("--help prints the usage and every option, exit 0, without running pulumi", () => {
    const r = cli(["--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: npm run preview:md -- /);
    for (const option of ["--stack <env>", "--from <preview.json>", "--events <events.jsonl>", "--policy-pack <dir>", "--policy-pack-config <file>", "-h, --help"]) assert.ok(r.stdout.includes(option), option);
  });

  const notJson = join(work, "not.json");
  const notObject = join(work, "array.json");
  const notEvents = join(work, "events.jsonl");
  before(() => {
    writeFileSync(notJson, "{ not json");
    writeFileSync(notObject, "[]");
    writeFileSync(notEvents, "not an event\n");
  });
  const misuses: Array<[string, string[], RegExp]> = [
    ["no --stack", ["--from", saved], /--stack <env> is required/],
    ["a positional argument", ["prod"], /unexpected argument "prod": this command takes only options/],
    ["an unknown option", ["--stack", "prod", "--form", saved], /unknown option --form \(did you mean --from\?\)/],
    ["--from that does not exist", ["--stack", "prod", "--from", join(work, "missing.json")], /--from .*missing\.json does not exist/],
    ["--from <dir>", ["--stack", "prod", "--from", work], /--from .* is a directory; give a file/],
    ["--from that is not JSON", ["--stack", "prod", "--from", notJson], /--from .*not\.json is not a `pulumi preview --json` output \(.+\)/],
    ["--from that is not a JSON object", ["--stack", "prod", "--from", notObject], /--from .*array\.json is not a `pulumi preview --json` output \(not a JSON object\)/],
    ["--events that is not an event log", ["--stack", "prod", "--from", saved, "--events", notEvents], /--events .*events\.jsonl is not an engine event log \(JSON lines\) \(.+\)/],
    ["--events without --from", ["--stack", "prod", "--events", notEvents], /--events goes with --from \(a live preview writes its own event log\)/],
    ["--policy-pack with --from", ["--stack", "prod", "--from", saved, "--policy-pack", "policies"], /--policy-pack is for a live preview; --from reads a saved one/],
  ];
  for (const [what, args, message] of misuses) {
    it(`${what}: one line and the usage on stderr, exit 2, no stack trace`, () => {
      const r = cli(args);
      assert.equal(r.status, 2, r.stderr);
      const lines = r.stderr.trimEnd().split("\n");
      assert.match(lines[0]!, new RegExp(`^preview:md: ${message.source}$`));
      assert.match(lines[1]!, /^usage: npm run preview:md -- /);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      assert.equal(r.stdout, "");
    });
  }

  it("without pulumi on PATH: says so and how to install it, not spawnSync ENOENT (exit 2)", () => {
    // A PATH with only node on it.
    const bin = join(work, "bin");
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, "node"));
    const r = cli(["--stack", "dev"], { ...process.env, PATH: bin });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.split("\n")[0]!, /^preview:md: the Pulumi CLI is not on PATH: install it \(.*scripts\/install-pulumi\.sh.*\)/);
    assert.doesNotMatch(r.stderr, /ENOENT|^\s+at /m);
  });
});

