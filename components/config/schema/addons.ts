import { z } from "zod";
import { isDnsName } from "../net";
import { singleLine } from "../single-line";
import { PACKAGED_COMPONENTS, airgapSchema, apiServerSchema, controllerManagerSchema, datastoreSchema, etcdSnapshotsSchema, firewallSchema, kubeletSchema, proxySchema, registriesSchema } from "./k3s";
import { cniInput, flannelBackend, vpnSchema } from "./network";
import { DNS_LABEL, cidrList, flagValue, hostAddress, imageRef, ipAddress, ipList, isLabelValue } from "./primitives";

/** Packaged add-ons and runtimes inside the `k3s` section (Traefik, ServiceLB pools, the API VIP, snapshotters), and k3sSchema, the whole section. */

// ---------------------------------------------------------------- packaged add-ons, VIP, runtimes

/**
 * Traefik customisation: `values` is a YAML object rendered as the `valuesContent` of a
 * HelmChartConfig `kube-system/traefik` (K3s networking docs: never edit traefik.yaml).
 */
export const traefikSchema = z.strictObject({
  values: z.record(z.string().min(1), z.unknown()),
});

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits");

/** A ServiceLB pool name: the value of the node label `svccontroller.k3s.cattle.io/lbpool`. */
export const lbPoolName = z.string().min(1).refine(isLabelValue, { message: "pool name must be a label value (≤63 chars, alphanumeric, -_.)" });

