import { z } from "zod";
import { singleLine } from "../single-line";

// ---------------------------------------------------------------- restore and maintenance (components/operations)

/**
 * A one-shot id: a counter or a date. The operation runs once per value on each host (operations/
 * once.ts guardOnce); a new value runs it again.
 */
export const oneShotId = z.union([singleLine().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/, "an id is 1-63 letters, digits and . _ : - (e.g. 1 or 2026-12-07)"), z.number().int().min(0)]);

/**
 * A snapshot as `k3s server --cluster-reset-restore-path` takes it (docs.k3s.io/cli/etcd-snapshot,
 * "Restoring Snapshots"): a local file by absolute path or by name in the snapshot directory, or
 * (source s3) the object's file name only. Letters, digits and . _ - (and / in a path): K3s names
 * snapshots `<name>-<node>-<unix time>`.
 */
const SNAPSHOT = /^(\/[A-Za-z0-9._-]+)+$|^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * `restore` (docs/backup-and-restore.md): restore an embedded-etcd snapshot with `pulumi up`, once
 * per `id`: K3s stops on every server, the first server runs `k3s server --cluster-reset
 * --cluster-reset-restore-path`, the other servers rejoin one at a time with their etcd data
 * moved aside, agents restart. Everything written to the cluster after the snapshot is lost.
 */
export const restoreSchema = z.strictObject({
  id: oneShotId.describe("Bump (a counter or a date) to restore again; the same value never restores twice."),
  snapshot: singleLine()
    .max(255)
    .regex(SNAPSHOT, "a snapshot is a file name (letters, digits, . _ -) or an absolute path of such names")
    .refine((v) => !v.split("/").includes("..") && !v.split("/").includes("."), { message: "a snapshot path has no . or .. segment" })
    .describe("The snapshot: a file name in the snapshot directory (k3s.etcdSnapshots.dir) or an absolute path; for s3, the object's file name."),
  source: z.enum(["local", "s3"]).default("local").describe("Where K3s reads it: `local` (the first server's disk) or `s3` (k3s.etcdSnapshots.s3's bucket and folder)."),
});

/**
 * A maintenance command, as argv: the program (a bare name on root's PATH or an absolute path) and
 * its arguments, each one word, never interpreted by a shell. It runs as root on every node the
 * maintenance covers: in prod only the commands of MAINTENANCE_COMMANDS (components/maintenance)
 * are accepted.
 */
export const maintenanceCommand = z
  .array(singleLine().min(1).max(512))
  .min(1, "a command is a program and its arguments, e.g. [apt-get, upgrade, -y]")
  .max(32)
  .refine((argv) => /^(\/[A-Za-z0-9._+-]+)+$|^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(argv[0] ?? ""), {
    message: "the program (the first entry) is a bare name or an absolute path (letters, digits, . _ + -)",
    path: [0],
  });

/**
 * `maintenance` (docs/maintenance.md): rolling node maintenance once per `id`: servers one at a
 * time, then agents in batches of upgrade.maxUnavailable: cordon, drain, run `command`, reboot
 * when asked (the Node comes back Ready with a new boot ID, the host answers SSH), uncordon.
 */
export const maintenanceSchema = z.strictObject({
  id: oneShotId.describe("Bump (a counter or a date) to run it again; the same value never runs twice."),
  command: maintenanceCommand.optional().describe("Run on each node while it is drained: argv (program and arguments, no shell), as root; prod accepts only the OS-patching commands of docs/maintenance.md."),
  reboot: z.boolean().default(false).describe("Reboot each node after the command; the node must come back Ready with a new boot ID."),
  nodes: z.union([z.literal("all"), z.array(singleLine().min(1)).min(1)]).default("all").describe("Which nodes: `all` (every managed node) or a list of node names."),
});
