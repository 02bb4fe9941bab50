import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ResolvedConfig } from "../../components/config/schema";
import { REPO } from "./samples";

/** The install script stand-in that follows install.sh (test/helpers/install-standin.sh). */
export const INSTALL_STANDIN = join(REPO, "test", "helpers", "install-standin.sh");

/** A stand-in k3s binary at `path` under `root` that reports `version`, as `k3s --version` does. */
export function fakeBinary(root: string, path: string, version: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), `#!/bin/sh\necho "k3s version ${version} (stand-in)"\n`);
  chmodSync(join(root, path), 0o755);
}

/**
 * `root` as a host apply.sh's preflight (components/k3s/preflight.ts) accepts: systemd running
 * (/run/systemd/system), cgroup v2 (/sys/fs/cgroup/cgroup.controllers) and, air-gapped, the pinned
 * binary (reporting `binary`, default the pinned release) and the install script stand-in in place.
 */
export function hostRoot(root: string, config: ResolvedConfig, binary = config.k3s.version ?? ""): void {
  systemdHost(root);
  if (config.k3s.airgap.enabled) {
    fakeBinary(root, config.k3s.airgap.binaryPath, binary);
    mkdirSync(dirname(join(root, config.k3s.airgap.installScriptPath)), { recursive: true });
    writeFileSync(join(root, config.k3s.airgap.installScriptPath), readFileSync(INSTALL_STANDIN, "utf8"));
  }
}

/** `root` as a systemd host with cgroup v2: what preflight needs of any host, air-gapped or not. */
export function systemdHost(root: string): void {
  mkdirSync(join(root, "run/systemd/system"), { recursive: true });
  mkdirSync(join(root, "sys/fs/cgroup"), { recursive: true });
  writeFileSync(join(root, "sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n");
}
