import { argMap } from "../config/flags";
import type { NodeConfig, ResolvedConfig } from "../config/schema";
import { raw, Shell, sh } from "../shell/sh";

/**
 * apply.sh's preflight (issue 28): everything the step needs from the host, checked before apply
 * places a file, takes a snapshot, cordons or drains. A failure names the host, the node and what
 * is missing, and leaves the node as the last apply left it. Pure renderers, no Pulumi.
 *
 * Two parts: the host checks run on every apply (local, cheap: init system, cgroup version, free
 * disk, the air-gap binary and install script); the install-script download is checked only when
 * an install will run (after the fingerprint check), still before the upgrade's snapshot and cordon.
 */

/** The variable apply.sh reads the cluster's release from on a channel stack (k3s/release.ts; set on its command line, never a secret). */
export const CLUSTER_RELEASE_VARIABLE = "K3S_PLATFORM_CLUSTER_RELEASE";

/** Free space needed on the filesystem of K3s' data directory (images, etcd, containerd snapshots). */
export const MIN_FREE_MIB = 1024;
/** K3s' data directory (K3s default `data-dir`); the free-disk check looks at its filesystem. */
export const K3S_DATA_DIR = "/var/lib/rancher/k3s";
/** Kubernetes minor from which the kubelet refuses cgroup v1 hosts (KEP-5573, Kubernetes v1.35). */
export const CGROUP_V1_LAST_MINOR = 34;

