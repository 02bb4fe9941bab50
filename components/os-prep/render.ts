import { ipFamily, isIp } from "../config/net";
import { CIS_SYSCTLS } from "../cis/render";
import { externalAddressesOf, TAILSCALE_RANGES } from "../config/network-rules";
import type { NodeContext } from "../config/context";
import { NodeConfig, ResolvedConfig } from "../config/schema";
import { API_PORT, nodeAddressesOf } from "../config/topology";
import type { Contribution } from "../plan/contribution";
import { nodeSources } from "../config/node-networks";
import { osPrepHookCall } from "../hooks/render";
import { runtimeChecks } from "../runtimes/render";
import { heredocBody, joinShell, raw, Shell, sh } from "../shell/sh";
import { CIDR_FUNCTIONS } from "../shell/cidr";

/**
 * Renders the idempotent OS-preparation script a node runs before K3s is installed: preflight
 * checks, kernel modules, sysctls, firewall, SELinux packages, Raspberry Pi cgroups. What it
 * prepares is derived from the features in use (flannel backend, datastore, SELinux, CIS
 * hardening, Raspberry Pi); each requirement is checked early and fails naming the fix.
 * Every change is guarded by a check, so a second run changes nothing and reports 0 changes.
 * `K3S_PLATFORM_ROOT` prefixes every file path so tests can run it against a scratch tree.
 */

export interface FirewallPort {
  port: string; // "6443" or "2379-2380"
  proto: "tcp" | "udp";
  why: string;
  /** Who may connect: "any", or the addresses/CIDRs allowed (K3s "Inbound Rules": nodes only). */
  sources: "any" | readonly string[];
}

/**
 * Addresses of every node: each nodeIp (one per family on a dual-stack cluster), or the host when
 * it is an address (validation requires one). Canonical text (schema), so one address, one rule.
 */
export function nodeAddresses(config: ResolvedConfig, role?: NodeConfig["role"]): string[] {
  return [...new Set(config.nodes.filter((n) => !role || n.role === role).flatMap(nodeAddressesOf).filter(isIp))];
}

/** Whether the cluster has an IPv6 pod network (dual-stack or IPv6-only). */
export function hasIpv6(config: ResolvedConfig): boolean {
  return config.k3s.clusterCidr.some((c) => ipFamily(c) === "ipv6");
}

/**
 * Inbound ports a node must accept (K3s docs, "Inbound Rules for K3s Nodes"), each scoped to who
 * needs it: the API server from `k3s.firewall.apiServerSources` (default any), etcd from the
 * servers, the kubelet from the nodes and the pod CIDR (metrics-server), flannel from the nodes
 * (K3s warns that the VXLAN port must not be exposed). "The nodes" are `k3s.nodeNetworks` when
 * declared, else each node's address.
 */
export function inboundPorts(config: ResolvedConfig, node: NodeConfig): readonly FirewallPort[] {
  // The ports depend on the role only: computed once per role and cluster, so every node's script
  // shares the same source lists (sourceArrays keys them by identity). Per node, the lists cost
  // time with the cluster's size, and the whole plan its square (`npm run bench`, issue 26).
  let byRole = portsCache.get(config);
  if (!byRole) portsCache.set(config, (byRole = new Map()));
  let ports = byRole.get(node.role);
  if (!ports) byRole.set(node.role, (ports = roleInboundPorts(config, node.role)));
  return ports;
}
const portsCache = new WeakMap<ResolvedConfig, Map<NodeConfig["role"], readonly FirewallPort[]>>();

function roleInboundPorts(config: ResolvedConfig, role: NodeConfig["role"]): FirewallPort[] {
  const { k3s } = config;
  // The node networks when declared (config/node-networks.ts): then a membership change leaves
  // every other node's firewall step as it is. etcd stays scoped to the servers' own addresses.
  const nodes = nodeSources(config);
  // Across networks the other nodes arrive from their external addresses (flannelExternalIp: the
  // overlay and the agents' join, docs.k3s.io networking/distributed-multicloud "allow access to the
  // listed ports on both internal and external addresses") or from their tailnet addresses (k3s.vpn:
  // K3s moves node-ip and flannel onto the tailnet).
  const peers = [
    ...new Set([...nodes, ...(k3s.flannelExternalIp ? config.nodes.flatMap(externalAddressesOf) : []), ...(k3s.vpn ? TAILSCALE_RANGES : [])]),
  ];
  const ports: FirewallPort[] = [];
  if (role === "server") {
    const api = k3s.firewall.apiServerSources;
    // Agents, servers and pods (through the kubernetes Service) reach the API too.
    const apiSources = api.length === 0 ? "any" : [...new Set([...api, ...peers, ...k3s.clusterCidr])];
    ports.push({ port: String(API_PORT), proto: "tcp", why: "Kubernetes API / supervisor", sources: apiSources });
    if (k3s.datastore.type === "etcd") {
      ports.push({ port: "2379-2380", proto: "tcp", why: "embedded etcd", sources: nodeAddresses(config, "server") });
    }
  }
  ports.push({ port: "10250", proto: "tcp", why: "kubelet metrics and exec", sources: [...nodes, ...k3s.clusterCidr] });
  // Embedded registry mirror (Spegel): every node serves the registry on 6443 and its peer-to-peer
  // network on 5001, to the other nodes (docs.k3s.io installation/registry-mirror "Requirements").
  if (k3s.embeddedRegistry) {
    ports.push({ port: "5001", proto: "tcp", why: "embedded registry mirror (Spegel peer-to-peer)", sources: nodes });
    if (role === "agent") ports.push({ port: String(API_PORT), proto: "tcp", why: "embedded registry mirror (registry API on agents)", sources: nodes });
  }
  for (const p of cniPorts(config)) ports.push({ ...p, sources: peers });
  return ports;
}

