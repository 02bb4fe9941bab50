import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BundledFile, renderBundle, secretsDocument, secretsWriteScript } from "../../../components/node/bundle";
import { shellQuote } from "../../../components/shell/quote";
import { planCluster, renderSecretsDocument } from "../../../components/plan/node";
import { ENVS, sampleConfig } from "../../helpers/samples";

/**
 * The node bundle and the secrets document are run for real (bash / sh in a scratch directory):
 * every file must come out byte-exact with its mode, whatever it contains.
 */

/** Hostile file contents: quotes, expansions, heredoc terminators, CR, unicode, no final newline. */
const HOSTILE = [
  "",
  "'",
  "''\n'\\''",
  "$(touch PWNED)\n`touch PWNED`\n${HOME}\n$HOME",
  "EOF\nEOF_\n'EOF'\n",
  "a\\\nb\\\\\n\\",
  "line\r\nwindows\r\n",
  "ünïcødé → ✓ 日本語\n",
  "no final newline",
  "\n\n\n",
  "#!/bin/sh\nexit 3\n",
  "%s %d %% \\n -e -n --\n",
  "*\n?\n[a-z]\n~\n!\n",
];

/** A small deterministic generator (no dependency): strings over an alphabet of shell specials. */
function randomContents(seed: number, count: number): string[] {
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const alphabet = ["'", '"', "\\", "$", "`", "(", ")", "{", "}", "\n", "\r", "\t", " ", "EOF", "%", "!", "*", ";", "&", "|", "a", "é", "€", "-"];
  return Array.from({ length: count }, () => Array.from({ length: Math.floor(next() * 60) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(""));
}

function run(cmd: string, args: string[], input?: string) {
  const r = spawnSync(cmd, args, { encoding: "utf8", input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("node bundle (one copy per node)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3sp-bundle-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let n = 0;
  const fresh = () => {
    const dir = join(scratch, String(n++));
    mkdirSync(dir);
    return dir;
  };

  it("unpacks every file byte-exact with its mode, for hostile contents", () => {
    const contents = [...HOSTILE, ...randomContents(15, 40)];
    const files: BundledFile[] = contents.map((content, i) => ({ name: `f-${i}.txt`, content, mode: i % 2 ? "0600" : "0755" }));
    const dir = fresh();
    writeFileSync(join(dir, "bundle.sh"), renderBundle("test", files));
    const r = run("bash", [join(dir, "bundle.sh")]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, "", "unpacking prints nothing");
    for (const f of files) {
      assert.equal(readFileSync(join(dir, f.name), "utf8"), f.content, f.name);
      assert.equal((statSync(join(dir, f.name)).mode & 0o777).toString(8), f.mode.slice(1), f.name);
    }
    assert.ok(!existsSync(join(dir, "PWNED")), "nothing in a file's content ran");
    assert.deepEqual(readdirSync(dir).filter((x) => x.endsWith(".tmp")), [], "no temporary file is left");
  });

  it("two runs of one bundle at once (an agent's preflight beside its os-prep) both succeed and leave the same files", async () => {
    // The engine ran both on one host in parallel and one run's mv found its temporary file gone.
    const files: BundledFile[] = Array.from({ length: 150 }, (_, i) => ({ name: `f-${i}.txt`, content: `content ${i}\n`.repeat(20), mode: "0600" }));
    const dir = fresh();
    writeFileSync(join(dir, "bundle.sh"), renderBundle("test", files));
    const runs = Array.from({ length: 6 }, () => new Promise<number | null>((resolve) => spawn("bash", [join(dir, "bundle.sh")], { stdio: "ignore" }).on("close", resolve)));
    assert.deepEqual(await Promise.all(runs), Array(6).fill(0), "a concurrent run failed");
    for (const f of files) assert.equal(readFileSync(join(dir, f.name), "utf8"), f.content, f.name);
    assert.deepEqual(readdirSync(dir).filter((x) => x.endsWith(".tmp")), [], "no temporary file is left");
  });

  it("runs the named script after unpacking, from the staging directory", () => {
    const dir = fresh();
    writeFileSync(join(dir, "bundle.sh"), renderBundle("test", [
      { name: "data.txt", content: "v2\n", mode: "0600" },
      { name: "run.sh", content: 'cat "$(dirname "$0")/data.txt"; exit 7\n', mode: "0700" },
    ]));
    writeFileSync(join(dir, "data.txt"), "v1 (stale)\n");
    const r = run("bash", [join(dir, "bundle.sh"), "run.sh"]);
    assert.equal(r.stdout, "v2\n", "the script sees the new files");
    assert.equal(r.status, 7, "the script's exit status is the step's");
  });

  it("refuses names and modes that cannot be placed safely", () => {
    for (const name of ["../x", "a/b", ".hidden", "a b", "x;rm", ""]) {
      assert.throws(() => renderBundle("t", [{ name, content: "", mode: "0600" }]), /not a plain file name/, name);
    }
    assert.throws(() => renderBundle("t", [{ name: "a", content: "", mode: "600; rm -rf /" }]), /not an octal mode/);
    assert.throws(() => renderBundle("t", [{ name: "a", content: "", mode: "0600" }, { name: "a", content: "", mode: "0600" }]), /appears twice/);
  });

  it("is deterministic: the same config gives the same bytes, a different one different bytes", () => {
    for (const env of ENVS) {
      const [a, b] = [planCluster(sampleConfig(env)), planCluster(sampleConfig(env))];
      assert.deepEqual(a.nodes.map((x) => x.bundle), b.nodes.map((x) => x.bundle), env);
      assert.equal(new Set(a.nodes.map((x) => x.bundle.sha256)).size, a.nodes.length, `${env}: each node's bundle differs`);
    }
  });

  it("holds every staged file of every sample node, passes bash -n and shellcheck", () => {
    const dir = fresh();
    const paths: string[] = [];
    for (const env of ENVS) {
      for (const node of planCluster(sampleConfig(env)).nodes) {
        const out = join(dir, node.node.name);
        mkdirSync(out);
        writeFileSync(join(out, "bundle.sh"), node.bundle.content);
        paths.push(join(out, "bundle.sh"));
        const r = run("bash", [join(out, "bundle.sh")]);
        assert.equal(r.status, 0, r.stderr);
        for (const f of node.files) assert.equal(readFileSync(join(out, f.name), "utf8"), f.content, `${node.node.name}/${f.name}`);
        assert.deepEqual(readdirSync(out).sort(), ["bundle.sh", ...node.files.map((f) => f.name)].sort());
      }
    }
    const lint = run("shellcheck", ["--severity=style", ...paths]);
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  });
});

describe("secrets document (one command per node)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "k3sp-secrets-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("writes every file atomically with its mode, prints nothing, for hostile contents and paths", () => {
    const contents = [...HOSTILE, ...randomContents(16, 20)];
    const targets = contents.map((_, i) => ({ target: join(scratch, `dir ${i % 3}`, `it's $x ${i}.yaml`), mode: i % 2 ? "0600" : "0640" }));
    mkdirSync(join(scratch, "dir 0"));
    writeFileSync(targets[0]!.target, "old content\n");
    chmodSync(targets[0]!.target, 0o644);
    const script = secretsWriteScript(targets).text;
    for (const shell of ["sh", "bash"]) {
      const r = run(shell, ["-c", script], secretsDocument(contents));
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout + r.stderr, "", `${shell}: nothing printed`);
      targets.forEach((t, i) => {
        assert.equal(readFileSync(t.target, "utf8"), contents[i], `${shell}: ${t.target}`);
        assert.equal((statSync(t.target).mode & 0o777).toString(8), t.mode.slice(1), t.target);
      });
    }
    for (const d of readdirSync(scratch)) assert.deepEqual(readdirSync(join(scratch, d)).filter((f) => f.endsWith(".tmp")), [], d);
  });

  it("hands a file with its own write script its content on stdin, in order with the others", () => {
    const dir = join(scratch, "custom");
    const [a, b, c] = ["a", "b", "c"].map((x) => join(dir, x));
    const keep = `umask 077; { printf 'kept\n'; cat; } >${shellQuote(b!)}`;
    const r = run("sh", ["-c", secretsWriteScript([{ target: a!, mode: "0600" }, { target: b!, mode: "0600", writeScript: keep }, { target: c!, mode: "0600" }]).text], secretsDocument(["A", "B'$x", "C"]));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual([a, b, c].map((p) => readFileSync(p!, "utf8")), ["A", "kept\nB'$x", "C"]);
  });

  it("fails, without touching later files, when the document is short", () => {
    const a = join(scratch, "short", "a");
    const b = join(scratch, "short", "b");
    const r = run("sh", ["-c", secretsWriteScript([{ target: a, mode: "0600" }, { target: b, mode: "0600" }]).text], secretsDocument(["only one"]));
    assert.notEqual(r.status, 0);
    assert.equal(readFileSync(a, "utf8"), "only one");
    assert.ok(!existsSync(b));
  });

  it("the node's document renders its secret files in plan order, secrets never in the command", () => {
    const plan = planCluster(sampleConfig("prod"), { hasRegistryAuth: true }).nodes[0]!;
    const secrets = { token: "tok-'$(x)", registryAuth: { "r.example.com": { username: "u", password: "p'w" } }, encryptionKeys: { secretbox: [{ name: "k1", secret: "c2VjcmV0" }] } };
    const lines = renderSecretsDocument(plan, secrets).split("\n");
    assert.equal(lines.pop(), "", "one line per file, each ending in a newline");
    assert.deepEqual(lines.map((l) => Buffer.from(l, "base64").toString("utf8")), plan.secretFiles.map((f) => f.render(secrets)));
    assert.ok(!plan.commands.secrets.includes("tok-"));
    for (const f of plan.secretFiles) assert.ok(plan.commands.secrets.includes(f.target), f.target);
  });

  it("refuses relative targets and odd modes", () => {
    assert.throws(() => secretsWriteScript([{ target: "etc/x", mode: "0600" }]), /not an absolute path/);
    assert.throws(() => secretsWriteScript([{ target: "/etc/x", mode: "rw" }]), /not an octal mode/);
  });
});
