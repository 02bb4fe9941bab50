import { DnsConfig, ResolvedConfig } from "../config/schema";
import { PATHS } from "../k3s/paths";
import { KubeObject, MANAGED_BY } from "../kube/objects";

/**
 * CoreDNS tuning for K3s, pure. K3s owns the `coredns` ConfigMap and rewrites it, so everything
 * goes through `kube-system/coredns-custom`, which K3s' Corefile imports:
 *   - `*.server` keys add server blocks: stub domains (with their own forward and cache tuning)
 *     and zones for extra host entries;
 *   - `*.override` keys are imported into the main `.:53` block, which already has errors,
 *     health, ready, kubernetes, hosts, prometheus, forward, cache, loop, reload and loadbalance.
 *     CoreDNS refuses a second `cache`/`hosts` there and a second `forward .` is never reached
 *     (k3s-io/k3s#12979, coredns/coredns#3350), so overrides only add plugins the block lacks.
 * Upstream resolvers for the root zone therefore reach CoreDNS through the kubelet's resolv.conf
 * (k3s `resolv-conf`), and cluster-wide cache/forward tuning lives in NodeLocal DNSCache, whose
 * Corefile we own.
 */

export const UPSTREAM_RESOLV_CONF = PATHS.upstreamResolvConf;

/** Plugins already in K3s' `.:53` block: an override must not repeat them. */
export const K3S_MAIN_BLOCK_PLUGINS = [
  "errors", "health", "ready", "kubernetes", "hosts", "prometheus", "forward", "cache", "loop", "reload", "loadbalance", "import",
];

/** CoreDNS plugins our fragments may use (checked by checkCorefile). */
export const KNOWN_PLUGINS = new Set([
  "errors", "health", "ready", "kubernetes", "hosts", "prometheus", "forward", "cache", "loop", "reload", "loadbalance",
  "log", "bind", "rewrite", "template", "import",
  // sub-directives of forward and cache blocks
  "max_concurrent", "policy", "health_check", "force_tcp", "prefer_udp", "expire", "success", "denial", "prefetch", "serve_stale", "fallthrough", "ttl",
]);

function indent(lines: string[], depth = 1): string[] {
  return lines.map((l) => `${"    ".repeat(depth)}${l}`);
}

type Forward = DnsConfig["forward"];
type Cache = DnsConfig["cache"];

export function forwardDirective(targets: string[], options: Forward): string[] {
  const inner = [
    ...(options.maxConcurrent !== undefined ? [`max_concurrent ${options.maxConcurrent}`] : []),
    ...(options.policy ? [`policy ${options.policy}`] : []),
    ...(options.healthCheck ? [`health_check ${options.healthCheck}`] : []),
    ...(options.forceTcp ? ["force_tcp"] : []),
  ];
  const head = `forward . ${targets.join(" ")}`;
  return inner.length ? [`${head} {`, ...indent(inner), "}"] : [head];
}

export function cacheDirective(options: Cache, defaults: { successCapacity: number; successTtl: number; denialCapacity: number; denialTtl: number }): string[] {
  const success = `success ${options.successCapacity ?? defaults.successCapacity} ${options.successTtl ?? defaults.successTtl}`;
  const denial = `denial ${options.denialCapacity ?? defaults.denialCapacity} ${options.denialTtl ?? defaults.denialTtl}`;
  const prefetch = options.prefetch
    ? [`prefetch ${options.prefetch.amount}${options.prefetch.duration ? ` ${options.prefetch.duration}` : ""}${options.prefetch.percentage !== undefined ? ` ${options.prefetch.percentage}%` : ""}`]
    : [];
  const stale = options.serveStale ? [`serve_stale ${options.serveStale}`] : [];
  return ["cache {", ...indent([success, denial, ...prefetch, ...stale]), "}"];
}

const STUB_CACHE_DEFAULTS = { successCapacity: 9984, successTtl: 30, denialCapacity: 9984, denialTtl: 5 };