/**
 * Node-to-node ports of the CNI and its transport, opened to the cluster's nodes only. flannel:
 * VXLAN 8472/udp, WireGuard 51820/udp and 51821/udp when IPv6 is used (docs.k3s.io
 * installation/requirements "Inbound Rules for K3s Nodes"; host-gw routes over the node network;
 * none: "the ports needed by Flannel are not needed by K3s"). Cilium (docs.cilium.io
 * operations/system_requirements "Firewall Rules"): its overlay (VXLAN 8472/udp or Geneve 6081/udp),
 * cluster health checks 4240/tcp, and the Hubble server 4244/tcp when Hubble is on.
 */
export function cniPorts(config: ResolvedConfig): Array<Omit<FirewallPort, "sources">> {
  const cni = config.k3s.cni;
  if (cni?.type === "cilium") {
    return [
      cni.tunnelProtocol === "geneve" ? { port: "6081", proto: "udp", why: "Cilium Geneve overlay" } : { port: "8472", proto: "udp", why: "Cilium VXLAN overlay" },
      { port: "4240", proto: "tcp", why: "Cilium cluster health checks" },
      ...(cni.hubble ? [{ port: "4244", proto: "tcp" as const, why: "Hubble server" }] : []),
    ];
  }
  switch (config.k3s.flannelBackend) {
    case "vxlan":
      return [{ port: "8472", proto: "udp", why: "flannel VXLAN" }];
    case "wireguard-native":
      // One port per family the pod network has: an IPv6-only cluster needs only 51821.
      return [
        ...(config.k3s.clusterCidr.some((c) => ipFamily(c) === "ipv4") ? [{ port: "51820", proto: "udp" as const, why: "flannel WireGuard (IPv4)" }] : []),
        ...(hasIpv6(config) ? [{ port: "51821", proto: "udp" as const, why: "flannel WireGuard (IPv6)" }] : []),
      ];
    default:
      return []; // host-gw routes over the node network; none has no flannel (the user's CNI opens its own)
  }
}

export interface KernelModule {
  name: string;
  /** Said when the module can't be loaded. */
  fix: string;
}

/** Kernel modules the features in use need. */
export function kernelModules(config: ResolvedConfig, node?: NodeConfig): KernelModule[] {
  const pi = node?.raspberryPi ? " (Ubuntu on Raspberry Pi: install linux-modules-extra-raspi)" : "";
  const modules: KernelModule[] = [
    { name: "br_netfilter", fix: "install the kernel's bridge netfilter module (br_netfilter)" },
    { name: "overlay", fix: "install the kernel's overlay filesystem module (containerd's snapshotter needs it)" },
  ];
  if (config.k3s.flannelBackend === "vxlan") modules.push({ name: "vxlan", fix: `install the vxlan kernel module (flannel-backend: vxlan)${pi}` });
  // Cilium's tunnel devices are kernel vxlan / geneve devices (cilium_vxlan, cilium_geneve).
  const cilium = config.k3s.cni?.type === "cilium" ? config.k3s.cni : undefined;
  if (cilium) modules.push({ name: cilium.tunnelProtocol, fix: `install the ${cilium.tunnelProtocol} kernel module (k3s.cni cilium, tunnelProtocol ${cilium.tunnelProtocol})${pi}` });
  if (config.k3s.flannelBackend === "wireguard-native") {
    modules.push({ name: "wireguard", fix: "flannel-backend wireguard-native needs the wireguard module: kernel >= 5.6, or install wireguard-dkms" });
  }
  return modules;
}

/**
 * The sysctls the node needs; the CIS set only when hardening is cis; IPv6 forwarding when the
 * cluster has an IPv6 pod network (Kubernetes dual-stack prerequisite, kubernetes.io "Dual-stack
 * support with kubeadm": net.ipv6.conf.all.forwarding=1).
 */
export function sysctls(cis: boolean, ipv6 = false): Record<string, string> {
  return {
    "net.ipv4.ip_forward": "1",
    ...(ipv6 ? { "net.ipv6.conf.all.forwarding": "1" } : {}),
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    ...(cis ? CIS_SYSCTLS : {}),
  };
}

/** A guarded file write; `|| true` because "unchanged" is status 1, not a failure. */
function fileBlock(path: string, mode: string, body: string): Shell {
  const h = heredocBody(body);
  return sh`write_file ${path} ${mode} ${h.open} || true
${h.body}`;
}

const CGROUP_FLAGS = "cgroup_memory=1 cgroup_enable=memory";

