import { z } from "zod";
import { singleLine } from "../single-line";

/**
 * The cluster network's plugin (`k3s.cni`) and the node-to-node transport across networks
 * (`k3s.vpn`), inside the `k3s` section. Rules that span fields: config/network-rules.ts; what
 * they render: k3s/config-yaml.ts (flags), cni/render.ts (the Cilium HelmChart), os-prep (ports).
 * Docs: docs/networking.md.
 */

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

/** flannel backends K3s accepts today (docs.k3s.io networking/basic-network-options). */
export const FLANNEL_BACKENDS = ["vxlan", "host-gw", "wireguard-native", "none"] as const;


/** `k3s.flannelBackend`, refusing a removed backend with its replacement named. */
export const flannelBackend = z.enum(FLANNEL_BACKENDS, {
  error: (issue) => (typeof issue.input === "string" ? REMOVED_FLANNEL_BACKENDS[issue.input] : undefined),
});

/**
 * The Cilium chart k3s-platform installs, pinned (helm.cilium.io; bump deliberately, after reading
 * docs.cilium.io operations/upgrade). 1.18.6 is the last 1.18 patch before 1.19.0 (Feb 2026,
 * renovate LucaDev/Home#3304 "1.18.6 -> 1.19.0"). From 1.14 `kubeProxyReplacement` is a boolean
 * (`strict`/`partial` removed; cilium/cilium#27066 uses `true`).
 */
export const CILIUM_CHART_VERSION = "1.18.6";
export const CILIUM_CHART_REPO = "https://helm.cilium.io/";

/** A Cilium chart version: an exact release (a range would move under a running cluster). */
const chartVersion = z.string().regex(/^1\.\d+\.\d+$/, "an exact Cilium chart version, e.g. 1.18.6 (no range, no v prefix)");

export const cniSchema = z.discriminatedUnion("type", [
  /** flannel, K3s' embedded CNI, with `k3s.flannelBackend` (the default when `cni` is unset). */
  z.strictObject({ type: z.literal("flannel").describe("`flannel`: K3s' embedded CNI, with k3s.flannelBackend (the default when cni is unset).") }),
  /**
   * Bring your own CNI: K3s runs with `flannel-backend: none` and `disable-network-policy` (its
   * own policy controller would fight the CNI's: docs.k3s.io basic-network-options "Custom CNI").
   */
  z.strictObject({
    type: z.literal("none").describe("`none`: bring your own CNI; K3s runs with flannel-backend none and disable-network-policy."),
    replacesKubeProxy: z.boolean().default(false).describe("The CNI replaces kube-proxy (eBPF service routing): renders `disable-kube-proxy: true`."),
    networkPolicyEnforcedBy: singleLine().trim().min(3, "name the CNI that enforces NetworkPolicy (e.g. calico 3.29)").optional().describe("What enforces NetworkPolicy in this cluster, in words reviewers read (`calico 3.29 via the tigera-operator`). K3s' own controller is off, so CIS hardening (prod) needs it stated."),
  }),
  /**
   * Cilium, installed by K3s' helm-controller from a HelmChart in the servers' manifests
   * directory; it enforces NetworkPolicy itself.
   */
  z.strictObject({
    type: z.literal("cilium").describe("`cilium`: Cilium, installed by K3s' helm-controller from the servers' manifests directory."),
    version: chartVersion.default(CILIUM_CHART_VERSION).describe("The Cilium chart version, exact (e.g. 1.18.6)."),
    kubeProxyReplacement: z.boolean().default(true).describe("Cilium replaces kube-proxy (K3s then runs without it: `disable-kube-proxy`)."),
    tunnelProtocol: z.enum(["vxlan", "geneve"]).default("vxlan").describe("Overlay between nodes: vxlan (8472/udp) or geneve (6081/udp)."),
    hubble: z.boolean().default(false).describe("Hubble flow observability (the agents then serve 4244/tcp to the other nodes)."),
  }),
]);
/** `cni: cilium` is `cni: { type: cilium }`: the name alone, every option at its default. */
export const cniInput = z.preprocess((v) => (typeof v === "string" ? { type: v } : v), cniSchema);
export type CniConfig = z.output<typeof cniSchema>;
export type CniType = CniConfig["type"];

/**
 * K3s' Tailscale integration (`vpn-auth`, docs.k3s.io networking/distributed-multicloud): nodes
 * mesh over the tailnet. The auth key is the secure config key `vpnAuthKey`; it reaches the hosts
 * only in the secrets drop-in (config.yaml.d), never a command line or a staged file.
 */
export const vpnSchema = z.strictObject({
  provider: z.literal("tailscale").describe("The VPN K3s integrates: `tailscale`."),
  controlServerUrl: singleLine()
    .refine((v) => {
      try {
        const u = new URL(v);
        return u.protocol === "https:" && !u.username && !u.password && !v.includes(",");
      } catch {
        return false;
      }
    }, { message: "an https:// URL without credentials or commas (it is one field of vpn-auth)" })
    .optional().describe("Your own control server (headscale), `controlServerURL=` in vpn-auth; https only."),
});
export type VpnConfig = z.output<typeof vpnSchema>;
