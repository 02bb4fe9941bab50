import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { renderNoProxyCarryOver } from "../../../components/k3s/install";
import { raw } from "../../../components/shell/sh";
import { sampleConfig } from "../../helpers/samples";

/**
 * apply.sh's NO_PROXY carry-over (k3s/install.ts renderNoProxyCarryOver) on generated clusters
 * whose node hosts are DNS names (issue 26): the list of before the node networks (each node's
 * host, then its node IPs, ahead of the user's entries) is equivalent to the planned one when the
 * planned networks cover every node IP, so the move restarts nothing; a dropped name that is not
 * right before a node address the planned value covers and no longer lists is a real change.
 * One bash run for the whole batch, the functions as apply.sh renders them.
 */
function hostEquivalent(cases: ReadonlyArray<[string[], string[]]>): boolean[] {
  const carry = renderNoProxyCarryOver(sampleConfig("staging"), sampleConfig("staging").nodes[0]!, raw("/dev/null")).shell.text;
  const functions = carry.slice(carry.indexOf("# applied_env"), carry.indexOf("# quoted V"));
  assert.match(functions, /no_proxy_equivalent\(\) \{/);
  const script = `${functions}
while IFS=' ' read -r applied planned; do
  if no_proxy_equivalent "$applied" "$planned"; then echo 1; else echo 0; fi
done`;
  const r = spawnSync("bash", ["-c", script], { input: cases.map(([a, p]) => `${a.join(",")} ${p.join(",")}\n`).join(""), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean).map((l) => l === "1");
}

const FIXED = ["127.0.0.0/8", "::1", "localhost", "10.42.0.0/16", "10.43.0.0/16", ".svc", ".cluster.local"];
const NETWORKS = ["10.20.0.0/16", "fd20::/64"];
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}[a-z0-9]$/);
const node = fc.record({
  name: fc.tuple(label, fc.constantFrom("corp.internal", "nodes.example.net", "lan")).map(([l, d]) => `${l}.${d}`),
  ipv4: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 254 })).map(([a, b]) => `10.20.${a}.${b}`),
  ipv6: fc.option(fc.integer({ min: 1, max: 0xffff }).map((h) => `fd20::${h.toString(16)}`), { nil: undefined }),
});
const extras = fc.subarray(["registry.example.com", ".corp.example.org", "192.0.2.0/24"]);

describe("NO_PROXY carry-over: DNS-name node hosts (issue 26)", () => {
  it("the list of every node's host and node IPs is equivalent to the networks covering them; a name not right before a covered, dropped node address is not", () => {
    const clusters = fc.sample(fc.tuple(fc.array(node, { minLength: 1, maxLength: 5 }), extras), 12);
    const cases: Array<[string[], string[], boolean]> = [];
    for (const [nodes, user] of clusters) {
      const planned = [...FIXED, ...NETWORKS, ...user];
      const legacyNodes = [...new Set(nodes.flatMap((n) => [n.name, n.ipv4, ...(n.ipv6 ? [n.ipv6] : [])]))];
      cases.push([[...FIXED, ...legacyNodes, ...planned.slice(FIXED.length)], planned, true]);
      // A host without a node IP (its name followed by the next node's name, or by the networks).
      cases.push([[...FIXED, "no-ip.corp.internal", ...legacyNodes, ...planned.slice(FIXED.length)], planned, false]);
      cases.push([[...FIXED, ...legacyNodes, "last-no-ip.corp.internal", ...planned.slice(FIXED.length)], planned, false]);
      // A name before an address no planned entry covers, or before one the user still lists.
      cases.push([[...FIXED, ...legacyNodes, "gone.corp.internal", "203.0.113.7", ...planned.slice(FIXED.length)], planned, false]);
      cases.push([[...FIXED, "mirror.corp.internal", nodes[0]!.ipv4, ...legacyNodes, ...planned.slice(FIXED.length)], [...planned, nodes[0]!.ipv4], false]);
    }
    const host = hostEquivalent(cases.map(([a, p]) => [a, p]));
    assert.equal(host.length, cases.length);
    const wrong = cases.filter(([, , want], i) => host[i] !== want).map(([a, p, want]) => ({ applied: a.join(","), planned: p.join(","), want }));
    assert.deepEqual(wrong, []);
  });
});
