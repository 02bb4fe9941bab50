import * as ipaddr from "ipaddr.js";

/** Address math for validation, on ipaddr.js; IPv4 and IPv6 alike. */

export function isIp(value: string): boolean {
  return ipaddr.isValid(value) && !value.includes("/");
}

export function isCidr(value: string): boolean {
  return ipaddr.isValidCIDR(value);
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseRange(cidr: string): Range {
  const [addr, bits] = ipaddr.parseCIDR(cidr);
  // Normalise to the network address so "10.42.1.7/16" compares as "10.42.0.0/16".
  const network =
    addr.kind() === "ipv4"
      ? ipaddr.IPv4.networkAddressFromCIDR(cidr)
      : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  return [network, bits];
}

function parseAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const addr = ipaddr.parse(ip);
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
  return value.includes(":") && ipaddr.IPv6.isValid(value) && !value.includes("%");
}

export function isCanonicalCidr(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash < 0) return false;
  const addr = value.slice(0, slash);
  return isCanonicalIp(addr) && ipaddr.isValidCIDR(value) && /^\d{1,3}$/.test(value.slice(slash + 1));
}

/** One spelling per address, for duplicate checks: `2001:DB8::1` and `2001:db8:0::1` are one host. */
export function normalizeHost(value: string): string {
  return isCanonicalIp(value) ? ipaddr.parse(value).toNormalizedString() : value.toLowerCase().replace(/\.$/, "");
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
  const addr = ipaddr.parseCIDR(cidr)[0];
  const network = addr.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  return network.toNormalizedString() === addr.toNormalizedString();
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
  return ipaddr.parse(value).toString();
}

/** `canonicalIp` of the address part and the prefix length without leading zeros. Input: isCanonicalCidr. */
export function canonicalCidr(value: string): string {
  const [addr, bits] = ipaddr.parseCIDR(value);
  return `${addr.toString()}/${bits}`;
}

/** The prefix length of a CIDR (`10.42.0.0/16` → 16). */
export function prefixLength(cidr: string): number {
  return ipaddr.parseCIDR(cidr)[1];
}

/** A single-host CIDR for an address: `/32` for IPv4, `/128` for IPv6 (NetworkPolicy ipBlock). */
export function hostCidr(ip: string): string {
  return `${canonicalIp(ip)}/${ipFamily(ip) === "ipv6" ? 128 : 32}`;
}

/** `::ffff:192.0.2.1` (RFC 4291 §2.5.5.2): an IPv4 host written as IPv6; Kubernetes refuses it in node and network fields. */
export function isIpv4MappedIpv6(value: string): boolean {
  const addr = value.split("/")[0]!;
  if (!ipaddr.IPv6.isValid(addr)) return false;
  return ipaddr.IPv6.parse(addr).isIPv4MappedAddress();
}

/** The `index`-th address of a CIDR's network (`10.43.0.0/16`, 10 → `10.43.0.10`), how K3s picks the default cluster DNS. */
export function indexedIp(cidr: string, index: number): string {
  const [addr] = ipaddr.parseCIDR(cidr);
  const network = addr.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  const bytes = network.toByteArray();
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
  const [addr, bits] = ipaddr.parseCIDR(cidr);
  const network = addr.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(cidr) : ipaddr.IPv6.networkAddressFromCIDR(cidr);
  return `${network.toString()}/${bits}`;
}
