import { createHash } from "node:crypto";
import { ALLOWED_COMPONENT_ARGS, ALLOWED_FLAGS, AllowlistContext, COMPONENT_ARG_RISKS, FLAG_RISKS } from "./allowlist";
import { BASIC_AUTH_FLAGS, broadCidr, containerdTemplateFindings, DocumentHit, hookArgumentCredential, isCredentialKey, KIND_WHY, traefikValuesFindings } from "./documents";
import { COMPONENT_ARG_FLAGS, FLAG_BY_NAME, MANAGED_COMPONENT_ARGS } from "./flags";
import type { FlagValue, ResolvedConfig } from "./schema";
import { KUBE_VIP_IMAGE } from "./schema/addons";
import { AUTOSCALER_IMAGE, NODE_CACHE_IMAGE } from "./schema/dns";
import { hasDigest, parseImageRef } from "./image-ref";

/**
 * Free-form surfaces of a stack (issue 22): pass-through flags and `*-arg` entries, Traefik values,
 * the containerd template, registry and S3 transport settings, the firewall, images. Each is
 * checked against what is known safe (allowlist.ts for settings, documents.ts for documents), and
 * every departure is a finding whose `setting` names it *with its value* (or a digest of it), so a
 * reasoned exception (`k3s.exceptions`) covers exactly what was reviewed: a later change of value
 * is a new finding. The one predicate behind config validation (prod refuses, dev and staging
 * warn) and the policy pack (mandatory in prod, exceptions reported on every preview). Pure.
 */

export type SurfacePath = ReadonlyArray<string | number>;

export interface SurfaceFinding {
  /**
   * What an exception names: the setting and its value, e.g. `etcd-expose-metrics=true`,
   * `kube-apiserver-arg:token-auth-file=/etc/tokens.csv`, `firewall.mode=disable`,
   * `traefik.values.securityContext.privileged=true`, `traefik.values.extraObjects#3f2a…`.
   */
  setting: string;
  /** Config path under the project namespace, e.g. `["k3s", "extraServerConfig", "etcd-arg", 1]`. */
  path: SurfacePath;
  message: string;
  /**
   * Why no exception may cover it, when none may: a credential in a document (it belongs in a
   * secure config key or a Kubernetes Secret) or an unstated API server exposure.
   */
  unexceptable?: string;
  /** Refused in every environment, not only prod (credentials: they reach state anyway). */
  everywhere?: boolean;
}

/** The message a refusal shows, with the exception that would keep it when one may. */
export function findingMessage(f: SurfaceFinding): string {
  return f.unexceptable ? f.message : `${f.message}; to keep it, add k3s.exceptions: [{ setting: ${JSON.stringify(f.setting)}, reason: "…" }]`;
}