function raspberryPiBlock(node: NodeConfig): Shell {
  if (!node.raspberryPi) return raw("# not a Raspberry Pi (nodes[].raspberryPi: false)");
  // The kernel reads only the FIRST line of cmdline.txt: flags on a later line have no effect.
  return sh`CGROUP_FLAGS=${CGROUP_FLAGS}
cmdline=""
for candidate in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
  if [ -f "$ROOT$candidate" ]; then cmdline="$ROOT$candidate"; break; fi
done
if [ -n "$cmdline" ]; then
  first_line=""
  IFS= read -r first_line <"$cmdline" || true
  missing=""
  for flag in $CGROUP_FLAGS; do
    case " $first_line " in
      *" $flag "*) ;;
      *) missing="$missing $flag" ;;
    esac
  done
  if [ -n "$missing" ]; then
    sed -i "1 s/\\$/$missing/" "$cmdline"
    changed "added$missing to the first line of \${cmdline#"$ROOT"} (the kernel reads only that line)"
    fail "reboot $NODE so the memory cgroup is enabled, then run pulumi up again"
  fi
fi`;
}

/** Where os-prep keeps accept_ra=2 for the interfaces it found with a default route from router advertisements. */
export const ACCEPT_RA_SYSCTL_FILE = "/etc/sysctl.d/91-k3s-platform-accept-ra.conf";

/**
 * IPv6 forwarding (sysctls above) makes the kernel ignore router advertisements unless an
 * interface's accept_ra is 2 (kernel Documentation/networking/ip-sysctl "accept_ra: 2 - Overrule
 * forwarding behaviour"): a default route learned from them expires and the node loses IPv6 egress
 * (docs.k3s.io networking/basic-network-options, "Single-stack IPv6 Networking": set accept_ra=2).
 * Only the interfaces whose default route came from an advertisement (`proto ra`) are changed: they
 * already accept advertisements, so nothing new is trusted; statically routed hosts are untouched.
 * A sysctl key names a VLAN interface's dots as slashes (sysctl.d(5)).
 */
const raAcceptance = sh`# ---------------------------------------------------------------- IPv6 router advertisements
ra_file="$ROOT"${ACCEPT_RA_SYSCTL_FILE}
ra_routes="$(ip -6 route show default proto ra 2>/dev/null || true)"
while read -r ra_dev; do
  [ -n "$ra_dev" ] || continue
  key="net.ipv6.conf.\${ra_dev//./\\/}.accept_ra"
  if [ "$(sysctl -n "$key" 2>/dev/null || true)" != 2 ]; then
    sysctl -q -w "$key=2" >/dev/null || fail "cannot set sysctl $key=2 (the default route of $ra_dev comes from router advertisements, which IPv6 forwarding ignores otherwise)"
    changed "set sysctl $key=2: $ra_dev's default route comes from router advertisements"
  fi
  touch "$ra_file"
  if ! grep -qxF "$key = 2" "$ra_file"; then
    printf '%s = 2\\n' "$key" >>"$ra_file"
    changed "wrote $key = 2 to \${ra_file#"$ROOT"}"
  fi
done < <(sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' <<<"$ra_routes" | sort -u)`;

