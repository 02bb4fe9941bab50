import { isCanonicalIp, isDnsName, parseIp } from "./net";
import { DURATION } from "./schema/primitives";
import { STRONG_CIPHERS } from "./flags";

/**
 * The prod allowlist of pass-through settings: every K3s flag (extraServerConfig /
 * extraAgentConfig) and every `*-arg` entry that may appear in a prod stack without an exception,
 * because it is known not to weaken authentication, authorization, TLS, audit, admission,
 * encryption or exposure. Anything not listed here is refused in prod (a warning in dev and
 * staging) unless the stack carries a reasoned exception (`k3s.exceptions`, surfaces.ts). Where
 * a listed setting takes a value, the value is checked too: a setting is on the list *with* the
 * values known safe, not for any value.
 *
 * Sources: the K3s server/agent CLI help (k3s-io/docs docs/cli/server.md, agent.md), the K3s CIS
 * hardening guide (docs.k3s.io/security/hardening-guide), the CIS Kubernetes Benchmark sections
 * named per component, and the Kubernetes component references
 * (kubernetes.io/docs/reference/command-line-tools-reference/<component>/, etcd.io/docs
 * op-guide/configuration). Pure data and pure checks.
 */

/** `undefined` when the value is known safe, else why not (in the words users see). */
export type ValueCheck = (value: string, context: AllowlistContext) => string | undefined;

/** What a value check may need beyond the value. */
export interface AllowlistContext {
  flannelBackend: string;
  /** default-local-storage-path as configured (K3s default /var/lib/rancher/k3s/storage): tenants write there. */
  localStoragePath: string;
}

export interface Allowed {
  /** Why the setting cannot weaken the cluster (for the docs and the review of this table). */
  why: string;
  /** Checks the value; a setting without one is safe at any value the component accepts. */
  value?: ValueCheck;
}

// ---------------------------------------------------------------- value checks

const lower = (v: string) => v.trim().toLowerCase();
/** Only this boolean value is known safe (the other one is the weakening). */
export const only = (want: boolean): ValueCheck => (v) => (lower(v) === String(want) ? undefined : `only ${want} is known safe`);
export const anyBool: ValueCheck = (v) => (["true", "false"].includes(lower(v)) ? undefined : "must be true or false");
export const int = (min: number, max = Number.MAX_SAFE_INTEGER): ValueCheck => (v) =>
  /^\d+$/.test(v.trim()) && Number(v) >= min && Number(v) <= max ? undefined : `must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? "" : ` to ${max}`}`;
export const decimal = (min: number, max: number): ValueCheck => (v) =>
  /^\d+(\.\d+)?$/.test(v.trim()) && Number(v) >= min && Number(v) <= max ? undefined : `must be a number from ${min} to ${max}`;
export const duration: ValueCheck = (v) => (DURATION.test(v.trim()) ? undefined : "must be a duration (e.g. 30s, 5m, 1h)");
/** A duration that is not zero (zero disables a timeout). */
export const positiveDuration: ValueCheck = (v) =>
  !DURATION.test(v.trim()) ? "must be a duration (e.g. 30s, 5m, 1h)" : /^(0+(\.0+)?[a-zµ]+)+$/.test(v.trim()) ? "must not be zero (zero disables the timeout)" : undefined;
export const oneOf = (...values: string[]): ValueCheck => (v) => (values.includes(v.trim()) ? undefined : `must be one of ${values.join(", ")}`);
/**
 * An absolute path under a root-owned system directory: the node runs or trusts what it finds
 * there as root, so /tmp, /home, /var/tmp or /dev/shm (writable by others) are not known safe.
 */
export const SYSTEM_DIRS = ["/etc/", "/usr/", "/opt/", "/var/lib/", "/var/log/", "/srv/"];
/**
 * Directories workloads write to or K3s reads as cluster-admin, inside SYSTEM_DIRS: pod volumes
 * (kubelet, local-path), pod logs, and K3s' server and agent state (the manifests directory is
 * applied as cluster-admin).
 */