/** The `coredns-custom` data: `<name>.server` and `<name>.override` keys. */
export function corednsCustomData(config: ResolvedConfig): Record<string, string> {
  const dns = config.dns;
  const data: Record<string, string> = {};
  for (const [domain, stub] of Object.entries(dns.stubDomains).sort(([a], [b]) => a.localeCompare(b))) {
    const forward = { ...dns.forward, ...stub.forward };
    const cache = { ...dns.cache, ...stub.cache };
    data[`${domain}.server`] =
      [`${domain}:53 {`, ...indent(["errors", ...cacheDirective(cache, STUB_CACHE_DEFAULTS), ...forwardDirective(stub.servers, forward)]), "}"].join("\n") + "\n";
  }
  const hosts = Object.entries(dns.hosts).sort(([a], [b]) => a.localeCompare(b));
  if (hosts.length > 0) {
    // One zone per name: the most specific zone wins, so these answer even inside a stub domain.
    data["k3s-platform-hosts.server"] = hosts
      .map(([name, ip]) => [`${name}:53 {`, ...indent(["errors", "hosts {", ...indent([`${ip} ${name}`]), "}"]), "}"].join("\n"))
      .join("\n") + "\n";
  }
  if (dns.log) data["log.override"] = "log\n";
  return data;
}

export interface CorefileProblem {
  line: number;
  message: string;
}

/**
 * A structural check of Corefile fragments: balanced braces, known plugins, and (for overrides)
 * no plugin K3s' main block already has.
 */
export function checkCorefile(text: string, kind: "server" | "override"): CorefileProblem[] {
  const problems: CorefileProblem[] = [];
  let depth = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const opens = (line.match(/{/g) ?? []).length;
    const closes = (line.match(/}/g) ?? []).length;
    const isServerBlockHead = depth === 0 && kind === "server";
    if (isServerBlockHead) {
      if (!/^[a-z0-9.-]+(:\d+)?\s*{$/.test(line)) problems.push({ line: i + 1, message: `expected a zone block head, got "${line}"` });
    } else if (line !== "}") {
      const word = line.split(/\s+/)[0]!;
      const isHostEntry = /^[0-9a-f:.]+$/i.test(word);
      if (!isHostEntry && !KNOWN_PLUGINS.has(word)) problems.push({ line: i + 1, message: `unknown plugin or directive "${word}"` });
      if (kind === "override" && depth === 0 && K3S_MAIN_BLOCK_PLUGINS.includes(word)) {
        problems.push({ line: i + 1, message: `"${word}" is already in K3s' main block; CoreDNS would refuse or ignore it` });
      }
    }
    depth += opens - closes;
    if (depth < 0) problems.push({ line: i + 1, message: "unbalanced }" });
  });
  if (depth > 0) problems.push({ line: text.split("\n").length, message: "unclosed {" });
  return problems;
}

export function renderCorednsCustom(config: ResolvedConfig): KubeObject | undefined {
  const data = corednsCustomData(config);
  if (Object.keys(data).length === 0) return undefined;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    // Often made by hand on K3s clusters before k3s-platform arrives. Server-side apply owns each
    // data key separately: with patchForce, the keys rendered here take over from whoever set
    // them (kubectl-create, …), keys only others set stay. Without it, `up` stops on a field
    // conflict. (@pulumi/kubernetes: "pulumi.com/patchForce".) docs/in-cluster.md "Objects that already exist".
    metadata: { name: "coredns-custom", namespace: "kube-system", labels: MANAGED_BY, annotations: { [PATCH_FORCE]: "true" } },
    data,
  };
}

/** @pulumi/kubernetes' annotation to take over conflicting fields in a server-side apply. */
export const PATCH_FORCE = "pulumi.com/patchForce";

/** The kubelet resolv.conf CoreDNS forwards the root zone to, when upstreams are set. */
export function renderUpstreamResolvConf(config: ResolvedConfig): string | undefined {
  if (config.dns.upstreams.length === 0) return undefined;
  return `# Upstream resolvers for CoreDNS (kubelet --resolv-conf), generated by k3s-platform.\n${config.dns.upstreams.map((ip) => `nameserver ${ip}`).join("\n")}\n`;
}

// ---------------------------------------------------------------- NodeLocal DNSCache