export function renderOsPrepScript(ctx: Pick<NodeContext, "config" | "node" | "cis">): string {
  const { config, node, cis } = ctx;
  const { k3s } = config;
  const ports = inboundPorts(config, node);
  const modules = kernelModules(config, node);
  const wantedSysctls = sysctls(cis, hasIpv6(config));
  const servicePorts = node.role === "server" ? [String(API_PORT), "10250"] : ["10250"];
  const sysctlFile = Object.entries(wantedSysctls)
    .map(([k, v]) => `${k} = ${v}`)
    .join("\n");
  const moduleLoads = joinShell(modules.map((m) => sh`load_module ${m.name} ${m.fix}`));
  const cisCheck =
    cis
      ? sh`# CIS: kubelet runs with protect-kernel-defaults and refuses to start unless these hold.
for key in ${Object.keys(CIS_SYSCTLS)}; do
  [ -n "$(sysctl -n "$key" 2>/dev/null || true)" ] || fail "sysctl $key is not available; CIS hardening (protect-kernel-defaults) needs it"
done`
      : raw("# no CIS hardening: kubelet does not check kernel defaults");

  return sh`#!/usr/bin/env bash
# OS preparation for node ${node.name} (${node.role}), generated by k3s-platform.
# Idempotent: every change is guarded by a check; a second run reports 0 changes.
set -euo pipefail

ROOT="\${K3S_PLATFORM_ROOT:-}"
NODE=${node.name}
changes=0

log() { printf 'os-prep[%s]: %s\\n' "$NODE" "$*"; }
fail() { printf 'os-prep[%s]: ERROR: %s\\n' "$NODE" "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
changed() { changes=$((changes + 1)); log "$*"; }
service_active() { have systemctl && systemctl is-active --quiet "$1" 2>/dev/null; }

# write_file PATH MODE < content: replaces PATH only when its content differs; status 1 = unchanged.
# Callers use it in a || list, where set -e does not apply, so every step checks itself.
write_file() {
  local path="$ROOT$1" mode="$2" tmp
  tmp="$(mktemp)" || fail "mktemp failed"
  cat >"$tmp" || fail "cannot buffer $1"
  if cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    return 1
  fi
  install -D -m "$mode" "$tmp" "$path" || fail "cannot write $1"
  rm -f "$tmp"
  changed "wrote $1"
}
${osPrepHookCall(config, node)}
# ---------------------------------------------------------------- Raspberry Pi cgroups
${raspberryPiBlock(node)}

# ---------------------------------------------------------------- preflight
if [ -f "$ROOT/sys/fs/cgroup/cgroup.controllers" ]; then
  controllers="$(cat "$ROOT/sys/fs/cgroup/cgroup.controllers")"
  case " $controllers " in
    *" memory "*) ;;
    *) fail "the memory cgroup controller is not enabled (cgroup v2); K3s cannot run${node.raspberryPi ? raw(": add cgroup_memory=1 cgroup_enable=memory to the first line of cmdline.txt and reboot") : raw("")}" ;;
  esac
elif [ ! -d "$ROOT/sys/fs/cgroup/memory" ]; then
  fail "no memory cgroup: add cgroup_memory=1 cgroup_enable=memory to the kernel command line and reboot"
fi

# Ports are checked only before K3s runs here; afterwards K3s itself holds them.
if ! service_active k3s && ! service_active k3s-agent && have ss; then
  ports=(${servicePorts})
  for port in "\${ports[@]}"; do
    listeners="$(ss -Hltn "sport = :$port")"
    if [ -n "$listeners" ]; then
      fail "TCP port $port is already in use; K3s needs it"
    fi
  done
fi

# K3s registers this node under its node-name, so duplicate host names are harmless,
# but a node named localhost is almost always a mis-provisioned image.
case "$(hostname 2>/dev/null || true)" in
  localhost | localhost.*) log "warning: hostname is localhost; the node still registers as $NODE" ;;
  *) ;;
esac

# ---------------------------------------------------------------- kernel modules (from the features in use)
${fileBlock("/etc/modules-load.d/k3s-platform.conf", "0644", modules.map((m) => m.name).join("\n") + "\n")}
load_module() {
  if [ ! -d "$ROOT/sys/module/$1" ]; then
    modprobe "$1" || fail "cannot load kernel module $1: $2"
    changed "loaded kernel module $1"
  fi
}
${moduleLoads}

# ---------------------------------------------------------------- sysctls
${fileBlock("/etc/sysctl.d/90-k3s-platform.conf", "0644", sysctlFile + "\n")}
while IFS='=' read -r key value; do
  key="\${key// /}"
  value="\${value// /}"
  if [ "$(sysctl -n "$key" 2>/dev/null || true)" != "$value" ]; then
    sysctl -q -w "$key=$value" >/dev/null || fail "cannot set sysctl $key=$value"
    changed "set sysctl $key=$value"
  fi
done <"$ROOT/etc/sysctl.d/90-k3s-platform.conf"
${hasIpv6(config) ? sh`${raAcceptance}
` : raw("")}${cisCheck}

# ---------------------------------------------------------------- firewall (mode: ${k3s.firewall.mode})
${renderFirewall(config, ports)}

# ---------------------------------------------------------------- SELinux
${renderSelinux(config)}
${runtimeChecks(config, node)}${vpnCheck(config)}
log "done, $changes change(s)"
`.text;
}

/**
 * k3s.vpn: K3s drives the host's tailscale client (`tailscale up` with the auth key) at start
 * (docs.k3s.io networking/distributed-multicloud step 4: install Tailscale on every node first).
 */
function vpnCheck(config: ResolvedConfig): Shell {
  if (!config.k3s.vpn) return raw("");
  return sh`
# ---------------------------------------------------------------- VPN (k3s.vpn: tailscale)
have tailscale || fail "k3s.vpn is tailscale but the tailscale client is not installed: install it (curl -fsSL https://tailscale.com/install.sh | sh) before K3s starts"
`;
}

function renderSelinux(config: ResolvedConfig): Shell {
  const { k3s } = config;
  if (!k3s.selinux) {
    return sh`if have getenforce && [ "$(getenforce)" != "Disabled" ]; then
  fail "SELinux is $(getenforce) on this host: set k3s.selinux: true so containerd runs with SELinux support"
fi`;
  }
  const install = k3s.airgap.enabled
    ? sh`    fail "SELinux is on: pre-install container-selinux and k3s-selinux (air-gap mode installs no packages)"`
    : sh`    if have dnf; then dnf install -y container-selinux >/dev/null; else yum install -y container-selinux >/dev/null; fi
    changed "installed container-selinux"`;
  const k3sSelinux = k3s.airgap.enabled
    ? sh`  rpm -q k3s-selinux >/dev/null 2>&1 || fail "SELinux is on: pre-install k3s-selinux (air-gap mode)"`
    : sh`  # k3s-selinux comes from the K3s install script (rancher RPM repository).`;
  return sh`if have getenforce && [ "$(getenforce)" != "Disabled" ]; then
  if ! rpm -q container-selinux >/dev/null 2>&1; then
${install}
  fi
${k3sSelinux}
fi`;
}

