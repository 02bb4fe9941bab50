import { z } from "zod";
import { singleLine } from "../single-line";
import { kubeletSchema } from "./k3s";
import { DNS_LABEL, hostAddress, ipList, labelMap, port, sshHostKey, taint } from "./primitives";

/** The `ssh` section and `nodes[]`. */

// ---------------------------------------------------------------- ssh and nodes

export const bastionSchema = z.strictObject({
  host: hostAddress.describe("The bastion's address (IP or DNS name)."),
  port: port.default(22).describe("The bastion's SSH port."),
  user: z.string().min(1).default("root").describe("The SSH user on the bastion."),
  hostKey: sshHostKey.optional().describe("The bastion's SSH host key (`ssh-keyscan -t ed25519 <host>`); required in prod."),
});

export const sshSchema = z.strictObject({
  user: z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, "not a valid Unix user name").default("root").describe("The SSH user; when not root it needs passwordless sudo (sudo -n)."),
  port: port.default(22).describe("The SSH port."),
  bastion: bastionSchema.optional().describe("A jump host every connection goes through."),
  /** Seconds per dial attempt and number of failed dials before giving up. */
  perDialTimeout: z.number().int().positive().default(15).describe("Seconds per SSH dial attempt."),
  dialErrorLimit: z.number().int().positive().default(10).describe("Failed SSH dials before a step gives up."),
});

export const nodeSshSchema = z.strictObject({
  user: z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, "not a valid Unix user name").optional().describe("This node's SSH user (default: ssh.user)."),
  port: port.optional().describe("This node's SSH port (default: ssh.port)."),
  hostKey: sshHostKey.optional().describe("The node's SSH host key (`ssh-keyscan -t ed25519 <host>`); required in prod, a warning elsewhere."),
});

/**
 * A node's own kubelet settings, over k3s.kubelet field by field (a reserved map merges key by
 * key): the capacity settings that differ between machines of one cluster.
 */
export const nodeKubeletSchema = kubeletSchema.pick({ systemReserved: true, kubeReserved: true, maxPods: true });

/** A pool's name (`pools.<name>`, `nodes[].pool`): a DNS label. */
export const poolName = z.string().max(63).regex(DNS_LABEL, "pool name must be a lowercase DNS label (a-z, 0-9, -)");

export const nodeSchema = z.strictObject({
  name: z
    .string()
    .max(63)
    .regex(DNS_LABEL, "node name must be a lowercase DNS label (a-z, 0-9, -)").describe("The Kubernetes node name (a lowercase DNS label), unique in the stack."),
  host: hostAddress.describe("The address k3s-platform connects to (a canonical IP address or a DNS name)."),
  role: z.enum(["server", "agent"]).describe("`server` (control plane, etcd) or `agent` (workloads only)."),
  labels: labelMap.default({}).describe("Node labels set at registration (`node-label`); `node-role.kubernetes.io/*` is set after registration."),
  taints: z.array(taint).default([]).describe("Node taints set at registration (`node-taint`), `key[=value]:Effect`."),
  nodeIp: ipList.optional().describe("`node-ip`: one address, or one per family in the cluster's family order (a dual-stack cluster needs both)."),
  externalIp: ipList.optional().describe("`node-external-ip`: one address or one per family (families the cluster has)."),
  gpu: z.enum(["nvidia"]).optional().describe("GPUs the node carries: `nvidia` checks for the NVIDIA container runtime and labels the node."),
  raspberryPi: z.boolean().default(false).describe("Raspberry Pi boards need cgroup flags on the kernel command line."),
  ssh: nodeSshSchema.default({}).describe("SSH settings for this node only."),
  kubelet: nodeKubeletSchema.optional().describe("kubelet capacity settings of this node, over k3s.kubelet (docs/node-pools.md)."),
  pool: poolName.optional().describe("The pool (`pools.<name>`) whose settings this node takes where it sets none (docs/node-pools.md); resolved before validation (config/pools.ts) and not kept in the resolved config."),
  // Removal in two steps (docs/removing-and-replacing-nodes.md): arming, then deleting the entry,
  // which runs the teardown; deleting the line without arming it first leaves K3s running.
  decommission: z.boolean().optional().describe("Removal, step 1 of 2: `true` arms the teardown (drain, delete the Node, uninstall K3s) and stops changing the node; deleting the entry on a later up runs it. `false` disarms; never delete the line to disarm (docs/removing-and-replacing-nodes.md)."),
  // Its value joins the triggers of every step of the node (stage, bundle, secrets, os-prep, apply),
  // so all run again; before them a one-shot step on a surviving server deletes the old Node (only
  // when not Ready), which removes K3s' node-password secret and, for a server, its etcd member. On
  // the first server the rebuild guard becomes join-only: no other server answering fails apply
  // instead of cluster-init.
  rebuild: z.union([singleLine().min(1), z.number().int().nonnegative()]).optional().describe("A counter or a date string (`1`, `\"2026-11-30\"`); each new value rebuilds the node once, for a re-imaged host whose K3s and data are gone (docs/rebuilding.md)."),
});

/**
 * `pools.<name>`: the settings a group of nodes shares (docs/node-pools.md). A node naming the
 * pool takes each one it does not set itself: maps (labels, ssh, kubelet and its reserved maps)
 * merge key by key with the node's keys winning, lists (taints) and scalars are replaced whole.
 * Per-host settings (name, host, nodeIp, externalIp, ssh.hostKey, decommission, rebuild) stay on
 * the node.
 */
export const poolSchema = z.strictObject({
  role: z.enum(["server", "agent"]).optional().describe("The role of the pool's nodes."),
  labels: labelMap.optional().describe("Labels every node of the pool gets (merged key by key, the node's winning)."),
  taints: z.array(taint).optional().describe("Taints of the pool's nodes (a node's own list replaces it)."),
  gpu: z.enum(["nvidia"]).optional().describe("The GPUs the pool's nodes carry."),
  raspberryPi: z.boolean().optional().describe("The pool's nodes are Raspberry Pi boards."),
  ssh: nodeSshSchema.omit({ hostKey: true }).optional().describe("SSH settings of the pool's nodes (the host key stays per node)."),
  kubelet: nodeKubeletSchema.optional().describe("kubelet capacity settings of the pool's nodes."),
});
/** The node fields a pool can hold (poolSchema's keys), for resolution and provenance. */
export const POOL_FIELDS = Object.keys(poolSchema.shape) as ReadonlyArray<keyof z.infer<typeof poolSchema>>;
