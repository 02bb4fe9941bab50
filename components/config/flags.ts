import type { FlagValue } from "./schema";

/**
 * The flag table: every long flag `k3s server` / `k3s agent` accept (also the keys of
 * /etc/rancher/k3s/config.yaml), which of them k3s-platform lets through `extraServerConfig` /
 * `extraAgentConfig`, the K3s release each flag (and each later flag value) first shipped in, and
 * the subcommands the lifecycle scripts call.
 *
 * Sources: the "K3s Server CLI Help" / "K3s Agent CLI Help" blocks of the K3s documentation
 * (k3s-io/docs `docs/cli/server.md`, `docs/cli/agent.md`), the "Version Gate" boxes of the K3s
 * docs and the K3s release notes / backport issues named next to each entry.
 *
 * Versions: the oldest K3s release k3s-platform supports is OLDEST_SUPPORTED (v1.30.0). An entry
 * without `since` predates it (it is in every supported release). An entry with `since` lists the
 * first patch release on each minor line that carries it (backports); a minor line not listed but
 * newer than every listed one has it from its first release; any other line lacks it.
 *
 * Channels (`k3s.channel` instead of `k3s.version`, refused in prod): a channel installs the newest
 * release it names, so `v1.NN` is treated as the newest patch of that line (a feature is allowed
 * when that line has it at any patch) and `stable` / `latest` / `testing` as the newest release
 * (every feature in this table is allowed). A pinned `k3s.version` is checked exactly.
 */

// ---------------------------------------------------------------- versions

export const OLDEST_SUPPORTED = { minor: 30, patch: 0, text: "v1.30.0" } as const;

/**
 * First patch per minor line, e.g. `{ 30: 12, 31: 8, 32: 4 }`, with the source of the fact; and,
 * when K3s removed or renamed the flag or value, `until`: the first patch per line WITHOUT it (a
 * line not listed but newer than every listed one lacks it too), with its own source.
 */
export interface Since {
  lines: Readonly<Record<number, number>>;
  source: string;
  until?: { lines: Readonly<Record<number, number>>; source: string; use?: string };
}

/** A K3s release or what a channel stands for (see the module comment). */
export interface K3sRelease {
  minor: number;
  /** Infinity for a `v1.NN` channel (its newest patch). */
  patch: number;
  /** As the user wrote it: `v1.31.4+k3s1`, or `channel v1.31`. */
  text: string;
  pinned: boolean;
}

/** The release the config installs; undefined when neither version nor channel is set. */
export function releaseOf(k3s: { version?: string; channel?: string }): K3sRelease | undefined {
  if (k3s.version) {
    const m = /^v1\.(\d+)\.(\d+)\+k3s\d+$/.exec(k3s.version);
    if (!m) return undefined;
    return { minor: Number(m[1]), patch: Number(m[2]), text: k3s.version, pinned: true };
  }
  if (k3s.channel) {
    const m = /^v1\.(\d+)$/.exec(k3s.channel);
    if (m) return { minor: Number(m[1]), patch: Infinity, text: `channel ${k3s.channel}`, pinned: false };
    return { minor: Infinity, patch: Infinity, text: `channel ${k3s.channel}`, pinned: false };
  }
  return undefined;
}

export function isSupportedRelease(release: K3sRelease): boolean {
  return release.minor > OLDEST_SUPPORTED.minor || (release.minor === OLDEST_SUPPORTED.minor && release.patch >= OLDEST_SUPPORTED.patch);
}

/** Whether `release` has a feature first shipped per `since`. */
export function hasFeature(since: Since | undefined, release: K3sRelease): boolean {
  if (!since) return true;
  if (since.until && reached(since.until.lines, release)) return false;
  // No lines: the feature predates OLDEST_SUPPORTED (a Since that only records a removal).
  return Object.keys(since.lines).length === 0 || reached(since.lines, release);
}

/** Whether `release` is at or past the first patch per line in `lines` (see Since). */
function reached(lines: Readonly<Record<number, number>>, release: K3sRelease): boolean {
  const patch = lines[release.minor];
  if (patch !== undefined) return release.patch >= patch;
  return release.minor > Math.max(...Object.keys(lines).map(Number));
}

/**
 * Why `release` lacks the feature, in the words users see:
 * `needs K3s v1.31.8+ on the v1.31 line (pinned v1.31.4+k3s1)`.
 */
export function missingFeature(since: Since, release: K3sRelease): string {
  const where = release.pinned ? `pinned ${release.text}` : release.text;
  if (since.until && reached(since.until.lines, release)) {
    const removed = Object.entries(since.until.lines).map(([minor, p]) => `v1.${minor}.${p}`).join(", ");
    return `was removed from K3s in ${removed} (${since.until.source})${since.until.use ? `; ${since.until.use}` : ""} (${where})`;
  }
  const patch = since.lines[release.minor];
  if (patch !== undefined) return `needs K3s v1.${release.minor}.${patch}+ on the v1.${release.minor} line (${where})`;
  const first = Object.entries(since.lines)
    .map(([minor, p]) => ({ minor: Number(minor), patch: p }))
    .filter((l) => l.minor > release.minor)
    .sort((a, b) => a.minor - b.minor)[0];
  const lines = Object.entries(since.lines).map(([minor, p]) => `v1.${minor}.${p}`).join(", ");
  return first
    ? `needs K3s v1.${first.minor}.${first.patch}+ (not on the v1.${release.minor} line; first in ${lines}) (${where})`
    : `is not in K3s v1.${release.minor} (first in ${lines}) (${where})`;
}