/**
 * JSON with object keys sorted: the pack sees the config after the engine's protobuf Struct
 * round trip, which reorders keys, so a digest of plain JSON would differ from validation's.
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** `=value` for a short scalar; `#<sha256 prefix>` of its canonical JSON for anything longer or structured. */
function pinned(value: unknown): string {
  const text = typeof value === "string" ? value : canonicalJson(value);
  if ((typeof value === "string" || typeof value === "number" || typeof value === "boolean") && text.length <= 80 && !/[\n#]/.test(text)) return `=${text}`;
  return `#${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}

// ---------------------------------------------------------------- pass-through flags and *-args

const valuesOf = (value: FlagValue): string[] => (Array.isArray(value) ? value.map(String) : [String(value)]);

function flagFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const storage = config.k3s.extraServerConfig["default-local-storage-path"];
  const context: AllowlistContext = { flannelBackend: config.k3s.flannelBackend, localStoragePath: typeof storage === "string" ? storage : "/var/lib/rancher/k3s/storage" };
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
      const setting = `${flag}${pinned(Array.isArray(value) ? value.join(",") : value)}`;
      if (!allowed) {
        const risk = FLAG_RISKS[flag];
        out.push({ setting, path, message: `"${flag}: ${valuesOf(value).join(",")}" is not on the prod allowlist of flags known not to weaken the cluster${risk ? `: it ${risk}` : ""}` });
        continue;
      }
      for (const v of valuesOf(value)) {
        const problem = allowed.value?.(v, context);
        if (problem) out.push({ setting, path, message: `${flag}: ${v} ${problem}` });
      }
    }
  }
}

function componentArgFindings(flag: string, value: FlagValue, path: SurfacePath, context: AllowlistContext, out: SurfaceFinding[]): void {
  const allowedArgs = ALLOWED_COMPONENT_ARGS[flag] ?? {};
  const component = flag.replace(/-arg$/, "");
  valuesOf(value).forEach((entry, j) => {
    const at = Array.isArray(value) ? [...path, j] : path;
    const eq = entry.indexOf("=");
    const name = (eq < 0 ? entry : entry.slice(0, eq)).replace(/^-+/, "");
    const argValue = eq < 0 ? "true" : entry.slice(eq + 1);
    if (MANAGED_COMPONENT_ARGS[flag]?.[name]) return; // refused with the typed key (validate.ts)
    // A credential as a component flag (`oidc-client-secret=…`) lands in config.yaml on every node and
    // in state: refused everywhere like a credential in a document, and its value never echoed.
    if (isCredentialKey(name) && argValue !== "" && !argValue.startsWith("/")) {
      out.push({
        setting: `${flag}:${name}${pinned({ digest: argValue })}`,
        path: at,
        message: `${component} ${name}=… ${KIND_WHY.credential}`,
        unexceptable: "credentials come from secure config keys or Kubernetes Secrets",
        everywhere: true,
      });
      return;
    }
    const setting = `${flag}:${name}${pinned(argValue)}`;
    const allowed = allowedArgs[name];
    if (!allowed) {
      const risk = COMPONENT_ARG_RISKS[name];
      out.push({ setting, path: at, message: `${component} ${name}=${argValue} is not on the prod allowlist of ${component} settings known not to weaken the cluster${risk ? `: ${risk}` : ""}` });
      return;
    }
    const problem = allowed.value?.(argValue, context);
    if (problem) out.push({ setting, path: at, message: `${component} ${name}=${argValue}: ${problem}` });
  });
}

// ---------------------------------------------------------------- documents

/** The value at `at` inside a document, for pinning the exception to it. */
function valueAt(document: unknown, at: ReadonlyArray<string | number>): unknown {
  return at.reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Record<string | number, unknown>)[key] : undefined), document);
}

function hitFinding(surface: "traefik.values" | "containerdTemplate", hit: DocumentHit & { table?: string }, pinTo: unknown, basePath: SurfacePath): SurfaceFinding {
  const credential = hit.kind === "credential";
  // Traefik: the value's path; containerd: the line's table and text (not its number, which moves on edits).
  const where = surface === "traefik.values" ? `${surface}.${hit.at.join(".")}` : `${surface}[${hit.table ?? ""}]`;
  return {
    setting: `${where}${pinned(pinTo)}`,
    path: surface === "traefik.values" ? [...basePath, ...hit.at] : basePath,
    message: `${surface === "containerdTemplate" ? `line ${hit.at[1]}: ` : ""}${hit.detail} ${KIND_WHY[hit.kind]}`,
    ...(credential ? { unexceptable: "credentials come from secure config keys or Kubernetes Secrets", everywhere: true } : {}),
  };
}

function documentFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const values = config.k3s.traefik?.values;
  if (values) for (const hit of traefikValuesFindings(values)) out.push(hitFinding("traefik.values", hit, valueAt(values, hit.at), ["k3s", "traefik", "values"]));
  const template = config.k3s.containerdTemplate;
  if (template) {
    const lines = template.split("\n");
    for (const hit of containerdTemplateFindings(template)) out.push(hitFinding("containerdTemplate", hit, lines[Number(hit.at[1]) - 1]!.trim(), ["k3s", "containerdTemplate"]));
  }
}

// ---------------------------------------------------------------- transport, exposure, images

function transportFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const { registries, etcdSnapshots } = config.k3s;
  for (const [host, mirror] of Object.entries(registries?.mirrors ?? {})) {
    (mirror.endpoint ?? []).forEach((endpoint, i) => {
      // The scheme as containerd reads it (case-insensitive), not the text.
      if (new URL(endpoint).protocol === "http:") {
        out.push({ setting: `registries.mirrors.${host}.endpoint=${endpoint}`, path: ["k3s", "registries", "mirrors", host, "endpoint", i], message: `${endpoint} ${KIND_WHY["plain-http"]}` });
      }
    });
  }
  for (const [host, cfg] of Object.entries(registries?.configs ?? {})) {
    if (cfg.tls?.insecureSkipVerify) {
      out.push({ setting: `registries.configs.${host}.tls.insecureSkipVerify=true`, path: ["k3s", "registries", "configs", host, "tls", "insecureSkipVerify"], message: `${KIND_WHY["tls-verification-off"]} for ${host}` });
    }
  }
  const s3 = etcdSnapshots?.s3;
  if (s3?.insecure) out.push({ setting: "etcdSnapshots.s3.insecure=true", path: ["k3s", "etcdSnapshots", "s3", "insecure"], message: "sends etcd snapshots (every Secret of the cluster) over plain HTTP" });
  if (s3?.skipSslVerify) out.push({ setting: "etcdSnapshots.s3.skipSslVerify=true", path: ["k3s", "etcdSnapshots", "s3", "skipSslVerify"], message: `sends etcd snapshots to an endpoint it does not verify: ${KIND_WHY["tls-verification-off"]}` });
}

function exposureFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const { firewall } = config.k3s;
  if (firewall.mode !== "open") {
    out.push({
      setting: `firewall.mode=${firewall.mode}`,
      path: ["k3s", "firewall", "mode"],
      message: `mode ${firewall.mode} leaves etcd (2379-2380/tcp), the kubelet (10250/tcp) and flannel (8472/udp) reachable from any source; k3s-platform scopes them to the cluster's nodes in mode open`,
    });
    return;
  }
  if (firewall.apiServerSources.length === 0) {
    out.push({
      setting: "firewall.apiServerSources",
      path: ["k3s", "firewall", "apiServerSources"],
      message: "state who may reach the API server (6443/tcp): list your admin, CI and load balancer networks (an explicit 0.0.0.0/0 needs an exception with a reason)",
      unexceptable: "state the sources the API server is open to",
    });
  }
  // A slice of the internet, not a network the user runs: 0.0.0.0/1 + 128.0.0.0/1 is 0.0.0.0/0 written twice.
  firewall.apiServerSources.forEach((source, i) => {
    if (broadCidr(source)) {
      out.push({ setting: `firewall.apiServerSources=${source}`, path: ["k3s", "firewall", "apiServerSources", i], message: `${source} opens the API server to a large part of the internet` });
    }
  });
  // The firewall admits node traffic from the node networks (issue 26): a broad one opens the
  // kubelet, flannel's unauthenticated VXLAN and the API server to that slice of the internet.
  (config.k3s.nodeNetworks ?? []).forEach((network, i) => {
    if (broadCidr(network)) {
      out.push({
        setting: `nodeNetworks=${network}`,
        path: ["k3s", "nodeNetworks", i],
        message: `${network} is not a network of nodes but a large part of the internet: the firewall admits node traffic (the kubelet 10250/tcp, flannel 8472/udp, the API server 6443/tcp) from every k3s.nodeNetworks entry; list the networks your nodes are on`,
      });
    }
  });
}