export const WORKLOAD_DIRS = ["/var/lib/kubelet/", "/var/lib/rancher/k3s/storage/", "/var/lib/rancher/k3s/server/", "/var/lib/rancher/k3s/agent/", "/var/log/pods/", "/var/log/containers/"];
const under = (path: string, dir: string) => `${path.replace(/\/+$/, "")}/`.startsWith(dir);
export const absolutePath: ValueCheck = (v, context) => {
  if (!/^\/[^\0\n]*$/.test(v) || v.split("/").includes("..") || !SYSTEM_DIRS.some((d) => v.startsWith(d))) {
    return `must be an absolute path under ${SYSTEM_DIRS.join(", ")} (root-owned directories), without ..`;
  }
  const writable = [...WORKLOAD_DIRS, `${context.localStoragePath.replace(/\/+$/, "")}/`].find((d) => under(v, d));
  return writable ? `is under ${writable}, which workloads write to or K3s applies as cluster-admin` : undefined;
};
/**
 * Where local-path volumes go: a data directory of its own (tenants' pods write there), never
 * under system, K3s or kubelet state.
 */
export const dataDirectory: ValueCheck = (v) => {
  const path = v.replace(/\/+$/, "");
  const forbidden = ["/etc", "/usr", "/bin", "/sbin", "/lib", "/boot", "/proc", "/sys", "/dev", "/run", "/root", "/tmp", "/var/tmp", "/var/lib/rancher", "/var/lib/kubelet", "/var/lib/containerd", "/var/log"];
  if (!/^\/[^\0\n]+$/.test(path) || path.split("/").includes("..") || path.split("/").length < 3) return "must be a data directory of its own, e.g. /srv/local-path or /data/k3s-storage";
  const hit = forbidden.find((d) => path === d || path.startsWith(`${d}/`));
  return hit ? `is under ${hit}: pods write to local-path volumes, so they must not sit in system or K3s state` : undefined;
};
export const dnsName: ValueCheck = (v) => (isDnsName(v) ? undefined : "must be a DNS name");
export const matches = (re: RegExp, form: string): ValueCheck => (v) => (re.test(v) ? undefined : `must be ${form}`);
/** `https://host[:port][/path]`: the component trusts what it fetches there. */
export const httpsUrl: ValueCheck = (v) => {
  try {
    const u = new URL(v);
    return u.protocol === "https:" && !u.username && !u.password ? undefined : "must be an https:// URL without credentials";
  } catch {
    return "must be an https:// URL";
  }
};

/** A loopback address, optionally `:port` (`127.0.0.1`, `[::1]:10249`): the listener stays on the node. */
export const loopback = (withPort: boolean): ValueCheck => (v) => {
  const m = withPort ? /^(\[[^\]]+\]|[^:[\]]+|[0-9a-f:]+)(?::(\d{1,5}))?$/i.exec(v.trim()) : [v.trim(), v.trim()];
  const host = m?.[1]?.replace(/^\[|\]$/g, "");
  try {
    return host && (host === "localhost" || (isCanonicalIp(host) && parseIp(host).range() === "loopback")) ? undefined : "must be a loopback address (127.0.0.1 or ::1): anything else exposes the endpoint off the node";
  } catch {
    return "must be a loopback address (127.0.0.1 or ::1)";
  }
};

export { STRONG_CIPHERS };
export const strongCiphers: ValueCheck = (v) => {
  const weak = v.split(",").map((c) => c.trim()).filter((c) => !STRONG_CIPHERS.includes(c));
  return weak.length === 0 ? undefined : `includes ciphers outside the CIS list: ${weak.join(", ")}`;
};
/** Kubernetes components name TLS versions VersionTLS1x (k8s.io/component-base/cli/flag ciphersuites_flag.go). */
export const k8sTlsMin = oneOf("VersionTLS12", "VersionTLS13");
/** etcd names them TLS1.x (etcd op-guide configuration, --tls-min-version). */
export const etcdTlsMin = oneOf("TLS1.2", "TLS1.3");
/** Log verbosity: from 5 the components log request and response bodies, which carry Secrets. */
export const verbosity = int(0, 4);
/** A file mode granting nothing to group or others (the admin kubeconfig). */
export const ownerOnlyMode: ValueCheck = (v) => (/^0?[0-7]{3}$/.test(v.trim()) && (parseInt(v, 8) & 0o077) === 0 ? undefined : "must grant nothing to group or others (0600 or stricter)");

