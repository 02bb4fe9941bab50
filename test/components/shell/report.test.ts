import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { ResolvedConfig } from "../../../components/config/schema";
import { PREFLIGHT_SCRIPT } from "../../../components/k3s/agent-preflight";
import { operationSteps } from "../../../components/operations";
import { NO_OP_UPDATE } from "../../../components/operations/once";
import { childName, NODE_CHILDREN } from "../../../components/names";
import { applyWithRelease, planCluster, runWithRelease } from "../../../components/plan/node";
import { failureLine, reportedCommand, reportFailure, StepSite } from "../../../components/shell/report";
import { ENVS, FIXTURE_SAMPLES, FixtureSample, fixtureConfig, sampleConfig } from "../../helpers/samples";

/**
 * Issue 23, "the failure of any step stops the rest with a message naming host and step": every
 * remote command the program runs (every day-2 step of every operation, every K3sNode command)
 * ends a failure with one stderr line naming node, host and step (shell/report.ts), the last line
 * of what `pulumi up` shows for it. The commands run here as sshd runs them, `$SHELL -c`, with dash
 * (POSIX) and bash.
 */

const SHELLS = ["/bin/dash", "/bin/bash"];
const SITE: StepSite = { node: "prod-server-2", host: "192.0.2.12", step: "prod-server-2-restore-rejoin" };

function run(shell: string, command: string, stdin = "", env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(shell, ["-c", command], { input: stdin, encoding: "utf8", env });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stderr.split("\n").filter((l) => l !== "") };
}