// ---------------------------------------------------------------- flags

/**
 * How a flag may reach a node:
 * - `pass-through`: allowed in extraServerConfig / extraAgentConfig (still version- and CIS-checked);
 * - `managed`: rendered from typed config (`use` names the typed key), refused in pass-through;
 * - `secret`: carries a credential, refused in pass-through (it would land in a staged file and in
 *   Pulumi state); `use` names the secure config key, when there is one;
 * - `destructive`: wipes or resets cluster state; refused;
 * - `refused`: breaks what k3s-platform's scripts rely on (`use` says why).
 */
export type FlagClass = "pass-through" | "managed" | "secret" | "destructive" | "refused";

export interface FlagSpec {
  name: string;
  /** `agent`: both `k3s agent` and `k3s server` accept it (a server runs an agent). */
  scope: "agent" | "server";
  class: FlagClass;
  use?: string;
  since?: Since;
  /** Values added after the flag itself. */
  values?: Readonly<Record<string, Since>>;
}

const SECRETS_PROVIDER: Since = {
  lines: { 30: 12, 31: 8, 32: 4, 33: 0 },
  source: "docs.k3s.io/security/secrets-encryption Version Gate (April 2025 releases); k3s-io/k3s#12222",
};
const S3_CONFIG_SECRET: Since = {
  lines: { 30: 3 },
  source: "July 2024 releases: k3s-io/k3s#10487 (release-1.30 backport, validated on v1.30.3-rc1)",
};
const SUPERVISOR_METRICS: Since = {
  lines: { 30: 2 },
  source: "June 2024 releases: k3s-io/k3s#10019 (master → v1.31), backports k3s-io/k3s#10233 (v1.29.6) / #10234 (v1.28.11); v1.30 line from v1.30.2",
};
const NONROOT_DEVICES: Since = {
  lines: { 32: 0 },
  source: "k3s-io/k3s#11200 merged to master 2024-10-30 (v1.32.0); backports to older lines not verified, so they are refused there",
};

/** `--etcd-s3-retention`: "Add retention flag specific for s3" in v1.32.8+k3s1 (k3s-io/k3s#12695) and v1.33.4+k3s1 (#12694), docs.k3s.io/release-notes/v1.32.X and v1.33.X; v1.31/v1.30 backports not in the notes searched, so refused there. */
export const S3_RETENTION: Since = {
  lines: { 32: 8, 33: 4 },
  source: "docs.k3s.io/release-notes v1.32.8+k3s1 (k3s-io/k3s#12695), v1.33.4+k3s1 (#12694)",
};
/** `--write-kubeconfig-name` (cluster, user and context name in the generated kubeconfig): v1.37.0+k3s1 (k3s-io/k3s#14440, docs.k3s.io/release-notes/v1.37.X). */
export const WRITE_KUBECONFIG_NAME: Since = {
  lines: { 37: 0 },
  source: "docs.k3s.io/release-notes/v1.37.X v1.37.0+k3s1 (k3s-io/k3s#14440)",
};
/**
 * ServiceLB: a node in more than one pool ("Servicelb multiple lbpools", k3s-io/k3s#14547 in the
 * v1.37.1+k3s1 backports #14631, docs.k3s.io/release-notes/v1.37.X; request: k3s-io/k3s#13894).
 * Before, a node carries one `svccontroller.k3s.cattle.io/lbpool` label value.
 */
export const SERVICELB_MULTIPLE_POOLS: Since = {
  lines: { 37: 1 },
  source: "docs.k3s.io/release-notes/v1.37.X v1.37.1+k3s1 (k3s-io/k3s#14547)",
};
/**
 * From Kubernetes v1.35 (K3s v1.35.0) the kubelet refuses to start on a cgroup v1 host: its config
 * option failCgroupV1 defaults to true (KEP-5573, git.k8s.io/enhancements/keps/sig-node/5573-cgroup-v1-unsupported;
 * kubernetes/system-validators#59: "To explicitly enable cgroups v1 support, you must set the kubelet
 * configuration option 'FailCgroupV1' to 'false'"). The host preflight checks the cgroup version
 * (node preflight, another change); validation notes an opt-out (`kubelet-arg: fail-cgroupv1=false`).
 */
export const KUBELET_REFUSES_CGROUP_V1: Since = {
  lines: { 35: 0 },
  source: "KEP-5573 (sig-node 5573-cgroup-v1-unsupported), Kubernetes v1.35; kubernetes/system-validators#59",
};

