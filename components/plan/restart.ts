import { createHmac } from "node:crypto";
import type { NodeSecrets } from "../config/secrets";
import { INSTALL_SCRIPT } from "../k3s/install";
import type { AgentBatch } from "../upgrade/render";
import { sha256 } from "./hash";
import { type ClusterPlan, type NodePlan, renderSecretsDocument } from "./node";

/**
 * sha256 of what apply.sh fingerprints before deciding to restart K3s (k3s/install.ts
 * renderApplyScript: every placed file K3s reads, the secret files' paths, install-k3s.sh): two
 * plans of a node with the same digest never restart its K3s for a placed file. The secret
 * files' content, which apply.sh fingerprints too, is secretInputsDigest's.
 */
export function restartDigest(plan: NodePlan): string {
  const read = plan.files.filter((f) => (f.target !== undefined && f.restart !== false) || f.name === INSTALL_SCRIPT);
  return sha256([...read.map((f) => `${f.target ?? f.name}\0${f.content}`), ...plan.secretFiles.map((s) => s.target)].join("\0"));
}

/** Each agent of a batch → its restart digest (what the batch steps compare with the one its Node records). */
export function batchInputs(plan: ClusterPlan, batch: AgentBatch): Map<string, string> {
  const byName = new Map(plan.nodes.map((n) => [n.node.name, n]));
  return new Map(batch.agents.flatMap((a) => (byName.has(a) ? [[a, restartDigest(byName.get(a)!)] as [string, string]] : [])));
}

/** Domain of the keys derived below: the same stack key signs the token's fingerprint (rotation/render.ts). */
const SECRET_INPUTS_DOMAIN = "k3s-platform secret inputs v1";

/**
 * The keyed digest of a node's secret files (issue 26): HMAC-SHA256 of what its `secrets` step
 * writes (renderSecretsDocument: every secret file, the content apply.sh fingerprints before it
 * decides to restart K3s), under a key derived from `key`, the stack's token salt (a
 * pulumi-random RandomPassword of 32 alphanumerics, ~190 bits, secret in state). A changed
 * registryAuth password, vpnAuthKey or token moves the digest of exactly the nodes that read
 * it; the digest reveals nothing of the secrets without the key (HMAC is a PRF: not even a
 * guessed password can be checked against it), so it may stand in plaintext in a script, a
 * trigger and a Node annotation. The derived key keeps it apart from the token's fingerprint,
 * which the same salt keys (rotation/render.ts tokenFingerprint).
 */
export function secretInputsDigest(plan: Pick<NodePlan, "secretFiles">, secrets: NodeSecrets, key: string): string {
  const derived = createHmac("sha256", key).update(SECRET_INPUTS_DOMAIN).digest();
  return createHmac("sha256", derived).update(renderSecretsDocument(plan, secrets)).digest("hex");
}

/** Every agent → secretInputsDigest (the batch steps' and the agents' preflight inputs). */
export function agentSecretInputs(plan: ClusterPlan, secrets: NodeSecrets, key: string): Record<string, string> {
  return Object.fromEntries(plan.nodes.filter((n) => n.node.role === "agent").map((n) => [n.node.name, secretInputsDigest(n, secrets, key)]));
}
