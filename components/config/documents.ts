/**
 * Scanners for the free-form documents of a stack: `k3s.traefik.values` (Helm values of K3s'
 * packaged Traefik chart) and `k3s.containerdTemplate` (Go text/template over containerd's TOML).
 * Both are allowlists at their top: known-safe chart keys and containerd keys; under those, the
 * classes of content that weaken a cluster are found wherever they sit. Pure; surfaces.ts turns
 * what they find into findings with settings an exception may name.
 *
 * Sources: the Traefik Helm chart's values.yaml and templates (traefik/traefik-helm-chart:
 * templates/_podtemplate.tpl, extra-objects.yaml renders `extraObjects` through `tpl`), the
 * Kubernetes Pod security context reference, containerd's CRI plugin configuration
 * (docs/cri/config.md) and K3s' containerd template docs (docs.k3s.io advanced, "Configuring
 * containerd": K3s runs the template through Go text/template with `.NodeConfig` etc.).
 */

import { STRONG_CIPHERS } from "./flags";
import { prefixLength } from "./net";

/** Broader than a /8 (IPv4) or a /24 (IPv6): a slice of the internet (same bound as the API server's sources). */
export function broadCidr(cidr: string): boolean {
  try {
    return cidr.includes("/") && prefixLength(cidr) < (cidr.includes(":") ? 24 : 8);
  } catch {
    return false;
  }
}

export type DocumentKind =
  | "credential"
  | "privileged"
  | "host-namespace"
  | "host-path"
  | "host-port"
  | "tls-verification-off"
  | "weak-tls"
  | "dashboard-without-auth"
  | "tenant-isolation"
  | "trusted-everyone"
  | "credential-logging"
  | "plain-http"
  | "runtime-binary"
  | "confinement-off"
  | "template-action"
  | "off-list";

export const KIND_WHY: Record<DocumentKind, string> = {
  credential:
    "a credential in clear text lands in a staged file on every server and in Pulumi state: keep it in a Kubernetes Secret and reference it (valueFrom.secretKeyRef, existingSecret) or use the secure key registryAuth",
  privileged: "runs a container with more privilege than the chart's default (privileged, root, added capabilities, no seccomp)",
  "host-namespace": "shares the host's network, PID, IPC or user namespace",
  "host-path": "mounts a host path into a pod",
  "host-port": "binds a port on every node's own address, past the host firewall's service rules",
  "tls-verification-off": "turns TLS certificate verification off",
  "weak-tls": "allows TLS older than 1.2",
  "dashboard-without-auth": "exposes the Traefik dashboard or API without authentication",
  "tenant-isolation": "lets routes cross namespaces or reach external names (tenant isolation)",
  "trusted-everyone": "trusts forwarded headers or the PROXY protocol from a large part of the internet",
  "credential-logging": "writes request headers (Authorization, cookies) to the access log",
  "plain-http": "talks to a registry over plain HTTP (no integrity, no confidentiality)",
  "runtime-binary": "runs a container runtime binary from outside the system directories",
  "confinement-off": "turns off AppArmor, SELinux or seccomp confinement",
  "template-action": "is a template action: what it renders is not what was checked",
  "off-list": "is not on the allowlist of settings known safe",
};

export interface DocumentHit {
  kind: DocumentKind;
  /** Path inside the document (Traefik values) or `["line", n]` (containerd template). */
  at: ReadonlyArray<string | number>;
  detail: string;
}

// ---------------------------------------------------------------- credentials

/** Keys whose literal value is a credential (compared without case, `-`, `_` or `.`). */
const CREDENTIAL_KEY = /(password|passwd|passphrase|token|secret|apikey|secretkey|accesskey|privatekey|credential|credentials|clientsecret)$/;
const CREDENTIAL_EXACT = new Set(["auth", "authorization", "bearer", "identitytoken", "auths", "pass", "pwd"]);
/** References to a Secret or a file, not a credential: `existingSecret`, `caSecret`, `tlsSecret`, `secretName`. */
const REFERENCE_KEY = /^(existing|use|create|enable|skip|mount)|(ca|tls|cert)secret$/;
/** Environment variable names that carry credentials by convention (DB_PASS, API_KEY, GITHUB_TOKEN…). */
const CREDENTIAL_ENV = /(^|_)(PASS|PASSWD|PASSWORD|PWD|TOKEN|SECRET|KEY|APIKEY|CREDENTIALS?|AUTH)$/i;
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const URL_CREDENTIALS = /[a-z][a-z0-9+.-]*:\/\/[^\s/@:]+:[^\s/@]+@/i;
/** `--metrics.influxdb2.token=…`, `--hub.token=…`, `password=…` inside an argument string. */
const ARGUMENT_CREDENTIAL = /(password|passwd|token|secret|apikey|api-key|credentials?)=\S/i;