/** The embedded registry mirror left experimental (docs.k3s.io installation/registry-mirror Version Gate). */
export const EMBEDDED_REGISTRY_GA: Since = {
  lines: { 29: 12, 30: 8, 31: 4 },
  source: "docs.k3s.io/installation/registry-mirror Version Gate: GA as of December 2024 releases v1.29.12, v1.30.8, v1.31.4",
};
/**
 * K3s bundles containerd 2.0 (config version 3; user template `config-v3.toml.tmpl`) from these
 * releases; before, containerd 1.7 reads `config.toml.tmpl` (k3s-io/docs advanced.md Version Gate
 * "K3s includes containerd 2.0 as of the February 2025 releases: v1.31.6+k3s1 and v1.32.2+k3s1";
 * k3s-io/k3s#11626).
 */
export const CONTAINERD_2: Since = {
  lines: { 31: 6, 32: 2 },
  source: "k3s-io/docs advanced.md Version Gate (February 2025 releases v1.31.6+k3s1, v1.32.2+k3s1); k3s-io/k3s#11626",
};

/**
 * Backends K3s removed: `wireguard` (v1.26) and `ipsec` (v1.27), both replaced by
 * wireguard-native (docs.k3s.io basic-network-options "Migrating from wireguard or ipsec to
 * wireguard-native"; k3s-io/k3s#7297). Every supported release lacks them, so they are refused
 * with the replacement named instead of zod's generic "invalid option".
 */
export const REMOVED_FLANNEL_BACKENDS: Readonly<Record<string, string>> = {
  wireguard: "the wireguard backend was removed in K3s v1.26 (it needed the wg tool): use wireguard-native",
  ipsec: "the ipsec backend was removed in K3s v1.27 (strongSwan is no longer shipped): use wireguard-native",
};

/**
 * The structured AuthenticationConfiguration (`kube-apiserver --authentication-config`, KEP-3331):
 * alpha in Kubernetes v1.29 (apiserver.config.k8s.io/v1alpha1, behind a gate), beta and on by
 * default from v1.30 (v1beta1; kubernetes/website#45108 "Starting Kubernetes 1.30 … only requires
 * specifying --authentication-config"), stable in v1.34 (v1; kubernetes/enhancements#3331 stable
 * target v1.34, kubernetes/kubernetes#131916). Every supported release (OLDEST_SUPPORTED v1.30)
 * reads v1beta1; from v1.34 k3s-platform writes v1.
 */
export const AUTHENTICATION_CONFIG_V1: Since = {
  lines: { 34: 0 },
  source: "KEP-3331 stable in Kubernetes v1.34 (kubernetes/enhancements#3331, kubernetes/kubernetes#131916)",
};

const f = (name: string, scope: FlagSpec["scope"], cls: FlagClass, use?: string, extra: Partial<FlagSpec> = {}): FlagSpec => ({
  name,
  scope,
  class: cls,
  ...(use ? { use } : {}),
  ...extra,
});
const pass = (name: string, scope: FlagSpec["scope"], extra: Partial<FlagSpec> = {}) => f(name, scope, "pass-through", undefined, extra);

const SCRIPTS_NEED = "k3s-platform's scripts rely on the default";

