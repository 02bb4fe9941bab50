import { ALLOWED_COMPONENT_ARGS, ALLOWED_FLAGS, AllowlistContext, COMPONENT_ARG_RISKS, FLAG_RISKS } from "./allowlist";
import { COMPONENT_ARG_FLAGS, FLAG_BY_NAME, MANAGED_COMPONENT_ARGS } from "./flags";
import { prefixLength } from "./net";
import type { FlagValue, ResolvedConfig } from "./schema";
import { KUBE_VIP_IMAGE } from "./schema/addons";
import { AUTOSCALER_IMAGE, NODE_CACHE_IMAGE } from "./schema/dns";

/**
 * Free-form surfaces of a stack (issue 22): pass-through flags and `*-arg` entries, Traefik values,
 * the containerd template, registry and S3 transport settings, the firewall, images. Each is
 * checked against what is known safe (allowlist.ts for settings; for documents, the classes of
 * content that weaken a cluster), and every departure is a finding with a setting name that a
 * reasoned exception (`k3s.exceptions`) may name. The one predicate behind config validation
 * (prod refuses, dev and staging warn) and the policy pack (mandatory in prod, exceptions
 * reported on every preview). Pure.
 */

export type SurfacePath = ReadonlyArray<string | number>;

export interface SurfaceFinding {
  /** The name an exception uses: `etcd-expose-metrics`, `kube-apiserver-arg:token-auth-file`, `firewall.mode`, `traefik.values:host-path`. */
  setting: string;
  /** Config path under the project namespace, e.g. `["k3s", "extraServerConfig", "etcd-arg", 1]`. */
  path: SurfacePath;
  message: string;
  /**
   * False for what no reason can justify: a credential in a document (it belongs in a secure
   * config key or a Kubernetes Secret) and an unstated API server exposure. Refused in every
   * environment (credentials) or in prod (exposure), exception or not.
   */
  exceptable: boolean;
}

const EXCEPTION_HINT = (setting: string) => `; to keep it, add k3s.exceptions: [{ setting: "${setting}", reason: "…" }]`;

/** The message a refusal shows, with how to except it when it can be. */
export function findingMessage(f: SurfaceFinding): string {
  return f.exceptable ? `${f.message}${EXCEPTION_HINT(f.setting)}` : f.message;
}

// ---------------------------------------------------------------- pass-through flags and *-args

const valuesOf = (value: FlagValue): string[] => (Array.isArray(value) ? value.map(String) : [String(value)]);

function flagFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const context: AllowlistContext = { flannelBackend: config.k3s.flannelBackend };
  for (const map of ["extraServerConfig", "extraAgentConfig"] as const) {
    for (const [flag, value] of Object.entries(config.k3s[map])) {
      // Unknown, managed, secret, destructive and refused flags are refused everywhere (validate.ts).
      if (FLAG_BY_NAME.get(flag)?.class !== "pass-through") continue;
      const path = ["k3s", map, flag];
      if (COMPONENT_ARG_FLAGS.includes(flag)) {
        componentArgFindings(flag, value, path, context, out);
        continue;
      }
      const allowed = ALLOWED_FLAGS[flag];
      if (!allowed) {
        const risk = FLAG_RISKS[flag];
        out.push({ setting: flag, path, exceptable: true, message: `"${flag}" is not on the prod allowlist of flags known not to weaken the cluster${risk ? `: it ${risk}` : ""}` });
        continue;
      }
      for (const v of valuesOf(value)) {
        const problem = allowed.value?.(v, context);
        if (problem) out.push({ setting: flag, path, exceptable: true, message: `${flag}: ${v} ${problem}` });
      }
    }
  }
}

