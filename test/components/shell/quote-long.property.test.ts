import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { joinShell, raw, sh } from "../../../components/shell/sh";

/**
 * Long values (a NO_PROXY naming every node: issue 26) are quoted once and the quoted text reused;
 * joinShell links parts instead of copying them. Property: whatever the value (quotes, `$`,
 * backslashes, unicode, with or without newlines), and however many distinct long values come
 * and go (the reuse keeps a few), bash reads back exactly the value, and joinShell gives
 * Array.join's text.
 */

const RUNS = Number(process.env.K3SP_PROPERTY_RUNS ?? 25);

const piece = fc.constantFrom("'", '"', "\\", "$", "$(id)", "`id`", " ", ",", "10.0.0.1", "::1", "é", "→", "\t", "%", "*", "a", "\n");
const longValue = fc.array(piece, { minLength: 600, maxLength: 1500 }).map((parts) => parts.join(""));
const longLine = longValue.map((v) => v.replace(/\n/g, "."));

describe("shell: long values quoted once, parts linked (issue 26)", () => {
  it("bash reads back every long value exactly, repeated and among many others", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(longValue, longLine), { minLength: 1, maxLength: 40 }), (values) => {
        // Each value twice (the second quoting reuses the first), the whole list twice (past the reuse's size).
        const all = [...values, ...values.map((v) => v), ...values];
        const script = joinShell(all.map((v) => sh`printf '%s\\0' ${v}`)).text;
        const out = spawnSync("bash", ["-c", script], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        assert.equal(out.status, 0, out.stderr);
        assert.deepEqual(out.stdout.split("\0").slice(0, -1), all);
      }),
      { numRuns: RUNS },
    );
  });

  it("joinShell gives Array.join's text for any parts and separator", () => {
    fc.assert(
      fc.property(fc.array(fc.string()), fc.string(), (parts, separator) => {
        assert.equal(joinShell(parts.map(raw), separator).text, parts.join(separator));
        assert.equal(joinShell(parts.map(raw)).text, parts.join("\n"));
      }),
      { numRuns: 200 },
    );
  });
});