export const FLAGS: readonly FlagSpec[] = [
  // ---- agent and server
  f("config", "agent", "refused", "k3s-platform writes /etc/rancher/k3s/config.yaml; a second config file would bypass validation and the policies"),
  pass("debug", "agent"),
  pass("v", "agent"),
  pass("vmodule", "agent"),
  pass("log", "agent"),
  pass("alsologtostderr", "agent"),
  f("token", "agent", "secret", "the secure key k3s-platform:token"),
  f("token-file", "agent", "secret", "the secure key k3s-platform:token"),
  f("server", "agent", "managed", "the node list (joining servers and agents point at the first server or k3s.apiEndpoint)"),
  f("data-dir", "agent", "refused", `${SCRIPTS_NEED} /var/lib/rancher/k3s (CIS files, encryption config, readiness checks)`),
  f("node-name", "agent", "managed", "nodes[].name"),
  f("with-node-id", "agent", "refused", "node names must equal nodes[].name (readiness checks, labels, decommission)"),
  f("node-label", "agent", "managed", "nodes[].labels"),
  f("node-taint", "agent", "managed", "nodes[].taints"),
  pass("image-credential-provider-bin-dir", "agent"),
  pass("image-credential-provider-config", "agent"),
  f("selinux", "agent", "managed", "k3s.selinux"),
  pass("lb-server-port", "agent"),
  pass("protect-kernel-defaults", "agent"),
  pass("container-runtime-endpoint", "agent"),
  // default-runtime: November 2023 releases (k3s-io/k3s#8751, fixes #8700; v1.29.0 and backports), predates v1.30.
  f("default-runtime", "agent", "managed", "k3s.defaultRuntime"),
  pass("image-service-endpoint", "agent"),
  pass("pause-image", "agent"),
  // stargz is a value since v1.20 (K3s advanced docs "Enabling Lazy Pulling of eStargz"), predates v1.30.
  f("snapshotter", "agent", "managed", "k3s.snapshotter"),
  f("private-registry", "agent", "managed", "k3s.registries (written to /etc/rancher/k3s/registries.yaml)"),
  pass("disable-default-registry-endpoint", "agent"),
  pass("nonroot-devices", "agent", { since: NONROOT_DEVICES }),
  f("node-ip", "agent", "managed", "nodes[].nodeIp"),
  pass("bind-address", "agent"),
  f("node-external-ip", "agent", "managed", "nodes[].externalIp"),
  pass("node-internal-dns", "agent"),
  pass("node-external-dns", "agent"),
  f("resolv-conf", "agent", "managed", "k3s-platform:dns.upstreams"),
  pass("flannel-iface", "agent"),
  pass("flannel-conf", "agent"),
  pass("flannel-cni-conf", "agent"),
  pass("kubelet-arg", "agent"),
  pass("kube-proxy-arg", "agent"),
  pass("enable-pprof", "agent"),
  f("rootless", "agent", "refused", "rootless mode uses other paths and user units than k3s-platform's install and apply scripts"),
  f("prefer-bundled-bin", "agent", "managed", "k3s.preferBundledBin"),
  f("docker", "agent", "managed", "k3s.docker"),
  // vpn-auth (Tailscale): v1.27.3 / v1.26.6 / v1.25.11 (docs.k3s.io networking/distributed-multicloud), predates v1.30.
  f("vpn-auth", "agent", "secret", "k3s.vpn with the secure key k3s-platform:vpnAuthKey (written to the secrets drop-in)"),
  pass("vpn-auth-file", "agent"),
  pass("disable-apiserver-lb", "agent"),

  // ---- server only
  f("https-listen-port", "server", "refused", `${SCRIPTS_NEED} API port 6443 (joins, kubeconfig, network policies, firewall)`),
  pass("advertise-address", "server"),
  f("advertise-port", "server", "refused", `${SCRIPTS_NEED} API port 6443 (joins, kubeconfig, network policies, firewall)`),
  f("tls-san", "server", "managed", "k3s.tlsSan"),
  pass("tls-san-security", "server"),
  f("cluster-cidr", "server", "managed", "k3s.clusterCidr"),
  f("service-cidr", "server", "managed", "k3s.serviceCidr"),
  pass("service-node-port-range", "server"),
  f("cluster-dns", "server", "managed", "k3s.clusterDns"),
  f("cluster-domain", "server", "managed", "k3s.clusterDomain"),
  // vxlan, host-gw, none predate v1.30; wireguard-native replaced `wireguard` in v1.26
  // (K3s v1.27.1 release notes); ipsec was removed in v1.27 (k3s-io/k3s#7297): the schema refuses
  // both with the replacement named (schema/network.ts REMOVED_FLANNEL_BACKENDS).
  f("flannel-backend", "server", "managed", "k3s.flannelBackend (or k3s.cni)"),
  // Dual-stack (stable v1.23.7+k3s1) and IPv6-only (v1.22.9+k3s1) predate v1.30 (docs.k3s.io
  // basic-network-options Version Gates): cluster-cidr, service-cidr, cluster-dns, node-ip and
  // node-external-ip take one value per family, comma-joined; no `since` needed.
  f("flannel-ipv6-masq", "server", "managed", "k3s.flannelIpv6Masq"),
  // flannel-external-ip predates v1.30 (docs.k3s.io networking/distributed-multicloud).
  f("flannel-external-ip", "server", "managed", "k3s.flannelExternalIp"),
  pass("egress-selector-mode", "server"),
  pass("servicelb-namespace", "server"),
  f("write-kubeconfig", "server", "refused", `${SCRIPTS_NEED} kubeconfig path /etc/rancher/k3s/k3s.yaml (the kubeconfig output reads it)`),
  pass("write-kubeconfig-mode", "server"),
  pass("write-kubeconfig-group", "server"),
  pass("write-kubeconfig-name", "server", { since: WRITE_KUBECONFIG_NAME }),
  pass("helm-job-image", "server"),
  f("agent-token", "server", "secret", "the secure key k3s-platform:agentToken"),
  f("agent-token-file", "server", "secret", "the secure key k3s-platform:agentToken"),
  f("cluster-init", "server", "managed", "k3s.datastore (the first server initialises embedded etcd)"),
  f("cluster-reset", "server", "destructive", "resets etcd membership to this node; run the restore runbook by hand instead"),
  f("cluster-reset-restore-path", "server", "destructive", "restores etcd from a snapshot, discarding newer state; run the restore runbook by hand instead"),
  pass("kube-apiserver-arg", "server"),
  pass("etcd-arg", "server"),
  pass("kube-controller-manager-arg", "server"),
  pass("kube-scheduler-arg", "server"),
  pass("kube-cloud-controller-manager-arg", "server"),
  f("datastore-endpoint", "server", "secret", "the secure key k3s-platform:datastoreEndpoint"),
  f("datastore-cafile", "server", "managed", "k3s.datastore.caFile"),
  f("datastore-certfile", "server", "managed", "k3s.datastore.certFile"),
  f("datastore-keyfile", "server", "managed", "k3s.datastore.keyFile"),
  pass("etcd-expose-metrics", "server"),
  f("etcd-disable-snapshots", "server", "refused", "snapshots are the only way back from a broken etcd; tune k3s.etcdSnapshots instead"),
  pass("etcd-snapshot-name", "server"),
  f("etcd-snapshot-schedule-cron", "server", "managed", "k3s.etcdSnapshots.scheduleCron"),
  f("etcd-snapshot-retention", "server", "managed", "k3s.etcdSnapshots.retention"),
  f("etcd-snapshot-dir", "server", "managed", "k3s.etcdSnapshots.dir"),
  f("etcd-snapshot-compress", "server", "managed", "k3s.etcdSnapshots.compress"),
  f("etcd-s3", "server", "managed", "k3s.etcdSnapshots.s3"),
  f("etcd-s3-endpoint", "server", "managed", "k3s.etcdSnapshots.s3.endpoint"),
  f("etcd-s3-endpoint-ca", "server", "managed", "k3s.etcdSnapshots.s3.endpointCa"),
  f("etcd-s3-skip-ssl-verify", "server", "managed", "k3s.etcdSnapshots.s3.skipSslVerify"),
  f("etcd-s3-access-key", "server", "secret", "the secure key k3s-platform:etcdS3AccessKey"),
  f("etcd-s3-secret-key", "server", "secret", "the secure key k3s-platform:etcdS3SecretKey"),
  f("etcd-s3-bucket", "server", "managed", "k3s.etcdSnapshots.s3.bucket"),
  f("etcd-s3-region", "server", "managed", "k3s.etcdSnapshots.s3.region"),
  f("etcd-s3-folder", "server", "managed", "k3s.etcdSnapshots.s3.folder"),
  f("etcd-s3-insecure", "server", "managed", "k3s.etcdSnapshots.s3.insecure"),
  f("etcd-s3-timeout", "server", "managed", "k3s.etcdSnapshots.s3.timeout"),
  pass("etcd-s3-proxy", "server", { since: S3_CONFIG_SECRET }),
  pass("etcd-s3-retention", "server", { since: S3_RETENTION }),
  pass("etcd-s3-config-secret", "server", { since: S3_CONFIG_SECRET }),
  pass("default-local-storage-path", "server"),
  // traefik, servicelb, coredns, metrics-server, local-storage predate v1.30; runtimes (the
  // RuntimeClass add-on) existed by February 2024 (k3s-io/docs#246).
  f("disable", "server", "managed", "k3s.disable"),
  pass("disable-scheduler", "server"),
  pass("disable-cloud-controller", "server"),
  // Only a CNI that replaces kube-proxy may turn it off; flannel does not, and without kube-proxy no
  // Service (the API Service, cluster DNS) answers pods (docs.k3s.io basic-network-options "Custom CNI").
  f("disable-kube-proxy", "server", "managed", "k3s.cni: { type: cilium } (kubeProxyReplacement) or { type: none, replacesKubeProxy: true }; flannel does not replace kube-proxy, so without it no Service would answer pods"),
  pass("disable-network-policy", "server"),
  pass("disable-helm-controller", "server"),
  f("disable-apiserver", "server", "refused", "split-role servers (etcd-only / control-plane-only) are not modelled: readiness checks need the API on every server"),
  f("disable-controller-manager", "server", "refused", "split-role servers are not modelled by k3s-platform"),
  f("disable-etcd", "server", "refused", "split-role servers are not modelled: every server must be an etcd member for quorum checks"),
  // Experimental from v1.29.1 (January 2024), GA in v1.29.12 / v1.30.8 / v1.31.4 (docs.k3s.io
  // installation/registry-mirror Version Gate): present in every supported release; validation warns
  // below EMBEDDED_REGISTRY_GA.
  f("embedded-registry", "server", "managed", "k3s.embeddedRegistry"),
  pass("supervisor-metrics", "server", { since: SUPERVISOR_METRICS }),
  pass("system-default-registry", "server"),
  f("secrets-encryption", "server", "managed", "k3s-platform:encryption"),
  f("secrets-encryption-provider", "server", "managed", "k3s-platform:encryption.provider", { since: SECRETS_PROVIDER }),
  f("disable-agent", "server", "refused", "a server without an agent never registers as a node, so apply never sees it Ready"),
];

