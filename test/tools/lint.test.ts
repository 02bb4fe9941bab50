import { strict as assert } from "node:assert";
import { join } from "node:path";
import { ESLint } from "eslint";
import { REPO } from "../helpers/samples";

/**
 * The lint rule behind `npm test`'s `eslint .` (eslint.config.mjs): no binding named like a
 * CommonJS module name, in any form, since TypeScript's CommonJS emit reads exported bindings
 * through `exports` (issue 21: a local `const exports` broke every air-gapped install under the CLI).
 */
describe("eslint: no-commonjs-name-binding", function () {
  this.timeout(60_000);
  const eslint = new ESLint({ cwd: REPO });
  const problems = async (code: string) => {
    const [result] = await eslint.lintText(code, { filePath: join(REPO, "components", "lint-sample.ts") });
    return result!.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}`);
  };

  it("reports the original fault: a local const exports beside an exported constant", async () => {
    const code = 'export const K3S_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images";\nexport function render(): string {\n  const exports = "export A=1";\n  return `${exports}\\nK3S_IMAGES=${K3S_IMAGES_DIR}`;\n}\n';
    assert.deepEqual(await problems(code), ["3:9 k3s-platform/no-commonjs-name-binding"]);
  });

  const forms: Array<[string, string]> = [
    ["let at module scope", "let module = 1;\nvoid module;\n"],
    ["a parameter", "export const f = (require: number) => require;\n"],
    ["a destructured parameter", "export function f({ __dirname }: { __dirname: string }) {\n  return __dirname;\n}\n"],
    ["a catch parameter", "export function f() {\n  try {\n    return 1;\n  } catch (exports) {\n    return exports;\n  }\n}\n"],
    ["a function name", "export function g() {\n  function __filename() {}\n  return __filename;\n}\n"],
    ["a class name (reported once)", "export class X {}\nclass module {}\nvoid module;\n"],
    ["an import alias", 'import { join as require } from "node:path";\nvoid require;\n'],
    ["array destructuring", "export const f = (xs: string[]) => {\n  const [, exports] = xs;\n  return exports;\n};\n"],
  ];
  for (const [form, code] of forms) {
    it(`reports ${form}`, async () => assert.equal((await problems(code)).filter((p) => p.endsWith("no-commonjs-name-binding")).length, 1, code));
  }

  it("accepts uses of the names and properties named like them", async () => {
    assert.deepEqual(await problems('export const dir = __dirname;\nexport const x = require("node:path");\nexport const o = { module: 1, exports: 2 };\nexport const m = o.module;\n'), []);
  });
});
