/**
 * The long flag names `k3s server` and `k3s agent` accept, which are also the keys of
 * /etc/rancher/k3s/config.yaml.
 *
 * Source: the "K3s Server CLI Help" and "K3s Agent CLI Help" blocks of the K3s documentation,
 * k3s-io/docs `docs/cli/server.md` and `docs/cli/agent.md` (K3s v1.31/v1.32 line), plus
 * `--secrets-encryption-provider` and `--disable-agent` from the tables on the same server page.
 * Update this list together with the minimum K3s version we support.
 */

/** Flags both `k3s agent` and `k3s server` accept (a server runs an agent). */
export const AGENT_FLAGS: readonly string[] = [
  "config", "debug", "v", "vmodule", "log", "alsologtostderr",
  "token", "token-file", "server", "data-dir",
  "node-name", "with-node-id", "node-label", "node-taint",
  "image-credential-provider-bin-dir", "image-credential-provider-config",
  "selinux", "lb-server-port", "protect-kernel-defaults",
  "container-runtime-endpoint", "default-runtime", "image-service-endpoint",
  "pause-image", "snapshotter", "private-registry",
  "disable-default-registry-endpoint", "nonroot-devices",
  "node-ip", "bind-address", "node-external-ip", "node-internal-dns", "node-external-dns",
  "resolv-conf", "flannel-iface", "flannel-conf", "flannel-cni-conf",
  "kubelet-arg", "kube-proxy-arg",
  "enable-pprof", "rootless", "prefer-bundled-bin", "docker",
  "vpn-auth", "vpn-auth-file", "disable-apiserver-lb",
];

/** Flags only `k3s server` accepts. */
export const SERVER_ONLY_FLAGS: readonly string[] = [
  "https-listen-port", "advertise-address", "advertise-port", "tls-san", "tls-san-security",
  "cluster-cidr", "service-cidr", "service-node-port-range", "cluster-dns", "cluster-domain",
  "flannel-backend", "flannel-ipv6-masq", "flannel-external-ip", "egress-selector-mode",
  "servicelb-namespace", "write-kubeconfig", "write-kubeconfig-mode", "write-kubeconfig-group",
  "helm-job-image", "agent-token", "agent-token-file", "cluster-init", "cluster-reset",
  "cluster-reset-restore-path",
  "kube-apiserver-arg", "etcd-arg", "kube-controller-manager-arg", "kube-scheduler-arg",
  "kube-cloud-controller-manager-arg",
  "datastore-endpoint", "datastore-cafile", "datastore-certfile", "datastore-keyfile",
  "etcd-expose-metrics", "etcd-disable-snapshots", "etcd-snapshot-name",
  "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "etcd-snapshot-dir",
  "etcd-snapshot-compress", "etcd-s3", "etcd-s3-endpoint", "etcd-s3-endpoint-ca",
  "etcd-s3-skip-ssl-verify", "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-bucket",
  "etcd-s3-region", "etcd-s3-folder", "etcd-s3-proxy", "etcd-s3-config-secret",
  "etcd-s3-insecure", "etcd-s3-timeout",
  "default-local-storage-path", "disable", "disable-scheduler", "disable-cloud-controller",
  "disable-kube-proxy", "disable-network-policy", "disable-helm-controller",
  "embedded-registry", "supervisor-metrics", "system-default-registry",
  "secrets-encryption", "secrets-encryption-provider", "disable-agent",
];

export const SERVER_FLAGS: ReadonlySet<string> = new Set([...AGENT_FLAGS, ...SERVER_ONLY_FLAGS]);
export const AGENT_FLAG_SET: ReadonlySet<string> = new Set(AGENT_FLAGS);

/**
 * Keys k3s-platform renders itself from typed config; setting them through the pass-through
 * maps would fight the typed value, so validation points users at the typed key instead.
 */
export const MANAGED_FLAGS: Readonly<Record<string, string>> = {
  "token": "the secure key k3s-platform:token",
  "token-file": "the secure key k3s-platform:token",
  "agent-token": "the secure key k3s-platform:agentToken",
  "agent-token-file": "the secure key k3s-platform:agentToken",
  "server": "the node list (joining servers and agents point at the first server)",
  "cluster-init": "k3s.datastore",
  "datastore-endpoint": "k3s.datastore",
  "node-name": "nodes[].name",
  "node-label": "nodes[].labels",
  "node-taint": "nodes[].taints",
  "node-ip": "nodes[].nodeIp",
  "node-external-ip": "nodes[].externalIp",
  "cluster-cidr": "k3s.clusterCidr",
  "service-cidr": "k3s.serviceCidr",
  "cluster-dns": "k3s.clusterDns",
  "cluster-domain": "k3s.clusterDomain",
  "flannel-backend": "k3s.flannelBackend",
  "tls-san": "k3s.tlsSan",
  "disable": "k3s.disable",
  "selinux": "k3s.selinux",
  "prefer-bundled-bin": "k3s.preferBundledBin",
  "secrets-encryption": "k3s-platform:encryption",
  "secrets-encryption-provider": "k3s-platform:encryption",
  "resolv-conf": "k3s-platform:dns.upstreams",
};

/** Values every server must share, or a joining server fails (K3s "critical configuration"). */
export const CRITICAL_SERVER_FLAGS: readonly string[] = [
  "agent-token", "cluster-cidr", "cluster-dns", "cluster-domain", "disable-cloud-controller",
  "disable-helm-controller", "disable-network-policy", "egress-selector-mode",
  "embedded-registry", "flannel-backend", "flannel-external-ip", "flannel-ipv6-masq",
  "secrets-encryption", "secrets-encryption-provider", "service-cidr",
];