/** `Authorization: Bearer …` / `Basic …` as a header argument (curl -H, wget --header). */
const AUTHORIZATION_HEADER = /authorization:\s*(bearer|basic)\s+\S/i;

/**
 * Whether a command line argument (or a shell line passed as one) carries a credential in clear:
 * a private key, URL credentials, `password=…`-style assignments or an Authorization header.
 */
export function argumentCredential(text: string): boolean {
  return PRIVATE_KEY.test(text) || URL_CREDENTIALS.test(text) || ARGUMENT_CREDENTIAL.test(text) || AUTHORIZATION_HEADER.test(text);
}

/** `NAME=value` shell assignments and `env NAME=value` arguments; the value stops at shell punctuation. */
const ASSIGNMENT = /(?:^|[\s;&|(])([A-Za-z_][A-Za-z0-9_]*)=(['"]?)([^\s;&|'"]+)/g;
/** A credential header other than Authorization (`X-Api-Key: …`, `Private-Token: …`, `Cookie: …`). */
const CREDENTIAL_HEADER = /(?:^|[\s'"])(?:[\w-]*(?:api-?key|token|secret|password|auth)[\w-]*|cookie):[ \t]*([^\s'"]+)/gi;
/** curl's `-u user:password` (also `--user`, `--proxy-user`, `-U`) inside a shell line. */
const BASIC_AUTH_ARGUMENT = /(?:^|\s)(?:-u|-U|--user|--proxy-user)(?:\s+|=)(['"]?)[^\s:'"]+:([^\s'"]+)/g;
/** A value that names where the credential is, not the credential: a file or a shell expansion. */
const isReference = (value: string): boolean => value.startsWith("/") || value.startsWith("$") || value.startsWith("@");

/**
 * A hook's argument (docs/hooks.md) that carries a credential in clear: what argumentCredential
 * finds, and what a command line run by root adds to it: credential-named assignments
 * (`MYSQL_PWD=…`, `API_KEY=…`, `env GITHUB_TOKEN=…`), credential headers (`X-Api-Key: …`) and
 * basic-auth user:password arguments (curl `-u`). A file path or a `$VAR` expansion is a reference,
 * not a credential.
 */
export function hookArgumentCredential(text: string): boolean {
  if (argumentCredential(text)) return true;
  for (const m of text.matchAll(ASSIGNMENT)) if (CREDENTIAL_ENV.test(m[1]!) && !isReference(m[3]!)) return true;
  for (const m of text.matchAll(CREDENTIAL_HEADER)) if (!isReference(m[1]!)) return true;
  for (const m of text.matchAll(BASIC_AUTH_ARGUMENT)) if (!isReference(m[2]!)) return true;
  return false;
}

/** Flags whose next argument is `user:password` (curl -u/--user/--proxy-user, -U). */
export const BASIC_AUTH_FLAGS: ReadonlySet<string> = new Set(["-u", "-U", "--user", "--proxy-user"]);

export function isCredentialKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_.]/g, "");
  return CREDENTIAL_EXACT.has(k) || (CREDENTIAL_KEY.test(k) && !REFERENCE_KEY.test(k));
}

/** A literal that can be a credential: a non-empty string that is not a file path, or a number. */
const literalSecret = (v: unknown): boolean => (typeof v === "string" && v.trim() !== "" && !v.trim().startsWith("/")) || typeof v === "number";

/** Chart keys that hold a Secret's *name* (chart values.yaml), under the parent named. */
const SECRET_NAME_KEYS: ReadonlyArray<[parent: string, key: string]> = [
  ["basicAuth", "secret"], ["digestAuth", "secret"], ["forwardAuth", "secret"], ["hub", "token"],
];

// ---------------------------------------------------------------- Traefik values

/** Go's strconv.ParseBool true spellings (Traefik parses its flags with it). */
const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
/**
 * Whether a chart value turns a switch on. Helm templates test values for truth (`{{ if .Values.x }}`),
 * where any non-empty string, "false" included, is true: only false, null, 0 and "" are off.
 */
const switchedOn = (v: unknown): boolean => !(v === false || v === null || v === undefined || v === 0 || v === "");
const shown = (v: unknown) => (typeof v === "string" && v.toLowerCase() !== "true" ? `"${v}" (a non-empty string is true to Helm's if)` : JSON.stringify(v));

/**
 * Top-level chart keys known safe to set (sizing, placement, ports, TLS, logs and metrics,
 * routing providers), each still scanned below. Anything else (`extraObjects`, `image`,
 * `experimental`, `rbac`, `serviceAccount`, `hostNetwork`, `volumes`, `additionalArguments`, `env`,
 * `hub`, …) creates objects, changes what runs or its rights, or configures Traefik free-form.
 */
export const TRAEFIK_TOP_LEVEL: ReadonlySet<string> = new Set([
  "deployment", "ports", "service", "logs", "metrics", "resources", "tolerations", "nodeSelector", "affinity",
  "topologySpreadConstraints", "priorityClassName", "podDisruptionBudget", "autoscaling", "ingressClass", "ingressRoute",
  "tlsOptions", "tlsStore", "updateStrategy", "readinessProbe", "livenessProbe", "securityContext", "podSecurityContext",
  "providers", "certResolvers", "persistence",
]);
/** Under `providers`: the Kubernetes providers (scanned for cross-namespace options); not `file`, whose content is free-form routing. */
export const TRAEFIK_PROVIDERS: ReadonlySet<string> = new Set(["kubernetesCRD", "kubernetesIngress", "kubernetesGateway"]);
/** Under `service`: type, metadata and source ranges; not `spec` or `externalIPs` (traffic capture, CVE-2020-8554). */
export const TRAEFIK_SERVICE: ReadonlySet<string> = new Set(["enabled", "type", "annotations", "labels", "loadBalancerSourceRanges", "ipFamilyPolicy", "ipFamilies", "single", "loadBalancerClass"]);
/** Under `deployment`: sizing and metadata; not init or extra containers, volumes, lifecycle hooks or DNS. */
export const TRAEFIK_DEPLOYMENT: ReadonlySet<string> = new Set([
  "enabled", "kind", "replicas", "annotations", "labels", "podAnnotations", "podLabels", "terminationGracePeriodSeconds",
  "minReadySeconds", "revisionHistoryLimit",
]);

/** Findings in `traefik.values`: the two-level allowlist above, then the classes wherever they sit. */
export function traefikValuesFindings(values: Record<string, unknown>): DocumentHit[] {
  const out: DocumentHit[] = [];
  for (const key of Object.keys(values)) {
    if (!TRAEFIK_TOP_LEVEL.has(key)) out.push({ kind: "off-list", at: [key], detail: `${key}` });
  }
  for (const [section, allowed] of [["deployment", TRAEFIK_DEPLOYMENT], ["providers", TRAEFIK_PROVIDERS], ["service", TRAEFIK_SERVICE]] as const) {
    const node = values[section];
    if (node && typeof node === "object" && !Array.isArray(node)) {
      for (const key of Object.keys(node)) if (!allowed.has(key)) out.push({ kind: "off-list", at: [section, key], detail: `${section}.${key}` });
    }
  }

  const walk = (node: unknown, at: ReadonlyArray<string | number>): void => {
    const parent = at[at.length - 1];
    if (typeof node === "string") {
      const text = node.trim();
      if (text.includes("{{")) out.push({ kind: "template-action", at, detail: text.slice(0, 60) });
      if (PRIVATE_KEY.test(text) || URL_CREDENTIALS.test(text) || (text.startsWith("--") && ARGUMENT_CREDENTIAL.test(text))) out.push({ kind: "credential", at, detail: "a private key, URL credentials or a credential argument" });
      const flag = /^--?([a-z0-9.]+)(?:=(.*))?$/i.exec(text);
      if (flag) {
        const on = flag[2] === undefined || GO_TRUE.has(flag[2]);
        const name = flag[1]!.toLowerCase();
        if (on && name === "api.insecure") out.push({ kind: "dashboard-without-auth", at, detail: text });
        if (on && name.endsWith("insecureskipverify")) out.push({ kind: "tls-verification-off", at, detail: text });
        if (on && /allowcrossnamespace|allowexternalnameservices/.test(name)) out.push({ kind: "tenant-isolation", at, detail: text });
      }
      if (/unconfined|spc_t/i.test(text) && /apparmor|seccomp|selinux/i.test(String(parent ?? ""))) out.push({ kind: "confinement-off", at, detail: text });
      return;
    }
    if (Array.isArray(node)) return node.forEach((v, i) => walk(v, [...at, i]));
    if (!node || typeof node !== "object") return;
    const obj = node as Record<string, unknown>;
    // An env entry: { name: DB_PASSWORD, value: literal }; valueFrom is the way.
    if (typeof obj.name === "string" && "value" in obj && literalSecret(obj.value) && (isCredentialKey(obj.name) || CREDENTIAL_ENV.test(obj.name))) {
      out.push({ kind: "credential", at: [...at, "value"], detail: `env ${obj.name}` });
    }
    for (const [key, v] of Object.entries(obj)) {
      const here = [...at, key];
      const k = key.toLowerCase();
      if (key.includes("{{")) out.push({ kind: "template-action", at: here, detail: key });
      // Helm deletes a chart default the user sets to null (security contexts, capability drops…).
      if (v === null) out.push({ kind: "off-list", at: here, detail: `${key}: null (removes the chart's default)` });
      if ((k === "trustedips" || k === "sourcerange") && Array.isArray(v)) {
        for (const cidr of v) if (typeof cidr === "string" && broadCidr(cidr)) out.push({ kind: "trusted-everyone", at: here, detail: `${key} includes ${cidr}` });
      }
      if (k === "ciphersuites" && Array.isArray(v)) {
        const weak = v.filter((c) => !STRONG_CIPHERS.includes(String(c)));
        if (weak.length) out.push({ kind: "weak-tls", at: here, detail: `cipherSuites ${weak.join(", ")}` });
      }
      if (k === "defaultmode" && parent === "headers" && String(v).toLowerCase() !== "drop") out.push({ kind: "credential-logging", at: here, detail: `access log headers ${String(v)}` });
      const secretName = SECRET_NAME_KEYS.some(([p, n]) => p === parent && n === key);
      if (isCredentialKey(key) && literalSecret(v) && !secretName) out.push({ kind: "credential", at: here, detail: key });
      if ((k === "privileged" || k === "allowprivilegeescalation") && switchedOn(v)) out.push({ kind: "privileged", at: here, detail: `${key}: ${shown(v)}` });
      if ((k === "runasuser" || k === "runasgroup") && v !== null && v !== "" && Number(v) === 0) out.push({ kind: "privileged", at: here, detail: `${key}: 0 (root)` });
      if (k === "runasnonroot" && (v === false || String(v).toLowerCase() === "false")) out.push({ kind: "privileged", at: here, detail: "runAsNonRoot: false" });
      if (parent === "capabilities" && k === "add") {
        for (const cap of Array.isArray(v) ? v : [v]) {
          if (typeof cap !== "string" || cap.toUpperCase().replace(/^CAP_/, "") !== "NET_BIND_SERVICE") out.push({ kind: "privileged", at: here, detail: `adds capability ${String(cap)}` });
        }
      }
      // The chart drops ALL capabilities; a drop list without ALL keeps the runtime's defaults.
      if (parent === "capabilities" && k === "drop" && !(Array.isArray(v) && v.some((c) => String(c).toUpperCase() === "ALL"))) out.push({ kind: "privileged", at: here, detail: "capabilities.drop without ALL" });
      if ((k === "type" && (parent === "seccompProfile" || parent === "appArmorProfile") && String(v).toLowerCase() === "unconfined") || (k === "type" && parent === "seLinuxOptions" && String(v) === "spc_t")) {
        out.push({ kind: "confinement-off", at: here, detail: `${String(parent)}.type: ${String(v)}` });
      }
      if (["hostnetwork", "hostpid", "hostipc"].includes(k) && switchedOn(v)) out.push({ kind: "host-namespace", at: here, detail: `${key}: ${shown(v)}` });
      if (k === "hostusers" && (v === false || String(v).toLowerCase() === "false")) out.push({ kind: "host-namespace", at: here, detail: "hostUsers: false" });
      if (k === "hostpath" && switchedOn(v)) out.push({ kind: "host-path", at: here, detail: "hostPath volume" });
      if (k === "hostport" && switchedOn(v)) out.push({ kind: "host-port", at: here, detail: `hostPort: ${String(v)}` });
      if (k === "insecureskipverify" && switchedOn(v)) out.push({ kind: "tls-verification-off", at: here, detail: `${key}: ${shown(v)}` });
      if (k === "insecure" && switchedOn(v)) out.push({ kind: parent === "api" ? "dashboard-without-auth" : "tls-verification-off", at: here, detail: `${key}: ${shown(v)}` });
      if (k === "minversion" && /^VersionTLS1[01]$|^VersionSSL/i.test(String(v))) out.push({ kind: "weak-tls", at: here, detail: `${key}: ${String(v)}` });
      if ((k === "allowcrossnamespace" || k === "allowexternalnameservices") && switchedOn(v)) out.push({ kind: "tenant-isolation", at: here, detail: `${key}: ${shown(v)}` });
      walk(v, here);
    }
  };
  walk(values, []);

  // The chart's dashboard IngressRoute without an auth middleware (a basicAuth, digestAuth or
  // forwardAuth Middleware the stack defines elsewhere cannot be seen here: an exception names it),
  // and the `traefik` entrypoint (dashboard and API) exposed on the Service (ports.traefik.expose:
  // a boolean before chart v25, `{ default: true }` since).
  const child = (o: unknown, k: string) => (o && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>)[k] : undefined);
  // Some chart versions enable the dashboard route by default: any dashboard setting but an explicit
  // `enabled: false` counts.
  const dashboard = child(child(values, "ingressRoute"), "dashboard");
  if (dashboard !== undefined && child(dashboard, "enabled") !== false) out.push({ kind: "dashboard-without-auth", at: ["ingressRoute", "dashboard"], detail: "ingressRoute.dashboard" });
  for (const entrypoint of ["traefik", "metrics"]) {
    const expose = child(child(child(values, "ports"), entrypoint), "expose");
    if (expose !== undefined && (typeof expose === "object" && expose !== null ? Object.values(expose).some(switchedOn) : switchedOn(expose))) {
      out.push({ kind: "dashboard-without-auth", at: ["ports", entrypoint, "expose"], detail: `the ${entrypoint} entrypoint (dashboard, API or metrics) exposed on the Service` });
    }
  }
  return out;
}

// ---------------------------------------------------------------- containerd template

/** Directories a containerd runtime binary may come from: the system's and K3s' own. */
const RUNTIME_DIRS = ["/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/", "/bin/", "/sbin/", "/usr/local/nvidia/toolkit/", "/var/lib/rancher/k3s/data/"];
/**
 * containerd keys known safe to set (containerd docs/cri/config.md; last part of a dotted key):
 * runtimes and their options, cgroup driver, mirrors over https, CA files, pull tuning. Others
 * (`runtime_path`, `bin_dir`, `config_path`, NRI and stream processors, `enable_selinux`, …)
 * change what runs as root or what is trusted.
 */
export const CONTAINERD_KEYS: ReadonlySet<string> = new Set([
  "runtime_type", "BinaryName", "SystemdCgroup", "Root", "NoPivotRoot", "endpoint", "ca_file", "cert_file", "key_file",
  "enable_unprivileged_ports", "enable_unprivileged_icmp", "max_concurrent_downloads", "snapshotter", "default_runtime_name",
  "disable_snapshot_annotations", "discard_unpacked_layers", "max_container_log_line_size", "sandbox_image", "rewrite", "version",
  "privileged_without_host_devices", "device_ownership_from_security_context", "ConfigPath", "cni_conf_dir",
]);
const CONTAINERD_PATH_KEYS = new Set(["BinaryName", "ConfigPath", "ca_file", "cert_file", "key_file", "cni_conf_dir", "Root"]);
/** A runtime shim by name (containerd resolves io.containerd.<name>.v<n> to a binary on PATH); an absolute path runs anything. */
const RUNTIME_TYPE = /^io\.containerd\.[a-z0-9.]+\.v\d+$/;

/** The key/value pairs of a TOML line: `key = value`, dotted keys, and the pairs of an inline table. */
function tomlPairs(text: string): Array<{ key: string; raw: string }> {
  const m = /^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=\s*(.*?)\s*$/.exec(text);
  if (!m) return [];
  const parts = [...m[1]!.matchAll(/"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)/g)].map((p) => p[1] ?? p[2] ?? p[3]!);
  const raw = m[2]!.replace(/\s+#[^"']*$/, "");
  const pairs = [{ key: parts[parts.length - 1]!, raw }];
  if (raw.startsWith("{")) for (const inner of raw.slice(1, raw.lastIndexOf("}")).split(",")) pairs.push(...tomlPairs(inner));
  return pairs;
}

/**
 * Findings in the containerd config template, line by line (template actions make it unparseable
 * as TOML until K3s renders it, so actions other than the base template are findings themselves).
 */
export function containerdTemplateFindings(template: string): Array<DocumentHit & { table: string }> {
  const out: Array<DocumentHit & { table: string }> = [];
  let table = "";
  template.split("\n").forEach((original, i) => {
    const at = ["line", i + 1];
    // The safe action is replaced by nothing, so what follows it on the line is scanned as TOML.
    const text = original.replace(/\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}/g, "");
    const trimmed = text.trim();
    const header = /^\[\[?(.*?)\]\]?\s*(#.*)?$/.exec(trimmed);
    if (header) table = header[1]!.replace(/\s+/g, "");
    const push = (hit: DocumentHit) => out.push({ ...hit, table });
    const actions = trimmed.match(/\{\{.*?\}\}/g) ?? [];
    for (const action of actions) push({ kind: "template-action", at, detail: action });
    if (actions.length === 0 && trimmed.includes("{{")) push({ kind: "template-action", at, detail: trimmed.slice(0, 60) });
    if (PRIVATE_KEY.test(text) || URL_CREDENTIALS.test(text)) push({ kind: "credential", at, detail: "a private key or URL credentials" });
    // Any http:// URL in a string, whatever the key or layout (multi-line arrays, inline tables).
    if (/["']http:\/\//i.test(text)) push({ kind: "plain-http", at, detail: "an http:// URL" });
    if (trimmed === "" || trimmed.startsWith("#") || header || trimmed.includes("{{")) return;
    for (const { key, raw } of tomlPairs(text)) {
      const value = raw.replace(/^["']|["']$/g, "");
      const literal = value !== "" && value !== "{}" && !value.includes("{{");
      if (isCredentialKey(key)) {
        if (literal) push({ kind: "credential", at, detail: key });
        continue;
      }
      if (raw.startsWith("{")) continue; // an inline table: its pairs come next
      if (!CONTAINERD_KEYS.has(key)) {
        const wellKnown: Record<string, DocumentKind> = { insecure_skip_verify: "tls-verification-off", plain_http: "plain-http", "plain-http": "plain-http", disable_apparmor: "confinement-off", enable_selinux: "confinement-off" };
        push({ kind: wellKnown[key] ?? "off-list", at, detail: `${key} = ${raw}` });
        continue;
      }
      if (key === "runtime_type" && !RUNTIME_TYPE.test(value)) push({ kind: "runtime-binary", at, detail: `${key} = ${raw}` });
      if (CONTAINERD_PATH_KEYS.has(key) && literal) {
        // Not the K3s data directory at large: local-path volumes (storage/) are written by pods.
        const dirs = key === "BinaryName" ? RUNTIME_DIRS : ["/etc/", "/usr/", "/opt/", "/var/lib/rancher/k3s/agent/etc/", "/var/lib/rancher/k3s/data/"];
        if (!(value.startsWith("/") && !value.split("/").includes("..") && dirs.some((d) => value.startsWith(d)))) {
          push({ kind: key === "BinaryName" ? "runtime-binary" : "off-list", at, detail: `${key} = ${raw}` });
        }
      }
    }
  });
  return out;
}