function componentArgFindings(flag: string, value: FlagValue, path: SurfacePath, context: AllowlistContext, out: SurfaceFinding[]): void {
  const entries = valuesOf(value);
  const allowedArgs = ALLOWED_COMPONENT_ARGS[flag] ?? {};
  const component = flag.replace(/-arg$/, "");
  entries.forEach((entry, j) => {
    const at = Array.isArray(value) ? [...path, j] : path;
    const eq = entry.indexOf("=");
    const name = (eq < 0 ? entry : entry.slice(0, eq)).replace(/^-+/, "");
    const argValue = eq < 0 ? "true" : entry.slice(eq + 1);
    if (MANAGED_COMPONENT_ARGS[flag]?.[name]) return; // refused with the typed key (validate.ts)
    const setting = `${flag}:${name}`;
    const allowed = allowedArgs[name];
    if (!allowed) {
      const risk = COMPONENT_ARG_RISKS[name];
      out.push({ setting, path: at, exceptable: true, message: `${component} ${name} is not on the prod allowlist of ${component} settings known not to weaken the cluster${risk ? `: ${risk}` : ""}` });
      return;
    }
    const problem = allowed.value?.(argValue, context);
    if (problem) out.push({ setting, path: at, exceptable: true, message: `${component} ${name}=${argValue}: ${problem}` });
  });
}

// ---------------------------------------------------------------- documents

/**
 * Keys whose literal value is a credential (compared without case, `-`, `_` or `.`). References to
 * a Secret (`secretName`, `existingSecret`, `...Ref`, `...File`) do not end in these words.
 */
const CREDENTIAL_KEY = /(password|passwd|passphrase|token|secret|apikey|secretkey|accesskey|privatekey|credential|credentials|clientsecret)$/;
const CREDENTIAL_EXACT = new Set(["auth", "authorization", "bearer", "identitytoken", "auths", "pass", "pwd"]);
const NOT_A_CREDENTIAL = /^(existing|use|create|enable|skip|mount)/;
/** Environment variable names that carry credentials by convention (DB_PASS, API_KEY, GITHUB_TOKEN…). */
const CREDENTIAL_ENV = /(^|_)(PASS|PASSWD|PASSWORD|PWD|TOKEN|SECRET|KEY|APIKEY|CREDENTIALS?|AUTH)$/i;

function isCredentialKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_.]/g, "");
  return CREDENTIAL_EXACT.has(k) || (CREDENTIAL_KEY.test(k) && !NOT_A_CREDENTIAL.test(k));
}
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
const URL_CREDENTIALS = /[a-z][a-z0-9+.-]*:\/\/[^\s/@:]+:[^\s/@]+@/i;
const isLiteral = (v: unknown): v is string | number => (typeof v === "string" && v.trim() !== "") || typeof v === "number";
/**
 * Whether a chart value turns a switch on. Helm templates test values for truth (`{{ if .Values.x }}`),
 * where any non-empty string, "false" included, is true: only false, null, 0 and "" are off.
 */
const switchedOn = (v: unknown): boolean => !(v === false || v === null || v === undefined || v === 0 || v === "");
const shown = (v: unknown) => (typeof v === "string" && v.toLowerCase() !== "true" ? `"${v}" (a non-empty string is true to Helm's if)` : String(v));

type DocumentKind = "credential" | "privileged" | "host-namespace" | "host-path" | "tls-verification-off" | "dashboard-without-auth" | "plain-http" | "runtime-binary" | "confinement-off";

const KIND_WHY: Record<DocumentKind, string> = {
  credential: "a credential in clear text lands in a staged file on every server and in Pulumi state: keep it in a Kubernetes Secret and reference it (valueFrom.secretKeyRef, existingSecret) or use the secure key registryAuth",
  privileged: "runs a privileged container (or one that may gain privileges)",
  "host-namespace": "shares the host's network, PID or IPC namespace",
  "host-path": "mounts a host path into a pod",
  "tls-verification-off": "turns TLS certificate verification off",
  "dashboard-without-auth": "exposes the Traefik dashboard without authentication",
  "plain-http": "pulls images over plain HTTP (no integrity, no confidentiality)",
  "runtime-binary": "runs a container runtime binary from outside the system directories",
  "confinement-off": "turns off the runtime's confinement (AppArmor)",
};

/** Capabilities Traefik's chart may add: binding ports below 1024 (its documented use). */
const ALLOWED_CAPABILITIES = new Set(["NET_BIND_SERVICE"]);