/** The images k3s-platform deploys, with the config path that sets each and its pinned default. */
export function deployedImages(config: ResolvedConfig): Array<{ name: string; path: SurfacePath; image: string; fallback: string }> {
  const all: Array<{ name: string; path: SurfacePath; image: string | undefined; fallback: string }> = [
    { name: "apiVip.image", path: ["k3s", "apiVip", "image"], image: config.k3s.apiVip?.image, fallback: KUBE_VIP_IMAGE },
    { name: "dns.nodeLocal.image", path: ["dns", "nodeLocal", "image"], image: config.dns.nodeLocal.enabled ? config.dns.nodeLocal.image : undefined, fallback: NODE_CACHE_IMAGE },
    { name: "dns.autoscaler.image", path: ["dns", "autoscaler", "image"], image: config.dns.autoscaler.enabled ? config.dns.autoscaler.image : undefined, fallback: AUTOSCALER_IMAGE },
  ];
  return all.filter((i): i is typeof i & { image: string } => i.image !== undefined);
}

/** The registries images may come from: `images.registries`, or those of the pinned defaults. */
export function allowedRegistries(config: ResolvedConfig): string[] {
  // An older pack reading older state may see no images field.
  return config.images?.registries ?? [...new Set([KUBE_VIP_IMAGE, NODE_CACHE_IMAGE, AUTOSCALER_IMAGE].map((i) => parseImageRef(i).registry))];
}

