import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseYamlFile, splitStackConfig, StackFileError } from "../../../components/config/stack-file";
import { checkStackFile } from "../../../components/stack/load";
import { sampleRaw } from "../../helpers/samples";

/** `line:column` (1-based) of the `nth` occurrence of `needle` in `text`, counted here from the text. */
function positionOf(text: string, needle: string, nth = 1): string {
  let at = -1;
  for (let i = 0; i < nth; i++) at = text.indexOf(needle, at + 1);
  assert.ok(at >= 0, needle);
  const before = text.slice(0, at).split("\n");
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

describe("stack files: YAML syntax errors point at the problem", () => {
  const dir = mkdtempSync(join(tmpdir(), "k3s-platform-yaml-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const errorFor = (text: string): string => {
    const file = join(dir, "Pulumi.t.yaml");
    writeFileSync(file, text);
    try {
      parseYamlFile(file);
    } catch (e) {
      assert.ok(e instanceof StackFileError, String(e));
      return e.message;
    }
    assert.fail("no error");
  };
  const at = (message: string) => message.split("\n").map((l) => /:(\d+:\d+): /.exec(l)?.[1]);

  it("an unclosed flow sequence: where its [ opens, not where the file ends", () => {
    const text = "config:\n  k3s-platform:environment: dev\n  k3s-platform:tlsSan: [a.example.com, b.example.com\n  k3s-platform:x: 1\n";
    const message = errorFor(text);
    assert.deepEqual(at(message), [positionOf(text, "[")]);
    assert.match(message, /the "\[" opened here is not closed/);
  });

  it("nested unclosed { inside [: each error at its own opening bracket", () => {
    const text = "config:\n  k3s-platform:environment: dev\n  k3s-platform:nodes: [\n    {name: a\n";
    assert.deepEqual(at(errorFor(text)).sort(), [positionOf(text, "["), positionOf(text, "{")].sort());
  });

  it("an unclosed quote: where the quote opens", () => {
    const text = 'config:\n  k3s-platform:environment: "dev\n  k3s-platform:x: 1\n';
    assert.deepEqual(at(errorFor(text)), [positionOf(text, '"')]);
  });

  it("a misindented key: at the key, not column 1", () => {
    const text = "config:\n  k3s-platform:k3s:\n    version: v1.31.4+k3s1\n   channel: stable\n";
    const message = errorFor(text);
    assert.deepEqual(at(message), [positionOf(text, "channel")]);
    assert.notEqual(positionOf(text, "channel").split(":")[1], "1");
  });

  it("a duplicate key: at the second one (already right in the library; kept)", () => {
    const text = "config:\n  k3s-platform:environment: dev\n  k3s-platform:environment: prod\n";
    assert.deepEqual(at(errorFor(text)), [positionOf(text, "k3s-platform:environment", 2)]);
  });
});

describe("config errors in one round (checkStackFile: the program and render)", () => {
  const withSchemaErrorAndExternalDatastore = () => {
    const raw = structuredClone(sampleRaw("dev")) as unknown as Record<string, unknown> & { k3s: Record<string, unknown>; nodes: Array<Record<string, unknown>> };
    raw.nodes[1]!.role = "worker";
    raw.k3s.datastore = { type: "external" };
    return raw;
  };
  const prefixed = (raw: Record<string, unknown>) => Object.fromEntries(Object.entries(raw).map(([k, v]) => [`k3s-platform:${k}`, v]));

  it("a schema error, a missing secret and a plaintext secret: all three at once", () => {
    const file = splitStackConfig({ ...prefixed(withSchemaErrorAndExternalDatastore()), "k3s-platform:agentToken": "plain" });
    const result = checkStackFile(file);
    assert.equal(result.ok, false);
    const paths = result.ok ? [] : result.issues.map((i) => i.path);
    assert.ok(paths.includes("k3s-platform:nodes[1] (dev-agent-1).role"), paths.join("\n"));
    assert.ok(paths.includes("k3s-platform:datastoreEndpoint"), paths.join("\n"));
    assert.ok(paths.includes("k3s-platform:agentToken"), paths.join("\n"));
  });

  it("the secret is not asked for when it is set, nor when the (refused) config does not need it", () => {
    const set = checkStackFile(splitStackConfig({ ...prefixed(withSchemaErrorAndExternalDatastore()), "k3s-platform:datastoreEndpoint": { secure: "v1:AAAA" } }));
    assert.ok(!set.ok && !set.issues.some((i) => i.path === "k3s-platform:datastoreEndpoint"));
    const etcd = withSchemaErrorAndExternalDatastore();
    delete etcd.k3s.datastore;
    const notNeeded = checkStackFile(splitStackConfig(prefixed(etcd)));
    assert.ok(!notNeeded.ok && notNeeded.issues.every((i) => i.path !== "k3s-platform:datastoreEndpoint"));
  });
});