describe("shell/report: a failed step's last stderr line names node, host and step (issue 23)", () => {
  describe("the wrapper, run as the login shell runs a command", () => {
    for (const shell of SHELLS) {
      it(`${shell}: a failure keeps its status, stdout and own message, and ends with the line; success adds nothing`, () => {
        const failed = run(shell, reportFailure(SITE, "echo out; echo 'rejoin: etcd refused the member' >&2; exit 3"));
        assert.equal(failed.status, 3);
        assert.equal(failed.stdout, "out\n");
        assert.deepEqual(failed.lines, ["rejoin: etcd refused the member", failureLine(SITE, 3)]);
        assert.equal(failureLine(SITE, 3), "k3s-platform: prod-server-2 (192.0.2.12): step prod-server-2-restore-rejoin failed (exit 3)");

        const ok = run(shell, reportFailure(SITE, "echo out; echo warning >&2"));
        assert.deepEqual([ok.status, ok.stdout, ok.lines], [0, "out\n", ["warning"]]);
      });

      it(`${shell}: a script on stdin (bash -s) with set -e failing at its first command, one ending in a comment or a heredoc, one that exits or sets -e at the top: each reported`, () => {
        const script = "set -euo pipefail\nfalse\necho never\n";
        const stdin = run(shell, reportFailure(SITE, "bash -s"), script);
        assert.deepEqual([stdin.status, stdin.stdout, stdin.lines], [1, "", [failureLine(SITE, 1)]]);
        for (const [command, status] of [
          ["false # a comment at the end", 1],
          ["cat <<'EOF'\nbody\nEOF\nexit 5", 5],
          ["set -e; false; echo never", 1],
          ["exit 7", 7],
          ["(exit 9)", 9],
          ["no-such-command-k3sp", 127],
        ] as const) {
          const r = run(shell, reportFailure(SITE, command));
          assert.equal(r.status, status, command);
          assert.equal(r.lines.at(-1), failureLine(SITE, status), command);
        }
      });
    }

    it("stdin reaches the command whole (a script the provider sends, a secrets document)", () => {
      const document = "line 1\nline 2 'quoted' $(not run)\n";
      const r = run("/bin/dash", reportFailure(SITE, "cat"), document);
      assert.deepEqual([r.status, r.stdout, r.lines], [0, document, []]);
    });

    it("any node, host and step text is printed verbatim, never run (names are validated; the wrapper does not rely on it)", () => {
      const dir = mkdtempSync(join(tmpdir(), "k3sp-report-"));
      try {
        const marker = join(dir, "ran");
        const payload = fc.constantFrom(`$(touch ${marker})`, `'; touch ${marker}; '`, `\`touch ${marker}\``, `"; touch ${marker}`, "%s %n %d", "\\n", "-n");
        const text = fc.oneof(payload, fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\0\n]/.test(s)));
        fc.assert(
          fc.property(text, text, text, (node, host, step) => {
            const site = { node, host, step };
            const r = run("/bin/dash", reportFailure(site, "exit 2"));
            assert.equal(r.status, 2);
            assert.equal(r.stderr, `${failureLine(site, 2)}\n`);
            assert.equal(reportedCommand(site, reportFailure(site, "exit 2")), "exit 2");
          }),
          { numRuns: 40 },
        );
        assert.equal(spawnSync("test", ["-e", marker]).status, 1, "no payload ran");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("every command of every sample stack takes that form", () => {
    const samples: Array<[string, () => ResolvedConfig]> = [
      ...ENVS.map((env) => [env, () => sampleConfig(env)] as [string, () => ResolvedConfig]),
      ...(Object.keys(FIXTURE_SAMPLES) as FixtureSample[]).map((name) => [name, () => fixtureConfig(name)] as [string, () => ResolvedConfig]),
    ];
    /** Every remote command of a stack with the site it must name. */
    const commandsOf = (config: ResolvedConfig) => {
      const plan = planCluster(config);
      const out: Array<{ label: string; site: StepSite; command: string }> = [];
      for (const s of operationSteps(config, plan)) {
        const site = { node: s.host.name, host: s.host.host, step: s.name };
        for (const [kind, command] of [["create", s.create], ["update", s.update], ["delete", s.delete]] as const) {
          if (command !== undefined) out.push({ label: `${s.name} ${kind}`, site, command });
        }
      }
      for (const n of plan.nodes) {
        const site = (child: keyof typeof NODE_CHILDREN) => ({ node: n.node.name, host: n.node.host, step: childName(n.node.name, NODE_CHILDREN[child]) });
        for (const child of ["stage", "secrets", "osPrep", "apply", "preflight"] as const) {
          const command = n.commands[child];
          if (command !== undefined) out.push({ label: `${n.node.name} ${child}`, site: site(child), command });
        }
        // A channel stack's apply and preflight carry the cluster's release.
        out.push({ label: `${n.node.name} apply (channel)`, site: site("apply"), command: applyWithRelease(n, "v1.33.4+k3s1") });
        if (n.commands.preflight) out.push({ label: `${n.node.name} preflight (channel)`, site: site("preflight"), command: runWithRelease(n, PREFLIGHT_SCRIPT, "v1.33.4+k3s1") });
      }
      return out;
    };

    it("statically: each is reportFailure(its node, host and step, the command), for day-2 steps and node commands alike", () => {
      let count = 0;
      for (const [label, config] of samples) {
        const commands = commandsOf(config());
        assert.ok(commands.some((c) => /-apply$/.test(c.site.step)) && commands.some((c) => !c.label.includes(" apply")), `${label}: node and day-2 commands`);
        for (const c of commands) {
          assert.notEqual(reportedCommand(c.site, c.command), undefined, `${label}: ${c.label} does not report its failure as ${failureLine(c.site, "N")}: ${c.command.slice(0, 80)}`);
          count++;
        }
      }
      assert.ok(count > 500, `${count} commands`);
    });

    it("run with every program on the host failing (sudo refused, a command missing): each exits non-zero with its own line last; only a command written to never fail (the no-op update, `|| true`) exits 0, silently", () => {
      const dir = mkdtempSync(join(tmpdir(), "k3sp-report-stubs-"));
      try {
        // Whatever the command calls first fails, as `sudo -n` does without a NOPASSWD rule ("sudo:
        // a password is required", status 1); the wrapper itself uses only shell builtins.
        for (const name of ["sudo", "bash", "sh", "cat", "env", "install", "k3s"]) {
          writeFileSync(join(dir, name), `#!/bin/dash\necho "${name}: refused (test stand-in)" >&2\nexit 1\n`);
          chmodSync(join(dir, name), 0o755);
        }
        const env = { PATH: dir };
        for (const [label, config] of samples) {
          // Once per distinct command inside (the pools sample's 50 agents run the same ones): the
          // static test above shows each wraps it for its own site.
          const seen = new Set<string>();
          for (const c of commandsOf(config())) {
            const inner = reportedCommand(c.site, c.command)!;
            if (seen.has(inner)) continue;
            seen.add(inner);
            const r = run("/bin/dash", c.command, "", env);
            if (r.status === 0) {
              assert.ok(inner === NO_OP_UPDATE || inner.endsWith("|| true"), `${label}: ${c.label} exited 0 though everything it calls fails`);
              assert.deepEqual(r.lines.filter((l) => l.startsWith("k3s-platform:")), [], `${label}: ${c.label}`);
              continue;
            }
            assert.equal(r.lines.at(-1), failureLine(c.site, r.status!), `${label}: ${c.label}: ${r.stderr}`);
            assert.equal(r.lines.filter((l) => l.startsWith("k3s-platform:")).length, 1, `${label}: ${c.label}: one line`);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