/**
 * Findings in `traefik.values` (a Helm values tree): walks every key, so the classes are found
 * wherever the chart puts them (deployment, podSecurityContext, additionalVolumes, env, …).
 */
export function traefikValuesFindings(values: Record<string, unknown>): Array<{ kind: DocumentKind; at: SurfacePath; detail: string }> {
  const out: Array<{ kind: DocumentKind; at: SurfacePath; detail: string }> = [];
  const walk = (node: unknown, at: SurfacePath): void => {
    if (typeof node === "string") {
      if (PRIVATE_KEY.test(node) || URL_CREDENTIALS.test(node)) out.push({ kind: "credential", at, detail: "a private key or URL credentials" });
      if (/--api\.insecure(=true)?$/i.test(node.trim())) out.push({ kind: "dashboard-without-auth", at, detail: node.trim() });
      if (/insecureskipverify(=true)?$/i.test(node.trim())) out.push({ kind: "tls-verification-off", at, detail: node.trim() });
      return;
    }
    if (Array.isArray(node)) return node.forEach((v, i) => walk(v, [...at, i]));
    if (!node || typeof node !== "object") return;
    const obj = node as Record<string, unknown>;
    // An env entry: { name: DB_PASSWORD, value: literal }; valueFrom is the way.
    if (typeof obj.name === "string" && "value" in obj && isLiteral(obj.value) && (isCredentialKey(obj.name) || CREDENTIAL_ENV.test(obj.name))) {
      out.push({ kind: "credential", at: [...at, "value"], detail: `env ${obj.name}` });
    }
    for (const [key, v] of Object.entries(obj)) {
      const here = [...at, key];
      const k = key.toLowerCase();
      if (isCredentialKey(key) && isLiteral(v)) out.push({ kind: "credential", at: here, detail: key });
      if ((k === "privileged" || k === "allowprivilegeescalation") && switchedOn(v)) out.push({ kind: "privileged", at: here, detail: `${key}: ${shown(v)}` });
      if (k === "runasuser" && v !== null && v !== "" && Number(v) === 0) out.push({ kind: "privileged", at: here, detail: "runAsUser: 0 (root)" });
      if (k === "runasnonroot" && (v === false || String(v).toLowerCase() === "false")) out.push({ kind: "privileged", at: here, detail: "runAsNonRoot: false" });
      if (k === "add" && at[at.length - 1] === "capabilities") {
        for (const cap of Array.isArray(v) ? v : [v]) {
          if (typeof cap !== "string" || !ALLOWED_CAPABILITIES.has(cap.toUpperCase().replace(/^CAP_/, ""))) out.push({ kind: "privileged", at: here, detail: `adds capability ${String(cap)}` });
        }
      }
      if (["hostnetwork", "hostpid", "hostipc", "hostusers"].includes(k) && (k === "hostusers" ? v === false : switchedOn(v))) out.push({ kind: "host-namespace", at: here, detail: `${key}: ${shown(v)}` });
      if (k === "hostpath" && switchedOn(v)) out.push({ kind: "host-path", at: here, detail: "hostPath volume" });
      if (k === "insecureskipverify" && switchedOn(v)) out.push({ kind: "tls-verification-off", at: here, detail: `${key}: ${shown(v)}` });
      if (k === "insecure" && switchedOn(v)) out.push({ kind: at[at.length - 1] === "api" ? "dashboard-without-auth" : "tls-verification-off", at: here, detail: `${key}: ${shown(v)}` });
      walk(v, here);
    }
  };
  walk(values, []);
  // The chart's dashboard IngressRoute (ingressRoute.dashboard) without an auth middleware, and
  // the `traefik` entrypoint (dashboard and API, no auth) exposed on the Service (ports.traefik.expose;
  // a boolean before chart v25, `{ default: true }` since).
  const child = (o: unknown, k: string) => (o && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>)[k] : undefined);
  const dashboard = child(child(values, "ingressRoute"), "dashboard");
  if (switchedOn(child(dashboard, "enabled")) && !(Array.isArray(child(dashboard, "middlewares")) && (child(dashboard, "middlewares") as unknown[]).length > 0)) {
    out.push({ kind: "dashboard-without-auth", at: ["ingressRoute", "dashboard", "enabled"], detail: "ingressRoute.dashboard without middlewares" });
  }
  const expose = child(child(child(values, "ports"), "traefik"), "expose");
  if (expose !== undefined && (typeof expose === "object" && expose !== null ? Object.values(expose).some(switchedOn) : switchedOn(expose))) {
    out.push({ kind: "dashboard-without-auth", at: ["ports", "traefik", "expose"], detail: "the traefik entrypoint (dashboard, API) exposed on the Service" });
  }
  return out;
}

