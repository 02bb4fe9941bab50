import { strict as assert } from "node:assert";
import { runOrderLines } from "../../tools/preview-lifecycle";
import type { PreviewStep } from "../../tools/preview-markdown";
import { previewMarkdown } from "../../tools/preview-markdown";

/** preview:md names the day-2 operations that run, in the order of the operations list (issue 23). */
describe("preview:md: the day-2 operations that run, in run order", () => {
  const urn = (name: string, parent = "k3s-platform:index:K3sCluster") => `urn:pulumi:prod::k3s-platform::${parent}$command:remote:Command::prod-${name}`;
  const cmd = (name: string, op: string, parent?: string): PreviewStep => ({ op, urn: urn(name, parent) });
  const enc = "k3s-platform:index:K3sCluster$k3s-platform:index:SecretsEncryption";

  it("groups steps by operation in the list's order (encryption before certificates, teardowns last), listed in any order", () => {
    const steps = [
      cmd("prod-agent-2-decommission-drain", "delete"),
      cmd("prod-server-1-rotate-certificates", "create"),
      cmd("prod-agent-2-decommission-uninstall", "delete"),
      cmd("encryption-reencrypt", "replace", enc),
      cmd("encryption-reencrypt-restart-prod-server-1", "replace", enc),
      cmd("token-rotate", "replace"),
      cmd("token-rotate", "create-replacement"),
      cmd("token-rotate", "delete-replaced"),
    ];
    assert.deepEqual(runOrderLines(steps, "prod"), ["day-2 steps in the order they run: token-rotation (1 step) → encryption (2 steps) → certificates (1 step) → decommission (2 steps)"]);
  });

  it("unchanged and updated steps, deletes that run nothing, node steps and other stacks' names: no line", () => {
    const steps = [
      cmd("token-rotate", "same"),
      cmd("agent-batch-1-drain", "update"),
      cmd("prod-agent-1-rebuild-forget", "delete"),
      cmd("prod-server-1-apply", "replace"),
      { op: "create", urn: "urn:pulumi:dev::k3s-platform::k3s-platform:index:K3sCluster$command:remote:Command::dev-token-rotate" },
    ];
    assert.deepEqual(runOrderLines(steps, "prod"), []);
  });

  it("shows in the Operations section of the Markdown", () => {
    const md = previewMarkdown({ steps: [cmd("agent-batch-1-drain", "replace")] }, { stack: "prod" });
    assert.match(md, /#### Operations\n\n- day-2 steps in the order they run: upgrade-batches \(1 step\)\n/);
  });
});
