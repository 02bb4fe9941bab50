import { z } from "zod";
import { canonicalCidr, canonicalIp, ipFamily, isCanonicalCidr, isCanonicalIp, isDnsName, isIpv4MappedIpv6, isNetworkCidr, networkOf } from "../net";
import { singleLine } from "../single-line";

/** Value formats shared by every section: CIDRs, addresses, label keys/values, taints, durations, flag values. */

export const PROJECT = "k3s-platform";

// ---------------------------------------------------------------- primitives

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
export const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

const CIDR_FORM = "not a CIDR in canonical form (expected e.g. 10.42.0.0/16 or 2001:db8:42::/56)";
const IP_FORM = "not an IP address in canonical form (e.g. 192.0.2.10 or 2001:db8::1; no octal, hex or single-number forms)";
const MAPPED = "an IPv4-mapped IPv6 address (::ffff:a.b.c.d): write the IPv4 address itself (Kubernetes refuses the mapped form)";

/** A CIDR, handed on in canonical text (RFC 5952 for IPv6: `2001:DB8::/32` → `2001:db8::/32`). */
export const cidr = z
  .string()
  .refine(isCanonicalCidr, { message: CIDR_FORM })
  .refine((v) => !isIpv4MappedIpv6(v), { message: MAPPED })
  .transform(canonicalCidr);

/**
 * One value per IP family, as K3s' dual-stack flags take them (docs.k3s.io, Networking → Basic
 * Network Options, "Dual-stack (IPv4 + IPv6) Networking"): a string (one family, today's
 * single-stack form) or a list of one or two, at most one IPv4 and one IPv6; the first is the
 * primary family. Output: the list, each entry in canonical text (config.yaml joins it with
 * commas). A comma-joined string is refused with a hint, so every entry has its own path.
 */
function perFamily(check: (v: string) => boolean, form: string, canonical: (v: string) => string, what: string, example: string, network = false) {
  return z
    .union([z.string(), z.array(z.string())], { error: `one ${what} or a list of one or two (one per IP family), e.g. [${example}]` })
    .superRefine((value, ctx) => {
      const single = typeof value === "string";
      const list = single ? [value] : value;
      const at = (i: number) => (single ? [] : [i]);
      if (single && value.includes(",")) {
        ctx.addIssue({ code: "custom", message: `write one ${what} per IP family as a YAML list, e.g. [${example}], not comma-joined` });
        return;
      }
      if (list.length < 1 || list.length > 2) {
        ctx.addIssue({ code: "custom", message: `one or two ${what}s (one per IP family), not ${list.length}` });
        return;
      }
      let ok = true;
      list.forEach((v, i) => {
        if (!check(v)) ctx.addIssue({ code: "custom", path: at(i), message: form });
        else if (isIpv4MappedIpv6(v)) ctx.addIssue({ code: "custom", path: at(i), message: MAPPED });
        // Host bits would be masked by K3s but kept by us: ufw prints the network address, so the
        // firewall rule would never match its own status line (a change on every run).
        else if (network && !isNetworkCidr(v)) ctx.addIssue({ code: "custom", path: at(i), message: `host bits set: use the network address ${networkOf(v)}` });
        else return;
        ok = false;
      });
      if (ok && list.length === 2 && ipFamily(list[0]!) === ipFamily(list[1]!)) {
        const family = ipFamily(list[0]!) === "ipv4" ? "IPv4" : "IPv6";
        ctx.addIssue({ code: "custom", path: [1], message: `${list[0]} and ${list[1]} are both ${family}: a dual-stack value is one IPv4 and one IPv6 ${what}` });
      }
    })
    .transform((value) => (typeof value === "string" ? [value] : value).map(canonical));
}

/** `clusterCidr` / `serviceCidr`: one CIDR, or one IPv4 and one IPv6 CIDR (dual-stack). */
export const cidrList = perFamily(isCanonicalCidr, CIDR_FORM, canonicalCidr, "CIDR", "10.42.0.0/16, 2001:db8:42::/56", true);
/** `clusterDns`, `nodes[].nodeIp`, `nodes[].externalIp`: one address, or one IPv4 and one IPv6 address. */
export const ipList = perFamily(isCanonicalIp, IP_FORM, canonicalIp, "address", "192.0.2.10, 2001:db8::10");
export const ipAddress = z
  .string()
  .refine(isCanonicalIp, { message: IP_FORM })
  .refine((v) => !isIpv4MappedIpv6(v), { message: MAPPED });
