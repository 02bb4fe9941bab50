import { strict as assert } from "node:assert";
import { stringify } from "yaml";
import { needsK3sCrd, renderAllObjects } from "../components/kube/all";
import { KubeObject } from "../components/kube/objects";
import { ControlPlane, missingTools } from "./cluster/apiserver";
import { fixtureConfig } from "./helpers/samples";

/**
 * The dual-stack sample's Kubernetes objects (NetworkPolicies with IPv6 ipBlocks, NodeLocal DNS
 * with both cluster DNS addresses) on a real API server, as test:cluster (a) does for the
 * environment samples. Run: `npx mocha --no-config -r tsx/cjs --extension ts --timeout 600000
 * test/dualstack.cluster.ts` (needs what `npm run test:cluster` needs). Kept outside test/cluster
 * so that suite's owner can fold the fixture samples into its loop (samples.ts FIXTURE_SAMPLES).
 */
describe("dual-stack sample on a real API server", function () {
  this.timeout(600_000);
  let cp: ControlPlane;
  before(async function () {
    const missing = missingTools();
    if (missing) {
      console.log(`    SKIPPED: ${missing}`);
      this.skip();
    }
    cp = await new ControlPlane().up();
  });
  after(async () => cp?.stop());

  it("every rendered object is accepted (server-side apply, strict field validation), ipBlocks as rendered", () => {
    const toYaml = (objects: KubeObject[]) => objects.map((o) => stringify(o)).join("---\n");
    const objects = renderAllObjects(fixtureConfig("dualstack")).filter((o) => !needsK3sCrd(o));
    const v6 = objects.filter((o) => o.kind === "NetworkPolicy" && JSON.stringify(o).includes("/128"));
    assert.ok(v6.length >= 2, "IPv6 ipBlocks are in the set");
    const namespaces = objects.filter((o) => o.kind === "Namespace");
    const ns = cp.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=ds", "-f", "-"], toYaml(namespaces));
    assert.equal(ns.status, 0, ns.stderr);
    const rest = objects.filter((o) => o.kind !== "Namespace");
    const r = cp.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=ds", "-f", "-"], toYaml(rest));
    assert.equal(r.status, 0, `refused:\n${r.stderr}`);
    assert.equal(r.stdout.trim().split("\n").length, rest.length, r.stdout);
    // The API server stores the ipBlocks as rendered (canonical text is what it keeps).
    for (const policy of v6) {
      const got = cp.kubectl(["get", "networkpolicy", "-n", policy.metadata.namespace!, policy.metadata.name, "-o", "json"]);
      assert.equal(got.status, 0, got.stderr);
      const stored = (JSON.parse(got.stdout) as { spec: unknown }).spec;
      assert.deepEqual(JSON.parse(JSON.stringify(stored)), JSON.parse(JSON.stringify(policy.spec)));
    }
  });
});