/** The node-cache Corefile (iptables mode: binds the link-local IP and the kube-dns IP). */
export function nodeLocalCorefile(config: ResolvedConfig): string {
  const { dns, k3s } = config;
  // Every kube-dns address (one per family on a dual-stack cluster).
  const bind = `bind ${[dns.nodeLocal.localIp, ...k3s.clusterDns].join(" ")}`;
  // node-cache fills the __PILLAR__ placeholders itself from -upstreamsvc and /etc/resolv.conf.
  const toCluster = ["forward . __PILLAR__CLUSTER__DNS__ {", ...indent(["force_tcp"]), "}"];
  const clusterBlock = (zone: string, extra: string[]) =>
    [`${zone}:53 {`, ...indent(["errors", ...extra, "reload", "loop", bind, ...toCluster, "prometheus :9253"]), "}"].join("\n");
  const upstreamTargets = dns.upstreams.length ? dns.upstreams : ["__PILLAR__UPSTREAM__SERVERS__"];
  const cache = cacheDirective(dns.cache, STUB_CACHE_DEFAULTS);
  return [
    clusterBlock(k3s.clusterDomain, [...cache, `health ${dns.nodeLocal.localIp}:8080`]),
    clusterBlock("in-addr.arpa", ["cache 30"]),
    clusterBlock("ip6.arpa", ["cache 30"]),
    [".:53 {", ...indent(["errors", ...cacheDirective(dns.cache, { ...STUB_CACHE_DEFAULTS, successTtl: 30 }), "reload", "loop", bind, ...forwardDirective(upstreamTargets, dns.forward), "prometheus :9253"]), "}"].join("\n"),
  ].join("\n") + "\n";
}

export function renderNodeLocalDns(config: ResolvedConfig): KubeObject[] {
  const { dns, k3s } = config;
  if (!dns.nodeLocal.enabled) return [];
  const ns = "kube-system";
  const labels = { "k8s-app": "node-local-dns", ...MANAGED_BY };
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "node-local-dns", namespace: ns, labels } },
    {
      // node-cache forwards cluster names here: the CoreDNS pods, bypassing the kube-dns IP it binds.
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "kube-dns-upstream", namespace: ns, labels: { "k8s-app": "kube-dns", ...MANAGED_BY } },
      spec: {
        selector: { "k8s-app": "kube-dns" },
        ports: [
          { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
          { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
        ],
      },
    },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "node-local-dns", namespace: ns, labels }, data: { Corefile: nodeLocalCorefile(config) } },
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "node-local-dns", namespace: ns, labels },
      spec: {
        updateStrategy: { rollingUpdate: { maxUnavailable: "10%" } },
        selector: { matchLabels: { "k8s-app": "node-local-dns" } },
        template: {
          metadata: { labels: { "k8s-app": "node-local-dns" }, annotations: { "prometheus.io/port": "9253", "prometheus.io/scrape": "true" } },
          spec: {
            priorityClassName: "system-node-critical",
            serviceAccountName: "node-local-dns",
            hostNetwork: true,
            dnsPolicy: "Default",
            tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }, { effect: "NoExecute", operator: "Exists" }, { effect: "NoSchedule", operator: "Exists" }],
            containers: [
              {
                name: "node-cache",
                image: dns.nodeLocal.image,
                resources: { requests: { cpu: "25m", memory: "5Mi" } },
                args: ["-localip", [dns.nodeLocal.localIp, ...k3s.clusterDns].join(","), "-conf", "/etc/Corefile", "-upstreamsvc", "kube-dns-upstream"],
                securityContext: { capabilities: { add: ["NET_ADMIN"] } },
                ports: [
                  { containerPort: 53, name: "dns", protocol: "UDP" },
                  { containerPort: 53, name: "dns-tcp", protocol: "TCP" },
                  { containerPort: 9253, name: "metrics", protocol: "TCP" },
                ],
                livenessProbe: { httpGet: { host: dns.nodeLocal.localIp, path: "/health", port: 8080 }, initialDelaySeconds: 60, timeoutSeconds: 5 },
                volumeMounts: [
                  { mountPath: "/run/xtables.lock", name: "xtables-lock", readOnly: false },
                  { name: "config-volume", mountPath: "/etc/coredns" },
                  { name: "kube-dns-config", mountPath: "/etc/kube-dns" },
                ],
              },
            ],
            volumes: [
              { name: "xtables-lock", hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" } },
              { name: "kube-dns-config", configMap: { name: "kube-dns", optional: true } },
              { name: "config-volume", configMap: { name: "node-local-dns", items: [{ key: "Corefile", path: "Corefile.base" }] } },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "node-local-dns", namespace: ns, labels, annotations: { "prometheus.io/port": "9253", "prometheus.io/scrape": "true" } },
      spec: { clusterIP: "None", selector: { "k8s-app": "node-local-dns" }, ports: [{ name: "metrics", port: 9253, targetPort: 9253 }] },
    },
  ];
}