export const FLAG_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((s) => [s.name, s]));

/** Flags both `k3s agent` and `k3s server` accept. */
export const AGENT_FLAGS: readonly string[] = FLAGS.filter((s) => s.scope === "agent").map((s) => s.name);
export const SERVER_ONLY_FLAGS: readonly string[] = FLAGS.filter((s) => s.scope === "server").map((s) => s.name);
export const SERVER_FLAGS: ReadonlySet<string> = new Set(FLAGS.map((s) => s.name));
export const AGENT_FLAG_SET: ReadonlySet<string> = new Set(AGENT_FLAGS);

/** Secret flags: never in config.yaml, only in the secrets drop-in written from Pulumi secrets. */
export const SECRET_FLAGS: ReadonlySet<string> = new Set(FLAGS.filter((s) => s.class === "secret").map((s) => s.name));

/** Values every server must share, or a joining server fails (K3s "critical configuration"). */
export const CRITICAL_SERVER_FLAGS: readonly string[] = [
  "agent-token", "cluster-cidr", "cluster-dns", "cluster-domain", "disable-cloud-controller",
  "disable-helm-controller", "disable-network-policy", "egress-selector-mode",
  "embedded-registry", "flannel-backend", "flannel-external-ip", "flannel-ipv6-masq",
  "secrets-encryption", "secrets-encryption-provider", "service-cidr",
];

