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
