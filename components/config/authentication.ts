import type { ResolvedConfig } from "./schema";

/**
 * Cross-field checks of `k3s.apiServer.authentication` (docs/oidc.md), each a reason the real
 * kube-apiserver refuses to start (k8s.io/apiserver pkg/apis/apiserver/validation
 * ValidateAuthenticationConfiguration; docs "Using Authentication Configuration"). Pure.
 */

type Report = (path: ReadonlyArray<string | number>, message: string) => void;

/** The issuer K3s gives its service account tokens (k3s-io/k3s pkg/daemons/control/server.go: `https://kubernetes.default.svc.` + cluster domain). */
export function serviceAccountIssuer(clusterDomain: string): string {
  return `https://kubernetes.default.svc.${clusterDomain}`;
}

/** `--oidc-*` entries among the pass-through kube-apiserver args: `[index, name]` (index undefined for a scalar value). */
export function oidcFlagEntries(config: Pick<ResolvedConfig, "k3s">): Array<{ index?: number; name: string }> {
  const value = config.k3s.extraServerConfig["kube-apiserver-arg"];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value.map(String) : [String(value)];
  return list.flatMap((entry, i) => {
    const name = entry.split("=")[0]!.replace(/^-+/, "");
    return name.startsWith("oidc-") ? [{ ...(Array.isArray(value) ? { index: i } : {}), name }] : [];
  });
}

export function authenticationChecks(config: ResolvedConfig, report: Report): void {
  const auth = config.k3s.apiServer.authentication;
  if (!auth) return;
  const base = ["k3s", "apiServer", "authentication", "jwt"] as const;
  const saIssuer = serviceAccountIssuer(config.k3s.clusterDomain);
  const seen = new Map<string, number>();
  auth.jwt.forEach((j, i) => {
    const url = j.issuer.url;
    const first = seen.get(url);
    if (first !== undefined) report([...base, i, "issuer", "url"], `${url} is also jwt[${first}]'s issuer: the API server needs each issuer URL once`);
    else seen.set(url, i);
    if (url === saIssuer || url === `${saIssuer}/`) {
      report([...base, i, "issuer", "url"], `${url} is the issuer of the cluster's service account tokens (K3s sets --service-account-issuer=${saIssuer}): the API server refuses it`);
    }
    const audiences = new Set<string>();
    j.issuer.audiences.forEach((a, k) => {
      if (audiences.has(a)) report([...base, i, "issuer", "audiences", k], `audience "${a}" is listed twice`);
      audiences.add(a);
    });
  });
  // kube-apiserver exits at start when both are set ("--authentication-config" release note, kubernetes/kubernetes#119142).
  const path = ["k3s", "extraServerConfig", "kube-apiserver-arg"];
  for (const { index, name } of oidcFlagEntries(config)) {
    report(index === undefined ? path : [...path, index], `--${name} cannot be set with k3s.apiServer.authentication: kube-apiserver refuses --oidc-* flags together with --authentication-config; move the provider into k3s.apiServer.authentication.jwt`);
  }
}