/** Why a pass-through key is refused, or undefined when it may pass. */
export function passThroughRefusal(spec: FlagSpec): string | undefined {
  switch (spec.class) {
    case "pass-through":
      return undefined;
    case "managed":
      return `"${spec.name}" is managed by k3s-platform; set ${spec.use} instead`;
    case "secret":
      return `"${spec.name}" carries a credential and would land in plain text in a staged file and in Pulumi state; use ${spec.use} instead`;
    case "destructive":
      return `"${spec.name}" is destructive and never set through config: ${spec.use}`;
    case "refused":
      return `"${spec.name}" is not supported: ${spec.use}`;
  }
}

/** A flag or value the release lacks: `[flag, value | undefined, why]`. */
export function versionGaps(flags: Record<string, FlagValue>, release: K3sRelease): Array<{ flag: string; value?: string; why: string }> {
  const out: Array<{ flag: string; value?: string; why: string }> = [];
  for (const [flag, value] of Object.entries(flags)) {
    const spec = FLAG_BY_NAME.get(flag);
    if (!spec) continue;
    if (!hasFeature(spec.since, release)) {
      out.push({ flag, value: typeof value === "string" ? value : undefined, why: missingFeature(spec.since!, release) });
      continue;
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      const since = spec.values?.[String(v)];
      if (since && !hasFeature(since, release)) out.push({ flag, value: String(v), why: missingFeature(since, release) });
    }
  }
  return out;
}

// ---------------------------------------------------------------- subcommands

/** Subcommands the lifecycle scripts run, with the release each appeared in. */
export const SUBCOMMANDS = {
  // Secrets encryption tool: v1.21.8 (docs.k3s.io/cli/secrets-encrypt), predates v1.30.
  "secrets-encrypt status": undefined,
  "secrets-encrypt enable": undefined,
  "secrets-encrypt prepare": undefined,
  "secrets-encrypt rotate": undefined,
  "secrets-encrypt reencrypt": undefined,
  "secrets-encrypt rotate-keys": {
    lines: { 30: 5, 31: 1, 32: 0 },
    source: "docs.k3s.io/cli/secrets-encrypt 'Encryption Key Rotation' (September 2024 releases v1.30.5, v1.31.1)",
  },
  // v1.28.3 (K3s v1.28.3+k3s1 release notes, k3s-io/k3s#8392): predates v1.30.
  "token rotate": undefined,
  // `k3s certificate rotate`: v1.21 (k3s-io/k3s#4632); `certificate check`: March 2024 (k3s-io/k3s#9772).
  "certificate rotate": undefined,
  "certificate check": undefined,
  "certificate check --output": {
    lines: { 30: 13, 31: 9, 32: 5, 33: 1 },
    source: "k3s-io/k3s#12049 and backports #12286-#12289 (validated 2025-05-15 on the branches after v1.30.12/v1.31.8/v1.32.4/v1.33.0)",
  },
  "etcd-snapshot save": undefined,
  // `k3s certificate rotate-ca` exists since v1.25 (k3s-io/k3s#7079), but until the October 2025
  // backports a rotated CA did not reach the supervisor's serving certificate at once (k3s-io/k3s#13006,
  // #13007: "CA cert rotation does not trigger immediate update to dynamiclistener cert"): the fix
  // "Create dynamic-cert-regenerate file in CA cert rotation handler" ships in v1.33.6+k3s1 and
  // v1.34.2+k3s1 (docs.k3s.io/release-notes/v1.33.X, v1.34.X "Backports for 2025-10"), and every
  // later line. k3s-platform runs no CA rotation; docs/rotation.md names this gate for the manual one.
  "certificate rotate-ca": {
    lines: { 33: 6, 34: 2 },
    source: "k3s-io/k3s#13006/#13007; docs.k3s.io/release-notes/v1.33.X (v1.33.6+k3s1), v1.34.X (v1.34.2+k3s1): Backports for 2025-10",
  },
} as const satisfies Record<string, Since | undefined>;
export type Subcommand = keyof typeof SUBCOMMANDS;

/**
 * Whether the configured release has `k3s <subcommand>`; renderers choose a fallback (or
 * validation refuses) when it has not. No release configured: assume the newest.
 */
export function hasSubcommand(subcommand: Subcommand, k3s: { version?: string; channel?: string }): boolean {
  const release = releaseOf(k3s);
  return !release || hasFeature(SUBCOMMANDS[subcommand], release);
}

/** `undefined` when available, else the reason (`needs K3s v1.31.1+ on the v1.31 line (…)`). */
export function subcommandGap(subcommand: Subcommand, k3s: { version?: string; channel?: string }): string | undefined {
  const release = releaseOf(k3s);
  const since = SUBCOMMANDS[subcommand];
  if (!release || !since || hasFeature(since, release)) return undefined;
  return `k3s ${subcommand} ${missingFeature(since, release)}`;
}