// ---------------------------------------------------------------- DNS autoscaler

export function autoscalerParams(config: ResolvedConfig): Record<string, number | boolean> {
  const a = config.dns.autoscaler;
  return {
    coresPerReplica: a.coresPerReplica,
    nodesPerReplica: a.nodesPerReplica,
    min: a.min,
    ...(a.max !== undefined ? { max: a.max } : {}),
    preventSinglePointFailure: a.preventSinglePointFailure,
    includeUnschedulableNodes: a.includeUnschedulableNodes,
  };
}

/** What cluster-proportional-autoscaler's linear mode computes (for docs and tests). */
export function linearReplicas(params: Record<string, number | boolean>, cores: number, nodes: number): number {
  const byCores = Math.ceil(cores / (params.coresPerReplica as number));
  const byNodes = Math.ceil(nodes / (params.nodesPerReplica as number));
  let replicas = Math.max(byCores, byNodes);
  if (params.max !== undefined) replicas = Math.min(replicas, params.max as number);
  replicas = Math.max(replicas, params.min as number);
  if (params.preventSinglePointFailure && nodes > 1) replicas = Math.max(replicas, 2);
  return replicas;
}

export function renderDnsAutoscaler(config: ResolvedConfig): KubeObject[] {
  const a = config.dns.autoscaler;
  if (!a.enabled) return [];
  const ns = "kube-system";
  const name = "dns-autoscaler";
  const labels = { "k8s-app": name, ...MANAGED_BY };
  const linear = JSON.stringify(autoscalerParams(config));
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: ns, labels } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: `system:${name}`, labels },
      rules: [
        { apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch"] },
        { apiGroups: [""], resources: ["replicationcontrollers/scale"], verbs: ["get", "update"] },
        { apiGroups: ["apps"], resources: ["deployments/scale", "replicasets/scale"], verbs: ["get", "update"] },
        { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "create"] },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `system:${name}`, labels },
      subjects: [{ kind: "ServiceAccount", name, namespace: ns }],
      roleRef: { kind: "ClusterRole", name: `system:${name}`, apiGroup: "rbac.authorization.k8s.io" },
    },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns, labels }, data: { linear } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: ns, labels },
      spec: {
        selector: { matchLabels: { "k8s-app": name } },
        template: {
          metadata: { labels: { "k8s-app": name } },
          spec: {
            priorityClassName: "system-cluster-critical",
            serviceAccountName: name,
            securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: "RuntimeDefault" } },
            tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }],
            containers: [
              {
                name: "autoscaler",
                image: a.image,
                resources: { requests: { cpu: "20m", memory: "10Mi" } },
                command: [
                  "/cluster-proportional-autoscaler",
                  `--namespace=${ns}`,
                  `--configmap=${name}`,
                  "--target=Deployment/coredns",
                  `--default-params={"linear":${linear}}`,
                  "--logtostderr=true",
                  "--v=2",
                ],
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
              },
            ],
          },
        },
      },
    },
  ];
}

/** Every DNS object, in apply order. */
export function renderDns(config: ResolvedConfig): KubeObject[] {
  return [renderCorednsCustom(config), ...renderNodeLocalDns(config), ...renderDnsAutoscaler(config)].filter(
    (o): o is KubeObject => o !== undefined,
  );
}
