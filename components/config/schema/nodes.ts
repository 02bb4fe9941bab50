import { z } from "zod";
import { DNS_LABEL, hostAddress, ipAddress, labelMap, port, sshHostKey, taint } from "./primitives";

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

export const nodeSchema = z.strictObject({
  name: z
    .string()
    .max(63)
    .regex(DNS_LABEL, "node name must be a lowercase DNS label (a-z, 0-9, -)"),
  host: hostAddress,
  role: z.enum(["server", "agent"]),
  labels: labelMap.default({}),
  taints: z.array(taint).default([]),
  nodeIp: ipAddress.optional(),
  externalIp: ipAddress.optional(),
  /** GPUs the node carries: `nvidia` checks for the NVIDIA container runtime and labels the node. */
  gpu: z.enum(["nvidia"]).optional(),
  /** Raspberry Pi boards need cgroup flags on the kernel command line. */
  raspberryPi: z.boolean().default(false),
  ssh: nodeSshSchema.default({}),
  /**
   * Removal, step 1 of 2 (README "Removing a node"): `true` arms the teardown (drain, delete the
   * Node, uninstall K3s) and stops installing or changing anything on the node; deleting the entry
   * on a later `up` runs the teardown. `false` disarms it; never delete the line to disarm.
   */
  decommission: z.boolean().optional(),
});
