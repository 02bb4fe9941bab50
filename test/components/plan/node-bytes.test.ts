import { strict as assert } from "node:assert";
import crypto = require("node:crypto");
import { prodWithNodes, withoutNodeNetworks } from "../../../bench/graph";
import { renderBundle } from "../../../components/node/bundle";
import { sha256 } from "../../../components/plan/hash";
import { planCluster } from "../../../components/plan/node";
import { loadStackConfig, parseStackConfig } from "../../../components/stack/load";

/**
 * A node's bytes (its bundle and its steps' triggers) are rendered and hashed on first read, when
 * the node's resources are written (issue 26). Without k3s.nodeNetworks every os-prep.sh lists
 * every node, so those bytes grow with the square of the node count; validation plans every node
 * but reads none of them, and so stays linear (`npm run bench` prints the ratios).
 */
describe("plan: a node's bytes are rendered on first read (issue 26)", () => {
  /** Bytes `fn` passes to sha256 (node:crypto's createHash, which components/plan/hash.ts calls). */
  function hashedBytes(fn: () => void): number {
    const createHash = crypto.createHash;
    let bytes = 0;
    crypto.createHash = ((...args: Parameters<typeof createHash>) => {
      const hash = createHash(...args);
      const update = hash.update.bind(hash);
      hash.update = ((data: string, encoding?: crypto.Encoding) => {
        bytes += Buffer.byteLength(data, encoding);
        return encoding ? update(data, encoding) : update(data);
      }) as typeof hash.update;
      return hash;
    }) as typeof createHash;
    try {
      fn();
    } finally {
      crypto.createHash = createHash;
    }
    return bytes;
  }

  it("validation hashes no node's bytes: what it hashes does not grow with the cluster", () => {
    const at = (nodes: number) => {
      const raw = withoutNodeNetworks(prodWithNodes(nodes));
      return hashedBytes(() => assert.ok(parseStackConfig(raw).ok));
    };
    assert.equal(at(40), at(20));
    // The probe sees the plan's hashing where it happens: on read, every node's bundle.
    const plan = planCluster(loadStackConfig(withoutNodeNetworks(prodWithNodes(20))));
    assert.ok(hashedBytes(() => plan.nodes.forEach((n) => n.bundle.sha256)) > 20 * 10_000);
  });

  it("the bundle, its checksum and the triggers are what the files give, the same on every read", () => {
    const config = loadStackConfig(withoutNodeNetworks(prodWithNodes(12)));
    for (const node of planCluster(config).nodes) {
      const files = node.files.map((f) => ({ ...f }));
      // A change to the plan's file list after planning reaches neither the bundle nor its checksum.
      node.files.push({ name: "late.sh", content: "echo late\n", mode: "0700" });
      const bundle = node.bundle.content;
      assert.equal(bundle, renderBundle(`node ${node.node.name} (${node.role})`, files));
      assert.equal(node.bundle.content, bundle);
      assert.equal(node.bundle.sha256, sha256(bundle));
      assert.equal(node.hashes.osPrep, node.hashes.osPrep);
      // Resource inputs and `npm run render` copy them as plain values (object spread, JSON).
      assert.deepEqual(Object.keys({ ...node.hashes }), ["osPrep", "apply"]);
      assert.deepEqual(JSON.parse(JSON.stringify(node.bundle)), { name: "bundle.sh", content: bundle, sha256: sha256(bundle) });
      assert.match(node.hashes.osPrep, /^[0-9a-f]{64}$/);
      assert.match(node.hashes.apply, /^[0-9a-f]{64}$/);
      assert.notEqual(node.hashes.osPrep, node.hashes.apply);
    }
  });
});
