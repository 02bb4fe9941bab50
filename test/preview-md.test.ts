import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { NODE_CHILDREN } from "../components/names";
import { NODE_STEPS, parsePropertyPath, parseUrn, PreviewDigest, policyEventsFromLog, previewMarkdown, splitPolicyMessage } from "../tools/preview-markdown";
import { REPO } from "./helpers/samples";

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

  it("the CLI reads saved files (--from, --events) and prints the same Markdown", () => {
    const r = spawnSync(join(REPO, "node_modules", ".bin", "tsx"), [
      join(REPO, "tools", "preview-md.ts"), "--stack", "prod",
      "--from", join(FIXTURES, "prod-upgrade.json"), "--events", join(FIXTURES, "prod-upgrade.events.jsonl"),
    ], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, md);
  });
});
