import { z } from "zod";
import { isDnsName } from "../net";
import { singleLine } from "../single-line";
import { PACKAGED_COMPONENTS, airgapSchema, apiServerSchema, controllerManagerSchema, datastoreSchema, etcdSnapshotsSchema, firewallSchema, kubeletSchema, proxySchema, registriesSchema } from "./k3s";
import { cniInput, flannelBackend, vpnSchema } from "./network";
import { DNS_LABEL, cidrList, flagValue, hostAddress, imageRef, ipAddress, ipList, isLabelValue, networkCidr } from "./primitives";

/** Packaged add-ons and runtimes inside the `k3s` section (Traefik, ServiceLB pools, the API VIP, snapshotters), and k3sSchema, the whole section. */

// ---------------------------------------------------------------- packaged add-ons, VIP, runtimes

/**
 * Traefik customisation: `values` is a YAML object rendered as the `valuesContent` of a
 * HelmChartConfig `kube-system/traefik` (K3s networking docs: never edit traefik.yaml).
 */
export const traefikSchema = z.strictObject({
  values: z.record(z.string().min(1), z.unknown()).describe("Traefik Helm values (a YAML object) → HelmChartConfig kube-system/traefik `valuesContent` in the servers' manifests directory; applied without a restart."),
});

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits");

/** A ServiceLB pool name: the value of the node label `svccontroller.k3s.cattle.io/lbpool`. */
export const lbPoolName = z.string().min(1).refine(isLabelValue, { message: "pool name must be a label value (≤63 chars, alphanumeric, -_.)" });

/** ServiceLB node pools: `{ <pool>: [node names] }` (K3s networking docs, "Controlling ServiceLB Node Selection"). */
export const serviceLbSchema = z.strictObject({
  pools: z.record(lbPoolName, z.array(z.string().min(1)).min(1, "a pool needs at least one node")).describe("Pool name → node names: those nodes get the ServiceLB pool labels (allow-list mode)."),
});

/**
 * kube-vip's image, pinned by tag (prod adds the digest: config/surfaces.ts); bump deliberately.
 * v1.2.2: the newest release in kube-vip's own chart (kube-vip/helm-charts#109, 2026-08-05,
 * "update to v1.2.2"); its manifest names the prefix length `vip_subnet` (renamed from `vip_cidr`
 * in v0.9.0: kube-vip release notes, quoted in kubernetes-sigs/kubespray#12815).
 */
export const KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v1.2.2";
/** Linux interface names: at most 15 bytes (IFNAMSIZ-1), no slash, colon or whitespace. */
export const interfaceName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/, "not a network interface name (≤15 chars: letters, digits, _ . @ -)");