/**
 * A firewall source (k3s.firewall.apiServerSources): an address or a network CIDR, handed on in the
 * text ufw prints it in (canonicalIp; a /32 or /128 as the bare address; no host bits), so the
 * rule's status line matches on the next run.
 */
export const firewallSource = singleLine(z.string())
  .refine((v) => isCanonicalCidr(v) || isCanonicalIp(v), { message: "not a CIDR or IP address in canonical form" })
  .refine((v) => !isIpv4MappedIpv6(v), { message: MAPPED })
  .refine((v) => !v.includes("/") || isNetworkCidr(v) || /\/(32|128)$/.test(v), { message: "host bits set: use the network address (e.g. 192.0.2.0/24)" })
  .transform((v) => {
    if (!v.includes("/")) return canonicalIp(v);
    const c = canonicalCidr(v);
    const [addr, bits] = c.split("/");
    return Number(bits) === (ipFamily(c) === "ipv6" ? 128 : 32) ? addr! : c;
  });

/**
 * A network CIDR (`k3s.nodeNetworks`): canonical text, no host bits (ufw and firewalld print the
 * network address, so a rule with host bits would never match its own status line).
 */
export const networkCidr = singleLine(z.string())
  .refine(isCanonicalCidr, { message: CIDR_FORM })
  .refine((v) => !isIpv4MappedIpv6(v), { message: MAPPED })
  .refine((v) => !isCanonicalCidr(v) || isNetworkCidr(v), { message: "host bits set: use the network address (e.g. 192.0.2.0/24)" })
  .transform(canonicalCidr);

/** An IP address in canonical form or an RFC 1123 DNS name (see net.ts). */
export const hostAddress = singleLine()
  .min(1)
  .refine((v) => isCanonicalIp(v) || isDnsName(v), {
    message: "not a canonical IP address or an RFC 1123 DNS name (octal, hex and single-number addresses are refused)",
  })
  // `::ffff:10.0.0.5` is 10.0.0.5 to curl and Go: a second spelling of a host (the duplicate check
  // compares text), and one an IPv6 firewall rule never matches (the traffic arrives as IPv4).
  .refine((v) => !isCanonicalIp(v) || !isIpv4MappedIpv6(v), { message: MAPPED });
export const absolutePath = singleLine(z.string()).regex(/^\/[^\0]*$/, "must be an absolute path");
/** A container image reference: [registry[:port]/]path[:tag][@sha256:digest]. */
export const imageRef = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?\/)?[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/,
    "not a container image reference (registry/path:tag or @sha256:digest)",
  );
export const duration = z.string().regex(DURATION, "not a duration (expected e.g. 40s, 5m, 1h30m)");
export const port = z.number().int().min(1).max(65535);

/** A Kubernetes label key: optional DNS-subdomain prefix, `/`, and a name of at most 63 chars. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value === "" || (value.length <= 63 && LABEL_NAME.test(value));
}

export const labelMap = z.record(
  z.string().refine(isLabelKey, { message: "not a valid label key" }),
  z.string().refine(isLabelValue, { message: "not a valid label value (≤63 chars, alphanumeric, -_.)" }),
);

/** K3s `node-taint` syntax: key[=value]:Effect. */
export const TAINT = /^([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)(=([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)?:(NoSchedule|PreferNoSchedule|NoExecute)$/;
export const taint = z
  .string()
  .regex(TAINT, "taint must be key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
  .refine((t) => isLabelKey(t.split(/[=:]/)[0]), { message: "taint key is not a valid label key" });

export const SSH_HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/;
export const sshHostKey = z
  .string()
  .regex(SSH_HOST_KEY, "host key must be an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA…'");

/** A flag value as it appears in config.yaml. */
export const flagValue = z.union([singleLine(), z.number(), z.boolean(), z.array(singleLine())]);
export type FlagValue = z.infer<typeof flagValue>;