// ---------------------------------------------------------------- CIS: what weakens hardening

/** CIS-approved kubelet TLS cipher suites (K3s hardening guide). */
export const CIS_KUBELET_CIPHERS = [
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
];

/**
 * TLS cipher suites known strong: the CIS list above and the TLS 1.3 suites (Go always enables
 * those; a list naming them is still strong).
 */
export const STRONG_CIPHERS: readonly string[] = [...CIS_KUBELET_CIPHERS, "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

/** The `name=value` args of a `*-arg` flag; K3s passes repeated names through, the last one wins. */
export function argMap(value: FlagValue | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of value === undefined ? [] : Array.isArray(value) ? value : [String(value)]) {
    const eq = entry.indexOf("=");
    out.set((eq < 0 ? entry : entry.slice(0, eq)).replace(/^-+/, ""), eq < 0 ? "true" : entry.slice(eq + 1));
  }
  return out;
}

const isFalse = (v: FlagValue | undefined) => v === false || v === "false";
const isTrue = (v: string | undefined) => v !== undefined && v.toLowerCase() === "true";

/**
 * Component args the CIS profile sets that name files k3s-platform renders (the admission and
 * audit configuration): a second value would replace them unchecked, so it is refused. Profile
 * args with a value (audit-log-max*, admission plugins, token expiration, kubelet ciphers and
 * stream timeout) may be set again: the component takes the last value, and cisWeakenings checks
 * that final value against the profile's minimum.
 */
export const CIS_COMPONENT_ARGS: Readonly<Record<string, readonly string[]>> = {
  "kube-apiserver-arg": ["admission-control-config-file", "audit-log-path", "audit-policy-file"],
};

/**
 * Component args rendered from typed config: a pass-through `*-arg` entry for one of them is
 * refused (whatever the hardening), naming the typed key.
 */
export const MANAGED_COMPONENT_ARGS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "kubelet-arg": {
    "eviction-hard": "k3s.kubelet.evictionHard",
    "eviction-soft": "k3s.kubelet.evictionSoft",
    "eviction-soft-grace-period": "k3s.kubelet.evictionSoftGracePeriod",
    "eviction-max-pod-grace-period": "k3s.kubelet.evictionMaxPodGracePeriod",
    "system-reserved": "k3s.kubelet.systemReserved",
    "kube-reserved": "k3s.kubelet.kubeReserved",
    "max-pods": "k3s.kubelet.maxPods",
    "node-status-update-frequency": "k3s.kubelet.nodeStatusUpdateFrequency",
  },
  "kube-apiserver-arg": {
    "default-not-ready-toleration-seconds": "k3s.apiServer.defaultNotReadyTolerationSeconds",
    "default-unreachable-toleration-seconds": "k3s.apiServer.defaultUnreachableTolerationSeconds",
    "encryption-provider-config": "k3s-platform:encryption (mode: custom)",
    "encryption-provider-config-automatic-reload": "k3s-platform:encryption (mode: custom)",
    "authentication-config": "k3s.apiServer.authentication",
  },
  "kube-controller-manager-arg": {
    "node-monitor-grace-period": "k3s.controllerManager.nodeMonitorGracePeriod",
    "terminated-pod-gc-threshold": "k3s.controllerManager.terminatedPodGcThreshold",
  },
};

