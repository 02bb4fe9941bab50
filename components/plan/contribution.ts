import type { NodeContext } from "../config/context";
import type { FlagValue } from "../config/schema";
import type { NodeSecrets } from "../config/secrets";
import type { Shell } from "../shell/sh";

/**
 * The one contract between the concerns (k3s, registries, dns, cis, encryption, kube-vip,
 * manifests, servicelb, runtimes, os-prep, and the day-2 operations next) and the node plan
 * (plan/node.ts). Each concern exports `contribute(ctx)`: config in, a Contribution out, no
 * Pulumi, no I/O. The plan folds the contributions of `CONCERNS` (plan/concerns.ts) in that
 * listed order, like kind's create `actions` or k3s-ansible's site.yml: files, secret files and
 * directories are concatenated, flags merged into config.yaml (lists append, scalars replace),
 * hooks joined, labels spread.
 */

export type { NodeContext };

/** A file staged in the node bundle (node/bundle.ts) and placed by apply.sh when it has a target. */
export interface StagedFile {
  /** Name in the staging directory, also the resource-name suffix. */
  name: string;
  content: string;
  /** Where apply.sh installs it; scripts that only run from staging have none. */
  target?: string;
  mode: string;
  /** `false`: K3s picks the file up while running (manifests directory); placing it restarts nothing. */
  restart?: boolean;
}

/** A file that carries secrets: written over SSH from Pulumi secrets, never staged in clear. */
export interface SecretFile {
  name: string;
  target: string;
  mode: string;
  render: (secrets: NodeSecrets) => string;
  /** Shell that writes stdin to `target` instead of a plain atomic write (e.g. keeping deployed keys). */
  writeScript?: string;
}

export interface Contribution {
  /** Staged in the node bundle, placed by apply.sh (in fold order). */
  files?: StagedFile[];
  /** Written by the node's one `secrets` command from Pulumi secrets. */
  secretFiles?: SecretFile[];
  /** Merged into config.yaml after the flags of earlier concerns. */
  flags?: Record<string, FlagValue>;
  /** Created (0700) by apply.sh before K3s starts. */
  directories?: string[];
  /** apply.sh: guards, before anything is placed (refuse with a clear error). */
  preflight?: Shell;
  /** apply.sh: after placing files, before the install script (re)starts K3s. */
  preInstall?: Shell;
  /** apply.sh: after K3s is (re)started and ready (runs only when something K3s reads changed). */
  postInstall?: Shell;
  /** apply.sh: last, after the restart's fingerprint is recorded (a failure here never restarts K3s again). */
  final?: Shell;
  /** apply.sh: when nothing K3s reads changed, before it exits "up to date". */
  upToDate?: Shell;
  /** Applied with kubectl after the node registers (node-role.kubernetes.io/* and similar). */
  labels?: Record<string, string>;
  /** Labels k3s-platform manages that this node must not carry. */
  removedLabels?: string[];
}

export interface Concern {
  name: string;
  contribute(ctx: NodeContext): Contribution;
}