// ---------------------------------------------------------------- K3s flags

const OBSERVE = "changes logging or tuning only";

/** Pass-through K3s flags (flags.ts class `pass-through`) allowed in prod; the `*-arg` flags are containers, their entries are listed below. */
export const ALLOWED_FLAGS: Readonly<Record<string, Allowed>> = {
  v: { why: `${OBSERVE}; up to 4 (higher levels log request bodies)`, value: verbosity },
  log: { why: "writes K3s' log to a root-owned file", value: absolutePath },
  alsologtostderr: { why: OBSERVE, value: anyBool },
  "image-credential-provider-bin-dir": { why: "kubelet credential plugins: fetched credentials instead of static ones", value: absolutePath },
  "image-credential-provider-config": { why: "kubelet credential plugins: fetched credentials instead of static ones", value: absolutePath },
  "lb-server-port": { why: "the agent's client load balancer listens on loopback only", value: int(1024, 65535) },
  "protect-kernel-defaults": { why: "CIS 4.2.6 wants it true", value: only(true) },
  "disable-default-registry-endpoint": { why: "pulls only through the configured mirrors", value: only(true) },
  "node-internal-dns": { why: "the address a node reports", value: dnsName },
  "node-external-dns": { why: "the address a node reports", value: dnsName },
  "flannel-iface": { why: "chooses the interface flannel uses", value: matches(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/, "an interface name") },
  "vpn-auth-file": { why: "the VPN auth key stays in a root-owned file on the host", value: absolutePath },
  "disable-apiserver-lb": { why: "turns off the agent's local API load balancer", value: anyBool },
  "tls-san-security": { why: "true (the default) refuses to add SANs for unlisted names", value: only(true) },
  "service-node-port-range": {
    why: "the NodePort range, inside Kubernetes' default: kube-proxy DNATs node ports before the host firewall sees them, so a wider range can shadow SSH, the API or etcd",
    value: (v) => {
      const m = /^(\d{1,5})-(\d{1,5})$/.exec(v.trim());
      return m && Number(m[1]) >= 30000 && Number(m[2]) <= 32767 && Number(m[1]) <= Number(m[2]) ? undefined : "must be a range inside 30000-32767";
    },
  },
  "egress-selector-mode": { why: "how the API server reaches kubelets; disabled is left out", value: oneOf("agent", "cluster", "pod") },
  "servicelb-namespace": { why: "the namespace of ServiceLB pods", value: matches(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a namespace name") },
  "write-kubeconfig-mode": { why: "the admin kubeconfig's mode: owner only", value: ownerOnlyMode },
  "etcd-s3-retention": { why: "how many S3 snapshots are kept", value: int(1) },
  "etcd-snapshot-name": { why: "the snapshot name prefix", value: matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "a snapshot name") },
  "default-local-storage-path": { why: "where local-path volumes live: a data directory of its own", value: dataDirectory },
  "disable-cloud-controller": { why: "turns a controller off", value: anyBool },
  "disable-helm-controller": { why: "turns a controller off", value: anyBool },
  // Containers: their entries are checked against ALLOWED_COMPONENT_ARGS.
  "kubelet-arg": { why: "entries checked one by one" },
  "kube-proxy-arg": { why: "entries checked one by one" },
  "kube-apiserver-arg": { why: "entries checked one by one" },
  "etcd-arg": { why: "entries checked one by one" },
  "kube-controller-manager-arg": { why: "entries checked one by one" },
  "kube-scheduler-arg": { why: "entries checked one by one" },
  "kube-cloud-controller-manager-arg": { why: "entries checked one by one" },
};

/**
 * Why well-known flags are off the list (for the message; the list above decides, not this map):
 * each weakens one of the properties above.
 */
export const FLAG_RISKS: Readonly<Record<string, string>> = {
  debug: "writes request details to the journal at debug level",
  vmodule: "can raise per-module verbosity to the levels that log request bodies",
  "container-runtime-endpoint": "hands pods to a runtime k3s-platform does not configure or harden",
  "image-service-endpoint": "pulls images through a service k3s-platform does not configure",
  "pause-image": "runs an image from any registry in every pod",
  "nonroot-devices": "gives non-root containers access to host devices",
  "bind-address": "moves the K3s listener to an address the firewall rules do not cover",
  "advertise-address": "becomes the kubernetes Service endpoint every pod uses; per node, not per cluster",
  "flannel-conf": "replaces the network configuration k3s-platform renders",
  "flannel-cni-conf": "replaces the CNI configuration k3s-platform renders",
  "enable-pprof": "serves profiling data on the supervisor port (CIS 1.2.16 wants profiling off)",
  "write-kubeconfig-group": "lets a group read the admin kubeconfig",
  "helm-job-image": "runs helm jobs with cluster-admin from an image of any registry",
  "etcd-expose-metrics": "serves etcd metrics on every interface instead of loopback",
  "etcd-s3-proxy": "sends snapshots (the whole datastore, Secrets included) through a proxy",
  "etcd-s3-config-secret": "takes S3 settings (endpoint, TLS verification) from a Secret the program does not check",
  "disable-scheduler": "turns the scheduler off",
  "disable-network-policy": "turns off NetworkPolicy enforcement (CIS 5.3.2)",
  "supervisor-metrics": "serves K3s internals on the supervisor port",
  "system-default-registry": "pulls every system image from another registry",
};

// ---------------------------------------------------------------- component args

const TUNING = "tunes performance or capacity";
const LOGGING = "tunes audit logging (CIS 1.2.17-1.2.20 minimums where the profile sets them)";
const TLS_MIN = { why: "TLS 1.2 or newer (CIS 1.2.29 / 4.2.12)", value: k8sTlsMin } satisfies Allowed;
const CIPHERS = { why: "strong ciphers only (CIS 1.2.29 / 4.2.12)", value: strongCiphers } satisfies Allowed;
const NO_PROFILING = { why: "false turns profiling off (CIS 1.2.16, 1.3.2, 1.4.1)", value: only(false) } satisfies Allowed;
const LOOPBACK_BIND = { why: "keeps the endpoint on loopback (CIS 1.3.7, 1.4.2)", value: loopback(false) } satisfies Allowed;
const tuning = (value: ValueCheck): Allowed => ({ why: TUNING, value });
const leaderElection: Record<string, Allowed> = {
  "leader-elect-lease-duration": tuning(positiveDuration),
  "leader-elect-renew-deadline": tuning(positiveDuration),
  "leader-elect-retry-period": tuning(positiveDuration),
  "kube-api-qps": tuning(int(1)),
  "kube-api-burst": tuning(int(1)),
};

/** Per `*-arg` flag: component settings allowed in prod, with their value checks. */
export const ALLOWED_COMPONENT_ARGS: Readonly<Record<string, Readonly<Record<string, Allowed>>>> = {
  // kube-apiserver reference; CIS Kubernetes Benchmark section 1.2.
  "kube-apiserver-arg": {
    "anonymous-auth": { why: "false refuses anonymous requests (CIS 1.2.1)", value: only(false) },
    profiling: NO_PROFILING,
    "tls-min-version": TLS_MIN,
    "tls-cipher-suites": CIPHERS,
    "kubelet-certificate-authority": { why: "verifies kubelet serving certificates (CIS 1.2.5)", value: absolutePath },
    "enable-admission-plugins": {
      why: "enables admission plugins (K3s and the CIS profile keep theirs)",
      value: (v) => (/^[A-Za-z]+(,[A-Za-z]+)*$/.test(v) ? (v.split(",").includes("AlwaysAdmit") ? "AlwaysAdmit admits every request (CIS 1.2.9)" : undefined) : "must be a comma-separated list of plugin names"),
    },
    "audit-log-maxage": { why: LOGGING, value: int(30) },
    "audit-log-maxbackup": { why: LOGGING, value: int(10) },
    "audit-log-maxsize": { why: LOGGING, value: int(100) },
    "audit-log-format": { why: LOGGING, value: oneOf("json", "legacy") },
    "audit-log-compress": { why: LOGGING, value: anyBool },
    "audit-log-mode": { why: LOGGING, value: oneOf("batch", "blocking", "blocking-strict") },
    "service-account-extend-token-expiration": { why: "false keeps projected tokens short-lived (CIS profile)", value: only(false) },
    "service-account-max-token-expiration": { why: "caps service account token lifetime", value: positiveDuration },
    "request-timeout": tuning(positiveDuration),
    "min-request-timeout": tuning(int(1)),
    "max-requests-inflight": tuning(int(1)),
    "max-mutating-requests-inflight": tuning(int(1)),
    "event-ttl": tuning(positiveDuration),
    "default-watch-cache-size": tuning(int(0)),
    "goaway-chance": tuning(decimal(0, 0.02)),
    "shutdown-delay-duration": tuning(duration),
    "shutdown-send-retry-after": tuning(anyBool),
    v: { why: LOGGING, value: verbosity },
  },
  // kubelet reference; CIS section 4.2; K3s hardening guide.
  "kubelet-arg": {
    "anonymous-auth": { why: "false refuses anonymous requests (CIS 4.2.1)", value: only(false) },
    "read-only-port": { why: "0 closes the unauthenticated port (CIS 4.2.4)", value: oneOf("0") },
    "protect-kernel-defaults": { why: "CIS 4.2.6", value: only(true) },
    "make-iptables-util-chains": { why: "CIS 4.2.7", value: only(true) },
    "rotate-certificates": { why: "CIS 4.2.11", value: only(true) },
    "seccomp-default": { why: "RuntimeDefault seccomp for every pod", value: only(true) },
    "streaming-connection-idle-timeout": { why: "CIS 4.2.5: not zero", value: positiveDuration },
    "tls-min-version": TLS_MIN,
    "tls-cipher-suites": CIPHERS,
    "image-gc-high-threshold": tuning(int(1, 100)),
    "image-gc-low-threshold": tuning(int(0, 100)),
    "image-maximum-gc-age": tuning(duration),
    "image-minimum-gc-age": tuning(duration),
    "serialize-image-pulls": tuning(anyBool),
    "max-parallel-image-pulls": tuning(int(1)),
    "registry-qps": tuning(int(0)),
    "registry-burst": tuning(int(1)),
    "event-qps": tuning(int(0)),
    "event-burst": tuning(int(1)),
    "kube-api-qps": tuning(int(1)),
    "kube-api-burst": tuning(int(1)),
    "pods-per-core": tuning(int(0)),
    "cpu-manager-policy": tuning(oneOf("none", "static")),
    "cpu-manager-reconcile-period": tuning(positiveDuration),
    "topology-manager-policy": tuning(oneOf("none", "best-effort", "restricted", "single-numa-node")),
    "topology-manager-scope": tuning(oneOf("container", "pod")),
    "memory-manager-policy": tuning(oneOf("None", "Static")),
    "reserved-cpus": tuning(matches(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, "a cpuset such as 0-1,6")),
    "container-log-max-size": tuning(matches(/^\d+(K|Ki|M|Mi|G|Gi)$/, "a size such as 10Mi")),
    "container-log-max-files": tuning(int(2)),
    "shutdown-grace-period": tuning(duration),
    "shutdown-grace-period-critical-pods": tuning(duration),
    "eviction-pressure-transition-period": tuning(positiveDuration),
    "fail-swap-on": { why: "true keeps Secret volumes (tmpfs) out of swap on disk (kubernetes.io linux-security)", value: only(true) },
    v: { why: LOGGING, value: verbosity },
  },
  // etcd op-guide configuration; CIS section 2 (K3s sets the TLS flags it names).
  "etcd-arg": {
    "client-cert-auth": { why: "true requires client certificates (CIS 2.2)", value: only(true) },
    "peer-client-cert-auth": { why: "true requires peer certificates (CIS 2.5)", value: only(true) },
    "auto-tls": { why: "false: no self-signed client TLS (CIS 2.3)", value: only(false) },
    "peer-auto-tls": { why: "false: no self-signed peer TLS (CIS 2.6)", value: only(false) },
    "cipher-suites": CIPHERS,
    "tls-min-version": { why: "TLS 1.2 or newer", value: etcdTlsMin },
    "quota-backend-bytes": tuning(int(1)),
    "heartbeat-interval": tuning(int(1)),
    "election-timeout": tuning(int(1)),
    "snapshot-count": tuning(int(1)),
    "auto-compaction-mode": tuning(oneOf("periodic", "revision")),
    "auto-compaction-retention": tuning(matches(/^(\d+|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/, "a number or a duration")),
    "max-request-bytes": tuning(int(1)),
    "max-txn-ops": tuning(int(1)),
    "max-snapshots": tuning(int(1)),
    "max-wals": tuning(int(1)),
    "log-level": tuning(oneOf("info", "warn", "error")),
  },
  // kube-controller-manager reference; CIS section 1.3.
  "kube-controller-manager-arg": {
    profiling: NO_PROFILING,
    "bind-address": LOOPBACK_BIND,
    "use-service-account-credentials": { why: "true: one credential per controller (CIS 1.3.3)", value: only(true) },
    "tls-min-version": TLS_MIN,
    "tls-cipher-suites": CIPHERS,
    "node-cidr-mask-size": tuning(int(8, 30)),
    "node-cidr-mask-size-ipv4": tuning(int(8, 30)),
    "node-cidr-mask-size-ipv6": tuning(int(64, 126)),
    "concurrent-deployment-syncs": tuning(int(1)),
    "concurrent-replicaset-syncs": tuning(int(1)),
    "concurrent-statefulset-syncs": tuning(int(1)),
    "concurrent-gc-syncs": tuning(int(1)),
    "concurrent-endpoint-syncs": tuning(int(1)),
    "concurrent-service-syncs": tuning(int(1)),
    "concurrent-namespace-syncs": tuning(int(1)),
    "concurrent-job-syncs": tuning(int(1)),
    "horizontal-pod-autoscaler-sync-period": tuning(positiveDuration),
    "horizontal-pod-autoscaler-downscale-stabilization": tuning(duration),
    "horizontal-pod-autoscaler-tolerance": tuning(decimal(0, 1)),
    "node-eviction-rate": tuning(decimal(0, 1000)),
    "secondary-node-eviction-rate": tuning(decimal(0, 1000)),
    "large-cluster-size-threshold": tuning(int(1)),
    "unhealthy-zone-threshold": tuning(decimal(0, 1)),
    ...leaderElection,
  },
  // kube-scheduler reference; CIS section 1.4.
  "kube-scheduler-arg": {
    profiling: NO_PROFILING,
    "bind-address": LOOPBACK_BIND,
    "tls-min-version": TLS_MIN,
    "tls-cipher-suites": CIPHERS,
    ...leaderElection,
  },
  // kube-proxy reference.
  "kube-proxy-arg": {
    "proxy-mode": tuning(oneOf("iptables", "ipvs", "nftables")),
    "ipvs-scheduler": tuning(oneOf("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh")),
    "ipvs-strict-arp": tuning(anyBool),
    "ipvs-sync-period": tuning(positiveDuration),
    "ipvs-min-sync-period": tuning(duration),
    "iptables-sync-period": tuning(positiveDuration),
    "iptables-min-sync-period": tuning(duration),
    "conntrack-max-per-core": tuning(int(0)),
    "conntrack-min": tuning(int(0)),
    "conntrack-tcp-timeout-established": tuning(positiveDuration),
    "conntrack-tcp-timeout-close-wait": tuning(positiveDuration),
    "metrics-bind-address": { why: "keeps metrics on loopback", value: loopback(true) },
    "masquerade-all": tuning(anyBool),
  },
  "kube-cloud-controller-manager-arg": {
    profiling: NO_PROFILING,
    "bind-address": LOOPBACK_BIND,
    "tls-min-version": TLS_MIN,
    "tls-cipher-suites": CIPHERS,
    ...leaderElection,
  },
};

/** Why well-known component settings are off the list (messages only; the list decides). */
export const COMPONENT_ARG_RISKS: Readonly<Record<string, string>> = {
  "token-auth-file": "static bearer tokens that never expire (CIS 1.2.2)",
  "basic-auth-file": "static passwords",
  "authorization-mode": "replaces Node,RBAC (CIS 1.2.6-1.2.8)",
  "disable-admission-plugins": "turns admission control off (CIS 1.2.9-1.2.15)",
  "feature-gates": "can switch security features off (e.g. anonymous endpoints)",
  "runtime-config": "enables alpha or removed APIs",
  "insecure-skip-tls-verify": "turns TLS verification off",
  "kubelet-insecure-tls": "turns TLS verification off",
  "listen-client-urls": "moves etcd's client listener (plain http or other interfaces)",
  "listen-peer-urls": "moves etcd's peer listener (plain http or other interfaces)",
  "listen-metrics-urls": "serves etcd metrics on other interfaces or without TLS",
  "allowed-unsafe-sysctls": "lets pods change kernel settings of the host",
  "authorization-config": "replaces the authorizer chain",
  "client-ca-file": "replaces the CA that authenticates clients",
  "cluster-signing-duration": "changes the lifetime of every certificate the cluster signs",
  "healthz-bind-address": "serves health endpoints on other interfaces",
  "api-audiences": "accepts service account tokens minted for other audiences (a token for Vault would work against the API)",
  "oidc-issuer-url": "adds an identity provider: whoever runs it can log in (an exception names the provider and its prefixes)",
  "oidc-username-prefix": "with \"-\" or no prefix, OIDC names can claim system: users",
  "oidc-groups-prefix": "without a prefix, OIDC groups can claim system:masters",
  "rotate-server-certificates": "K3s approves no kubelet serving CSRs: logs and exec stop working",
};

// ---------------------------------------------------------------- the table as documentation

/** docs/allowlist.md: the tables above as Markdown (`npm run docs:allowlist` writes it; a test keeps it current). */
export function renderAllowlistMarkdown(): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const rows = (entries: Record<string, Allowed>) =>
    Object.entries(entries)
      .map(([name, a]) => `| \`${name}\` | ${cell(a.why)} | ${a.value ? "checked" : "any"} |`)
      .join("\n");
  const risks = (entries: Record<string, string>) =>
    Object.entries(entries)
      .map(([name, why]) => `| \`${name}\` | ${cell(why)} |`)
      .join("\n");
  return [
    "# The prod allowlist of free-form settings",
    "",
    "Generated from `components/config/allowlist.ts` by `npm run docs:allowlist`; do not edit (a test compares).",
    "",
    "A pass-through flag (`k3s.extraServerConfig` / `k3s.extraAgentConfig`) or a `*-arg` entry that is not",
    "listed here is refused in prod and warned about in dev and staging, unless the stack carries an",
    'exception `k3s.exceptions: [{ setting, reason }]` naming it. "checked" means only the values known safe',
    "pass (the refusal says which); the CIS profile, the flag classes and value shapes apply whatever the exceptions.",
    "",
    "## K3s flags",
    "",
    "| flag | why it is safe | value |",
    "| --- | --- | --- |",
    rows(ALLOWED_FLAGS),
    "",
    ...Object.entries(ALLOWED_COMPONENT_ARGS).flatMap(([flag, args]) => [`## \`${flag}\``, "", "| setting | why it is safe | value |", "| --- | --- | --- |", rows(args), ""]),
    "## Known risks (off the list; the refusal names the risk)",
    "",
    "| flag | risk |",
    "| --- | --- |",
    risks(FLAG_RISKS),
    "",
    "| component setting | risk |",
    "| --- | --- |",
    risks(COMPONENT_ARG_RISKS),
    "",
  ].join("\n");
}
