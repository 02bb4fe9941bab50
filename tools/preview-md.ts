import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readStackFile, stackFilePath } from "../components/config/stack-file";
import { parseStackConfig } from "../components/stack/load";
import type { NodeRoles } from "./preview-lifecycle";
import { PreviewDigest, policyEventsFromLog, previewMarkdown } from "./preview-markdown";

/**
 * `npm run preview:md -- --stack <env> [--policy-pack policies --policy-pack-config <file>]`
 * runs `pulumi preview --json --event-log` and prints the Markdown summary; exits with the
 * preview's status (after printing) so CI can post the comment and still fail.
 * `npm run preview:md -- --from <preview.json> [--events <event-log.jsonl>] --stack <env>`
 * reads saved output instead.
 */

/** Servers and agents in ./Pulumi.<stack>.yaml, when it is there and valid (else the digest's K3sNodes count). */
function stackRoles(stack: string): NodeRoles | undefined {
  const file = stackFilePath(".", stack);
  if (!existsSync(file)) return undefined;
  try {
    const result = parseStackConfig(readStackFile(file).raw);
    if (!result.ok) return undefined;
    const servers = result.config.nodes.filter((n) => n.role === "server").length;
    return { servers, agents: result.config.nodes.length - servers };
  } catch {
    return undefined;
  }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      "stack": { type: "string" },
      "from": { type: "string" },
      "events": { type: "string" },
      "policy-pack": { type: "string" },
      "policy-pack-config": { type: "string" },
    },
  });
  if (!values.stack) {
    console.error("preview:md: --stack is required");
    return 2;
  }
  const roles = stackRoles(values.stack);
  if (values.from) {
    const digest = JSON.parse(readFileSync(values.from, "utf8")) as PreviewDigest;
    const events = values.events ? policyEventsFromLog(readFileSync(values.events, "utf8")) : undefined;
    process.stdout.write(previewMarkdown(digest, { stack: values.stack, policyEvents: events, roles }));
    return 0;
  }

  // The event log holds the Node SDK's debug diagnostics, which carry secret inputs' plaintext
  // (the kubeconfig: README "Secrets in event logs"). It lives only in this directory (mkdtemp:
  // mode 0700), only policy events are read from it, and it is deleted below.
  const work = mkdtempSync(join(tmpdir(), "preview-md-"));
  try {
    const eventLog = join(work, "events.jsonl");
    const args = ["preview", "--stack", values.stack, "--json", "--event-log", eventLog, "--non-interactive"];
    if (values["policy-pack"]) args.push("--policy-pack", values["policy-pack"]);
    if (values["policy-pack-config"]) args.push("--policy-pack-config", values["policy-pack-config"]);
    // `--event-log` exists in pulumi 3.260 only with PULUMI_DEBUG_COMMANDS=true; without it the
    // preview fails on the unknown flag and the comment would say "No changes".
    const run = spawnSync("pulumi", args, {
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, PULUMI_DEBUG_COMMANDS: "true" },
    });
    if (run.error) {
      console.error(`preview:md: cannot run pulumi: ${run.error.message}`);
      return 2;
    }
    // A failed preview (e.g. a mandatory policy violation) may print no digest; the event log still has the violations.
    let digest: PreviewDigest = {};
    try {
      digest = JSON.parse(run.stdout) as PreviewDigest;
    } catch {
      digest = { diagnostics: [{ severity: "error", message: `pulumi preview exited ${run.status} without a JSON digest` }] };
    }
    let events: string;
    try {
      events = readFileSync(eventLog, "utf8");
    } catch {
      events = "";
    }
    process.stdout.write(previewMarkdown(digest, { stack: values.stack, policyEvents: policyEventsFromLog(events), roles }));
    return run.status ?? 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = main();
