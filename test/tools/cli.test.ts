import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { CliSpec, helpText, parseCli, UsageError } from "../../tools/cli";
import { REPO } from "../helpers/samples";

const spec = {
  name: "t",
  usage: ["t --name <x>"],
  description: "a test command",
  options: { name: { type: "string", value: "<x>", help: "a name" }, dry: { type: "boolean", help: "only say" } },
} satisfies CliSpec<Record<string, { type: "string" | "boolean"; value?: string; help: string }>>;

describe("tools/cli.ts (the CLIs' one parser)", () => {
  it("parses options; --help anywhere before -- wins, even next to a mistake", () => {
    assert.deepEqual(parseCli(spec, ["--name", "a", "--dry"]), { name: "a", dry: true });
    assert.equal(parseCli(spec, ["--nope", "--help"]), "help");
    assert.equal(parseCli(spec, ["-h"]), "help");
    assert.throws(() => parseCli(spec, ["--", "--help"]), UsageError, "after -- it is a positional argument");
  });

  it("refuses what strict parseArgs refuses, and a repeated or empty value, in one line", () => {
    for (const [args, message] of [
      [["x"], /^unexpected argument "x"/],
      [["--nam", "a"], /^unknown option --nam \(did you mean --name\?\)$/],
      [["--name"], /^--name needs a value$/],
      [["--name="], /^--name needs a value$/],
      [["--dry=yes"], /^--dry takes no value$/],
      [["--name", "a", "--name", "b"], /^--name is given more than once$/],
    ] as const) {
      assert.throws(() => parseCli(spec, [...args]), (e: Error) => e instanceof UsageError && message.test(e.message) && !e.message.includes("\n"), args.join(" "));
    }
  });

  it("the help lists every option with its value and text", () => {
    const help = helpText(spec);
    for (const [name, o] of Object.entries(spec.options)) assert.match(help, new RegExp(`--${name}${"value" in o ? ` ${o.value}` : ""} +${o.help}`));
    assert.match(help, /-h, --help +print this help/);
  });

  for (const [script, file] of [["bench", "bench/plan.bench.ts"], ["docs:allowlist", "tools/docs-allowlist.ts"], ["docs:config", "tools/docs-config.ts"]] as const) {
    it(`npm run ${script} -- --help prints the help and does nothing else (exit 0); a stray argument is exit 2`, () => {
      const tsx = join(REPO, "node_modules", ".bin", "tsx");
      // Small sizes: should the help not stop it, the run that starts stays short.
      const help = spawnSync(tsx, [join(REPO, file), "--help"], { cwd: REPO, encoding: "utf8", env: { ...process.env, BENCH_SMALL: "3", BENCH_LARGE: "3", BENCH_RUNS: "1" } });
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^usage: npm run ${script}\\n`));
      assert.equal(help.stdout.split("\n\n").length >= 3, true, "usage, description, options");
      assert.doesNotMatch(help.stdout, /load average|wrote /, "the run did not start");
      const stray = spawnSync(tsx, [join(REPO, file), "now"], { cwd: REPO, encoding: "utf8" });
      assert.equal(stray.status, 2, stray.stderr);
      assert.match(stray.stderr, new RegExp(`^${script}: unexpected argument "now"`));
    });
  }

  it("BENCH_ONLY naming no section is a usage error (exit 2) in one line, not the whole bench (review of issue 26)", () => {
    const tsx = join(REPO, "node_modules", ".bin", "tsx");
    // Small sizes and a bound: should the misspelt section not stop it, the run that starts stays short.
    const env = { ...process.env, BENCH_ONLY: "chrun", BENCH_SMALL: "3", BENCH_LARGE: "3", BENCH_RUNS: "1", BENCH_ENGINE_RUNS: "1", BENCH_CLI_NODES: "3", BENCH_PURE_SMALL: "3", BENCH_PURE_LARGE: "3", BENCH_PURE_RUNS: "1", BENCH_CHURN_SIZES: "4" };
    const r = spawnSync(tsx, [join(REPO, "bench", "plan.bench.ts")], { cwd: REPO, encoding: "utf8", env, timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^bench: BENCH_ONLY=chrun names no section \(cli-preview, churn, pure\)/);
    assert.doesNotMatch(r.stdout, /load average/, "the run did not start");
  });

  it("npm run lint:workflows (bash) answers the same way: --help exit 0 without building anything, an argument exit 2", () => {
    const script = join(REPO, "scripts", "lint-workflows.sh");
    // No go, no actionlint reachable: a run that started would fail (exit 1), not print the help.
    const env = { ...process.env, PATH: "/usr/bin:/bin", K3S_PLATFORM_CACHE: join(REPO, "no-such-cache") };
    const help = spawnSync("bash", [script, "--help"], { encoding: "utf8", env });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: npm run lint:workflows\n/);
    const stray = spawnSync("bash", [script, "now"], { encoding: "utf8", env });
    assert.equal(stray.status, 2);
    assert.deepEqual(stray.stderr.trimEnd().split("\n"), ['lint:workflows: unexpected argument "now": this command takes no arguments', "usage: npm run lint:workflows"]);
  });
});

