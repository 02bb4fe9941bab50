import * as ipaddr from "ipaddr.js";

/** Address math for validation, on ipaddr.js; IPv4 and IPv6 alike. */

/**
 * ipaddr.js reads every IPv6 text ending in a dotted quad after `::` as IPv4-mapped:
 * `::1.2.3.4` → `::ffff:102:304`. RFC 4291 §2.3 (and curl, Go's net.ParseIP, the WHATWG URL
 * parser, so K3s and the API server) read the dotted quad as the last 32 bits: `::102:304`.
 * Rewriting the tail as two hex groups first gives the address every consumer sees.
 */
function hexTail(value: string): string {
  const m = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(value);
  if (!m || !ipaddr.IPv4.isValidFourPartDecimal(`${m[2]}.${m[3]}.${m[4]}.${m[5]}`)) return value;
  const [a, b, c, d] = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number];
  return `${m[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/** ipaddr.parse with the RFC 4291 reading of an embedded dotted quad (see hexTail). */
export function parseIp(value: string): ipaddr.IPv4 | ipaddr.IPv6 {
  return ipaddr.parse(value.includes(":") ? hexTail(value) : value);
}

/** ipaddr.parseCIDR with the RFC 4291 reading of an embedded dotted quad (see hexTail). */
function parseCidr(value: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const slash = value.indexOf("/");
  const addr = slash < 0 ? value : value.slice(0, slash);
  return ipaddr.parseCIDR(addr.includes(":") ? hexTail(addr) + value.slice(addr.length) : value);
}

/** The network address of a CIDR (`10.42.1.7/16` → 10.42.0.0). */
function networkAddress(cidr: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const [addr, bits] = parseCidr(cidr);
  const text = `${addr.toString()}/${bits}`;
  return addr.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
}

export function isIp(value: string): boolean {
  return ipaddr.isValid(value) && !value.includes("/");
}

export function isCidr(value: string): boolean {
  return ipaddr.isValidCIDR(value);
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseRange(cidr: string): Range {
  // Normalise to the network address so "10.42.1.7/16" compares as "10.42.0.0/16".
  return [networkAddress(cidr), parseCidr(cidr)[1]];
}

function parseAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const addr = parseIp(ip);
  // "::ffff:10.0.0.1" is an IPv4 host for our purposes.
  return addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const range = parseRange(cidr);
  const addr = parseAddress(ip);
  return addr.kind() === range[0].kind() && addr.match(range);
}

/**
 * `(ip) => cidrs.some((c) => cidrContains(c, ip))` for many addresses against one list: the ranges
 * indexed once by family and prefix length (a Set of network addresses per length), so a lookup
 * masks the address once per distinct length instead of parsing every range (a list naming every
 * node, asked about every node, is otherwise quadratic). Same answers as the pairwise form
 * (property-tested); throws where cidrContains would, on an address that does not parse.
 */
export function cidrSetContains(cidrs: readonly string[]): (ip: string) => boolean {
  const byLength = new Map<string, { kind: string; length: number; networks: Set<string> }>();
  for (const cidr of cidrs) {
    const [network, length] = parseRange(cidr);
    const group = `${network.kind()}/${length}`;
    let entry = byLength.get(group);
    if (!entry) byLength.set(group, (entry = { kind: network.kind(), length, networks: new Set() }));
    entry.networks.add(maskedBits(network, length));
  }
  const groups = [...byLength.values()];
  return (ip) => {
    if (groups.length === 0) return false;
    const addr = parseAddress(ip);
    return groups.some((g) => g.kind === addr.kind() && g.networks.has(maskedBits(addr, g.length)));
  };
}

/** The first `length` bits of an address, as text: equal exactly when ipaddr's `match` on that length says so. */
function maskedBits(addr: ipaddr.IPv4 | ipaddr.IPv6, length: number): string {
  return addr
    .toByteArray()
    .map((byte, i) => {
      const bits = Math.max(0, Math.min(8, length - 8 * i));
      return byte & ((0xff << (8 - bits)) & 0xff);
    })
    .join(".");
}

export function cidrsOverlap(a: string, b: string): boolean {
  const ra = parseRange(a);
  const rb = parseRange(b);
  if (ra[0].kind() !== rb[0].kind()) return false;
  // Two prefixes overlap exactly when one contains the other's network address.
  return ra[0].match(rb) || rb[0].match(ra);
}

/**
 * Canonical address text only: IPv4 as four decimal parts without leading zeros (`192.0.2.10`,
 * not `0300.0.2.10`, `3221225994` or `0xc0.0.2.10`, which inet_aton and so ssh/curl also read
 * as 192.0.2.10 and which would defeat duplicate checks), IPv6 in any RFC 4291 text form.
 */
export function isCanonicalIp(value: string): boolean {
  if (ipaddr.IPv4.isValidFourPartDecimal(value)) return true;
  if (!value.includes(":") || !ipaddr.IPv6.isValid(value) || value.includes("%")) return false;
  // An embedded IPv4 tail in four plain decimal parts only (no `::01.2.3.4`), as for IPv4.
  const tail = /[^:]*$/.exec(value)![0];
  return !tail.includes(".") || ipaddr.IPv4.isValidFourPartDecimal(tail);
}

export function isCanonicalCidr(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash < 0) return false;
  const addr = value.slice(0, slash);
  return isCanonicalIp(addr) && ipaddr.isValidCIDR(value) && /^\d{1,3}$/.test(value.slice(slash + 1));
}

/** One spelling per address, for duplicate checks: `2001:DB8::1` and `2001:db8:0::1` are one host. */
export function normalizeHost(value: string): string {
  return isCanonicalIp(value) ? parseIp(value).toNormalizedString() : value.toLowerCase().replace(/\.$/, "");
}

/** What inet_aton would read as an IPv4 address: 1-4 dot-separated decimal, octal or hex numbers. */
const INET_ATON_LIKE = /^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}\.?$/i;
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * An RFC 1123 host name: labels of a-z, 0-9 and `-` (≤63 chars, no leading/trailing `-`), ≤253
 * chars in all, and not something a resolver would take for an address (an all-numeric last
 * label, RFC 3696 §2; `3221225994`; `0x…`).
 */
export function isDnsName(value: string): boolean {
  const v = value.toLowerCase();
  if (v.length === 0 || v.length > 253 || INET_ATON_LIKE.test(v)) return false;
  const labels = v.split(".");
  if (!labels.every((l) => LABEL.test(l))) return false;
  return !/^\d+$/.test(labels[labels.length - 1]!);
}

/** True when the CIDR's address is its network address (no host bits set). */
export function isNetworkCidr(cidr: string): boolean {
  if (!ipaddr.isValidCIDR(cidr)) return false;
  return networkAddress(cidr).toNormalizedString() === parseCidr(cidr)[0].toNormalizedString();
}

// ---------------------------------------------------------------- address families (dual-stack)

export type IpFamily = "ipv4" | "ipv6";

/** The family of an address or CIDR in canonical form (see isCanonicalIp / isCanonicalCidr). */
export function ipFamily(value: string): IpFamily {
  return value.includes(":") ? "ipv6" : "ipv4";
}

/**
 * One text per address: IPv4 as four decimal parts, IPv6 in RFC 5952 form (lower case, longest
 * zero run compressed: `2001:DB8:0::1` → `2001:db8::1`). What lands in config.yaml, firewall rules
 * and NetworkPolicy ipBlocks, so two spellings never become two rules. Input: isCanonicalIp.
 */
export function canonicalIp(value: string): string {
  return parseIp(value).toString();
}

/** `canonicalIp` of the address part and the prefix length without leading zeros. Input: isCanonicalCidr. */
export function canonicalCidr(value: string): string {
  const [addr, bits] = parseCidr(value);
  return `${addr.toString()}/${bits}`;
}

/** The prefix length of a CIDR (`10.42.0.0/16` → 16). */
export function prefixLength(cidr: string): number {
  return parseCidr(cidr)[1];
}

/** A single-host CIDR for an address: `/32` for IPv4, `/128` for IPv6 (NetworkPolicy ipBlock). */
export function hostCidr(ip: string): string {
  return `${canonicalIp(ip)}/${ipFamily(ip) === "ipv6" ? 128 : 32}`;
}

/** `::ffff:192.0.2.1` (RFC 4291 §2.5.5.2): an IPv4 host written as IPv6; Kubernetes refuses it in node and network fields. */
export function isIpv4MappedIpv6(value: string): boolean {
  const addr = value.split("/")[0]!;
  if (!ipaddr.IPv6.isValid(addr)) return false;
  return (parseIp(addr) as ipaddr.IPv6).isIPv4MappedAddress();
}

/** The `index`-th address of a CIDR's network (`10.43.0.0/16`, 10 → `10.43.0.10`), how K3s picks the default cluster DNS. */
export function indexedIp(cidr: string, index: number): string {
  const bytes = networkAddress(cidr).toByteArray();
  let carry = index;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = bytes[i]! + carry;
    bytes[i] = sum % 256;
    carry = Math.floor(sum / 256);
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** The network address of a CIDR in canonical text (`10.42.1.7/16` → `10.42.0.0/16`). */
export function networkOf(cidr: string): string {
  return `${networkAddress(cidr).toString()}/${parseCidr(cidr)[1]}`;
}

const NOT_A_NODE_ADDRESS: Record<string, string> = {
  unspecified: "the unspecified address (0.0.0.0/8, ::)",
  broadcast: "the broadcast address",
  multicast: "a multicast address",
  linkLocal: "a link-local address, which is not routed between nodes",
  loopback: "a loopback address: every node would reach itself there",
};

/**
 * Why an address cannot name a node to other nodes (join URL, node-ip, firewall rules, ipBlocks),
 * or undefined when it can. Ranges from ipaddr.js (RFC 6890 special-purpose registries).
 * `allowLoopback`: an SSH `host` may be a local tunnel (127.0.0.1 with a port) when nodeIp says
 * where the other nodes reach it. Input: isCanonicalIp.
 */
export function nodeAddressProblem(value: string, allowLoopback = false): string | undefined {
  // An IPv4-mapped address is its IPv4 address to curl and Go (net.IP.To4): `::ffff:127.0.0.1` is loopback.
  const range = parseAddress(value).range();
  if (allowLoopback && range === "loopback") return undefined;
  return NOT_A_NODE_ADDRESS[range];
}