/** Names set more than once in a `*-arg` list: a later entry overrides an earlier one. */
function overridden(value: FlagValue | undefined, names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  for (const entry of value === undefined ? [] : Array.isArray(value) ? value : [String(value)]) {
    const name = entry.split("=")[0]!.replace(/^-+/, "");
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  return names.filter((n) => (seen.get(n) ?? 0) > 1);
}

/**
 * What in a node's final flags (config.yaml + drop-ins) undoes the K3s CIS profile. The one
 * predicate behind validation (on what the config renders) and the `node-final-flags-cis`
 * policy (on the flags registered on each K3sNode). Returns `[flag, message]` pairs.
 * `networkPolicyBy`: what enforces NetworkPolicy instead of K3s' controller (config/network-rules.ts
 * networkPolicyEnforcer), registered on the node as `networkPolicyBy`.
 */
export function cisWeakenings(flags: Record<string, FlagValue>, role: "server" | "agent", networkPolicyBy?: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (flags["protect-kernel-defaults"] !== true && flags["protect-kernel-defaults"] !== "true") {
    out.push(["protect-kernel-defaults", "CIS requires protect-kernel-defaults: true"]);
  }
  const kubelet = argMap(flags["kubelet-arg"]);
  if (isTrue(kubelet.get("anonymous-auth"))) out.push(["kubelet-arg", "kubelet anonymous-auth=true lets anyone reach the kubelet API"]);
  const readOnly = kubelet.get("read-only-port");
  if (readOnly !== undefined && readOnly !== "0") out.push(["kubelet-arg", `kubelet read-only-port=${readOnly} serves pod data without authentication (CIS: 0)`]);
  if (kubelet.get("authorization-mode")?.includes("AlwaysAllow")) out.push(["kubelet-arg", "kubelet authorization-mode AlwaysAllow"]);
  if (isFalse(kubelet.get("protect-kernel-defaults"))) out.push(["kubelet-arg", "kubelet protect-kernel-defaults=false"]);
  if (isFalse(kubelet.get("make-iptables-util-chains"))) out.push(["kubelet-arg", "kubelet make-iptables-util-chains=false"]);
  if (["0", "0s"].includes(kubelet.get("streaming-connection-idle-timeout") ?? "")) out.push(["kubelet-arg", "kubelet streaming-connection-idle-timeout=0 keeps idle streams open forever"]);
  const ciphers = kubelet.get("tls-cipher-suites");
  if (ciphers === undefined) out.push(["kubelet-arg", "CIS requires kubelet tls-cipher-suites restricted to strong ciphers"]);
  else {
    const weak = ciphers.split(",").filter((c) => !STRONG_CIPHERS.includes(c.trim()));
    if (weak.length) out.push(["kubelet-arg", `kubelet tls-cipher-suites includes ciphers outside the CIS list: ${weak.join(", ")}`]);
  }
  if (role === "agent") return out;

  const mode = flags["write-kubeconfig-mode"];
  if (mode !== undefined && (!/^0?[0-7]{3}$/.test(String(mode)) || (parseInt(String(mode), 8) & 0o177) !== 0)) {
    out.push(["write-kubeconfig-mode", `write-kubeconfig-mode ${String(mode)} is looser than 0600 (the admin kubeconfig)`]);
  }
  const api = argMap(flags["kube-apiserver-arg"]);
  const customEncryption = api.has("encryption-provider-config");
  if (!(flags["secrets-encryption"] === true || flags["secrets-encryption"] === "true") && !customEncryption) {
    out.push(["secrets-encryption", "CIS requires secrets encryption at rest"]);
  }
  const noNetpol = flags["disable-network-policy"];
  // K3s' controller may be off only when another engine enforces policy (Cilium, or a CNI the stack
  // names in k3s.cni.networkPolicyEnforcedBy) and flannel is off (the CNI is that engine's).
  const replaced = networkPolicyBy !== undefined && flags["flannel-backend"] === "none";
  if ((noNetpol === true || noNetpol === "true") && !replaced) {
    out.push(["disable-network-policy", "CIS expects NetworkPolicies enforced in every namespace"]);
  }
  const plugins = (api.get("enable-admission-plugins") ?? "").split(",");
  for (const p of ["NodeRestriction", "EventRateLimit"]) if (!plugins.includes(p)) out.push(["kube-apiserver-arg", `enable-admission-plugins lacks ${p}`]);
  const disabled = (api.get("disable-admission-plugins") ?? "").split(",").filter((p) => ["NodeRestriction", "EventRateLimit", "PodSecurity"].includes(p));
  if (disabled.length) out.push(["kube-apiserver-arg", `disable-admission-plugins turns off ${disabled.join(", ")}`]);
  if (!api.get("admission-control-config-file")) out.push(["kube-apiserver-arg", "no admission-control-config-file (Pod Security restricted)"]);
  if (isTrue(api.get("anonymous-auth"))) out.push(["kube-apiserver-arg", "API server anonymous-auth=true"]);
  if (isTrue(api.get("profiling"))) out.push(["kube-apiserver-arg", "API server profiling=true"]);
  if (api.get("authorization-mode")?.includes("AlwaysAllow")) out.push(["kube-apiserver-arg", "API server authorization-mode AlwaysAllow"]);
  if (!api.get("audit-log-path") || !api.get("audit-policy-file")) out.push(["kube-apiserver-arg", "CIS requires audit-log-path and audit-policy-file"]);
  if (api.get("service-account-extend-token-expiration") !== "false") out.push(["kube-apiserver-arg", "CIS requires service-account-extend-token-expiration=false"]);
  for (const [name, min] of [["audit-log-maxage", 30], ["audit-log-maxbackup", 10], ["audit-log-maxsize", 100]] as const) {
    const v = Number(api.get(name));
    if (!(v >= min)) out.push(["kube-apiserver-arg", `CIS requires ${name} of at least ${min} (got ${api.get(name) ?? "none"})`]);
  }
  for (const name of overridden(flags["kube-apiserver-arg"], CIS_COMPONENT_ARGS["kube-apiserver-arg"]!)) out.push(["kube-apiserver-arg", `${name} is set twice: a later value overrides the CIS one`]);
  return out;
}

/** `name=value` (or a bare `name`) as K3s passes to the component; no leading dashes, no spaces in the name. */
export const COMPONENT_ARG = /^[a-z0-9][a-z0-9.-]*(=.*)?$/;
export const COMPONENT_ARG_FLAGS = [
  "kubelet-arg", "kube-proxy-arg", "kube-apiserver-arg", "etcd-arg", "kube-controller-manager-arg",
  "kube-scheduler-arg", "kube-cloud-controller-manager-arg",
];
