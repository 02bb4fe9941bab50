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
  "providers",
]);
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
  const deployment = values.deployment;
  if (deployment && typeof deployment === "object" && !Array.isArray(deployment)) {
    for (const key of Object.keys(deployment)) if (!TRAEFIK_DEPLOYMENT.has(key)) out.push({ kind: "off-list", at: ["deployment", key], detail: `deployment.${key}` });
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
  const dashboard = child(child(values, "ingressRoute"), "dashboard");
  if (switchedOn(child(dashboard, "enabled"))) out.push({ kind: "dashboard-without-auth", at: ["ingressRoute", "dashboard"], detail: "ingressRoute.dashboard enabled" });
  const expose = child(child(child(values, "ports"), "traefik"), "expose");
  if (expose !== undefined && (typeof expose === "object" && expose !== null ? Object.values(expose).some(switchedOn) : switchedOn(expose))) {
    out.push({ kind: "dashboard-without-auth", at: ["ports", "traefik", "expose"], detail: "the traefik entrypoint (dashboard, API) exposed on the Service" });
  }
  return out;
}

// ---------------------------------------------------------------- containerd template

/** Directories a containerd runtime binary may come from: the system's and K3s' own. */
const RUNTIME_DIRS = ["/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/", "/bin/", "/sbin/", "/usr/local/nvidia/toolkit/", "/var/lib/rancher/k3s/data/"];
/** The template actions known safe: K3s' base configuration (docs.k3s.io advanced, "Configuring containerd"). */
const SAFE_ACTION = /^\{\{-?\s*template\s+"base"\s+\.\s*-?\}\}$/;
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
  "privileged_without_host_devices", "pod_annotations", "container_annotations", "base_runtime_spec", "cni_conf_dir",
]);
const CONTAINERD_PATH_KEYS = new Set(["BinaryName", "ca_file", "cert_file", "key_file", "base_runtime_spec", "cni_conf_dir", "Root"]);

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
export function containerdTemplateFindings(template: string): DocumentHit[] {
  const out: DocumentHit[] = [];
  template.split("\n").forEach((text, i) => {
    const at = ["line", i + 1];
    const trimmed = text.trim();
    for (const action of trimmed.match(/\{\{.*?\}\}/g) ?? []) if (!SAFE_ACTION.test(action)) out.push({ kind: "template-action", at, detail: action });
    if (!trimmed.match(/\{\{.*?\}\}/g) && trimmed.includes("{{")) out.push({ kind: "template-action", at, detail: trimmed.slice(0, 60) });
    if (PRIVATE_KEY.test(text) || URL_CREDENTIALS.test(text)) out.push({ kind: "credential", at, detail: "a private key or URL credentials" });
    // Any http:// URL in a string, whatever the key or layout (multi-line arrays, inline tables).
    if (/["']http:\/\//i.test(text)) out.push({ kind: "plain-http", at, detail: "an http:// URL" });
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith("[") || trimmed.startsWith("{{")) return;
    for (const { key, raw } of tomlPairs(text)) {
      const value = raw.replace(/^["']|["']$/g, "");
      const literal = value !== "" && value !== "{}" && !value.includes("{{");
      if (isCredentialKey(key)) {
        if (literal) out.push({ kind: "credential", at, detail: key });
        continue;
      }
      if (raw.startsWith("{")) continue; // an inline table: its pairs come next
      if (!CONTAINERD_KEYS.has(key)) {
        const wellKnown: Record<string, DocumentKind> = { insecure_skip_verify: "tls-verification-off", plain_http: "plain-http", "plain-http": "plain-http", disable_apparmor: "confinement-off", enable_selinux: "confinement-off" };
        out.push({ kind: wellKnown[key] ?? "off-list", at, detail: `${key} = ${raw}` });
        continue;
      }
      if (key === "privileged_without_host_devices" && value !== "false") out.push({ kind: "privileged", at, detail: `${key} = ${raw}` });
      if (CONTAINERD_PATH_KEYS.has(key) && literal) {
        const dirs = key === "BinaryName" ? RUNTIME_DIRS : ["/etc/", "/usr/", "/opt/", "/var/lib/rancher/"];
        if (!(value.startsWith("/") && !value.split("/").includes("..") && dirs.some((d) => value.startsWith(d)))) {
          out.push({ kind: key === "BinaryName" ? "runtime-binary" : "off-list", at, detail: `${key} = ${raw}` });
        }
      }
    }
  });
  return out;
}
