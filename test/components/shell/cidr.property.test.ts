import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { cidrContains, isCidr, isIp, isIpv4MappedIpv6 } from "../../../components/config/net";
import { CIDR_FUNCTIONS } from "../../../components/shell/cidr";

/**
 * The hosts' cidr_contains (components/shell/cidr.ts: apply's NO_PROXY carry-over, os-prep's
 * firewall clean-up) against config/net.ts cidrContains (ipaddr.js), on generated addresses of
 * both families in every spelling ipaddr.js reads (compressed, full, upper case), one bash run
 * for the whole batch.
 */
function hostAnswers(cases: ReadonlyArray<[string, string]>): boolean[] {
  const script = `${CIDR_FUNCTIONS.text}
while IFS=' ' read -r c a; do
  if cidr_contains "$c" "$a"; then echo 1; else echo 0; fi
done`;
  const r = spawnSync("bash", ["-c", script], { input: cases.map(([c, a]) => `${c} ${a}\n`).join(""), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean).map((l) => l === "1");
}

const hextet = fc.integer({ min: 0, max: 0xffff });
/** An IPv6 address in a random spelling: full, zero-padded, upper case, or with one run of zeros as "::". */
const ipv6 = fc
  .tuple(fc.array(hextet, { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8 }), fc.constantFrom("plain", "padded", "upper"), fc.integer({ min: 0, max: 6 }))
  .map(([groups, at, zeros, style, sharedPrefix]) => {
    // Often share a prefix with 2001:db8:: so containment is sometimes true.
    const g = groups.map((v, i) => (i < sharedPrefix ? [0x2001, 0xdb8, 0, 0, 0, 0][i]! : v));
    for (let i = at; i < Math.min(8, at + zeros); i++) g[i] = 0;
    const text = g.map((v) => (style === "padded" ? v.toString(16).padStart(4, "0") : v.toString(16)));
    let s = text.join(":");
    if (zeros >= 2) {
      const end = Math.min(8, at + zeros);
      s = `${text.slice(0, at).join(":")}::${text.slice(end).join(":")}`;
    }
    return style === "upper" ? s.toUpperCase() : s;
  });
const ipv4 = fc.tuple(fc.constantFrom(10, 192, 203), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map((o) => o.join("."));

describe("cidr_contains on a host agrees with config/net.ts cidrContains (issue 26)", () => {
  it("IPv4 and IPv6, every prefix length, any spelling", () => {
    const pair = fc.oneof(
      fc.tuple(ipv4, fc.integer({ min: 0, max: 32 }), ipv4),
      fc.tuple(ipv6, fc.integer({ min: 0, max: 128 }), ipv6),
      fc.tuple(ipv6, fc.integer({ min: 0, max: 128 }), ipv4),
    );
    // ipaddr.js reads an IPv4-mapped IPv6 address (::ffff:a.b.c.d, also in hex) as IPv4; the host
    // never covers one (the next test), so those are left to it.
    const cases = fc
      .sample(pair, 600)
      .filter(([net, , a]) => !isIpv4MappedIpv6(net) && !isIpv4MappedIpv6(a))
      .map(([net, bits, a]) => [`${net}/${bits}`, a] as [string, string]);
    cases.push(["2001:db8::/32", "2001:db8::20"], ["2001:db8::/32", "2001:DB9::20"], ["fd00::/8", "fdff::1"], ["::/0", "::1"], ["10.0.0.0/8", "10.255.255.255"]);
    for (const [c, a] of cases) assert.ok(isCidr(c) && isIp(a), `${c} ${a}`);
    const host = hostAnswers(cases);
    assert.equal(host.length, cases.length);
    const wrong = cases.filter(([c, a], i) => host[i] !== cidrContains(c, a));
    assert.deepEqual(wrong, []);
    assert.ok(host.some(Boolean) && host.some((v) => !v), "both answers occur");
  });

  it("anything that is not an address of the CIDR's family is never inside", () => {
    const odd = ["", "2001:db8:::1", ":2001:db8::1", "2001:db8::1:", "1:2:3:4:5:6:7:8:9", "::ffff:192.0.2.1", "2001:db8::g", "192.0.2.256", "192.0.2", "example.com", "*", "192.0.2.1/24"];
    const host = hostAnswers(odd.map((a) => [a.includes(".") && !a.includes(":") ? "192.0.2.0/24" : "2001:db8::/32", a || "-"] as [string, string]));
    assert.deepEqual(host, odd.map(() => false));
  });
});
