import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { policies } from "../../policies/policies";
import { REPO } from "../helpers/samples";

/**
 * The pack as the engine loads it (test/helpers/pack-load-probe.js does what the policy-pack host
 * does): the host registers ts-node for every Node.js pack, whose CommonJS emit differs from tsx's,
 * the suites' loader. The pack's entry (policies/entry.js) registers tsx first, so ts-node must
 * compile nothing and the pack must hold exactly the policies the suites test.
 */
describe("the policy pack through the engine's load path", function () {
  // One fresh Node process loading the SDK, the pack and the components it imports from cold.
  this.timeout(120_000);

  it("ts-node compiles no file; the pack serves the policies the suites test", () => {
    const dir = mkdtempSync(join(tmpdir(), "k3sp-pack-path-"));
    try {
      const out = join(dir, "pack.json");
      const env: NodeJS.ProcessEnv = { ...process.env, PROBE_OUT: out };
      delete env.NODE_OPTIONS;
      const child = spawnSync(process.execPath, [join(REPO, "test", "helpers", "pack-load-probe.js")], { cwd: join(REPO, "policies"), env, encoding: "utf8" });
      const loaded = JSON.parse(readFileSync(out, "utf8")) as { policies: string[]; tsNodeCompiled: string[] };
      assert.deepEqual(loaded.tsNodeCompiled, [], "files compiled by ts-node instead of tsx");
      assert.deepEqual(loaded.policies, policies.map((p) => p.name), `${child.stdout}${child.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
