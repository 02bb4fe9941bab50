import { z } from "zod";
import { singleLine } from "../single-line";
import { kubeletSchema } from "./k3s";
import { DNS_LABEL, hostAddress, ipList, labelMap, port, sshHostKey, taint } from "./primitives";

/** The `ssh` section and `nodes[]`. */

// ---------------------------------------------------------------- ssh and nodes

export const bastionSchema = z.strictObject({
  host: hostAddress,
  port: port.default(22),
  user: z.string().min(1).default("root"),
  hostKey: sshHostKey.optional(),
});

export const sshSchema = z.strictObject({
  user: z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, "not a valid Unix user name").default("root"),
  port: port.default(22),
  bastion: bastionSchema.optional(),
  /** Seconds per dial attempt and number of failed dials before giving up. */
  perDialTimeout: z.number().int().positive().default(15),
  dialErrorLimit: z.number().int().positive().default(10),
});

export const nodeSshSchema = z.strictObject({
  user: z.string().regex(/^[a-z_][a-z0-9_-]*[$]?$/, "not a valid Unix user name").optional(),
  port: port.optional(),
  hostKey: sshHostKey.optional(),
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
    .regex(DNS_LABEL, "node name must be a lowercase DNS label (a-z, 0-9, -)"),
  host: hostAddress,
  role: z.enum(["server", "agent"]),
  labels: labelMap.default({}),
  taints: z.array(taint).default([]),
  /** `node-ip`: one address, or one per family in the cluster's family order (a dual-stack cluster needs both). */
  nodeIp: ipList.optional(),
  /** `node-external-ip`: one address or one per family (families the cluster has). */
  externalIp: ipList.optional(),
  /** GPUs the node carries: `nvidia` checks for the NVIDIA container runtime and labels the node. */
  gpu: z.enum(["nvidia"]).optional(),
  /** Raspberry Pi boards need cgroup flags on the kernel command line. */
  raspberryPi: z.boolean().default(false),
  ssh: nodeSshSchema.default({}),
  /** kubelet capacity settings of this node, over k3s.kubelet (docs/node-pools.md). */
  kubelet: nodeKubeletSchema.optional(),
  /**
   * The pool (`pools.<name>`) whose settings this node takes where it sets none (docs/node-pools.md);
   * resolved before validation (config/pools.ts) and not kept in the resolved config.
   */
  pool: poolName.optional(),
  /**
   * Removal, step 1 of 2 (docs/removing-and-replacing-nodes.md "Removing a node"): `true` arms the teardown (drain, delete the
   * Node, uninstall K3s) and stops installing or changing anything on the node; deleting the entry
   * on a later `up` runs the teardown. `false` disarms it; never delete the line to disarm.
   */
  decommission: z.boolean().optional(),
  /**
   * Rebuild (docs/rebuilding.md): a counter or a date string (`1`, `"2026-11-30"`); each
   * new value rebuilds the node once, for a host that was re-imaged (its K3s, data and
   * k3s-platform state are gone). It is added to the `triggers` of every step of the node (stage,
   * bundle, secrets, os-prep, apply), so all of them run again; before them a one-shot step on a
   * surviving server deletes the old Node (`kubectl delete node`, only when it is not Ready), which
   * removes K3s' node-password secret and, for a server, its etcd member. On the first server it
   * also makes the rebuild guard join-only: with an empty data directory and no other server
   * answering, apply fails instead of `cluster-init`. Unset: no trigger is added.
   */
  rebuild: z.union([singleLine().min(1), z.number().int().nonnegative()]).optional(),
});

/**
 * `pools.<name>`: the settings a group of nodes shares (docs/node-pools.md). A node naming the
 * pool takes each one it does not set itself: maps (labels, ssh, kubelet and its reserved maps)
 * merge key by key with the node's keys winning, lists (taints) and scalars are replaced whole.
 * Per-host settings (name, host, nodeIp, externalIp, ssh.hostKey, decommission, rebuild) stay on
 * the node.
 */
export const poolSchema = z.strictObject({
  role: z.enum(["server", "agent"]).optional(),
  labels: labelMap.optional(),
  taints: z.array(taint).optional(),
  gpu: z.enum(["nvidia"]).optional(),
  raspberryPi: z.boolean().optional(),
  ssh: nodeSshSchema.omit({ hostKey: true }).optional(),
  kubelet: nodeKubeletSchema.optional(),
});
/** The node fields a pool can hold (poolSchema's keys), for resolution and provenance. */
export const POOL_FIELDS = Object.keys(poolSchema.shape) as ReadonlyArray<keyof z.infer<typeof poolSchema>>;
