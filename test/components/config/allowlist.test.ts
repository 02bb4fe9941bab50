import { strict as assert } from "node:assert";
import * as fc from "fast-check";
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ALLOWED_COMPONENT_ARGS, ALLOWED_FLAGS, COMPONENT_ARG_RISKS, FLAG_RISKS, renderAllowlistMarkdown, STRONG_CIPHERS } from "../../../components/config/allowlist";
import { COMPONENT_ARG_FLAGS, FLAGS, MANAGED_COMPONENT_ARGS } from "../../../components/config/flags";
import { ResolvedConfig, StackInput } from "../../../components/config/schema";
import { resolveDefaults } from "../../../components/config/validate";
import { stackSchema } from "../../../components/config/schema";
import { parseStackConfig } from "../../../components/stack/load";
import { policies, TYPES } from "../../../policies/policies";
import { resourceArgs, runResourcePolicy } from "../../helpers/policy-harness";
import { REPO, variant } from "../../helpers/samples";

type K3s = NonNullable<StackInput["k3s"]>;
type Edit = (raw: StackInput) => void;

const k3s = (raw: StackInput): K3s => (raw.k3s ??= {});
const key = (k: string) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);
const server = (k: string) => `k3s-platform:k3s.extraServerConfig${key(k)}`;
const agent = (k: string) => `k3s-platform:k3s.extraAgentConfig${key(k)}`;

function outcome(env: "dev" | "staging" | "prod", edit: Edit) {
  const result = parseStackConfig(variant(env, edit));
  return { ok: result.ok, issues: result.ok ? [] : result.issues, warnings: result.warnings };
}

/** The pack's verdict on the same edit, applied to the resolved config (a program that skipped validation). */
async function packSays(env: "dev" | "prod", edit: Edit): Promise<string[]> {
  const raw = variant(env, edit);
  const config: ResolvedConfig = resolveDefaults(stackSchema.parse(raw));
  const policy = policies.find((p) => p.name === "free-form-settings-allowlisted") as ResourceValidationPolicy;
  return runResourcePolicy(policy, resourceArgs({ type: TYPES.cluster, name: env, props: { config } as Record<string, unknown> }));
}

const issueAt = (issues: Array<{ path: string; message: string }>, path: string) => issues.find((i) => i.path === path || i.path.startsWith(`${path}[`) || i.path.startsWith(`${path}.`));

/**
 * The weakenings issue 22 names, each the prod sample plus one change: [name, edit, path the
 * refusal names, the setting an exception names (undefined: no exception can cover it)].
 */
