import { strict as assert } from "node:assert";
import fc from "fast-check";
import { cidrContains, cidrSetContains, isCidr, isIp } from "../../../components/config/net";
import { noProxyCoverage, noProxyEntryCovers, uncoveredAddresses } from "../../../components/config/node-networks";
import type { NodeConfig } from "../../../components/config/schema";

/**
 * The indexed containment checks (issue 26: a noProxy naming every node, asked about every node,
 * was quadratic) give the pairwise answers: cidrSetContains is `cidrs.some(cidrContains)`,
 * noProxyCoverage is `entries.some(noProxyEntryCovers)`, for addresses of both families (IPv4-mapped
 * IPv6 and embedded dotted quads included) against ranges cut from those very addresses at every
 * prefix length, so hits and near misses are both common.
 */

const RUNS = Number(process.env.K3SP_PROPERTY_RUNS ?? 200);

/** Addresses of both families, some written with an IPv4 tail (`::ffff:a.b.c.d`, `::a.b.c.d`). */
const address: fc.Arbitrary<string> = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4().map((v4) => `::ffff:${v4}`),
  fc.ipV4().map((v4) => `64:ff9b::${v4}`),
  // Neighbours: the same /24 or /64, so ranges cut from one address often hold another.
  fc.tuple(fc.constantFrom("10.0.0.", "10.0.1.", "192.0.2."), fc.integer({ min: 0, max: 255 })).map(([p, i]) => `${p}${i}`),
  fc.tuple(fc.constantFrom("2001:db8::", "2001:db8:0:1::", "fd00::"), fc.integer({ min: 0, max: 0xffff })).map(([p, i]) => `${p}${i.toString(16)}`),
);

/** A range around an address: any prefix length of its family, host bits left set (as users write them). */
const rangeOf = (addr: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(addr, fc.integer({ min: 0, max: 128 })).map(([a, bits]) => `${a}/${a.includes(":") ? bits : bits % 33}`);

/** NO_PROXY entries as users write them: addresses, ranges, names, a wildcard, odd spellings. */
const entry: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: rangeOf(address) },
  { weight: 3, arbitrary: address },
  { weight: 1, arbitrary: fc.constantFrom("localhost", ".svc", ".cluster.local", "k3s.example.com", "10.0.0.1:6443", "10.0.0.0/08", "10.0.0.0/33", "") },
  { weight: 1, arbitrary: fc.constant("*") },
);

describe("indexed containment = pairwise containment (issue 26)", () => {
  it("cidrSetContains(cidrs)(ip) is cidrs.some((c) => cidrContains(c, ip))", () => {
    fc.assert(
      fc.property(fc.array(rangeOf(address).filter(isCidr), { maxLength: 12 }), fc.array(address, { minLength: 1, maxLength: 12 }), (cidrs, ips) => {
        const contains = cidrSetContains(cidrs);
        for (const ip of ips) assert.equal(contains(ip), cidrs.some((c) => cidrContains(c, ip)), `${ip} in [${cidrs.join(", ")}]`);
      }),
      { numRuns: RUNS },
    );
  });

  it("noProxyCoverage(entries)(address) is entries.some((e) => noProxyEntryCovers(e, address))", () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), fc.array(address, { minLength: 1, maxLength: 12 }), (entries, addresses) => {
        const covered = noProxyCoverage(entries);
        for (const a of addresses.filter(isIp)) assert.equal(covered(a), entries.some((e) => noProxyEntryCovers(e, a)), `${a} against [${entries.join(", ")}]`);
      }),
      { numRuns: RUNS },
    );
  });

  it("names the uncovered addresses in node order, whatever the list's size", () => {
    const nodes = Array.from({ length: 2000 }, (_, i) => ({ name: `n${i}`, host: `10.${i >> 8}.${i & 255}.1`, role: "agent" }) as NodeConfig);
    // Every node's own /32 but those of n7 and n1500, plus a range that holds n1999.
    const entries = [...nodes.filter((_, i) => i !== 7 && i !== 1500 && i !== 1999).map((n) => `${n.host}/32`), "10.7.0.0/16"];
    const missing = uncoveredAddresses(nodes, entries, (n) => [n.host]).map((u) => [u.index, u.address]);
    assert.deepEqual(missing, [[7, "10.0.7.1"], [1500, "10.5.220.1"]]);
  });
});
