import { z } from "zod";
import { isCanonicalCidr, isCanonicalIp, isDnsName } from "../net";
import { singleLine } from "../single-line";

/** Value formats shared by every section: CIDRs, addresses, label keys/values, taints, durations, flag values. */

export const PROJECT = "k3s-platform";

// ---------------------------------------------------------------- primitives

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
export const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

export const cidr = z.string().refine(isCanonicalCidr, { message: "not a CIDR in canonical form (expected e.g. 10.42.0.0/16)" });
export const ipAddress = z
  .string()
  .refine(isCanonicalIp, { message: "not an IP address in canonical form (e.g. 192.0.2.10 or 2001:db8::1; no octal, hex or single-number forms)" });
/** An IP address in canonical form or an RFC 1123 DNS name (see net.ts). */
export const hostAddress = singleLine()
  .min(1)
  .refine((v) => isCanonicalIp(v) || isDnsName(v), {
    message: "not a canonical IP address or an RFC 1123 DNS name (octal, hex and single-number addresses are refused)",
  });
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