/** A source list's text, once per list (inboundPorts hands every node of a role the same lists). */
const keys = new WeakMap<readonly string[], string>();
function keyOf(sources: readonly string[]): string {
  let key = keys.get(sources);
  if (key === undefined) keys.set(sources, (key = sources.join(" ")));
  return key;
}

/** Rendered source arrays per cluster: every node's script shares them, so each is quoted once. */
const sourceArrayCache = new WeakMap<ResolvedConfig, Map<string, Shell>>();
/** sourceArrays per port list (inboundPorts gives every node of a role the same one): declared once per role. */
const sourceArraysCache = new WeakMap<readonly FirewallPort[], SourceArrays>();

interface SourceArrays {
  /** A list's array name. */
  name: (sources: readonly string[]) => string;
  /** The assignments to put before use: one shared text, so a node's script holds it without copying it. */
  declarations: () => Shell;
}

/**
 * The distinct source lists of `ports` as bash arrays (`k3sp_sources_N=(…)`), in first-use order.
 * `name(list)` gives a list's array name; `declarations()` the assignments to put before use.
 */
function sourceArrays(config: ResolvedConfig, ports: readonly FirewallPort[]): SourceArrays {
  const known = sourceArraysCache.get(ports);
  if (known) return known;
  let rendered = sourceArrayCache.get(config);
  if (!rendered) sourceArrayCache.set(config, (rendered = new Map()));
  const cache = rendered;
  const names = new Map<string, string>();
  const declarations: Shell[] = [];
  for (const p of ports) {
    if (p.sources === "any") continue;
    const key = keyOf(p.sources);
    if (names.has(key)) continue;
    const name = `k3sp_sources_${names.size + 1}`;
    names.set(key, name);
    let values = cache.get(key);
    if (!values) cache.set(key, (values = sh`${p.sources}`));
    declarations.push(sh`${raw(name)}=(${values})`);
  }
  const declared = joinShell(declarations);
  const arrays: SourceArrays = { name: (sources) => names.get(keyOf(sources))!, declarations: () => declared };
  sourceArraysCache.set(ports, arrays);
  return arrays;
}

/** Whether a source list has an IPv6 entry, once per list (every node of a role shares them). */
const ipv6Lists = new WeakMap<readonly string[], boolean>();
function hasIpv6Source(sources: readonly string[]): boolean {
  let v6 = ipv6Lists.get(sources);
  if (v6 === undefined) ipv6Lists.set(sources, (v6 = sources.some((s) => ipFamily(s) === "ipv6")));
  return v6;
}

/** Where os-prep records the scoped rules it opened: what is ours to close (see FIREWALL_RECORD). */
export const FIREWALL_RECORD_FILE = "/var/lib/k3s-platform/firewall-sources";

/**
 * The record of the scoped rules os-prep opened, one `BACKEND PORT PROTO SOURCE` line each
 * (FIREWALL_RECORD_FILE): firewalld's rich rules carry no comment to tag them with, so the record
 * is the tag for both backends. A recorded rule whose source is no longer listed (a network or
 * apiServerSources entry dropped, a port opened to any now) is closed; any other rule on the host
 * is the user's and stays. A host firewalled before the record existed (issue 26: the move from
 * per-node addresses to k3s.nodeNetworks) has its earlier per-address rules found instead: on one
 * of our ports, from a single address inside a network that port lists now, which the network
 * rule already admits, so closing it changes no one's access. Needs cidr_contains (shell/cidr.ts).
 */
const FIREWALL_RECORD = raw(`FW_RECORD="$ROOT${FIREWALL_RECORD_FILE}"
fw_wanted=()
fw_recorded=()
fw_legacy=1
if [ -f "$FW_RECORD" ]; then
  mapfile -t fw_recorded <"$FW_RECORD"
  fw_legacy=0
fi
# fw_is_wanted ENTRY: whether this run opened (or found open) ENTRY.
fw_is_wanted() {
  local w
  for w in "\${fw_wanted[@]}"; do [ "$w" != "$1" ] || return 0; done
  return 1
}
# fw_legacy_rule "BACKEND PORT PROTO SOURCE": before the record, whether this is the per-address
# rule an earlier version opened for a node: from one address, inside a network this port lists now.
fw_legacy_rule() {
  local backend port proto src w b p q net
  read -r backend port proto src <<<"$1"
  src="\${src%/32}"
  src="\${src%/128}"
  [ "$fw_legacy" = 1 ] && [[ "$src" != */* ]] || return 1
  ! fw_is_wanted "$1" || return 1
  for w in "\${fw_wanted[@]}"; do
    read -r b p q net <<<"$w"
    if [ "$b" = "$backend" ] && [ "$p" = "$port" ] && [ "$q" = "$proto" ] && [[ "$net" == */* ]] && cidr_contains "$net" "$src"; then return 0; fi
  done
  return 1
}
# fw_prune BACKEND: closes (BACKEND_close PORT PROTO SOURCE) each recorded rule no longer wanted.
fw_prune() {
  local e b p q src
  for e in "\${fw_recorded[@]}"; do
    read -r b p q src <<<"$e"
    [ "$b" = "$1" ] || continue
    fw_is_wanted "$e" || "$1_close" "$p" "$q" "$src"
  done
}
# fw_record ACTIVE...: writes the record: what this run wants, and what inactive backends had.
fw_record() {
  local e b a keep
  local -a next=("\${fw_wanted[@]}")
  for e in "\${fw_recorded[@]}"; do
    read -r b _ <<<"$e"
    keep=1
    for a in "$@"; do [ "$a" != "$b" ] || keep=0; done
    if [ "$keep" = 1 ] && ! fw_is_wanted "$e"; then next+=("$e"); fi
  done
  if [ "\${#next[@]}" -eq 0 ] && [ ! -f "$FW_RECORD" ]; then return 0; fi
  if [ ! -f "$FW_RECORD" ] || [ "$(printf '%s\\n' "\${next[@]}")" != "$(cat "$FW_RECORD")" ]; then
    mkdir -p "$(dirname "$FW_RECORD")"
    printf '%s\\n' "\${next[@]}" >"$FW_RECORD.new"
    mv -f "$FW_RECORD.new" "$FW_RECORD"
  fi
}`);