const HOSTILE: Array<[string, Edit, string, string | undefined]> = [
  ["etcd client-cert-auth=false", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["client-cert-auth=false"] }), server("etcd-arg"), "etcd-arg:client-cert-auth=false"],
  ["etcd auto-tls", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["auto-tls=true"] }), server("etcd-arg"), "etcd-arg:auto-tls=true"],
  ["etcd peer auto-tls", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["peer-auto-tls=true"] }), server("etcd-arg"), "etcd-arg:peer-auto-tls=true"],
  ["etcd plain-HTTP client URL", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["listen-client-urls=http://0.0.0.0:2379"] }), server("etcd-arg"), "etcd-arg:listen-client-urls=http://0.0.0.0:2379"],
  ["etcd weak ciphers", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA"] }), server("etcd-arg"), "etcd-arg:cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA"],
  ["etcd metrics on every interface", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["listen-metrics-urls=http://0.0.0.0:2381"] }), server("etcd-arg"), "etcd-arg:listen-metrics-urls=http://0.0.0.0:2381"],
  ["etcd-expose-metrics", (r) => (k3s(r).extraServerConfig = { "etcd-expose-metrics": true }), server("etcd-expose-metrics"), "etcd-expose-metrics=true"],
  ["apiserver TLS 1.0", (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["tls-min-version=VersionTLS10"] }), server("kube-apiserver-arg"), "kube-apiserver-arg:tls-min-version=VersionTLS10"],
  ["apiserver token-auth-file", (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["token-auth-file=/etc/tokens.csv"] }), server("kube-apiserver-arg"), "kube-apiserver-arg:token-auth-file=/etc/tokens.csv"],
  ["controller-manager profiling", (r) => (k3s(r).extraServerConfig = { "kube-controller-manager-arg": ["profiling=true"] }), server("kube-controller-manager-arg"), "kube-controller-manager-arg:profiling=true"],
  ["scheduler bound to every interface", (r) => (k3s(r).extraServerConfig = { "kube-scheduler-arg": ["bind-address=0.0.0.0"] }), server("kube-scheduler-arg"), "kube-scheduler-arg:bind-address=0.0.0.0"],
  ["shared controller credentials", (r) => (k3s(r).extraServerConfig = { "kube-controller-manager-arg": ["use-service-account-credentials=false"] }), server("kube-controller-manager-arg"), "kube-controller-manager-arg:use-service-account-credentials=false"],
  ["kubelet without CA verification", (r) => (k3s(r).extraAgentConfig = { "kubelet-arg": ["client-ca-file="] }), agent("kubelet-arg"), "kubelet-arg:client-ca-file="],
  ["etcd-s3-proxy", (r) => (k3s(r).extraServerConfig = { "etcd-s3-proxy": "http://proxy.example.com:3128" }), server("etcd-s3-proxy"), "etcd-s3-proxy=http://proxy.example.com:3128"],
  ["etcd-s3-config-secret", (r) => (k3s(r).extraServerConfig = { "etcd-s3-config-secret": "s3-settings" }), server("etcd-s3-config-secret"), "etcd-s3-config-secret=s3-settings"],
  ["firewall disabled", (r) => (k3s(r).firewall = { mode: "disable" }), "k3s-platform:k3s.firewall.mode", "firewall.mode=disable"],
  ["firewall ignored", (r) => (k3s(r).firewall = { mode: "ignore" }), "k3s-platform:k3s.firewall.mode", "firewall.mode=ignore"],
  ["API server sources unstated", (r) => (k3s(r).firewall = { mode: "open" }), "k3s-platform:k3s.firewall.apiServerSources", undefined],
  ["API server open to the world", (r) => (k3s(r).firewall = { mode: "open", apiServerSources: ["0.0.0.0/0"] }), "k3s-platform:k3s.firewall.apiServerSources", "firewall.apiServerSources=0.0.0.0/0"],
  ["insecure Traefik dashboard", (r) => (k3s(r).traefik = { values: { ingressRoute: { dashboard: { enabled: true } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.ingressRoute.dashboard#"],
  ["Traefik api.insecure", (r) => (k3s(r).traefik = { values: { additionalArguments: ["--api.insecure=true"] } }), "k3s-platform:k3s.traefik.values", "traefik.values.additionalArguments"],
  ["privileged Traefik", (r) => (k3s(r).traefik = { values: { securityContext: { privileged: true } } }), "k3s-platform:k3s.traefik.values", "traefik.values.securityContext.privileged=true"],
  ["Traefik host mount", (r) => (k3s(r).traefik = { values: { deployment: { additionalVolumes: [{ name: "root", hostPath: { path: "/" } }] } } }), "k3s-platform:k3s.traefik.values", "traefik.values.deployment.additionalVolumes"],
  ["Traefik host network", (r) => (k3s(r).traefik = { values: { hostNetwork: true } }), "k3s-platform:k3s.traefik.values", "traefik.values.hostNetwork=true"],
  ["Traefik env secret", (r) => (k3s(r).traefik = { values: { env: [{ name: "CF_API_TOKEN", value: "abc123" }] } }), "k3s-platform:k3s.traefik.values", undefined],
  ["containerd registry password", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example.com".auth]\n  password = "hunter2"\n'), "k3s-platform:k3s.containerdTemplate", undefined],
  ["containerd runtime anywhere", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.x.options]\n  BinaryName = "/tmp/runc"\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.x.options]=BinaryName = \"/tmp/runc\""],
  ["containerd insecure_skip_verify", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  insecure_skip_verify = true\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]=insecure_skip_verify = true"],
  ["kube-vip from any registry", (r) => (k3s(r).apiVip = { address: "203.0.113.100", interface: "eth0", image: "evil.example.com/kube-vip/kube-vip:v0.8.9" }), "k3s-platform:k3s.apiVip.image", undefined],
  ["plain-HTTP mirror", (r) => (k3s(r).registries = { mirrors: { "docker.io": { endpoint: ["http://mirror.example.com"] } } }), "k3s-platform:k3s.registries.mirrors", "registries.mirrors.docker.io.endpoint=http://mirror.example.com"],
  ["mirror without TLS verification", (r) => (k3s(r).registries = { ...k3s(r).registries, configs: { "r.example.com": { tls: { insecureSkipVerify: true } } } }), "k3s-platform:k3s.registries.configs", "registries.configs.r.example.com.tls.insecureSkipVerify=true"],
  // Evasions of the scanners tried after the first round: other spellings of the same weakening.
  ["node networks open to the world", (r) => (k3s(r).nodeNetworks = ["0.0.0.0/0"]), "k3s-platform:k3s.nodeNetworks", "nodeNetworks=0.0.0.0/0"],
  ["node networks through two halves", (r) => (k3s(r).nodeNetworks = ["0.0.0.0/1", "128.0.0.0/1"]), "k3s-platform:k3s.nodeNetworks", "nodeNetworks=0.0.0.0/1"],
  ["API server open through two halves", (r) => (k3s(r).firewall = { mode: "open", apiServerSources: ["0.0.0.0/1", "128.0.0.0/1"] }), "k3s-platform:k3s.firewall.apiServerSources", "firewall.apiServerSources=0.0.0.0/1"],
  ["Traefik capability as a string", (r) => (k3s(r).traefik = { values: { securityContext: { capabilities: { add: "SYS_ADMIN" } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.securityContext.capabilities.add=SYS_ADMIN"],
  ["Traefik privileged as a string", (r) => (k3s(r).traefik = { values: { securityContext: { privileged: "yes" } } }), "k3s-platform:k3s.traefik.values", "traefik.values.securityContext.privileged=yes"],
  ["Traefik dashboard entrypoint exposed", (r) => (k3s(r).traefik = { values: { ports: { traefik: { expose: { default: true } } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.ports.traefik.expose#"],
  ["Traefik env DB_PASS", (r) => (k3s(r).traefik = { values: { env: [{ name: "DB_PASS", value: "hunter2" }] } }), "k3s-platform:k3s.traefik.values", undefined],
  ["containerd password as a dotted key", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\nplugins."io.containerd.grpc.v1.cri".registry.configs."r".auth.password = "p"\n'), "k3s-platform:k3s.containerdTemplate", undefined],
  ["containerd auth as an inline table", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  auth = { username = "u", password = "p" }\n'), "k3s-platform:k3s.containerdTemplate", undefined],
  ["containerd runtime escaping /usr/bin", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  BinaryName = "/usr/bin/../../tmp/runc"\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]=BinaryName"],
  ["an identity provider of anyone's choosing", (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["oidc-issuer-url=https://sso.evil.example.net", "oidc-client-id=x", "oidc-groups-claim=groups"] }), server("kube-apiserver-arg"), "kube-apiserver-arg:oidc-issuer-url=https://sso.evil.example.net"],
  ["service account tokens for other audiences", (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["api-audiences=https://kubernetes.default.svc.cluster.local,k3s,vault"] }), server("kube-apiserver-arg"), "kube-apiserver-arg:api-audiences="],
  ["credential plugins from /tmp", (r) => (k3s(r).extraAgentConfig = { "image-credential-provider-bin-dir": "/tmp", "image-credential-provider-config": "/tmp/c.yaml" }), agent("image-credential-provider-bin-dir"), "image-credential-provider-bin-dir=/tmp"],
  ["NodePorts over SSH and etcd", (r) => (k3s(r).extraServerConfig = { "service-node-port-range": "1-65535" }), server("service-node-port-range"), "service-node-port-range=1-65535"],
  ["swap for Secret volumes", (r) => (k3s(r).extraAgentConfig = { "kubelet-arg": ["fail-swap-on=false"] }), agent("kubelet-arg"), "kubelet-arg:fail-swap-on=false"],
  ["Traefik extraObjects (any object, cluster-admin bindings)", (r) => (k3s(r).traefik = { values: { extraObjects: [{ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", roleRef: { kind: "ClusterRole", name: "cluster-admin" } }] } }), "k3s-platform:k3s.traefik.values", "traefik.values.extraObjects#"],
  ["Traefik templated key", (r) => (k3s(r).traefik = { values: { securityContext: { '{{"privi"}}leged': true } } }), "k3s-platform:k3s.traefik.values", "traefik.values.securityContext."],
  ["Traefik cross-namespace routes", (r) => (k3s(r).traefik = { values: { providers: { kubernetesCRD: { allowCrossNamespace: true } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.providers.kubernetesCRD.allowCrossNamespace=true"],
  ["Traefik without seccomp", (r) => (k3s(r).traefik = { values: { securityContext: { seccompProfile: { type: "Unconfined" } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.securityContext.seccompProfile.type=Unconfined"],
  ["Traefik TLS 1.0", (r) => (k3s(r).traefik = { values: { tlsOptions: { default: { minVersion: "VersionTLS10" } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.tlsOptions.default.minVersion=VersionTLS10"],
  ["containerd template action", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  insecure_skip_verify = {{ true }}\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]="],
  ["containerd inline table", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  tls = { insecure_skip_verify = true }\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]="],
  ["containerd HTTP endpoint on its own line", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  endpoint = [\n    "HTTP://mirror.example.com",\n  ]\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]="],
  ["containerd shim from /tmp", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n  runtime_path = "/tmp/shim"\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]="],
  ["HTTP mirror in capitals", (r) => (k3s(r).registries = { mirrors: { "docker.io": { endpoint: ["HTTP://mirror.example.com"] } } }), "k3s-platform:k3s.registries.mirrors", "registries.mirrors.docker.io.endpoint="],
  // Third round (a second review): what allowlisted keys can still carry.
  ["local-path volumes in the manifests directory", (r) => (k3s(r).extraServerConfig = { "default-local-storage-path": "/var/lib/rancher/k3s/server/manifests" }), server("default-local-storage-path"), "default-local-storage-path="],
  ["credential plugins from a pod volume", (r) => (k3s(r).extraAgentConfig = { "image-credential-provider-bin-dir": "/var/lib/kubelet/pods/u/volumes/x", "image-credential-provider-config": "/etc/rancher/c.yaml" }), agent("image-credential-provider-bin-dir"), "image-credential-provider-bin-dir="],
  ["containerd shim by absolute path", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\n  runtime_type = "/tmp/shim"\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[plugins."],
  ["containerd key after the base action", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}BinaryName = "/tmp/runc"\n'), "k3s-platform:k3s.containerdTemplate", "containerdTemplate[]="],
  ["Traefik dashboard without enabled", (r) => (k3s(r).traefik = { values: { ingressRoute: { dashboard: { entryPoints: ["websecure"] } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.ingressRoute.dashboard#"],
  ["Traefik file provider", (r) => (k3s(r).traefik = { values: { providers: { file: { enabled: true, content: "http: {}" } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.providers.file#"],
  ["Traefik defaults removed with null", (r) => (k3s(r).traefik = { values: { podSecurityContext: { runAsNonRoot: null } } }), "k3s-platform:k3s.traefik.values", "traefik.values.podSecurityContext.runAsNonRoot"],
  ["Traefik externalIPs", (r) => (k3s(r).traefik = { values: { service: { externalIPs: ["203.0.113.60"] } } }), "k3s-platform:k3s.traefik.values", "traefik.values.service.externalIPs#"],
  ["Traefik trusts every forwarded header", (r) => (k3s(r).traefik = { values: { ports: { websecure: { forwardedHeaders: { trustedIPs: ["0.0.0.0/0"] } } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.ports.websecure.forwardedHeaders.trustedIPs#"],
  ["Traefik weak ciphers", (r) => (k3s(r).traefik = { values: { tlsOptions: { default: { cipherSuites: ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"] } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.tlsOptions.default.cipherSuites#"],
  ["Traefik logs Authorization headers", (r) => (k3s(r).traefik = { values: { logs: { access: { fields: { headers: { defaultmode: "keep" } } } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.logs.access.fields.headers.defaultmode=keep"],
  ["Traefik metrics on the load balancer", (r) => (k3s(r).traefik = { values: { ports: { metrics: { expose: { default: true } } } } }), "k3s-platform:k3s.traefik.values", "traefik.values.ports.metrics.expose#"],
  ["etcd S3 over HTTP", (r) => (k3s(r).etcdSnapshots = { s3: { bucket: "snaps", insecure: true } }), "k3s-platform:k3s.etcdSnapshots.s3.insecure", "etcdSnapshots.s3.insecure=true"],
  ["etcd S3 unverified", (r) => (k3s(r).etcdSnapshots = { s3: { bucket: "snaps", skipSslVerify: true } }), "k3s-platform:k3s.etcdSnapshots.s3.skipSslVerify", "etcdSnapshots.s3.skipSslVerify=true"],
];

const REASON = "reviewed with the security team, ticket SEC-1234: needed until the migration ends";
const withException = (edit: Edit, ...settings: string[]): Edit => (r) => {
  edit(r);
  k3s(r).exceptions = [...(k3s(r).exceptions ?? []), ...settings.map((setting) => ({ setting, reason: REASON }))];
};
/** The setting a refusal offers to except (`setting: "…"`), as the user would copy it. */
const settingIn = (message: string): string | undefined => {
  const m = /setting: ("(?:[^"\\]|\\.)*")/.exec(message);
  return m ? (JSON.parse(m[1]!) as string) : undefined;
};
const settingsIn = (issues: Array<{ message: string }>) => [...new Set(issues.map((i) => settingIn(i.message)).filter((s): s is string => s !== undefined))];

describe("prod free-form surfaces: an allowlist, not a denylist (issue 22)", () => {
  describe("the allowlist table", () => {
    const passThrough = new Set(FLAGS.filter((f) => f.class === "pass-through").map((f) => f.name));
    it("lists only pass-through flags, and every *-arg flag with its own entry list", () => {
      for (const flag of Object.keys(ALLOWED_FLAGS)) assert.ok(passThrough.has(flag), `${flag} is not a pass-through flag`);
      assert.deepEqual(Object.keys(ALLOWED_COMPONENT_ARGS).sort(), [...COMPONENT_ARG_FLAGS].sort());
    });
    it("names risks only for what it leaves off, and never allows a setting rendered from typed config", () => {
      for (const flag of Object.keys(FLAG_RISKS)) assert.ok(passThrough.has(flag) && !ALLOWED_FLAGS[flag], flag);
      for (const [flag, args] of Object.entries(ALLOWED_COMPONENT_ARGS)) {
        for (const name of Object.keys(args)) {
          assert.ok(!COMPONENT_ARG_RISKS[name], `${flag}:${name} is allowed and named a risk`);
          assert.ok(!MANAGED_COMPONENT_ARGS[flag]?.[name], `${flag}:${name} is rendered from typed config`);
        }
      }
    });
    it("docs/allowlist.md is the table as it is (npm run docs:allowlist)", () => {
      assert.equal(readFileSync(join(REPO, "docs", "allowlist.md"), "utf8"), renderAllowlistMarkdown());
    });
    it("the strong cipher list has no CBC, RC4, 3DES or RSA key exchange suite", () => {
      for (const c of STRONG_CIPHERS) assert.doesNotMatch(c, /CBC|RC4|3DES|^TLS_RSA_WITH_/);
    });
  });

  describe("each weakening the issue names", () => {
    for (const [name, edit, path, prefix] of HOSTILE) {
      it(`${name}: refused in prod at ${path}${prefix ? `, kept only with an exception naming ${prefix}…` : ", and no exception covers it"}`, async () => {
        const prod = outcome("prod", edit);
        assert.equal(prod.ok, false, `${name} passed prod validation`);
        const hit = issueAt(prod.issues, path);
        assert.ok(hit, `no issue at ${path}: ${JSON.stringify(prod.issues)}`);
        assert.ok((await packSays("prod", edit)).some((m) => m.startsWith(path)), "the pack does not refuse it");
        const printed = settingIn(hit.message);
        if (prefix) {
          assert.ok(printed?.startsWith(prefix), `the refusal names ${printed}, not ${prefix}…`);
          const excepted = outcome("prod", withException(edit, ...settingsIn(prod.issues)));
          assert.ok(excepted.ok, JSON.stringify(excepted.issues));
          assert.deepEqual(await packSays("prod", withException(edit, ...settingsIn(prod.issues))), []);
        } else {
          assert.ok(prod.issues.some((i) => i.path.startsWith(path) && settingIn(i.message) === undefined), "every refusal offers an exception");
          const attempted = outcome("prod", withException(edit, ...settingsIn(prod.issues), "firewall.apiServerSources"));
          assert.equal(attempted.ok, false, "exceptions covered what none may cover");
        }
      });
    }

    it("a credential in a *-arg entry is refused in every environment, by validation and the pack, without echoing it", async () => {
      const edit: Edit = (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["oidc-client-secret=s3cr3t-value"] });
      for (const env of ["dev", "prod"] as const) {
        const r = outcome(env, edit);
        assert.equal(r.ok, false, `${env} accepted a credential in kube-apiserver-arg`);
        assert.ok(issueAt(r.issues, server("kube-apiserver-arg")), JSON.stringify(r.issues));
        assert.doesNotMatch(JSON.stringify([...r.issues, ...r.warnings]), /s3cr3t-value/);
        const pack = await packSays(env, edit);
        assert.ok(pack.some((m) => m.startsWith(server("kube-apiserver-arg"))), JSON.stringify(pack));
        assert.doesNotMatch(pack.join("\n"), /s3cr3t-value/);
      }
    });

    it("an exception covers the value it names, not the setting at any value", () => {
      const edit: Edit = (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["listen-client-urls=https://127.0.0.1:2379"] });
      const kept = outcome("prod", withException(edit, "etcd-arg:listen-client-urls=https://127.0.0.1:2379"));
      assert.ok(kept.ok, JSON.stringify(kept.issues));
      const widened = outcome("prod", withException((r) => (k3s(r).extraServerConfig = { "etcd-arg": ["listen-client-urls=http://0.0.0.0:2379"] }), "etcd-arg:listen-client-urls=https://127.0.0.1:2379"));
      assert.equal(widened.ok, false);
      assert.ok(issueAt(widened.issues, server("etcd-arg")), JSON.stringify(widened.issues));
      assert.ok(issueAt(widened.issues, "k3s-platform:k3s.exceptions[0].setting"), "the stale exception is not reported");
    });

    it("staging (and dev) warn instead of refusing, except for credentials", () => {
      for (const [name, edit, path] of HOSTILE) {
        if (name === "API server sources unstated") continue; // staging states none: warned already
        const staging = outcome("staging", edit);
        const credential = outcome("prod", edit).issues.some((i) => /credential in clear text/.test(i.message));
        if (credential) assert.equal(staging.ok, false, `${name}: a credential passed staging`);
        else {
          assert.ok(staging.ok, `${name}: ${JSON.stringify(staging.issues)}`);
          assert.ok(issueAt(staging.warnings, path), `${name}: no warning at ${path}`);
        }
      }
    });
  });

  describe("what stays allowed", () => {
    const safe: Array<[string, Edit]> = [
      ["TLS 1.3 and CIS ciphers", (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["tls-min-version=VersionTLS13", `tls-cipher-suites=${STRONG_CIPHERS.slice(0, 3).join(",")}`] })],
      ["etcd tuning", (r) => (k3s(r).extraServerConfig = { "etcd-arg": ["quota-backend-bytes=8589934592", "heartbeat-interval=250", "election-timeout=2500"] })],
      ["loopback metrics", (r) => (k3s(r).extraAgentConfig = { "kube-proxy-arg": ["metrics-bind-address=127.0.0.1:10249"] })],
      ["owner-only kubeconfig", (r) => (k3s(r).extraServerConfig = { "write-kubeconfig-mode": "0600" })],
      ["Traefik values that weaken nothing", (r) => (k3s(r).traefik = { values: { deployment: { replicas: 3 }, ports: { websecure: { tls: { enabled: true } } }, securityContext: { capabilities: { add: ["NET_BIND_SERVICE"] } }, tlsStore: { default: { defaultCertificate: { secretName: "wildcard" } } } } })],
      ["kube-vip's pinned image through a private https mirror", (r) => {
        k3s(r).registries = { mirrors: { "ghcr.io": { endpoint: ["https://registry.example.com"] } }, configs: { "registry.example.com": { tls: { caFile: "/etc/ssl/ca.pem" } } } };
      }],
      ["kubelet TLS 1.3 suites", (r) => (k3s(r).extraAgentConfig = { "kubelet-arg": ["tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] })],
      ["kube-proxy metrics on localhost", (r) => (k3s(r).extraAgentConfig = { "kube-proxy-arg": ["metrics-bind-address=localhost:10249"] })],
      ["local-path volumes on a data disk", (r) => (k3s(r).extraServerConfig = { "default-local-storage-path": "/srv/local-path" })],
      ["a gVisor runtime without host devices", (r) => (k3s(r).containerdTemplate = '{{ template "base" . }}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]\n  runtime_type = "io.containerd.runsc.v1"\n  privileged_without_host_devices = true\n')],
      ["Traefik Let's Encrypt", (r) => (k3s(r).traefik = { values: { certResolvers: { le: { email: "ops@example.com", tlsChallenge: true } }, persistence: { enabled: true } } })],
      ["stricter audit retention than the CIS profile", (r) => (k3s(r).extraServerConfig = { "kube-apiserver-arg": ["audit-log-maxage=90", "audit-log-maxbackup=20"] })],
    ];
    for (const [name, edit] of safe) {
      it(`${name}: accepted in prod, no warning`, () => {
        const prod = outcome("prod", edit);
        assert.ok(prod.ok, JSON.stringify(prod.issues));
        assert.deepEqual(prod.warnings.filter((w) => /allowlist|k3s\.exceptions/.test(w.message)), []);
        const staging = outcome("staging", edit);
        assert.deepEqual(staging.warnings.filter((w) => /allowlist|k3s\.exceptions/.test(w.message)), []);
      });
    }
  });

  describe("exceptions", () => {
    it("an exception no setting needs is refused in prod (it would cover a later change unseen)", () => {
      const r = outcome("prod", (raw) => (k3s(raw).exceptions = [{ setting: "etcd-expose-metrics", reason: REASON }]));
      assert.equal(r.ok, false);
      assert.match(issueAt(r.issues, "k3s-platform:k3s.exceptions[0].setting")!.message, /no setting of this stack is "etcd-expose-metrics": an exception names a setting and its value exactly/);
    });
    it("a reason is required and must say something", () => {
      const r = outcome("prod", withException((raw) => (k3s(raw).extraServerConfig = { "etcd-expose-metrics": true }), "etcd-expose-metrics=true"));
      assert.ok(r.ok);
      const short = outcome("prod", (raw) => {
        k3s(raw).extraServerConfig = { "etcd-expose-metrics": true };
        k3s(raw).exceptions = [{ setting: "etcd-expose-metrics=true", reason: "needed" }];
      });
      assert.equal(short.ok, false);
      assert.match(JSON.stringify(short.issues), /at least 20 characters/);
    });
  });

  describe("property: one random free-form change to the prod sample is refused at its path, or is on the allowlist", () => {
    // Component settings drawn from the allowlist, from the named risks and from random names; values from
    // a pool of safe-looking and hostile values. The oracle is the table itself plus an independent
    // rule: whatever is accepted must be an allowlisted name whose value check passes.
    const argNames = (flag: string) => [...Object.keys(ALLOWED_COMPONENT_ARGS[flag]!), ...Object.keys(COMPONENT_ARG_RISKS)];
    const values = fc.oneof(
      fc.constantFrom("true", "false", "0", "1", "10", "VersionTLS10", "VersionTLS13", "TLS1.2", "0.0.0.0", "127.0.0.1", "http://0.0.0.0:2379", "https://sso.example.com", "/etc/x", "5m", "0s", "RS256", "TLS_RSA_WITH_RC4_128_SHA"),
      fc.string({ maxLength: 12 }).filter((s) => !s.includes("\n")),
    );
    const componentChange = fc.constantFrom(...COMPONENT_ARG_FLAGS).chain((flag) =>
      fc.record({ flag: fc.constant(flag), name: fc.oneof(fc.constantFrom(...argNames(flag)), fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/)), value: values }),
    );
    it("component settings (*-arg entries)", () => {
      fc.assert(
        fc.property(componentChange, fc.boolean(), ({ flag, name, value }, onAgent) => {
          if (MANAGED_COMPONENT_ARGS[flag]?.[name]) return; // refused with the typed key elsewhere
          const scope = FLAGS.find((f) => f.name === flag)!.scope;
          const map = onAgent && scope === "agent" ? "extraAgentConfig" : "extraServerConfig";
          const r = outcome("prod", (raw) => (k3s(raw)[map] = { [flag]: [`${name}=${value}`] }));
          const allowed = ALLOWED_COMPONENT_ARGS[flag]![name];
          if (r.ok) {
            assert.ok(allowed, `${flag}:${name} passed prod without being on the allowlist`);
            assert.equal(allowed.value?.(value, { flannelBackend: "vxlan", localStoragePath: "/var/lib/rancher/k3s/storage" }), undefined, `${flag}:${name}=${value} passed with a failing value`);
          } else {
            const path = `k3s-platform:k3s.${map}[${JSON.stringify(flag)}]`;
            assert.ok(issueAt(r.issues, path), `refused, but not at ${path}: ${JSON.stringify(r.issues)}`);
          }
        }),
        { numRuns: 300 },
      );
    });

    it("K3s flags", () => {
      const passThrough = FLAGS.filter((f) => f.class === "pass-through" && !COMPONENT_ARG_FLAGS.includes(f.name)).map((f) => f.name);
      const flagValue = fc.oneof(fc.boolean(), fc.integer({ min: 0, max: 70000 }), values);
      fc.assert(
        fc.property(fc.constantFrom(...passThrough), flagValue, (flag, value) => {
          const r = outcome("prod", (raw) => (k3s(raw).extraServerConfig = { [flag]: value }));
          const allowed = ALLOWED_FLAGS[flag];
          if (r.ok) {
            assert.ok(allowed, `${flag} passed prod without being on the allowlist`);
            assert.equal(allowed.value?.(String(value), { flannelBackend: "vxlan", localStoragePath: "/var/lib/rancher/k3s/storage" }), undefined, `${flag}: ${String(value)} passed with a failing value`);
          } else assert.ok(issueAt(r.issues, server(flag)), `refused, but not at ${server(flag)}: ${JSON.stringify(r.issues)}`);
        }),
        { numRuns: 300 },
      );
    });

    // Traefik values: random trees with hostile leaves planted at random depths. The oracle is the
    // generator's own record of what it planted, not the scanner.
    const HOSTILE_LEAVES: Array<[string, unknown]> = [
      ["privileged", true], ["hostNetwork", true], ["hostPID", true], ["hostPath", { path: "/var/run" }],
      ["insecureSkipVerify", true], ["password", "hunter2"], ["apiKey", "k-123"], ["allowPrivilegeEscalation", true],
    ];
    const benignLeaf = fc.oneof(fc.constantFrom<unknown>(1, "info", false, "web", "json"), fc.integer({ min: 1 }));
    const benignKey = fc.constantFrom("replicas", "level", "web", "annotations", "limits", "secretName", "existingSecret", "enabled", "format", "port");
    // Rooted under chart keys on the allowlist, so what refuses a planted leaf is the class scan, not the key list.
    const topKey = fc.constantFrom("logs", "resources", "tolerations", "metrics", "securityContext", "tlsStore", "podSecurityContext");
    const tree: fc.Arbitrary<{ value: Record<string, unknown>; planted: string[] }> = fc
      .record({
        top: topKey,
        path: fc.array(benignKey, { minLength: 0, maxLength: 3 }),
        leaf: fc.option(fc.constantFrom(...HOSTILE_LEAVES), { nil: undefined }),
        noise: fc.dictionary(benignKey, benignLeaf, { maxKeys: 3 }),
      })
      .map(({ top, path, leaf, noise }) => {
        const value: Record<string, unknown> = { [top]: { ...noise } };
        let at = value[top] as Record<string, unknown>;
        for (const key of path) at = (at[key] = { ...(typeof at[key] === "object" && at[key] && !Array.isArray(at[key]) ? (at[key] as object) : {}) }) as Record<string, unknown>;
        if (leaf) at[leaf[0]] = leaf[1];
        return { value, planted: leaf ? [leaf[0]] : [] };
      });
    it("Traefik values", () => {
      fc.assert(
        fc.property(tree, ({ value, planted }) => {
          const r = outcome("prod", (raw) => (k3s(raw).traefik = { values: value }));
          if (planted.length === 0) assert.ok(r.ok, `benign values refused: ${JSON.stringify(value)} ${JSON.stringify(r.ok ? [] : r.issues)}`);
          else {
            assert.equal(r.ok, false, `planted ${planted.join()} passed: ${JSON.stringify(value)}`);
            assert.ok(issueAt(r.issues, "k3s-platform:k3s.traefik.values"), JSON.stringify(r.issues));
          }
        }),
        { numRuns: 300 },
      );
    });

    // containerd template: base template plus random benign TOML lines and at most one planted
    // weakening, in any of its spellings; the oracle is what was planted.
    const PLANTED: string[] = [
      '  password = "hunter2"', "  token = 'abc'", '  identitytoken = "x"', '  auth = { username = "u", password = "p" }',
      'plugins."io.containerd.grpc.v1.cri".registry.configs."r".auth.password = "p"', "  insecure_skip_verify = true", '  endpoint = ["http://m.example.com"]',
      '  BinaryName = "/tmp/runc"', '  BinaryName = "/usr/bin/../../home/u/runc"', "  disable_apparmor = true", '  runtime_type = "/tmp/shim"',
      '  insecure_skip_verify = {{ .Insecure }}', "  tls = { insecure_skip_verify = true }", '  runtime_path = "/tmp/shim"', '    "HTTP://mirror.example.com",',
    ];
    const BENIGN: string[] = [
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."crun"]', '  runtime_type = "io.containerd.runc.v2"', '  BinaryName = "/usr/local/bin/crun"',
      "  SystemdCgroup = true", '  endpoint = ["https://mirror.example.com"]', "  enable_unprivileged_ports = true", "# password rotation is done by Vault", '  ca_file = "/etc/ssl/ca.pem"',
    ];
    it("containerd template", () => {
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...BENIGN), { maxLength: 6 }), fc.option(fc.constantFrom(...PLANTED), { nil: undefined }), fc.nat(), (lines, planted, at) => {
          const body = [...lines];
          if (planted) body.splice(at % (body.length + 1), 0, planted);
          const r = outcome("prod", (raw) => (k3s(raw).containerdTemplate = ['{{ template "base" . }}', ...body].join("\n")));
          if (!planted) assert.ok(r.ok, `benign template refused: ${JSON.stringify(body)} ${JSON.stringify(r.ok ? [] : r.issues)}`);
          else {
            assert.equal(r.ok, false, `planted ${planted} passed`);
            assert.ok(issueAt(r.issues, "k3s-platform:k3s.containerdTemplate"), JSON.stringify(r.issues));
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