/** The pinned release's Kubernetes minor (v1.MINOR.PATCH+k3sN), or undefined for a channel. */
export function kubernetesMinor(version: string | undefined): number | undefined {
  const m = version ? /^v1\.(\d+)\./.exec(version) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * Where an air-gapped host stages the next release beside the running one: `<binaryPath>-<version>`
 * (e.g. /usr/local/bin/k3s-v1.31.5+k3s1). Only the upgrade flow moves it to `binaryPath`, the
 * unit's ExecStart: a release copied straight to `binaryPath` runs at the next crash or reboot,
 * before any snapshot, cordon or drain.
 */
export function stagedBinaryPath(binaryPath: string, version: string): string {
  return `${binaryPath}-${version}`;
}

/** The host checks: rendered at the top of apply.sh, after `fail`, before the version guard. */
export function renderHostPreflight(config: ResolvedConfig, node: NodeConfig): Shell {
  const { k3s } = config;
  const minor = kubernetesMinor(k3s.version);
  // Channel stacks: the cluster's release (K3S_PLATFORM_CLUSTER_RELEASE, recorded once per stack,
  // k3s/release.ts) decides at run time, the same hard check. The kubelet opt-out `kubelet-arg: fail-cgroupv1=false` in the node's config.yaml map
  // (KEP-5573; kubernetes/system-validators#59): with it the kubelet starts on cgroup v1, and
  // validation (feature-checks.ts) already warns about it.
  const kubeletArgs = (node.role === "server" ? k3s.extraServerConfig : k3s.extraAgentConfig)["kubelet-arg"];
  const optedOut = argMap(kubeletArgs).get("fail-cgroupv1") === "false";
  const cgroup =
    optedOut
      ? raw(`[ -f "$ROOT/sys/fs/cgroup/cgroup.controllers" ] || echo "apply[$NODE]: warning: $HOST runs cgroup v1; kubelet-arg fail-cgroupv1=false keeps the kubelet starting there, unsupported by Kubernetes from v1.35 (KEP-5573)"`)
      : minor === undefined
      ? sh`CGROUP_RELEASE="\${${raw(CLUSTER_RELEASE_VARIABLE)}:-}"
if [[ "$CGROUP_RELEASE" =~ ^v1\\.([0-9]+)\\. ]] && [ "\${BASH_REMATCH[1]}" -gt ${raw(String(CGROUP_V1_LAST_MINOR))} ] && [ ! -f "$ROOT/sys/fs/cgroup/cgroup.controllers" ]; then
  preflight_fail "the host runs cgroup v1 (no /sys/fs/cgroup/cgroup.controllers) and the cluster's release $CGROUP_RELEASE (channel ${raw(k3s.channel ?? "stable")}) refuses cgroup v1 (Kubernetes 1.35+, KEP-5573); boot it with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)"
fi`
      : minor > CGROUP_V1_LAST_MINOR
        ? sh`CGROUP_RELEASE=${k3s.version ?? ""}
[ -f "$ROOT/sys/fs/cgroup/cgroup.controllers" ] || preflight_fail "the host runs cgroup v1 (no /sys/fs/cgroup/cgroup.controllers) and $CGROUP_RELEASE refuses cgroup v1 (Kubernetes 1.35+, KEP-5573); boot it with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)"`
        : raw("");
  return sh`
# --- preflight (components/k3s/preflight.ts): nothing is placed, snapshotted, cordoned or drained yet
HOST=${node.host}
preflight_fail() { fail "preflight on host $HOST: $*; nothing was changed on this node"; }
# Init system: K3s runs as a systemd unit here. The install script takes its OpenRC path whenever
# /sbin/openrc-run is executable, even beside systemd (install.sh setup_env: HAS_OPENRC first).
if [ -x "$ROOT/sbin/openrc-run" ]; then
  preflight_fail "the host has OpenRC (/sbin/openrc-run), which the K3s install script would use; k3s-platform supports systemd hosts only"
fi
# sd_booted(3): systemd is the running init iff /run/systemd/system exists.
[ -d "$ROOT/run/systemd/system" ] || preflight_fail "systemd is not running (no /run/systemd/system); k3s-platform manages K3s as a systemd unit"
command -v systemctl >/dev/null || preflight_fail "systemctl is not installed"
${cgroup}
# Free disk on the filesystem that holds (or will hold) K3s' data directory.
MIN_FREE_MIB="\${K3S_PLATFORM_MIN_FREE_MIB:-${raw(String(MIN_FREE_MIB))}}"
data_dir=${K3S_DATA_DIR}
while [ ! -d "$ROOT$data_dir" ] && [ "$data_dir" != / ]; do data_dir="$(dirname "$data_dir")"; done
free_kib="$(df -Pk "$ROOT$data_dir" | awk 'NR == 2 { print $4 }')"
[ "$((free_kib / 1024))" -ge "$MIN_FREE_MIB" ] || preflight_fail "only $((free_kib / 1024)) MiB free on the filesystem of $data_dir; K3s needs at least $MIN_FREE_MIB MiB"
# --- end of preflight
`;
}

/**
 * Air-gap: the pinned release and the install script on the host. Rendered after the concerns'
 * guards (the version guard refuses a downgrade or skipped minor with its own message first),
 * still before anything is placed.
 */
export function renderReleasePreflight(config: ResolvedConfig): Shell {
  const { k3s } = config;
  const airgap = k3s.airgap;
  if (!airgap.enabled) return raw("");
  return sh`
# Air-gap: the pinned release must be on the host, at binaryPath or staged beside it (versioned).
TARGET_RELEASE=${k3s.version ?? ""}
BINARY=${airgap.binaryPath}
STAGED_BINARY=${stagedBinaryPath(airgap.binaryPath, k3s.version ?? "")}
WANT_BINARY_SHA256=${airgap.binarySha256 ?? ""}
# binary_version FILE: the release FILE reports ("k3s version v1.31.4+k3s1 (hash)"), captured, not piped into grep.
binary_version() {
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  out="\${out#k3s version }"
  echo "\${out%% *}"
}
NEW_BINARY=""
if [ -x "$ROOT$BINARY" ] && [ "$(binary_version "$ROOT$BINARY" || true)" = "$TARGET_RELEASE" ]; then
  :
elif [ -x "$ROOT$STAGED_BINARY" ]; then
  have="$(binary_version "$ROOT$STAGED_BINARY" || true)"
  [ "$have" = "$TARGET_RELEASE" ] || preflight_fail "the staged release $STAGED_BINARY reports '$have', not $TARGET_RELEASE"
  NEW_BINARY="$STAGED_BINARY"
else
  have="$( { [ -x "$ROOT$BINARY" ] && binary_version "$ROOT$BINARY"; } || echo "no executable")"
  preflight_fail "the air-gap binary for $TARGET_RELEASE is missing: $BINARY is $have and $STAGED_BINARY is absent (stage the new release at $STAGED_BINARY; the upgrade moves it to $BINARY)"
fi
if [ -n "$WANT_BINARY_SHA256" ]; then
  checked="\${NEW_BINARY:-$BINARY}"
  have="$(sha256sum "$ROOT$checked" | cut -d' ' -f1)"
  [ "$have" = "$WANT_BINARY_SHA256" ] || preflight_fail "$checked has sha256 $have, not $WANT_BINARY_SHA256 (k3s.airgap.binarySha256)"
fi
INSTALLER=${airgap.installScriptPath}
[ -f "$ROOT$INSTALLER" ] || preflight_fail "the air-gap install script $INSTALLER is missing (k3s.airgap.installScriptPath)"
`;
}

/**
 * Download mode with a pinned digest: the install script is fetched and checked once an install is
 * due, before the upgrade's snapshot, cordon or drain (install-k3s.sh checks it again when it runs).
 */
export function renderDownloadPreflight(config: ResolvedConfig): Shell {
  const { k3s } = config;
  if (k3s.airgap.enabled || !k3s.installScriptSha256) return raw("");
  return sh`
# Preflight: the install script's digest, before anything is disrupted (components/k3s/preflight.ts).
SCRIPT_URL=${k3s.installScriptUrl}
WANT_SCRIPT_SHA256=${k3s.installScriptSha256}
checked_script="$(mktemp)"
if ! curl -sfL --proto '=https' --retry 3 --max-time 120 -o "$checked_script" "$SCRIPT_URL"; then
  rm -f "$checked_script"
  preflight_fail "cannot download the install script from $SCRIPT_URL"
fi
have_sha256="$(sha256sum "$checked_script" | cut -d' ' -f1)"
rm -f "$checked_script"
[ "$have_sha256" = "$WANT_SCRIPT_SHA256" ] || preflight_fail "the install script from $SCRIPT_URL has sha256 $have_sha256, not $WANT_SCRIPT_SHA256 (k3s.installScriptSha256)"
`;
}
