import { strict as assert } from "node:assert";
import { kubeconfig } from "../../../components/operations/kubeconfig";
import { sample, stepsOf } from "./helpers";

describe("operation kubeconfig", () => {
  it("read from the first server after its apply, never logged, its output secret; after a certificate rotation too", () => {
    const [plain] = stepsOf(kubeconfig, sample("prod")).steps;
    assert.deepEqual(plain!.after, ["prod-server-1-apply"]);
    assert.equal(plain!.logging, "none");
    assert.deepEqual(plain!.secretOutputs, ["stdout", "stderr"]);
    const [rotated] = stepsOf(kubeconfig, sample("prod", (r) => (r.certificates = { rotation: 1 }))).steps;
    assert.ok(rotated!.after.includes("prod-server-1-apply") && rotated!.after.some((a) => a.endsWith("-rotate-certificates")));
    assert.ok((rotated!.triggers as string[]).includes("1"), "a rotation re-reads it");
  });
});