/** ufw writes port ranges with a colon. */
const ufwPort = (p: FirewallPort) => p.port.replace("-", ":");

function renderFirewall(config: ResolvedConfig, ports: readonly FirewallPort[]): Shell {
  const { mode } = config.k3s.firewall;
  if (mode === "ignore") return raw("# firewall left alone (k3s.firewall.mode: ignore)");
  if (mode === "disable") {
    return sh`if service_active firewalld; then
  systemctl disable --now firewalld
  changed "disabled firewalld"
fi
if have ufw; then
  ufw_state="$(ufw status)"
  if [[ "$ufw_state" == *"Status: active"* ]]; then
    ufw disable >/dev/null
    changed "disabled ufw"
  fi
fi`;
  }
  // Pod and service networks: K3s docs ask to trust them (pods reach node ports and each other).
  const trusted = [...config.k3s.clusterCidr, ...config.k3s.serviceCidr];
  const ipv6 = ports.some((p) => p.sources !== "any" && hasIpv6Source(p.sources)) || trusted.some((s) => ipFamily(s) === "ipv6");
  // ufw drops IPv6 rules unless /etc/default/ufw has IPV6=yes (Ubuntu's default): refuse rather
  // than leave the IPv6 node addresses unreachable.
  const ufwIpv6Check = ipv6
    ? sh`    if grep -qE '^[[:space:]]*IPV6=no' "$ROOT/etc/default/ufw" 2>/dev/null; then
      fail "ufw has IPv6 disabled (IPV6=no in /etc/default/ufw) but the cluster has IPv6 addresses: set IPV6=yes and run ufw reload"
    fi
`
    : raw(""); // IPv4-only: nothing (the script stays as it was)
  // Each distinct source list becomes one shell array, rendered once per cluster (sourceArrays):
  // one rule per port per address written out would make every node's script, and rendering all
  // of them, grow with the square of the node count (`npm run bench`).
  const lists = sourceArrays(config, ports);
  const scoped = (p: FirewallPort, port: string, fn: string): Shell =>
    p.sources === "any" ? sh`${raw(fn)}_any ${`${port}/${p.proto}`}` : sh`${raw(fn)}_scoped ${port} ${p.proto} ${raw(`"\${${lists.name(p.sources)}[@]}"`)}`;
  const arrays = lists.declarations();
  const firewalld = joinShell(ports.map((p) => scoped(p, p.port, "fw")));
  const ufw = joinShell(ports.map((p) => scoped(p, ufwPort(p), "ufw")));
  return sh`# Each K3s port is open only to who needs it (nodes, pod CIDR; the API to apiServerSources).
${arrays}
${CIDR_FUNCTIONS}
${FIREWALL_RECORD}
fw_active=()
if service_active firewalld; then
  reload=0
  fw_any() {
    if ! firewall-cmd --permanent --query-port="$1" >/dev/null 2>&1; then
      firewall-cmd --permanent --add-port="$1" >/dev/null
      changed "firewalld: opened $1"
      reload=1
    fi
  }
  # An earlier version opened this port to any source: close that, the scoped rules follow.
  fw_unscope() {
    if firewall-cmd --permanent --query-port="$1" >/dev/null 2>&1; then
      firewall-cmd --permanent --remove-port="$1" >/dev/null
      changed "firewalld: closed $1 to any source (now scoped to the cluster)"
      reload=1
    fi
  }
  fw_from() {
    local family=ipv4 rule
    case "$3" in *:*) family=ipv6 ;; *) ;; esac
    rule="rule family=\\"$family\\" source address=\\"$3\\" port port=\\"$1\\" protocol=\\"$2\\" accept"
    if ! firewall-cmd --permanent --query-rich-rule="$rule" >/dev/null 2>&1; then
      firewall-cmd --permanent --add-rich-rule="$rule" >/dev/null
      changed "firewalld: opened $1/$2 from $3"
      reload=1
    fi
    fw_wanted+=("firewalld $1 $2 $3")
  }
  firewalld_close() {
    local family=ipv4 rule
    case "$3" in *:*) family=ipv6 ;; *) ;; esac
    rule="rule family=\\"$family\\" source address=\\"$3\\" port port=\\"$1\\" protocol=\\"$2\\" accept"
    if firewall-cmd --permanent --query-rich-rule="$rule" >/dev/null 2>&1; then
      firewall-cmd --permanent --remove-rich-rule="$rule" >/dev/null
      changed "firewalld: closed $1/$2 from $3 (no longer a cluster source)"
      reload=1
    fi
  }
  fw_scoped() {
    local port="$1" proto="$2" source
    shift 2
    fw_unscope "$port/$proto"
    for source in "$@"; do fw_from "$port" "$proto" "$source"; done
  }
${firewalld}
  if [ "$fw_legacy" = 1 ]; then
    # The rich rules fw_from adds, as firewall-cmd --list-rich-rules prints them (one a line).
    rich_re='^rule family="ipv[46]" source address="([^"]+)" port port="([0-9-]+)" protocol="(tcp|udp)" accept$'
    while IFS= read -r line; do
      [[ "$line" =~ $rich_re ]] || continue
      entry="firewalld \${BASH_REMATCH[2]} \${BASH_REMATCH[3]} \${BASH_REMATCH[1]}"
      if fw_legacy_rule "$entry"; then fw_recorded+=("$entry"); fi
    done < <(firewall-cmd --permanent --list-rich-rules 2>/dev/null || true)
  fi
  fw_prune firewalld
  fw_active+=(firewalld)
  for source in ${trusted}; do
    if ! firewall-cmd --permanent --zone=trusted --query-source="$source" >/dev/null 2>&1; then
      firewall-cmd --permanent --zone=trusted --add-source="$source" >/dev/null
      changed "firewalld: trusted $source"
      reload=1
    fi
  done
  if [ "$reload" = 1 ]; then firewall-cmd --reload >/dev/null; fi
fi
if have ufw; then
  # Captured once, then matched: no pipe into grep -q (SIGPIPE under pipefail).
  ufw_rules="$(ufw status)"
  if [[ "$ufw_rules" == *"Status: active"* ]]; then
${ufwIpv6Check}    ufw_any() {
      if ! grep -qE "^$1[[:space:]]+ALLOW( IN)?[[:space:]]+Anywhere" <<<"$ufw_rules"; then
        ufw allow "$1" >/dev/null
        changed "ufw: allowed $1"
      fi
    }
    ufw_unscope() {
      if grep -qE "^$1[[:space:]]+ALLOW( IN)?[[:space:]]+Anywhere" <<<"$ufw_rules"; then
        ufw delete allow "$1" >/dev/null
        changed "ufw: removed $1 from any source (now scoped to the cluster)"
      fi
    }
    ufw_from() {
      if ! grep -qE "^$1/$2[[:space:]]+ALLOW( IN)?[[:space:]]+\${3//./\\\\.}([[:space:]]|$)" <<<"$ufw_rules"; then
        ufw allow proto "$2" from "$3" to any port "$1" >/dev/null
        changed "ufw: allowed $1/$2 from $3"
      fi
      fw_wanted+=("ufw $1 $2 $3")
    }
    ufw_close() {
      if grep -qE "^$1/$2[[:space:]]+ALLOW( IN)?[[:space:]]+\${3//./\\\\.}([[:space:]]|$)" <<<"$ufw_rules"; then
        ufw delete allow proto "$2" from "$3" to any port "$1" >/dev/null
        changed "ufw: removed $1/$2 from $3 (no longer a cluster source)"
      fi
    }
    ufw_scoped() {
      local port="$1" proto="$2" source
      shift 2
      ufw_unscope "$port/$proto"
      for source in "$@"; do ufw_from "$port" "$proto" "$source"; done
    }
${ufw}
    if [ "$fw_legacy" = 1 ]; then
      while IFS= read -r line; do
        [[ "$line" =~ ^([0-9:]+)/(tcp|udp)[[:space:]]+ALLOW([[:space:]]IN)?[[:space:]]+([0-9A-Fa-f:.]+)[[:space:]]*$ ]] || continue
        entry="ufw \${BASH_REMATCH[1]} \${BASH_REMATCH[2]} \${BASH_REMATCH[4]}"
        if fw_legacy_rule "$entry"; then fw_recorded+=("$entry"); fi
      done <<<"$ufw_rules"
    fi
    fw_prune ufw
    fw_active+=(ufw)
    for source in ${trusted}; do
      if ! grep -qE "ALLOW( IN)?[[:space:]]+\${source//./\\\\.}([[:space:]]|$)" <<<"$ufw_rules"; then
        ufw allow from "$source" to any >/dev/null
        changed "ufw: allowed from $source"
      fi
    done
  fi
fi
fw_record "\${fw_active[@]}"`;
}

