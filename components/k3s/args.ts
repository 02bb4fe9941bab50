import { CIS_KUBELET_CIPHERS } from "../config/flags";
import type { NodeContext } from "../config/context";
import type { Reserved } from "../config/schema";
import { PATHS } from "./paths";

/**
 * The `kubelet-arg`, `kube-apiserver-arg` and `kube-controller-manager-arg` lists (name=value,
 * no leading dashes) from the typed config sections, plus the CIS hardening guide's settings.
 */

type ArgsContext = Pick<NodeContext, "config" | "cis">;

/** k3s.kubelet with the node's own settings over it (`nodes[].kubelet`, often from its pool): reserved maps merge key by key. */
export function nodeKubelet(config: NodeContext["config"], node?: Pick<NodeContext["node"], "kubelet">): NodeContext["config"]["k3s"]["kubelet"] {
  const base = config.k3s.kubelet;
  const own = node?.kubelet;
  if (!own) return base;
  const reserved = (a: Reserved | undefined, b: Reserved | undefined) => (b ? { ...a, ...b } : a);
  return {
    ...base,
    systemReserved: reserved(base.systemReserved, own.systemReserved),
    kubeReserved: reserved(base.kubeReserved, own.kubeReserved),
    maxPods: own.maxPods ?? base.maxPods,
  };
}

function reservedArg(r: Reserved | undefined): string | undefined {
  if (!r) return undefined;
  const parts: string[] = [];
  if (r.cpu) parts.push(`cpu=${r.cpu}`);
  if (r.memory) parts.push(`memory=${r.memory}`);
  if (r.ephemeralStorage) parts.push(`ephemeral-storage=${r.ephemeralStorage}`);
  if (r.pid !== undefined) parts.push(`pid=${r.pid}`);
  return parts.length ? parts.join(",") : undefined;
}

function signalMap(map: Partial<Record<string, string>> | undefined, sep: string): string | undefined {
  const entries = Object.entries(map ?? {}).filter((e): e is [string, string] => e[1] !== undefined);
  return entries.length ? entries.map(([k, v]) => `${k}${sep}${v}`).join(",") : undefined;
}

function args(pairs: Array<[string, string | number | undefined]>): string[] {
  return pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
}

export function kubeletArgs({ config, cis, node }: ArgsContext & { node?: Pick<NodeContext["node"], "kubelet"> }): string[] {
  const k = nodeKubelet(config, node);
  return args([
    ["eviction-hard", signalMap(k.evictionHard, "<")],
    ["eviction-soft", signalMap(k.evictionSoft, "<")],
    ["eviction-soft-grace-period", signalMap(k.evictionSoftGracePeriod, "=")],
    ["eviction-max-pod-grace-period", k.evictionMaxPodGracePeriod],
    ["system-reserved", reservedArg(k.systemReserved)],
    ["kube-reserved", reservedArg(k.kubeReserved)],
    ["max-pods", k.maxPods],
    ["node-status-update-frequency", k.nodeStatusUpdateFrequency],
    ["streaming-connection-idle-timeout", cis ? "5m" : undefined],
    ["tls-cipher-suites", cis ? CIS_KUBELET_CIPHERS.join(",") : undefined],
  ]);
}

export function apiServerArgs({ config, cis }: ArgsContext): string[] {
  const a = config.k3s.apiServer;
  return [
    ...args([
      ["default-not-ready-toleration-seconds", a.defaultNotReadyTolerationSeconds],
      ["default-unreachable-toleration-seconds", a.defaultUnreachableTolerationSeconds],
    ]),
    ...(cis
      ? [
          "enable-admission-plugins=NodeRestriction,EventRateLimit",
          `admission-control-config-file=${PATHS.psaYaml}`,
          `audit-log-path=${PATHS.auditLogDir}/audit.log`,
          `audit-policy-file=${PATHS.auditYaml}`,
          "audit-log-maxage=30",
          "audit-log-maxbackup=10",
          "audit-log-maxsize=100",
          "service-account-extend-token-expiration=false",
        ]
      : []),
  ];
}

export function controllerManagerArgs({ config, cis }: ArgsContext): string[] {
  const c = config.k3s.controllerManager;
  const gcThreshold = c.terminatedPodGcThreshold ?? (cis ? 100 : undefined);
  return args([
    ["node-monitor-grace-period", c.nodeMonitorGracePeriod],
    ["terminated-pod-gc-threshold", gcThreshold],
  ]);
}