/**
 * An image the program deploys with host privileges (kube-vip on the servers' host network,
 * NodeLocal DNSCache, the DNS autoscaler). Known safe in prod: the pinned default's repository
 * and tag, from a registry in `images.registries` (a mirror of your own serves the same path),
 * pinned by `@sha256:` digest. Without a digest (a tag can be re-pushed: the defaults are
 * tag-only, k3s-platform cannot learn their digests for you) or from another registry, refused
 * (no exception: the digest and the registry list are the statement); another repository or tag
 * needs an exception naming it.
 */
function imageFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  const registries = allowedRegistries(config);
  for (const { name, path, image, fallback } of deployedImages(config)) {
    const ref = parseImageRef(image);
    const pinned = parseImageRef(fallback);
    if (!registries.includes(ref.registry)) {
      out.push({
        setting: `${name}=${image}`,
        path,
        message: `${image} comes from ${ref.registry}, not a registry in images.registries (${registries.join(", ")}); it runs with host privileges on the nodes`,
        unexceptable: "list the registry in images.registries",
      });
    }
    if (!hasDigest(image)) {
      out.push({
        setting: `${name}=${image}`,
        path,
        message: `${image} has no @sha256: digest: a tag can be re-pushed; pin the digest your registry reports (crane digest ${image}, or skopeo inspect docker://${image})`,
        unexceptable: "pin the image by digest (@sha256:…)",
      });
    }
    if (ref.path !== pinned.path || ref.tag !== pinned.tag) {
      out.push({
        setting: `${name}=${image}`,
        path,
        message: `${image} is not the image k3s-platform pins (${fallback}, from any listed registry); it runs with host privileges on the nodes`,
        ...(hasDigest(image) ? {} : { unexceptable: "pin a changed image by digest (@sha256:…)" }),
      });
    }
  }
}

/**
 * A hook (docs/hooks.md) is a command run as root on every node it applies to: nothing about it is
 * known safe, so each one is a finding, pinned to its point and command (a changed command is a new
 * finding, reviewed again; which nodes it runs on may change with the pool or role it names).
 */
function hookFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  (config.hooks ?? []).forEach((hook, i) => {
    // A credential in the command reaches hooks.sh on every node and state: refused everywhere, never echoed.
    const secret = new Set<number>();
    hook.command.forEach((arg, j) => {
      const flag = /^--?([A-Za-z][\w.-]*)$/.exec(arg)?.[1];
      const next = hook.command[j + 1];
      const afterFlag =
        next !== undefined && next.trim() !== "" && !next.startsWith("/") &&
        ((flag !== undefined && isCredentialKey(flag)) || (BASIC_AUTH_FLAGS.has(arg) && /^[^:]*:./.test(next) && !next.startsWith("$")));
      if (!hookArgumentCredential(arg) && !afterFlag) return;
      const k = afterFlag ? j + 1 : j;
      secret.add(k);
      out.push({
        setting: `hooks.${hook.name}.command[${k}]${pinned({ digest: hook.command[k] })}`,
        path: ["hooks", i, "command", k],
        message: `hook ${hook.name}: argument ${k} holds a credential in clear (${afterFlag ? `the value of ${arg}` : "a key, URL credentials, a password/token/key assignment, an Authorization or credential header, or user:password"}): it would land in hooks.sh on every node it runs on and in Pulumi state; let the hook read it on the host (a root-only file)`,
        unexceptable: "credentials never sit in the stack config",
        everywhere: true,
      });
    });
    const shown = hook.command.map((arg, j) => (secret.has(j) ? "…" : arg));
    const where = hook.nodes || hook.roles ? [...(hook.nodes ?? []), ...(hook.roles ?? []).map((r) => `every ${r}`)].join(", ") : "every node";
    out.push({
      setting: `hooks.${hook.name}${pinned({ at: hook.at, command: hook.command })}`,
      path: ["hooks", i],
      message: `hook ${hook.name} runs ${JSON.stringify(shown)} as root at ${hook.at} on ${where || "no node"}`,
    });
  });
}