/** Directories a containerd runtime binary may come from: the system's and K3s' own. */
const RUNTIME_DIRS = ["/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/", "/bin/", "/sbin/", "/usr/local/nvidia/toolkit/", "/var/lib/rancher/k3s/data/"];

/**
 * Findings in the containerd config template (Go template over TOML; containerd's CRI plugin
 * keys: registry `auth` / `password` / `identitytoken`, `insecure_skip_verify`, `plain-http`,
 * runtime `BinaryName`, `disable_apparmor`). Read line by line: template actions make it
 * unparseable as TOML until K3s renders it.
 */
export function containerdTemplateFindings(template: string): Array<{ kind: DocumentKind; line: number; detail: string }> {
  const out: Array<{ kind: DocumentKind; line: number; detail: string }> = [];
  template.split("\n").forEach((text, i) => {
    const line = i + 1;
    // A TOML key, bare, quoted or dotted (`registry.configs."r".auth.password = …`): the last part counts.
    const kv = /^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=\s*(.*?)\s*(#[^"']*)?$/.exec(text);
    if (/^\s*\[\[?.*\.\s*["']?auth["']?\s*\]\]?\s*$/.test(text)) out.push({ kind: "credential", line, detail: "a registry auth section" });
    if (PRIVATE_KEY.test(text) || URL_CREDENTIALS.test(text)) out.push({ kind: "credential", line, detail: "a private key or URL credentials" });
    if (!kv) return;
    const parts = [...kv[1]!.matchAll(/"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
    const key = parts[parts.length - 1]!;
    const raw = kv[2]!;
    const value = raw.replace(/^["']|["']$/g, "");
    const k = key.toLowerCase();
    if (isCredentialKey(key) && value !== "" && value !== "{}") out.push({ kind: "credential", line, detail: key });
    if (k === "insecure_skip_verify" && value === "true") out.push({ kind: "tls-verification-off", line, detail: key });
    if ((k === "plain-http" || k === "plain_http") && value === "true") out.push({ kind: "plain-http", line, detail: key });
    if (k === "endpoint" && /["']http:\/\//.test(raw)) out.push({ kind: "plain-http", line, detail: "an http:// endpoint" });
    if (k === "disable_apparmor" && value === "true") out.push({ kind: "confinement-off", line, detail: key });
    if (k === "binaryname" && !(value.startsWith("/") && !value.split("/").includes("..") && RUNTIME_DIRS.some((d) => value.startsWith(d)))) {
      out.push({ kind: "runtime-binary", line, detail: `BinaryName ${value}` });
    }
  });
  return out;
}

function documentFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const values = config.k3s.traefik?.values;
  if (values) {
    for (const f of traefikValuesFindings(values)) {
      out.push({
        setting: `traefik.values:${f.kind}`,
        path: ["k3s", "traefik", "values", ...f.at],
        exceptable: f.kind !== "credential",
        message: `${f.detail}: ${KIND_WHY[f.kind]}`,
      });
    }
  }
  const template = config.k3s.containerdTemplate;
  if (template) {
    for (const f of containerdTemplateFindings(template)) {
      out.push({
        setting: `containerdTemplate:${f.kind}`,
        path: ["k3s", "containerdTemplate"],
        exceptable: f.kind !== "credential",
        message: `line ${f.line}: ${f.detail}: ${KIND_WHY[f.kind]}`,
      });
    }
  }
}

// ---------------------------------------------------------------- transport, exposure, images

function transportFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const { registries, etcdSnapshots } = config.k3s;
  for (const [host, mirror] of Object.entries(registries?.mirrors ?? {})) {
    (mirror.endpoint ?? []).forEach((endpoint, i) => {
      if (endpoint.startsWith("http://")) {
        out.push({ setting: `registries.mirrors.${host}.endpoint`, path: ["k3s", "registries", "mirrors", host, "endpoint", i], exceptable: true, message: `${endpoint}: ${KIND_WHY["plain-http"]}` });
      }
    });
  }
  for (const [host, cfg] of Object.entries(registries?.configs ?? {})) {
    if (cfg.tls?.insecureSkipVerify) {
      out.push({ setting: `registries.configs.${host}.tls.insecureSkipVerify`, path: ["k3s", "registries", "configs", host, "tls", "insecureSkipVerify"], exceptable: true, message: `${KIND_WHY["tls-verification-off"]} for ${host}` });
    }
  }
  const s3 = etcdSnapshots?.s3;
  if (s3?.insecure) out.push({ setting: "etcdSnapshots.s3.insecure", path: ["k3s", "etcdSnapshots", "s3", "insecure"], exceptable: true, message: "sends etcd snapshots (every Secret of the cluster) over plain HTTP" });
  if (s3?.skipSslVerify) out.push({ setting: "etcdSnapshots.s3.skipSslVerify", path: ["k3s", "etcdSnapshots", "s3", "skipSslVerify"], exceptable: true, message: `sends etcd snapshots to an endpoint it does not verify: ${KIND_WHY["tls-verification-off"]}` });
}

function exposureFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const { firewall } = config.k3s;
  if (firewall.mode !== "open") {
    out.push({
      setting: "firewall.mode",
      path: ["k3s", "firewall", "mode"],
      exceptable: true,
      message: `mode ${firewall.mode} leaves etcd (2379-2380/tcp), the kubelet (10250/tcp) and flannel (8472/udp) reachable from any source; k3s-platform scopes them to the cluster's nodes in mode open`,
    });
    return;
  }
  if (firewall.apiServerSources.length === 0) {
    out.push({
      setting: "firewall.apiServerSources",
      path: ["k3s", "firewall", "apiServerSources"],
      exceptable: false,
      message: "state who may reach the API server (6443/tcp): list your admin, CI and load balancer networks (an explicit 0.0.0.0/0 needs an exception with a reason)",
    });
  }
  // Broader than a /8 (IPv4) or a /32 (IPv6, an ISP's allocation): a slice of the internet, not a
  // network the user runs; 0.0.0.0/1 + 128.0.0.0/1 is 0.0.0.0/0 written twice.
  firewall.apiServerSources.forEach((source, i) => {
    if (source.includes("/") && prefixLength(source) < (source.includes(":") ? 32 : 8)) {
      out.push({ setting: "firewall.apiServerSources", path: ["k3s", "firewall", "apiServerSources", i], exceptable: true, message: `${source} opens the API server to a large part of the internet` });
    }
  });
}

/** `registry/path` (no tag, no digest) and the registry host of an image reference. */
function imageParts(image: string): { registry: string; repository: string; digest: boolean } {
  const digest = /@sha256:[a-f0-9]{64}$/.test(image);
  const name = image.replace(/@sha256:[a-f0-9]{64}$/, "").replace(/:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "");
  const first = name.split("/")[0]!;
  const hasRegistry = name.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  return { registry: hasRegistry ? first : "docker.io", repository: hasRegistry ? name.slice(first.length + 1) : name, digest };
}

/**
 * An image the program deploys, changed from its default: in prod it must be the same repository,
 * from the default's registry or one the stack configures (k3s.registries), pinned by digest.
 */
function imageFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const trusted = new Set([...Object.keys(config.k3s.registries?.mirrors ?? {}), ...Object.keys(config.k3s.registries?.configs ?? {})]);
  const images: Array<[string, SurfacePath, string | undefined, string]> = [
    ["apiVip.image", ["k3s", "apiVip", "image"], config.k3s.apiVip?.image, KUBE_VIP_IMAGE],
    ["dns.nodeLocal.image", ["dns", "nodeLocal", "image"], config.dns.nodeLocal.enabled ? config.dns.nodeLocal.image : undefined, NODE_CACHE_IMAGE],
    ["dns.autoscaler.image", ["dns", "autoscaler", "image"], config.dns.autoscaler.enabled ? config.dns.autoscaler.image : undefined, AUTOSCALER_IMAGE],
  ];
  for (const [setting, path, image, fallback] of images) {
    if (!image || image === fallback) continue;
    const want = imageParts(fallback);
    const got = imageParts(image);
    const problems: string[] = [];
    if (got.repository !== want.repository) problems.push(`is not ${want.repository}`);
    if (got.registry !== want.registry && !trusted.has(got.registry)) problems.push(`comes from ${got.registry}, which is neither ${want.registry} nor a registry in k3s.registries`);
    if (!got.digest) problems.push("is not pinned by digest (@sha256:…)");
    if (problems.length) out.push({ setting, path, exceptable: true, message: `${image} ${problems.join(", ")}; it runs with host privileges on the nodes` });
  }
}

/** Every departure from what is known safe, in config order of the surfaces. */
export function surfaceFindings(config: ResolvedConfig): SurfaceFinding[] {
  const out: SurfaceFinding[] = [];
  flagFindings(config, out);
  documentFindings(config, out);
  transportFindings(config, out);
  exposureFindings(config, out);
  imageFindings(config, out);
  return out;
}

// ---------------------------------------------------------------- exceptions

export interface Exception {
  setting: string;
  reason: string;
}

export interface SurfaceVerdict {
  /** Findings no exception covers (refused in prod, warned elsewhere) or that none may cover. */
  refused: SurfaceFinding[];
  /** Findings an exception covers: reported on every preview by the pack. */
  excepted: Array<{ finding: SurfaceFinding; exception: Exception; index: number }>;
  /** Exceptions that name no finding of this stack, a setting that cannot be excepted, or a setting twice. */
  invalid: Array<{ exception: Exception; index: number; message: string }>;
}

/** Applies `k3s.exceptions` to the findings: the one verdict validation and the pack share. */
export function surfaceVerdict(config: Pick<ResolvedConfig, "k3s" | "dns">, findings = surfaceFindings(config as ResolvedConfig)): SurfaceVerdict {
  const exceptions: readonly Exception[] = config.k3s.exceptions ?? [];
  const verdict: SurfaceVerdict = { refused: [], excepted: [], invalid: [] };
  const firstIndex = new Map<string, number>();
  exceptions.forEach((exception, index) => {
    if (firstIndex.has(exception.setting)) verdict.invalid.push({ exception, index, message: `"${exception.setting}" is excepted twice (also k3s.exceptions[${firstIndex.get(exception.setting)}])` });
    else firstIndex.set(exception.setting, index);
  });
  const used = new Set<string>();
  for (const finding of findings) {
    const index = firstIndex.get(finding.setting);
    if (index === undefined || !finding.exceptable) verdict.refused.push(finding);
    else {
      verdict.excepted.push({ finding, exception: exceptions[index]!, index });
      used.add(finding.setting);
    }
  }
  const unexceptable = new Set(findings.filter((f) => !f.exceptable).map((f) => f.setting));
  for (const [setting, index] of firstIndex) {
    if (used.has(setting)) continue;
    const exception = exceptions[index]!;
    verdict.invalid.push({
      exception,
      index,
      message: unexceptable.has(setting)
        ? `"${setting}" cannot be excepted: ${setting.endsWith(":credential") ? "credentials come from secure config keys or Kubernetes Secrets" : "state the sources the API server is open to"}`
        : `no setting of this stack needs the exception "${setting}": remove it, so it cannot cover a later change unseen`,
    });
  }
  return verdict;
}