/**
 * The reverse of renderFirewall's "open" mode, for the uninstall on destroy (components/destroy):
 * removes every rule os-prep opens on this node (the same ports, sources and trusted pod/service
 * networks, and the rules its record names: FIREWALL_RECORD; firewalld: `--remove-port`, `--remove-rich-rule`, `--zone=trusted --remove-source`,
 * then one `--reload`; ufw: `ufw delete <the same rule>`). Each removal is guarded by its query,
 * so a second run changes nothing. A firewall os-prep disabled (mode: disable) stays disabled and
 * one left alone (mode: ignore) is not touched: both are said. Needs `changed` and `have`.
 */
export function renderFirewallRemoval(config: ResolvedConfig, node: NodeConfig): Shell {
  const { mode } = config.k3s.firewall;
  if (mode === "ignore") return raw(`say "firewall left alone (k3s.firewall.mode: ignore)"`);
  if (mode === "disable") return raw(`say "the firewall os-prep disabled stays disabled (k3s.firewall.mode: disable): enable it by hand if the host needs it"`);
  const ports = inboundPorts(config, node);
  const trusted = [...config.k3s.clusterCidr, ...config.k3s.serviceCidr];
  const lists = sourceArrays(config, ports);
  const scoped = (p: FirewallPort, port: string, fn: string): Shell =>
    p.sources === "any" ? sh`${raw(fn)}_any ${`${port}/${p.proto}`}` : sh`${raw(fn)}_scoped ${port} ${p.proto} ${raw(`"\${${lists.name(p.sources)}[@]}"`)}`;
  const firewalld = joinShell(ports.map((p) => scoped(p, p.port, "fw")));
  const ufw = joinShell(ports.map((p) => scoped(p, ufwPort(p), "ufw")));
  return sh`# The rules os-prep opened for K3s on this node, removed (components/os-prep/render.ts).
${lists.declarations()}
${CIDR_FUNCTIONS}
${FIREWALL_RECORD}
# recorded_scoped BACKEND: removes the recorded rules too (sources an earlier config listed).
recorded_scoped() {
  local e b p q src
  for e in "\${fw_recorded[@]}"; do
    read -r b p q src <<<"$e"
    [ "$b" != "$1" ] || "$2" "$p" "$q" "$src"
  done
}
if service_active firewalld; then
  reload=0
  fw_any() {
    if firewall-cmd --permanent --query-port="$1" >/dev/null 2>&1; then
      firewall-cmd --permanent --remove-port="$1" >/dev/null
      changed "firewalld: closed $1"
      reload=1
    fi
  }
  fw_scoped() {
    local port="$1" proto="$2" source family rule
    shift 2
    for source in "$@"; do
      family=ipv4
      case "$source" in *:*) family=ipv6 ;; *) ;; esac
      rule="rule family=\\"$family\\" source address=\\"$source\\" port port=\\"$port\\" protocol=\\"$proto\\" accept"
      if firewall-cmd --permanent --query-rich-rule="$rule" >/dev/null 2>&1; then
        firewall-cmd --permanent --remove-rich-rule="$rule" >/dev/null
        changed "firewalld: closed $port/$proto from $source"
        reload=1
      fi
    done
  }
${firewalld}
  recorded_scoped firewalld fw_scoped
  for source in ${trusted}; do
    if firewall-cmd --permanent --zone=trusted --query-source="$source" >/dev/null 2>&1; then
      firewall-cmd --permanent --zone=trusted --remove-source="$source" >/dev/null
      changed "firewalld: no longer trusts $source"
      reload=1
    fi
  done
  if [ "$reload" = 1 ]; then firewall-cmd --reload >/dev/null; fi
fi
if have ufw; then
  ufw_rules="$(ufw status)"
  if [[ "$ufw_rules" == *"Status: active"* ]]; then
    ufw_any() {
      if grep -qE "^$1[[:space:]]+ALLOW( IN)?[[:space:]]+Anywhere" <<<"$ufw_rules"; then
        ufw delete allow "$1" >/dev/null
        changed "ufw: removed $1"
      fi
    }
    ufw_scoped() {
      local port="$1" proto="$2" source
      shift 2
      for source in "$@"; do
        if grep -qE "^\${port}/\${proto}[[:space:]]+ALLOW( IN)?[[:space:]]+\${source//./\\\\.}([[:space:]]|$)" <<<"$ufw_rules"; then
          ufw delete allow proto "$proto" from "$source" to any port "$port" >/dev/null
          changed "ufw: removed $port/$proto from $source"
        fi
      done
    }
${ufw}
    recorded_scoped ufw ufw_scoped
    for source in ${trusted}; do
      if grep -qE "ALLOW( IN)?[[:space:]]+\${source//./\\\\.}([[:space:]]|$)" <<<"$ufw_rules"; then
        ufw delete allow from "$source" to any >/dev/null
        changed "ufw: removed from $source"
      fi
    done
  fi
fi
rm -f "$FW_RECORD"`;
}

/** The OS-preparation script's name in the node bundle; the `os-prep` step runs it. */
export const OS_PREP_SCRIPT = "os-prep.sh";

/** os-prep concern: the script its own step runs before apply.sh (it places nothing). */
export function contribute(ctx: NodeContext): Contribution {
  return { files: [{ name: OS_PREP_SCRIPT, content: renderOsPrepScript(ctx), mode: "0700" }] };
}
