import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { referenceRows, renderConfigReference } from "../../../components/config/reference";
import { CONFIG_KEYS, KUBE_VIP_IMAGE, PACKAGED_COMPONENTS, SECRET_KEYS, SNAPSHOTTERS, stackSchema } from "../../../components/config/schema";
import { REPO } from "../../helpers/samples";

describe("configuration reference (docs/configuration-reference.md, issue 25)", () => {
  const rows = referenceRows();
  const page = renderConfigReference();
  const row = (key: string) => {
    const r = rows.find((x) => x.key === key);
    assert.ok(r, `no row ${key}`);
    return r;
  };

  it("the committed page is the schema as it is (npm run docs:config)", () => {
    assert.equal(readFileSync(join(REPO, "docs", "configuration-reference.md"), "utf8"), page);
  });

  it("every key has a description (the schema's .describe())", () => {
    const missing = rows.filter((r) => r.description === "").map((r) => r.key);
    assert.deepEqual(missing, []);
  });

  it("covers every top-level key, every secure key, and the nested keys of the schema's objects", () => {
    for (const k of CONFIG_KEYS) assert.ok(page.includes(`## \`${k}\``), k);
    for (const k of SECRET_KEYS) assert.ok(page.includes(`| \`${k}\` |`), k);
    for (const k of Object.keys(stackSchema.shape.ssh.unwrap().shape)) row(`ssh.${k}`);
    for (const key of ["k3s.airgap.binarySha256", "nodes[].ssh.hostKey", "tenants[].network.allows[].ports[].protocol", "dns.stubDomains.<name>.cache.prefetch.amount", "k3s.datastore.caFile", "k3s.exceptions[].reason"]) row(key);
  });

  it("types, allowed values and defaults come from the schema", () => {
    for (const s of SNAPSHOTTERS) assert.ok(row("k3s.snapshotter").type.includes(`\`${s}\``), s);
    for (const c of PACKAGED_COMPONENTS) assert.ok(row("k3s.disable").type.includes(`\`${c}\``), c);
    assert.equal(row("k3s.apiVip.image").default, `\`${KUBE_VIP_IMAGE}\``);
    assert.equal(row("ssh.port").type, "integer 1–65535");
    assert.equal(row("ssh.port").default, "`22`");
    assert.equal(row("nodes[].name").default, "required");
    assert.equal(row("k3s.version").default, "", "optional without a default");
    assert.equal(row("tenants").default, "`[]`", "a default under a transforming value is still shown");
    assert.equal(row("upgrade.drain.timeout").type, "integer 1–86400");
    assert.equal(row("k3s.etcdSnapshots.s3.timeout").type, "duration (`40s`, `5m`, `1h30m`)");
    // A union of objects (datastore: etcd | sqlite | external): its keys merged, the discriminator's values listed.
    assert.equal(row("k3s.datastore.type").type, "`etcd` or `sqlite` or `external`");
    assert.equal(row("k3s.datastore").default, '`{"type":"etcd"}`');
  });

  it("a pipe in a value cannot break the table: every row has the cells of its table", () => {
    const [keys, secure] = page.split("## Secure keys");
    const cells = (line: string) => line.replace(/\\\|/g, "").split("|").length - 2;
    const tableRows = (text: string) => text.split("\n").filter((l) => l.startsWith("| `"));
    assert.ok(tableRows(keys!).some((l) => l.includes("\\|")), "some type lists alternatives with an escaped pipe");
    for (const line of tableRows(keys!)) assert.equal(cells(line), 4, line);
    for (const line of tableRows(secure!)) assert.equal(cells(line), 2, line);
  });
});
