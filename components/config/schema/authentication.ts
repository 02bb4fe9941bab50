import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { singleLine } from "../single-line";

/**
 * `k3s.apiServer.authentication`: OIDC (JWT) identity providers for the API server, written as the
 * structured AuthenticationConfiguration (apiserver.config.k8s.io; kubernetes.io/docs/reference/
 * access-authn-authz/authentication "Using Authentication Configuration"; KEP-3331) which K3s passes
 * to kube-apiserver as `kube-apiserver-arg: authentication-config=<file>` (docs/oidc.md). Field
 * names are the Kubernetes ones (JWTAuthenticator): `issuer`, `claimMappings`, `claimValidationRules`.
 */

/** PEM blocks of a text, in order. */
export function pemBlocks(text: string): Array<{ label: string; body: string }> {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g)].map((m) => ({ label: m[1]!, body: m[0] }));
}

/** Why a CA bundle is not one or more PEM certificates, or undefined when it is. */
export function caBundleProblem(text: string): string | undefined {
  const blocks = pemBlocks(text);
  if (blocks.length === 0) return "not PEM: expected one or more -----BEGIN CERTIFICATE----- blocks";
  const other = blocks.find((b) => b.label !== "CERTIFICATE");
  // A key here would land in state and on every server: refused whatever else is in the bundle.
  if (other) return `holds a ${other.label} block: only certificates belong here (a key must never reach the stack config)`;
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b.body);
    } catch (e) {
      return `certificate ${i + 1} does not parse: ${(e as Error).message}`;
    }
  }
  return undefined;
}

/** An issuer URL as the API server accepts it: https, a host, no user info, query or fragment. */
const issuerUrl = singleLine().refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.protocol === "https:" && u.hostname !== "" && !u.username && !u.password && !u.search && !u.hash && !v.includes("#") && !v.includes("?");
    } catch {
      return false;
    }
  },
  { message: "the issuer URL must be https://host[:port][/path] without user info, query or fragment (the API server refuses anything else)" },
);

/** A claim name and the prefix the API server puts before its value (`""`: none). */
const claimMapping = z.strictObject({
  claim: singleLine().min(1).describe("The token claim the value comes from."),
  prefix: singleLine(z.string().max(256)).refine((p) => !p.startsWith("system:"), { message: "a prefix must not start with system: (names under system: are Kubernetes' own)" }).describe("Required by the API server when `claim` is set; `\"\"` turns prefixing off."),
});

export const jwtAuthenticatorSchema = z.strictObject({
  issuer: z.strictObject({
    url: issuerUrl.describe("Must equal the token's `iss` claim; discovery is read from `<url>/.well-known/openid-configuration`."),
    audiences: z.array(singleLine().min(1)).min(1, "at least one audience (the client ID)").describe("The client ID(s) a token's `aud` must contain (one is enough; MatchAny is rendered for several)."),
    certificateAuthority: z.string().superRefine((v, ctx) => {
      const problem = caBundleProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }).optional().describe("PEM certificate(s) that verify the issuer's TLS; default: the host's trusted roots."),
  }).describe("The OIDC issuer."),
  claimMappings: z.strictObject({
    username: claimMapping.describe("The claim that names the user, and its prefix."),
    groups: claimMapping.optional().describe("The claim that lists the user's groups, and its prefix."),
    uid: z.strictObject({ claim: singleLine().min(1).describe("The claim that holds the user's unique ID.") }).optional().describe("The claim that holds the user's unique ID."),
  }).describe("How the token's claims become the Kubernetes user."),
  claimValidationRules: z.array(z.strictObject({ claim: singleLine().min(1).describe("The claim."), requiredValue: singleLine().describe("The value it must have.") })).optional().describe("Claims a token must carry with these values (e.g. `hd: example.com`)."),
});

export const apiServerAuthenticationSchema = z.strictObject({
  jwt: z.array(jwtAuthenticatorSchema).min(1).max(64, "the API server accepts at most 64 JWT authenticators").describe("JWT authenticators, one per OIDC provider (at most 64)."),
});
export type ApiServerAuthentication = z.output<typeof apiServerAuthenticationSchema>;
