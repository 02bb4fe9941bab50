import type { NodeContext } from "../config/context";
import { ResolvedConfig } from "../config/schema";
import { API_PORT, clusterTopology, ClusterTopology } from "../config/topology";
import type { Contribution } from "../plan/contribution";
import { KubeObject, MANAGED_BY } from "../kube/objects";
import { Shell, sh, raw } from "../shell/sh";

/**
 * kube-vip as a DaemonSet on the servers, announcing the API VIP by ARP (leader election on a
 * Lease), so clients and agents reach the API without an external load balancer.
 * Source: kube-vip docs "K3s" and "DaemonSet" (kube-vip.io/docs/usage/k3s, /installation/daemonset):
 * RBAC (the upstream rbac.yaml: ServiceAccount kube-vip, ClusterRole system:kube-vip-role,
 * ClusterRoleBinding system:kube-vip-binding) and the DaemonSet `kube-vip manifest daemonset
 * --interface --address --inCluster --taint --controlplane --arp --leaderElection` generates, both
 * placed in /var/lib/rancher/k3s/server/manifests/ (K3s deploys that directory). All objects are
 * built-in kinds (no CRD).
 */

export const KUBE_VIP_FILE = "k3s-platform-kube-vip.yaml";
const NAME = "kube-vip";
const NAMESPACE = "kube-system";

export function renderKubeVip(config: ResolvedConfig): KubeObject[] {
  const vip = config.k3s.apiVip;
  if (!vip) return [];
  const labels = { ...MANAGED_BY, "app.kubernetes.io/name": NAME };
  const env: Record<string, string> = {
    vip_arp: "true",
    port: String(API_PORT),
    vip_interface: vip.interface,
    // The VIP's prefix length: `vip_subnet` since kube-vip v0.9.0 (was `vip_cidr`; KUBE_VIP_IMAGE).
    vip_subnet: vip.address.includes(":") ? "128" : "32",
    dns_mode: "first",
    cp_enable: "true",
    cp_namespace: NAMESPACE,
    svc_enable: "false",
    vip_leaderelection: "true",
    vip_leasename: "plndr-cp-lock",
    vip_leaseduration: "5",
    vip_renewdeadline: "3",
    vip_retryperiod: "1",
    address: vip.address,
  };
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: NAME, namespace: NAMESPACE, labels } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "system:kube-vip-role", labels, annotations: { "rbac.authorization.kubernetes.io/autoupdate": "true" } },
      rules: [
        { apiGroups: [""], resources: ["services/status"], verbs: ["update"] },
        { apiGroups: [""], resources: ["services", "endpoints"], verbs: ["list", "get", "watch", "update"] },
        { apiGroups: [""], resources: ["nodes"], verbs: ["list", "get", "watch", "update", "patch"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["list", "get", "watch", "update", "create"] },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "get", "watch", "update"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "system:kube-vip-binding", labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:kube-vip-role" },
      subjects: [{ kind: "ServiceAccount", name: NAME, namespace: NAMESPACE }],
    },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: NAME, namespace: NAMESPACE, labels },
      spec: {
        selector: { matchLabels: { "app.kubernetes.io/name": NAME } },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            // Control plane only: K3s labels servers node-role.kubernetes.io/control-plane=true.
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    // Not node-role.kubernetes.io/master: the API server warns it is deprecated (measured on v1.31).
                    { matchExpressions: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists" }] },
                  ],
                },
              },
            },
            // Servers are often tainted (CriticalAddonsOnly, control-plane NoSchedule): tolerate them.
            tolerations: [
              { effect: "NoSchedule", operator: "Exists" },
              { effect: "NoExecute", operator: "Exists" },
            ],
            hostNetwork: true,
            serviceAccountName: NAME,
            priorityClassName: "system-node-critical",
            containers: [
              {
                name: NAME,
                image: vip.image,
                imagePullPolicy: "IfNotPresent",
                args: ["manager"],
                env: [
                  ...Object.entries(env).map(([name, value]) => ({ name, value })),
                  { name: "vip_nodename", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                ],
                securityContext: { capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] } },
              },
            ],
          },
        },
      },
    },
  ];
}

/** Seconds an agent waits for the VIP to answer before its apply fails. */
export const VIP_WAIT_SECONDS = 300;

/**
 * For agents' apply.sh, before the install: wait until the VIP serves K3s' unauthenticated
 * `/ping` (the supervisor answers `pong`), so the agent never registers through a VIP no server
 * announces yet (kube-vip starts only once the first server deployed its manifest).
 */
export function vipWaitSnippet(config: ResolvedConfig, topology: ClusterTopology = clusterTopology(config)): Shell {
  if (!config.k3s.apiVip) return raw("");
  // The URL the agent registers with (the VIP, or apiEndpoint's name for it): checks name resolution too.
  const url = `${topology.agentJoinUrl}/ping`;
  return sh`# The API VIP (kube-vip on the servers) must answer before this agent joins through it.
VIP_URL=${url}
VIP_WAIT=${VIP_WAIT_SECONDS}
vip_deadline=$((SECONDS + VIP_WAIT))
until curl -ksf --noproxy '*' --max-time 5 -o /dev/null "$VIP_URL"; do
  if [ "$SECONDS" -ge "$vip_deadline" ]; then
    fail "the API VIP $VIP_URL did not answer within \${VIP_WAIT}s (kube-vip on the servers: kubectl -n kube-system logs ds/kube-vip)"
  fi
  sleep 2
done
`;
}

/** kube-vip concern (node side): agents wait for the VIP before they join through it. */
export function contribute(ctx: NodeContext): Contribution {
  return ctx.role === "agent" ? { preInstall: vipWaitSnippet(ctx.config, ctx.topology) } : {};
}