/** ServiceLB node pools: `{ <pool>: [node names] }` (K3s networking docs, "Controlling ServiceLB Node Selection"). */
export const serviceLbSchema = z.strictObject({
  pools: z.record(lbPoolName, z.array(z.string().min(1)).min(1, "a pool needs at least one node")),
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
  address: ipAddress,
  interface: interfaceName,
  image: imageRef
    .refine((i) => /:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?$/.test(i.replace(/^[^/]*:\d+\//, "")), { message: "pin the image by tag (optionally with @sha256:digest)" })
    .refine((i) => !/:latest(@|$)/.test(i), { message: "pin a release tag, not latest" })
    .default(KUBE_VIP_IMAGE),
});

/** containerd snapshotters K3s accepts for `snapshotter` (K3s agent CLI help; stargz: K3s advanced docs). */
export const SNAPSHOTTERS = ["overlayfs", "fuse-overlayfs", "native", "stargz"] as const;

export const k3sSchema = z.strictObject({
  version: z
    .string()
    .regex(/^v1\.\d+\.\d+\+k3s\d+$/, "version must be an exact K3s release, e.g. v1.31.4+k3s1")
    .optional(),
  channel: z.string().regex(/^(stable|latest|testing|v1\.\d+)$/, "channel must be stable, latest, testing or v1.NN").optional(),
  /**
   * Why this stack runs a K3s line past end of support (components/config/releases.ts
   * SUPPORTED_LINES): without it such a line is refused in prod (a warning elsewhere).
   */
  unsupportedReleaseReason: z.string().trim().min(20, "say why in at least 20 characters (who accepted running an unsupported K3s line, until when)").optional(),
  /** Pod network(s): one CIDR or one per family (dual-stack); the first is the primary family. Rules: config/rules.ts. */
  clusterCidr: cidrList.default(["10.42.0.0/16"]),
  /** Service network(s), the same families in the same order as clusterCidr. */
  serviceCidr: cidrList.default(["10.43.0.0/16"]),
  /** Cluster DNS address(es), each inside the serviceCidr of its family. Default (resolveDefaults): the 10th address of each serviceCidr, as K3s picks it. */
  clusterDns: ipList.optional(),
  clusterDomain: z.string().refine(isDnsName, { message: "not a DNS domain" }).default("cluster.local"),
  disable: z.array(z.enum(PACKAGED_COMPONENTS)).default([]),
  /**
   * The network plugin (docs/networking.md): `{ type: flannel }` (the default when unset, with
   * flannelBackend), `{ type: none }` (bring your own) or `{ type: cilium }` (installed through
   * K3s' helm-controller); a bare name (`cni: cilium`) is that type with its defaults.
   */
  cni: cniInput.optional(),
  /** flannel's backend (cni flannel only). Default (resolveDefaults): vxlan with flannel, none with any other cni. */
  flannelBackend: flannelBackend.optional(),
  /**
   * `flannel-ipv6-masq`: NAT pod IPv6 traffic leaving the cluster; needs an IPv6 clusterCidr and
   * flannel. Default (resolveDefaults): on when an IPv6 clusterCidr is unique-local (fc00::/7), which
   * is never routed back to the pods (docs.k3s.io basic-network-options, dual-stack section).
   */
  flannelIpv6Masq: z.boolean().optional(),
  /**
   * `flannel-external-ip`: flannel sends pod traffic to the nodes' externalIp (nodes on different
   * networks, docs.k3s.io networking/distributed-multicloud); needs flannelBackend wireguard-native
   * (encrypted) and externalIp on every node.
   */
  flannelExternalIp: z.boolean().optional(),
  /** Nodes mesh over Tailscale (`vpn-auth`); its auth key is the secure key `vpnAuthKey`. */
  vpn: vpnSchema.optional(),
  /** Address clients and agents use for the API (a VIP or load balancer); default: first server. */
  apiEndpoint: hostAddress.optional(),
  tlsSan: z.array(hostAddress).default([]),
  datastore: datastoreSchema.default({ type: "etcd" }),
  /** Scheduled etcd snapshots; only with datastore etcd. */
  etcdSnapshots: etcdSnapshotsSchema.optional(),
  /** Defaults by environment: `cis` in prod, `none` elsewhere. */
  hardening: z.enum(["cis", "none"]).optional(),
  selinux: z.boolean().default(false),
  preferBundledBin: z.boolean().default(false),
  proxy: proxySchema.optional(),
  registries: registriesSchema.optional(),
  airgap: airgapSchema.prefault({}),
  /** Where the install script is fetched from when not air-gapped (a mirror of get.k3s.io). */
  // singleLine() before z.url(): zod's url check hands on the WHATWG-normalised value (newlines
  // stripped), so a refinement after it never sees them (property test, seed -1340385526).
  installScriptUrl: singleLine().pipe(z.url())
    .refine((u) => u.startsWith("https://"), { message: "the install script runs as root: it must come over https:// (no http:// or file://)" })
    .default("https://get.k3s.io"),
  /** sha256 of the install script at installScriptUrl, checked before it runs (required in prod unless air-gapped). */
  installScriptSha256: z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits").optional(),
  /**
   * Download mode: sha256 of the pinned release's k3s binary, as the release's
   * `sha256sum-<arch>.txt` lists it (`k3s` for amd64, `k3s-arm64`, `k3s-armhf`, `k3s-s390x`): one
   * digest when every host has the same architecture, or one per K3s architecture name. Checked
   * on the host before anything is disrupted (components/k3s/binary-pin.ts). Air-gapped:
   * `airgap.binarySha256`.
   */
  binarySha256: z
    .union([sha256Hex, z.strictObject({ amd64: sha256Hex.optional(), arm64: sha256Hex.optional(), arm: sha256Hex.optional(), s390x: sha256Hex.optional() })])
    .optional(),
  firewall: firewallSchema.prefault({}),
  /** Traefik Helm values (HelmChartConfig in the servers' manifests directory). */
  traefik: traefikSchema.optional(),
  /** ServiceLB node pools (node labels, allow-list mode). */
  serviceLb: serviceLbSchema.optional(),
  /** API VIP through kube-vip; becomes the default apiEndpoint and a tls-san. */
  apiVip: apiVipSchema.optional(),
  /** Spegel, K3s' embedded peer-to-peer registry mirror (`embedded-registry`); needs registries.mirrors. */
  embeddedRegistry: z.boolean().default(false),
  /** `default-runtime` on every node, e.g. nvidia (then every node needs `gpu: nvidia`). */
  defaultRuntime: z.string().max(63).regex(DNS_LABEL, "runtime name must be a DNS label (e.g. nvidia, crun)").optional(),
  /** `docker: true`: cri-dockerd with the host's Docker instead of the embedded containerd. */
  docker: z.boolean().default(false),
  /** containerd snapshotter (`snapshotter`), e.g. stargz for lazy pulling of eStargz images. */
  snapshotter: z.enum(SNAPSHOTTERS).optional(),
  /** containerd config template (Go template text), placed as config.toml.tmpl or config-v3.toml.tmpl by K3s version. */
  containerdTemplate: z.string().min(1).optional(),
  kubelet: kubeletSchema.prefault({}),
  apiServer: apiServerSchema.prefault({}),
  controllerManager: controllerManagerSchema.prefault({}),
  extraServerConfig: z.record(singleLine(), flagValue).default({}),
  /**
   * Reasoned exceptions to the prod allowlist of free-form settings (surfaces.ts): `setting` is what
   * the refusal printed, the setting with its value (`kube-apiserver-arg:token-auth-file=/etc/tokens.csv`,
   * `firewall.mode=disable`, or a digest for a structure: `traefik.values.extraObjects#3f2a…`); the
   * policy pack reports every exception on every preview.
   */
  exceptions: z
    .array(
      z.strictObject({
        setting: singleLine().min(1),
        reason: singleLine().min(20, "say why in at least 20 characters: reviewers read it on every preview"),
      }),
    )
    .default([]),
  extraAgentConfig: z.record(singleLine(), flagValue).default({}),
});