/**
 * An identity provider for the API server (docs/oidc.md) lets whoever runs it log in: like
 * `oidc-issuer-url` on the allowlist, each is a finding, pinned to its issuer, audiences, claim
 * mappings and rules (not its CA, which rotates), so the exception names the provider and prefixes.
 */
function authenticationFindings(config: ResolvedConfig, out: SurfaceFinding[]): void {
  (config.k3s.apiServer.authentication?.jwt ?? []).forEach((j, i) => {
    const { username, groups } = j.claimMappings;
    const risks = [
      ...(username.prefix === "" ? [`no username prefix: its names (claim ${username.claim}) can claim any user, system: ones included`] : []),
      ...(groups && groups.prefix === "" ? [`no groups prefix: its groups (claim ${groups.claim}) can claim system:masters`] : []),
    ];
    out.push({
      setting: `apiServer.authentication.jwt:${j.issuer.url}${pinned({ audiences: j.issuer.audiences, claimMappings: j.claimMappings, claimValidationRules: j.claimValidationRules ?? [] })}`,
      path: ["k3s", "apiServer", "authentication", "jwt", i],
      message: `${j.issuer.url} becomes an identity provider of the API server: whoever controls it logs in as "${username.prefix}<${username.claim}>"${groups ? ` with groups "${groups.prefix}<${groups.claim}>"` : ""}${risks.length ? `; ${risks.join("; ")}` : ""}`,
    });
  });
}

/** Every departure from what is known safe, in config order of the surfaces. */
export function surfaceFindings(config: ResolvedConfig): SurfaceFinding[] {
  const out: SurfaceFinding[] = [];
  flagFindings(config, out);
  documentFindings(config, out);
  transportFindings(config, out);
  exposureFindings(config, out);
  imageFindings(config, out);
  authenticationFindings(config, out);
  hookFindings(config, out);
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
export function surfaceVerdict(config: ResolvedConfig, findings = surfaceFindings(config)): SurfaceVerdict {
  // An older pack reading older state may see no exceptions field.
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
    if (index === undefined || finding.unexceptable) verdict.refused.push(finding);
    else {
      verdict.excepted.push({ finding, exception: exceptions[index]!, index });
      used.add(finding.setting);
    }
  }
  const unexceptable = new Map(findings.filter((f) => f.unexceptable).map((f) => [f.setting, f.unexceptable!]));
  for (const [setting, index] of firstIndex) {
    if (used.has(setting)) continue;
    const why = unexceptable.get(setting);
    verdict.invalid.push({
      exception: exceptions[index]!,
      index,
      message: why
        ? `"${setting}" cannot be excepted: ${why}`
        : `no setting of this stack is "${setting}": an exception names a setting and its value exactly as the refusal printed it; remove stale ones, so they cannot cover a later change unseen`,
    });
  }
  return verdict;
}

/** A finding or an invalid exception as validation and the pack report it: refused, or (outside prod) a warning. */
export interface SurfaceIssue {
  path: SurfacePath;
  message: string;
  refused: boolean;
}

/**
 * What the stack's free-form surfaces come to: in prod every unexcepted finding and every invalid
 * exception is refused; elsewhere they are warnings, except credentials, refused everywhere. The one
 * decision validation (surfaceChecks) and the pack (free-form-settings-allowlisted) both report.
 */
export function surfaceIssues(config: ResolvedConfig): SurfaceIssue[] {
  const prod = config.environment === "prod";
  const verdict = surfaceVerdict(config);
  return [
    ...verdict.refused.map((f) => ({ path: f.path, message: findingMessage(f), refused: prod || f.everywhere === true })),
    ...verdict.invalid.map(({ index, message }) => ({ path: ["k3s", "exceptions", index, "setting"], message, refused: prod })),
  ];
}
