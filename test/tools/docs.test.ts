import { strict as assert } from "node:assert";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { readStackFile } from "../../components/config/stack-file";
import { checkStackFile } from "../../components/stack/load";
import { REPO } from "../helpers/samples";
import { pageAnchors } from "../helpers/markdown";

/**
 * The documentation is checked like code (issue 25): every ```yaml block in README.md and
 * docs/*.md that is a Pulumi stack file (a top-level `config:` map with `k3s-platform:` keys) is
 * read and validated by the program's own reader and checks, the ones `pulumi up` and
 * `npm run render` run; and every relative link points at a file that exists.
 */

const PAGES = ["README.md", ...readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];

interface Block { page: string; line: number; lang: string; text: string }

/** Fenced code blocks (``` or longer fences), with the line their fence opens on. */
function codeBlocks(page: string): Block[] {
  const lines = readFileSync(join(REPO, page), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i]!.startsWith(fence) && lines[i]!.trim() === fence); i++) body.push(lines[i]!);
    blocks.push({ page, line: start + 1, lang: open[2]!, text: body.join("\n") });
  }
  return blocks;
}

function isStackFile(text: string): boolean {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return false;
  }
  if (!doc || typeof doc !== "object" || !("config" in doc)) return false;
  const config = (doc as { config: unknown }).config;
  return !!config && typeof config === "object" && Object.keys(config).some((k) => k.startsWith("k3s-platform:"));
}

/** Markdown links and images outside code: `[text](target)`; code spans and blocks are dropped. */
function relativeLinks(page: string): { target: string; line: number }[] {
  const lines = readFileSync(join(REPO, page), "utf8").split("\n");
  const out: { target: string; line: number }[] = [];
  let fence: string | undefined;
  lines.forEach((line, i) => {
    const f = /^(`{3,})/.exec(line);
    if (f) {
      if (fence === undefined) fence = f[1];
      else if (line.trim() === fence) fence = undefined;
      return;
    }
    if (fence !== undefined) return;
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue;
      out.push({ target, line: i + 1 });
    }
  });
  return out;
}

describe("docs: README.md and docs/*.md are checked (issue 25)", () => {
  const dir = mkdtempSync(join(tmpdir(), "k3s-platform-docs-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const stackBlocks = PAGES.flatMap(codeBlocks).filter((b) => /^ya?ml$/.test(b.lang) && isStackFile(b.text));

  it("finds the stack files to check, the README's quick start among them", () => {
    assert.ok(stackBlocks.some((b) => b.page === "README.md"), "the README's quick start has a stack file");
    assert.ok(stackBlocks.length >= 2, `stack files found: ${stackBlocks.map((b) => `${b.page}:${b.line}`).join(", ")}`);
  });

  for (const block of stackBlocks) {
    it(`${block.page}:${block.line}: the stack file passes every check pulumi up and render run`, () => {
      const file = join(dir, `${block.page.replace(/[/.]/g, "_")}-${block.line}.yaml`);
      writeFileSync(file, block.text);
      const result = checkStackFile(readStackFile(file));
      assert.ok(result.ok, result.ok ? "" : result.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
    });
  }

  it("the README's quick start pins v1.37.1+k3s1, one server then one agent, host keys and apiServerSources", () => {
    const block = stackBlocks.find((b) => b.page === "README.md")!;
    const file = join(dir, "quick-start.yaml");
    writeFileSync(file, block.text);
    const result = checkStackFile(readStackFile(file));
    assert.ok(result.ok);
    assert.equal(result.config.k3s.version, "v1.37.1+k3s1");
    assert.deepEqual(result.config.nodes.map((n) => n.role), ["server", "agent"]);
    assert.ok(result.config.nodes.every((n) => n.ssh?.hostKey), "every node pins its SSH host key");
    assert.ok(result.config.k3s.firewall.apiServerSources.length > 0);
  });

  for (const page of PAGES) {
    it(`${page}: every relative link points at an existing file, and at an existing heading when it names one`, () => {
      const broken = relativeLinks(page)
        .filter(({ target }) => {
          const [path, anchor] = decodeURIComponent(target).split("#");
          const file = path ? resolve(dirname(join(REPO, page)), path) : join(REPO, page);
          if (!existsSync(file)) return true;
          return anchor !== undefined && file.endsWith(".md") && !pageAnchors(file).includes(anchor);
        })
        .map(({ target, line }) => `${page}:${line}: ${target}`);
      assert.deepEqual(broken, []);
    });
  }
});
