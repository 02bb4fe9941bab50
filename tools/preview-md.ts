import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStackFile, stackFilePath } from "../components/config/stack-file";
import { clusterSteps } from "../components/operations";
import type { Step } from "../components/operations/step";
import { planCluster } from "../components/plan/node";
import { parseStackConfig } from "../components/stack/load";
import type { NodeRoles } from "./preview-lifecycle";
import { PolicyEvent, PreviewDigest, policyEventsFromLog, previewMarkdown } from "./preview-markdown";
import { checkPath, CliOption, CliSpec, runCli, UsageError } from "./cli";

/**
 * `npm run preview:md -- --stack <env> [--policy-pack policies --policy-pack-config <file>]`
 * runs `pulumi preview --json --event-log` and prints the Markdown summary; exits with the
 * preview's status (after printing) so CI can post the comment and still fail.
 * `npm run preview:md -- --from <preview.json> [--events <event-log.jsonl>] --stack <env>`
 * reads saved output instead.
 */

/**
 * From ./Pulumi.<stack>.yaml, when it is there and valid: servers and agents (else the digest's
 * K3sNodes count) and the steps in run order (the rollout diagram; without them, none).
 */
function fromStackFile(stack: string): { roles?: NodeRoles; rollout?: Step[]; channel?: string } {
  const file = stackFilePath(".", stack);
  if (!existsSync(file)) return {};
  try {
    const result = parseStackConfig(readStackFile(file).raw);
    if (!result.ok) return {};
    const servers = result.config.nodes.filter((n) => n.role === "server").length;
    const { version, channel } = result.config.k3s;
    return {
      roles: { servers, agents: result.config.nodes.length - servers },
      rollout: clusterSteps(result.config, planCluster(result.config)),
      ...(version === undefined && channel !== undefined ? { channel } : {}),
    };
  } catch {
    return {};
  }
}

const SPEC = {
  name: "preview:md",
  usage: [
    "npm run preview:md -- --stack <env> [--policy-pack policies --policy-pack-config <file>]",
    "npm run preview:md -- --stack <env> --from <preview.json> [--events <event-log.jsonl>]",
  ],
  description:
    "Runs pulumi preview for the stack and prints a Markdown summary for a pull request comment (exit status: the\n" +
    "preview's, after printing), or summarises a saved `pulumi preview --json` output (--from).",
  options: {
    "stack": { type: "string", value: "<env>", help: "the stack (its ./Pulumi.<env>.yaml names the servers and agents)" },
    "from": { type: "string", value: "<preview.json>", help: "a saved `pulumi preview --json` output instead of running pulumi" },
    "events": { type: "string", value: "<events.jsonl>", help: "with --from: the saved --event-log, for policy violations" },
    "policy-pack": { type: "string", value: "<dir>", help: "run the preview with this policy pack (policies)" },
    "policy-pack-config": { type: "string", value: "<file>", help: "the pack's config (policies/config/<env>.json)" },
  },
  notes: ["exit status: the preview's (0 when it passed), 1 a file that cannot be read, 2 a usage error"],
} satisfies CliSpec<Record<string, CliOption>>;

/** A saved file named by `option`, parsed by `parse`: a usage error (one line) when it is missing or not what it should be. */
function savedFile<T>(option: string, path: string, what: string, parse: (text: string) => T): T {
  checkPath(option, path, "file");
  const text = readFileSync(path, "utf8");
  try {
    return parse(text);
  } catch (e) {
    throw new UsageError(`--${option} ${path} is not ${what} (${(e as Error).message.split("\n")[0]})`);
  }
}

function main(values: { [K in keyof typeof SPEC.options]?: string }): number {
  if (!values.stack) throw new UsageError("--stack <env> is required");
  if (values.events !== undefined && values.from === undefined) throw new UsageError("--events goes with --from (a live preview writes its own event log)");
  for (const o of ["policy-pack", "policy-pack-config"] as const) {
    if (values[o] !== undefined && values.from !== undefined) throw new UsageError(`--${o} is for a live preview; --from reads a saved one`);
  }
  const { roles, rollout, channel } = fromStackFile(values.stack);
  if (values.from !== undefined) {
    const digest = savedFile("from", values.from, "a `pulumi preview --json` output", (t) => {
      const parsed = JSON.parse(t) as unknown;
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not a JSON object");
      return parsed as PreviewDigest;
    });
    const events: PolicyEvent[] | undefined = values.events === undefined ? undefined : savedFile("events", values.events, "an engine event log (JSON lines)", policyEventsFromLog);
    process.stdout.write(previewMarkdown(digest, { stack: values.stack, policyEvents: events, roles, rollout, channel }));
    return 0;
  }

  // The event log holds the Node SDK's debug diagnostics, which carry secret inputs' plaintext
  // (the kubeconfig: docs/testing-and-ci.md "Secrets in event logs"). It lives only in this directory (mkdtemp:
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
    if ((run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
      throw new UsageError("the Pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/, or scripts/install-pulumi.sh where release downloads are blocked), or summarise a saved preview with --from");
    }
    if (run.error) throw run.error;
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
    process.stdout.write(previewMarkdown(digest, { stack: values.stack, policyEvents: policyEventsFromLog(events), roles, rollout, channel }));
    return run.status ?? 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

void runCli(SPEC, main);
