import { strict as assert } from "node:assert";
import { clusterSteps } from "../../../components/operations";
import { renderOperations } from "../../../components/operations/render";
import { planCluster } from "../../../components/plan/node";
import { day2, sample } from "./helpers";

describe("operations: render (npm run render writes operations/)", () => {
  const facts = { baseline: {}, token: "<token>", tokenSalt: "<salt>", encryptionKeys: { secretbox: [{ name: "k", secret: "<key>" }] }, restoreToken: "" };

  it("plan.json lists every step in run order; each command step's script is a file", () => {
    const config = day2();
    const plan = planCluster(config);
    const files = renderOperations(config, plan, facts);
    const json = JSON.parse(files.get("operations/plan.json")!) as { steps: Array<{ name: string; order: number; script?: string }> };
    assert.deepEqual(json.steps.map((s) => s.name), clusterSteps(config, plan).map((s) => s.name));
    for (const s of json.steps) if (s.script) assert.ok(files.has(`operations/${s.script}`), s.script);
    assert.ok(json.steps.filter((s) => s.script).length >= json.steps.filter((s) => !/^d2-(server|agent)-\d$/.test(s.name)).length - 1, "only node steps and the kubeconfig have no script");
  });

  it("rebuild and certificates.rotation are visible: the output differs from the same config without them (issue 23)", () => {
    const render = (edit: Parameters<typeof sample>[1]) => {
      const config = sample("prod", edit);
      return renderOperations(config, planCluster(config), facts);
    };
    const plain = render(() => {});
    const rebuilt = render((r) => (r.nodes[3]!.rebuild = 1));
    const rotated = render((r) => (r.certificates = { rotation: 1 }));
    assert.ok(rebuilt.has("operations/rebuild/prod-agent-1-rebuild-forget.sh"));
    assert.ok(!plain.has("operations/rebuild/prod-agent-1-rebuild-forget.sh"));
    assert.ok([...rotated.keys()].some((k) => k.endsWith("-rotate-certificates.sh")));
    assert.notEqual(plain.get("operations/plan.md"), rotated.get("operations/plan.md"));
  });

  it("secrets only as the placeholders given", () => {
    const config = sample("prod");
    const files = renderOperations(config, planCluster(config), { ...facts, token: "<redacted token>" });
    assert.match(files.get("operations/token-rotation/token-rotate.sh")!, /<redacted token>/);
  });
});
