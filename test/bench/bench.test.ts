import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "../helpers/samples";

/** issue 15: `npm run bench` runs without the test suites, so neither it nor the harness it shares may import them. */
describe("bench/ and tools/harness/", () => {
  const files = (dir: string): string[] =>
    readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));

  it("import nothing from test/", () => {
    const checked = [...files("bench"), ...files(join("tools", "harness"))];
    assert.ok(checked.length >= 5, checked.join(", "));
    for (const file of checked) {
      const text = readFileSync(join(REPO, file), "utf8");
      for (const m of text.matchAll(/(?:from\s+|require\()\s*["']([^"']+)["']/g)) {
        const target = m[1]!.startsWith(".") ? relative(REPO, join(REPO, file, "..", m[1]!)) : m[1]!;
        assert.ok(!target.startsWith("test/") && target !== "test", `${file} imports ${m[1]} (${target})`);
      }
    }
  });
});
