import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as command from "@pulumi/command";
import { failureLine, reportFailure } from "../../components/shell/report";
import { stdinScriptCommand } from "../../components/shell/root";
import { engineMissing, inlineStack } from "../../tools/harness/engine";
import { REPO } from "../helpers/samples";
import { SshTarget, TestHost } from "../e2e/ssh";

const HOSTS = join(REPO, "test", "e2e", "hosts", "hosts.sh");

/**
 * What `pulumi up` shows when a step fails on its host (issue 23): the real command provider (its
 * Go SSH client) runs a step's command as the program declares it (shell/report.ts reportFailure
 * around a `bash -s` script) against a netns test host; the script fails at its first command.
 * The provider's error (`Process exited with status N: running "…":` and the output) ends with
 * the line naming node, host and step, after the script's own message.
 */
describe("test:engine — a failed step's error, as pulumi up reports it, ends with the line naming node, host and step", function () {
  this.timeout(300_000);
  const missing = engineMissing(["command"]);
  const dir = mkdtempSync(join(tmpdir(), "k3sp-report-"));
  const hostsDir = join(dir, "hosts");
  let host: TestHost;

  before(function () {
    if (missing) {
      console.log(`    SKIPPED: ${missing}`);
      this.skip();
    }
    execFileSync("bash", [HOSTS, "up", "1", hostsDir], { stdio: "inherit" });
    host = (JSON.parse(readFileSync(join(hostsDir, "hosts.json"), "utf8")) as TestHost[])[0]!;
  });
  after(() => {
    if (host) execFileSync("bash", [HOSTS, "down", hostsDir], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  });

  it("a set -e script on stdin failing at its first command: the up fails; its last line names node, host and step; the step after it never ran", async () => {
    // Unique per run: the marker the step after it would leave.
    const marker = `/tmp/k3sp-report-after-${dir.split("/").pop()}`;
    const site = { node: "e2e-server-1", host: host.address, step: "e2e-server-1-restore-reset" };
    const program = async () => {
      const connection = { host: host.address, user: host.user, privateKey: readFileSync(join(hostsDir, "id_ed25519"), "utf8") };
      const failing = new command.remote.Command("failing", {
        connection,
        create: reportFailure(site, stdinScriptCommand(host.user)),
        stdin: "set -euo pipefail\necho 'restore[e2e-server-1] reset: k3s server --cluster-reset failed' >&2\nfalse\necho never\n",
        addPreviousOutputInEnv: false,
      });
      new command.remote.Command("after", { connection, create: `touch ${marker}`, addPreviousOutputInEnv: false }, { dependsOn: [failing] });
    };
    const stack = await inlineStack(join(dir, "state"), "report", program);
    const events: string[] = [];
    await assert.rejects(stack.up({ onOutput: (o) => events.push(o) }), (e: Error) => {
      const said = e.message;
      assert.match(said, /Process exited with status 1: running/);
      const own = said.indexOf("restore[e2e-server-1] reset: k3s server --cluster-reset failed");
      const line = said.indexOf(failureLine(site, 1));
      assert.ok(own >= 0 && line > own, `the script's message, then the line:\n${said}`);
      return true;
    });
    assert.ok(events.join("").includes(failureLine(site, 1)), "in what pulumi up prints");
    const after = await new SshTarget(host, join(hostsDir, "id_ed25519")).run(`test -e ${marker} && echo ran || echo not-run`);
    assert.equal(after.stdout.trim(), "not-run", "the step after it did not run");
  });
});
