import { stringify } from "yaml";
import type { NodeContext } from "../config/context";
import { AUTHENTICATION_CONFIG_V1, hasFeature, releaseOf } from "../config/flags";
import type { ResolvedConfig } from "../config/schema";
import { generatedHeader, PATHS } from "../k3s/paths";
import type { Contribution } from "../plan/contribution";

/**
 * The API server's structured AuthenticationConfiguration (docs/oidc.md), from
 * `k3s.apiServer.authentication`: a file on every server, passed to kube-apiserver as
 * `kube-apiserver-arg: authentication-config=<file>` (K3s passes `*-arg` entries through to the
 * component; docs.k3s.io/cli/server "Customized Flags for Kubernetes Processes"). Pure.
 */

export const AUTHENTICATION_CONFIG_FILE = "authentication-config.yaml";

/** The apiVersion the pinned release reads (flags.ts AUTHENTICATION_CONFIG_V1): v1 from Kubernetes v1.34, v1beta1 before. */
export function authenticationApiVersion(k3s: Pick<ResolvedConfig["k3s"], "version" | "channel">): string {
  const release = releaseOf(k3s);
  // A named channel (stable, latest) stands for a current release: v1.
  const v1 = !release || hasFeature(AUTHENTICATION_CONFIG_V1, release);
  return `apiserver.config.k8s.io/${v1 ? "v1" : "v1beta1"}`;
}

/** The AuthenticationConfiguration object; undefined without `k3s.apiServer.authentication`. */
export function authenticationConfiguration(config: Pick<ResolvedConfig, "k3s">): Record<string, unknown> | undefined {
  const auth = config.k3s.apiServer.authentication;
  if (!auth) return undefined;
  return {
    apiVersion: authenticationApiVersion(config.k3s),
    kind: "AuthenticationConfiguration",
    jwt: auth.jwt.map((j) => ({
      issuer: {
        url: j.issuer.url,
        audiences: j.issuer.audiences,
        // Required by the API server with more than one audience (the only policy it knows).
        ...(j.issuer.audiences.length > 1 ? { audienceMatchPolicy: "MatchAny" } : {}),
        ...(j.issuer.certificateAuthority ? { certificateAuthority: j.issuer.certificateAuthority } : {}),
      },
      claimMappings: {
        username: j.claimMappings.username,
        ...(j.claimMappings.groups ? { groups: j.claimMappings.groups } : {}),
        ...(j.claimMappings.uid ? { uid: j.claimMappings.uid } : {}),
      },
      ...(j.claimValidationRules?.length ? { claimValidationRules: j.claimValidationRules } : {}),
    })),
  };
}

export function renderAuthenticationConfig(config: Pick<ResolvedConfig, "k3s">, node: string): string | undefined {
  const object = authenticationConfiguration(config);
  return object ? generatedHeader("kube-apiserver AuthenticationConfiguration", node) + stringify(object) : undefined;
}

/**
 * Servers only: the file and its kube-apiserver-arg (appended to the typed ones). A change of the
 * file restarts the servers one at a time, like every file K3s' API server reads.
 */
export function contribute(ctx: NodeContext): Contribution {
  if (ctx.node.role !== "server") return {};
  const content = renderAuthenticationConfig(ctx.config, ctx.node.name);
  if (!content) return {};
  return {
    files: [{ name: AUTHENTICATION_CONFIG_FILE, content, target: PATHS.authenticationConfig, mode: "0600" }],
    flags: { "kube-apiserver-arg": [`authentication-config=${PATHS.authenticationConfig}`] },
  };
}