/** A control-plane VIP announced by kube-vip (ARP) from the servers. */
export const apiVipSchema = z.strictObject({
  address: ipAddress.describe("The VIP: not a node address, outside the pod/service CIDRs."),
  interface: interfaceName.describe("The interface kube-vip announces it on (ARP)."),
  image: imageRef
    .refine((i) => /:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?$/.test(i.replace(/^[^/]*:\d+\//, "")), { message: "pin the image by tag (optionally with @sha256:digest)" })
    .refine((i) => !/:latest(@|$)/.test(i), { message: "pin a release tag, not latest" })
    .default(KUBE_VIP_IMAGE).describe("kube-vip's image, pinned by tag (optionally @sha256:), never latest."),
});

/** containerd snapshotters K3s accepts for `snapshotter` (K3s agent CLI help; stargz: K3s advanced docs). */
export const SNAPSHOTTERS = ["overlayfs", "fuse-overlayfs", "native", "stargz"] as const;

export const k3sSchema = z.strictObject({
  version: z
    .string()
    .regex(/^v1\.\d+\.\d+\+k3s\d+$/, "version must be an exact K3s release, e.g. v1.31.4+k3s1")
    .optional().describe("Exact K3s release, e.g. `v1.37.1+k3s1` (v1.30.0 or newer); required in prod and air-gapped."),
  channel: z.string().regex(/^(stable|latest|testing|v1\.\d+)$/, "channel must be stable, latest, testing or v1.NN").optional().describe("Outside prod, instead of version: `stable`, `latest`, `testing` or `v1.NN`; resolved once for the whole cluster at the first up (every node, added later too, installs that release); never an upgrade later: set version to move (docs/upgrading.md)."),
  unsupportedReleaseReason: z.string().trim().min(20, "say why in at least 20 characters (who accepted running an unsupported K3s line, until when)").optional().describe("Why this stack runs a K3s line past end of support (components/config/releases.ts SUPPORTED_LINES): without it such a line is refused in prod (a warning elsewhere)."),
  /** Pod network(s): one CIDR or one per family (dual-stack); the first is the primary family. Rules: config/rules.ts. */
  clusterCidr: cidrList.default(["10.42.0.0/16"]).describe("`cluster-cidr`: pod network(s), one CIDR or one per family (dual-stack; the first is the primary family)."),
  /** Service network(s), the same families in the same order as clusterCidr. */
  serviceCidr: cidrList.default(["10.43.0.0/16"]).describe("`service-cidr`: service network(s), the same families in the same order as clusterCidr."),
  /** Cluster DNS address(es), each inside the serviceCidr of its family. Default (resolveDefaults): the 10th address of each serviceCidr, as K3s picks it. */
  clusterDns: ipList.optional().describe("`cluster-dns`: one address per family, each inside its serviceCidr (default: the 10th address of each, as K3s picks it)."),
  clusterDomain: z.string().refine(isDnsName, { message: "not a DNS domain" }).default("cluster.local").describe("`cluster-domain`."),
  disable: z.array(z.enum(PACKAGED_COMPONENTS)).default([]).describe("Packaged components K3s does not deploy (`disable`)."),
  cni: cniInput.optional().describe("The network plugin (docs/networking.md): `{ type: flannel }` (the default when unset, with flannelBackend), `{ type: none }` (bring your own) or `{ type: cilium }` (installed through K3s' helm-controller); a bare name (`cni: cilium`) is that type with its defaults."),
  /** flannel's backend (cni flannel only). Default (resolveDefaults): vxlan with flannel, none with any other cni. */
  flannelBackend: flannelBackend.optional().describe("`flannel-backend`; `none` when a CNI brings its own."),
  flannelIpv6Masq: z.boolean().optional().describe("`flannel-ipv6-masq`: NAT pod IPv6 traffic leaving the cluster; needs an IPv6 clusterCidr and flannel. Default (resolveDefaults): on when an IPv6 clusterCidr is unique-local (fc00::/7), which is never routed back to the pods (docs.k3s.io basic-network-options, dual-stack section)."),
  flannelExternalIp: z.boolean().optional().describe("`flannel-external-ip`: flannel sends pod traffic to the nodes' externalIp (nodes on different networks, docs.k3s.io networking/distributed-multicloud); needs flannelBackend wireguard-native (encrypted) and externalIp on every node."),
  vpn: vpnSchema.optional().describe("Nodes mesh over Tailscale (`vpn-auth`); its auth key is the secure key `vpnAuthKey`."),
  /** Address clients and agents use for the API (a VIP or load balancer); default: first server. */
  apiEndpoint: hostAddress.optional().describe("Address clients and agents use for the API (a VIP or load balancer); default: apiVip.address, else the first server. Added to tls-san."),
  tlsSan: z.array(hostAddress).default([]).describe("More `tls-san` names or addresses for the API server certificate."),
  nodeNetworks: z.array(networkCidr).min(1, "list at least one CIDR, or leave nodeNetworks out").optional().describe("The networks every node address (nodeIp, externalIp, an address host) lies in, as CIDRs; NO_PROXY and the firewall's node sources carry these instead of each node's address, so adding or removing a node changes no other node's K3s inputs (docs/adding-nodes.md)."),
  datastore: datastoreSchema.default({ type: "etcd" }).describe("The cluster datastore: embedded etcd, sqlite (one server) or external."),
  /** Scheduled etcd snapshots; only with datastore etcd. */
  etcdSnapshots: etcdSnapshotsSchema.optional().describe("Scheduled etcd snapshots; only with datastore etcd (docs/backup-and-restore.md)."),
  /** Defaults by environment: `cis` in prod, `none` elsewhere. */
  hardening: z.enum(["cis", "none"]).optional().describe("`cis`: the K3s CIS hardening guide (sysctls, protect-kernel-defaults, secrets encryption, PSA, audit log); default `cis` in prod, `none` elsewhere."),
  selinux: z.boolean().default(false).describe("`selinux: true` (containerd SELinux); os-prep installs container-selinux and k3s-selinux."),
  preferBundledBin: z.boolean().default(false).describe("`prefer-bundled-bin`: K3s' own iptables and friends, for hosts with a buggy iptables."),
  proxy: proxySchema.optional().describe("HTTP(S) proxy settings written to the unit's env file."),
  registries: registriesSchema.optional().describe("registries.yaml: mirrors and registry TLS (credentials: the secure key registryAuth)."),
  airgap: airgapSchema.prefault({}).describe("Air-gapped installs from pre-staged files."),
  // singleLine() before z.url(): zod's url check hands on the WHATWG-normalised value (newlines
  // stripped), so a refinement after it never sees them (property test, seed -1340385526).
  installScriptUrl: singleLine().pipe(z.url())
    .refine((u) => u.startsWith("https://"), { message: "the install script runs as root: it must come over https:// (no http:// or file://)" })
    .default("https://get.k3s.io").describe("Where the install script is fetched from when not air-gapped (a mirror of get.k3s.io); https:// only: it runs as root."),
  installScriptSha256: z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits").optional().describe("sha256 of the install script at installScriptUrl, checked before it runs (required in prod unless air-gapped)."),
  binarySha256: z
    .union([sha256Hex, z.strictObject({ amd64: sha256Hex.optional().describe("The `k3s` binary's digest (amd64)."), arm64: sha256Hex.optional().describe("The `k3s-arm64` binary's digest."), arm: sha256Hex.optional().describe("The `k3s-armhf` binary's digest."), s390x: sha256Hex.optional().describe("The `k3s-s390x` binary's digest.") })])
    .optional().describe("Download mode: sha256 of the pinned release's k3s binary, as the release's `sha256sum-<arch>.txt` lists it (`k3s` for amd64, `k3s-arm64`, `k3s-armhf`, `k3s-s390x`): one digest when every host has the same architecture, or one per K3s architecture name. Checked on the host before anything is disrupted (components/k3s/binary-pin.ts). Air-gapped: `airgap.binarySha256`."),
  firewall: firewallSchema.prefault({}).describe("Host firewall handling (firewalld/ufw)."),
  traefik: traefikSchema.optional().describe("Traefik Helm values (HelmChartConfig in the servers' manifests directory)."),
  serviceLb: serviceLbSchema.optional().describe("ServiceLB node pools (node labels, allow-list mode)."),
  apiVip: apiVipSchema.optional().describe("API VIP through kube-vip; becomes the default apiEndpoint and a tls-san."),
  embeddedRegistry: z.boolean().default(false).describe("Spegel, K3s' embedded peer-to-peer registry mirror (`embedded-registry`); needs registries.mirrors."),
  defaultRuntime: z.string().max(63).regex(DNS_LABEL, "runtime name must be a DNS label (e.g. nvidia, crun)").optional().describe("`default-runtime` on every node, e.g. nvidia (then every node needs `gpu: nvidia`)."),
  docker: z.boolean().default(false).describe("`docker: true`: cri-dockerd with the host's Docker instead of the embedded containerd."),
  snapshotter: z.enum(SNAPSHOTTERS).optional().describe("containerd snapshotter (`snapshotter`), e.g. stargz for lazy pulling of eStargz images."),
  containerdTemplate: z.string().min(1).optional().describe("containerd config template (Go template text), placed as config.toml.tmpl or config-v3.toml.tmpl by K3s version."),
  kubelet: kubeletSchema.prefault({}).describe("Kubelet settings (`kubelet-arg`) on every node."),
  apiServer: apiServerSchema.prefault({}).describe("API server settings (`kube-apiserver-arg`) on the servers."),
  controllerManager: controllerManagerSchema.prefault({}).describe("Controller manager settings (`kube-controller-manager-arg`) on the servers."),
  extraServerConfig: z.record(singleLine(), flagValue).default({}).describe("More K3s server flags: flag name → value (a string, number, boolean or list); prod accepts only the allowlist (docs/allowlist.md)."),
  exceptions: z
    .array(
      z.strictObject({
        setting: singleLine().min(1).describe("The setting as the refusal printed it, with its value."),
        reason: singleLine().min(20, "say why in at least 20 characters: reviewers read it on every preview").describe("Why it is kept (at least 20 characters; reviewers read it on every preview)."),
      }),
    )
    .default([]).describe("Reasoned exceptions to the prod allowlist of free-form settings (surfaces.ts): `setting` is what the refusal printed, the setting with its value (`kube-apiserver-arg:token-auth-file=/etc/tokens.csv`, `firewall.mode=disable`, or a digest for a structure: `traefik.values.extraObjects#3f2a…`); the policy pack reports every exception on every preview."),
  extraAgentConfig: z.record(singleLine(), flagValue).default({}).describe("More K3s agent flags (every node): flag name → value; prod accepts only the allowlist (docs/allowlist.md)."),
});
