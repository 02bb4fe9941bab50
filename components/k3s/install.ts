import { TAILSCALE_RANGES } from "../config/network-rules";
import type { NodeContext } from "../config/context";
import { NodeConfig, ResolvedConfig } from "../config/schema";
import { joinShell, raw, Shell, sh } from "../shell/sh";
import { CIDR_FUNCTIONS } from "../shell/cidr";
import { nodeNetworks } from "../config/node-networks";
import { clusterTopology, nodeAddress } from "../config/topology";
import { isIp } from "../config/net";
import { CLUSTER_RELEASE_VARIABLE, renderDownloadPreflight, renderHostPreflight, renderReleasePreflight } from "./preflight";

export { CLUSTER_RELEASE_VARIABLE };
import { renderBinaryPinCheck, renderBinaryPinPreflight } from "./binary-pin";

/** Pure renderers for the install step: the install-script invocation and the apply script. */

export const STAGING_DIR = "/var/lib/k3s-platform/staging";
export const STATE_DIR = "/var/lib/k3s-platform";
export const READY_TIMEOUT_SECONDS = 300;
/** The install script's bound (download mode fetches a ~70 MB binary); `timeout` kills it after. */
export const INSTALL_TIMEOUT_SECONDS = 600;
/** systemd's DefaultTimeoutStopSec: K3s' unit sets none, so `systemctl stop` returns within it. */
export const STOP_TIMEOUT_SECONDS = 90;

/**
 * The files K3s' unit reads besides config.yaml, as the real install script writes them
 * (k3s-io/k3s install.sh create_systemd_service_file: `EnvironmentFile=-/etc/default/%N`,
 * `EnvironmentFile=-/etc/sysconfig/%N`, `EnvironmentFile=-${FILE_K3S_ENV}`; FILE_K3S_SERVICE =
 * /etc/systemd/system/${SYSTEM_NAME}.service, FILE_K3S_ENV = ${FILE_K3S_SERVICE}.env).
 */
export function unitFiles(service: string): { unit: string; env: string; overrides: string[] } {
  return {
    unit: `/etc/systemd/system/${service}.service`,
    env: `/etc/systemd/system/${service}.service.env`,
    overrides: [`/etc/default/${service}`, `/etc/sysconfig/${service}`],
  };
}

export function serviceName(node: NodeConfig): string {
  return node.role === "server" ? "k3s" : "k3s-agent";
}

/** Environment for the K3s install script. Holds no secret: tokens live in a config drop-in. */
export function installEnv(config: ResolvedConfig, node: NodeConfig): Record<string, string> {
  const { k3s } = config;
  const env: Record<string, string> = { INSTALL_K3S_EXEC: node.role };
  // A channel stack installs the cluster's release (apply.sh exports it as INSTALL_K3S_VERSION,
  // renderClusterReleaseGuard), never the channel: INSTALL_K3S_CHANNEL is not exported, so a
  // changed `channel` value leaves install-k3s.sh, and so every node's fingerprint, as it was.
  if (k3s.version) env.INSTALL_K3S_VERSION = k3s.version;
  if (k3s.airgap.enabled) {
    env.INSTALL_K3S_SKIP_DOWNLOAD = "true";
    // The install script looks for `${INSTALL_K3S_BIN_DIR}/k3s` (default /usr/local/bin/k3s).
    env.INSTALL_K3S_BIN_DIR = binDir(k3s.airgap.binaryPath);
    if (k3s.selinux) env.INSTALL_K3S_SKIP_SELINUX_RPM = "true";
  }
  // The install script copies these into k3s(-agent).service.env, the unit's proxy settings.
  const p = k3s.proxy;
  if (p) {
    if (p.httpProxy) env.HTTP_PROXY = p.httpProxy;
    if (p.httpsProxy) env.HTTPS_PROXY = p.httpsProxy;
    if (p.httpProxy || p.httpsProxy) env.NO_PROXY = noProxyValue(config, p.noProxy);
    if (p.containerdHttpProxy) env.CONTAINERD_HTTP_PROXY = p.containerdHttpProxy;
    if (p.containerdHttpsProxy) env.CONTAINERD_HTTPS_PROXY = p.containerdHttpsProxy;
    if (p.containerdHttpProxy || p.containerdHttpsProxy) env.CONTAINERD_NO_PROXY = noProxyValue(config, p.containerdNoProxy ?? p.noProxy);
  }
  return env;
}

/**
 * noProxyList as the variable's value, once per cluster and list: every node's install script and
 * apply.sh carry the same text, and a noProxy may name every node (then a list per node would make
 * planning quadratic: `npm run bench`, issue 26).
 */
function noProxyValue(config: ResolvedConfig, extra: string[]): string {
  let values = noProxyValues.get(config);
  if (!values) noProxyValues.set(config, (values = new Map()));
  let value = values.get(extra);
  if (value === undefined) values.set(extra, (value = noProxyList(config, extra).join(",")));
  return value;
}
const noProxyValues = new WeakMap<ResolvedConfig, Map<string[], string>>();

/** Where K3s imports image tarballs from at start (K3s air-gap docs). */
export const K3S_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images";
/** Tarball suffixes K3s imports from the images directory (K3s air-gap docs). */
const IMAGE_TARBALL_GLOBS = ["*.tar", "*.tar.gz", "*.tgz", "*.tar.zst", "*.tar.lz4", "*.tar.bz2", "*.tar.xz"];

/** The directory the install script finds the pre-staged binary in (`INSTALL_K3S_BIN_DIR`). */
export function binDir(binaryPath: string): string {
  const dir = binaryPath.slice(0, binaryPath.lastIndexOf("/"));
  return dir === "" ? "/" : dir;
}

/**
 * install-k3s.sh: runs the K3s install script with the node's environment. Every interpolated
 * value goes through `sh` (quoted); messages take values as shell variables set once.
 */
export function renderInstallScript(config: ResolvedConfig, node: NodeConfig): string {
  const { k3s } = config;
  const env = installEnv(config, node);
  const exportLines = joinShell(Object.entries(env).map(([k, v]) => sh`export ${raw(k)}=${v}`));
  const airgap = k3s.airgap;
  const images =
    airgap.imagesDir === K3S_IMAGES_DIR
      ? sh`# Images: pre-staged in ${K3S_IMAGES_DIR}, where K3s imports them at start.`
      : sh`# Images: K3s imports tarballs only from ${K3S_IMAGES_DIR}; copy the pre-staged ones there.
IMAGES_DIR=${airgap.imagesDir}
K3S_IMAGES=${K3S_IMAGES_DIR}
[ -d "$ROOT$IMAGES_DIR" ] || fail "air-gap images directory $IMAGES_DIR is missing (k3s.airgap.imagesDir)"
install -d -m 0755 "$ROOT$K3S_IMAGES"
copied=0
for tarball in ${raw(IMAGE_TARBALL_GLOBS.map((g) => `"$ROOT$IMAGES_DIR"/${g}`).join(" "))}; do
  [ -f "$tarball" ] || continue
  target="$ROOT$K3S_IMAGES/\${tarball##*/}"
  if ! cmp -s "$tarball" "$target"; then
    install -m 0644 "$tarball" "$target"
    echo "install-k3s[$NODE]: copied \${tarball##*/} to $K3S_IMAGES"
  fi
  copied=$((copied + 1))
done
[ "$copied" -gt 0 ] || echo "install-k3s[$NODE]: warning: no image tarballs in $IMAGES_DIR; images must come from a registry"`;
  const run = airgap.enabled
    ? sh`# Air-gap: the binary, images and install script were pre-staged on the host.
ROOT="\${K3S_PLATFORM_ROOT:-}"
BINARY=${airgap.binaryPath}
INSTALLER=${airgap.installScriptPath}
WANT_VERSION=${k3s.version ?? ""}
[ -x "$ROOT$BINARY" ] || fail "air-gap binary $BINARY is missing or not executable (k3s.airgap.binaryPath)"
# Captured, then matched: a pipe into grep -q can fail at random under pipefail (SIGPIPE).
have_version="$("$ROOT$BINARY" --version)"
case "$have_version" in
  *" $WANT_VERSION "* | *" $WANT_VERSION") ;;
  *) fail "$BINARY is not $WANT_VERSION (it reports: $have_version)" ;;
esac
[ -f "$ROOT$INSTALLER" ] || fail "air-gap install script $INSTALLER is missing (k3s.airgap.installScriptPath)"
${images}
sh "$ROOT$INSTALLER"`
    : sh`URL=${k3s.installScriptUrl}
WANT_SHA256=${k3s.installScriptSha256 ?? ""}
script="$(mktemp)"
trap 'rm -f "$script"' EXIT
curl -sfL --proto '=https' --retry 3 -o "$script" "$URL" || fail "cannot download the install script from $URL"
if [ -n "$WANT_SHA256" ]; then
  have_sha256="$(sha256sum "$script" | cut -d' ' -f1)"
  [ "$have_sha256" = "$WANT_SHA256" ] || fail "the install script from $URL has sha256 $have_sha256, not $WANT_SHA256 (k3s.installScriptSha256)"
fi
sh "$script"`;
  return sh`#!/usr/bin/env bash
# Installs or upgrades K3s on node ${node.name} (${node.role}), generated by k3s-platform.
set -euo pipefail
NODE=${node.name}
fail() { printf 'install-k3s[%s]: %s\\n' "$NODE" "$*" >&2; exit 1; }
${exportLines}
${run}
`.text;
}

/** The install script's and the apply script's names in the node bundle. */
export const INSTALL_SCRIPT = "install-k3s.sh";
export const APPLY_SCRIPT = "apply.sh";

/** apply.sh's hook points, each the concerns' hooks joined in fold order (plan/contribution.ts). */
export interface ApplyHooks {
  preflight?: Shell;
  preInstall?: Shell;
  postInstall?: Shell;
  final?: Shell;
  upToDate?: Shell;
}

/**
 * NO_PROXY for the K3s unit (and CONTAINERD_NO_PROXY): traffic that must never go to the proxy.
 * Loopback, the pod and service CIDRs, `.svc` and the cluster domain, the API endpoint and
 * tls-sans, the node networks (`k3s.nodeNetworks`), then the user's entries. Node traffic must
 * bypass the proxy (issue 10): validation requires the node networks and the user's entries
 * together to cover every node address (config/node-networks.ts), so no node address is listed
 * one by one: the value, and the env file the install script writes from it, stay the same when a
 * node is added or removed (issue 26: listing them restarted K3s on every node at each change).
 */
export function noProxyList(config: ResolvedConfig, extra: string[] = []): string[] {
  const { k3s } = config;
  return [
    ...new Set([
      "127.0.0.0/8",
      "::1",
      "localhost",
      ...k3s.clusterCidr,
      ...k3s.serviceCidr,
      ".svc",
      `.${k3s.clusterDomain}`,
      ...(k3s.apiEndpoint ? [k3s.apiEndpoint] : []),
      ...k3s.tlsSan,
      // The first server's address, when a name: joining servers (and agents without apiEndpoint)
      // dial it (topology.ts serverJoinUrl/agentJoinUrl) and no node network covers a name. An
      // address is covered by nodeNetworks/noProxy (validated), so it is not listed.
      ...[nodeAddress(clusterTopology(config).firstServer)].filter((a) => !isIp(a)),
      ...nodeNetworks(config),
      // k3s.vpn: K3s advertises the servers' tailnet addresses (k3s-io/k3s pkg/cli/server: "Changed
      // advertise-address to … due to VPN"), which agents then dial: never through the proxy.
      ...(k3s.vpn ? TAILSCALE_RANGES : []),
      ...extra,
    ]),
  ];
}

export interface Placement {
  /** File name in the staging directory. */
  staged: string;
  /** Where K3s reads it. */
  target: string;
  mode: string;
  /**
   * `false` for files K3s picks up while running (the auto-deploying manifests directory): a
   * change places the file but does not restart K3s. Default: K3s reads it at start only.
   */
  restart?: boolean;
}

/** The list of files apply.sh placed on the last run; files dropped from the plan are removed. */
export const MANAGED_FILES = `${STATE_DIR}/managed-files`;

/**
 * apply.sh: puts staged files in place, removes files an earlier apply placed that the plan no
 * longer has (e.g. registries.yaml with credentials after registryAuth was removed), then (re)runs
 * the install only when something K3s reads changed since the last successful apply, and waits
 * until the node serves. A second run with nothing changed does nothing.
 *
 * K3s reads config.yaml, its drop-ins, registries.yaml, resolv.conf and the CIS/encryption files
 * only at start, and the install script restarts the service only when the binary, unit or env
 * file changed (install.sh `get_installed_hashes`: "No change detected so skipping service
 * start"). So a changed fingerprint runs the install with INSTALL_K3S_FORCE_RESTART=true.
 * `preflight` runs before anything is placed (it sees the host as the last apply left it);
 * `preInstall` runs after placement, before the install; `postInstall` once the node serves,
 * before the fingerprint is recorded (so a failure there re-runs the whole step next time).
 */
export function renderApplyScript(
  ctx: Pick<NodeContext, "config" | "node" | "role">,
  placements: Placement[],
  secretTargets: string[],
  directories: string[] = [],
  hooks: ApplyHooks = {},
): string {
  const { config, node, role } = ctx;
  const preflight = hooks.preflight ?? raw("");
  const preInstall = hooks.preInstall ?? raw("");
  // Only a non-empty hook adds a line: scripts without one stay byte-identical.
  const postInstall = hooks.postInstall?.text ? sh`${hooks.postInstall}
` : raw("");
  const final = hooks.final?.text ? sh`${hooks.final}
` : raw("");
  // Before each "up to date" exit, indented to its place.
  const upToDate = hooks.upToDate?.text ? raw(`${hooks.upToDate.text.replace(/^/gm, "    ")}\n`) : raw("");
  const service = serviceName(node);
  const units = unitFiles(service);
  const planned = [...placements.map((p) => p.target), ...secretTargets];
  const restartInputs = [...placements.filter((p) => p.restart !== false).map((p) => p.target), ...secretTargets];
  // An agent's apply.sh also runs as its own dry run (issue 26; K3S_PLATFORM_APPLY_DRY_RUN=1, its
  // preflight): the same decision, over the staged files instead of the placed ones (identical
  // after place), writing nothing on the host: its answer is whether this apply restarts K3s.
  const dryRun = node.role === "agent";
  const fingerprintInputs = dryRun ? raw('"${FINGERPRINT_INPUTS[@]}"') : joinShell(restartInputs.map((t) => sh`"$ROOT"${t}`), " ");
  const stagedOf = new Map(placements.map((p) => [p.target, p.staged]));
  const dryRunSetup = dryRun
    ? sh`
# Dry run (issue 26): what K3s reads, as this apply will place it: the staged files, secrets in place.
FINGERPRINT_INPUTS=(${joinShell(restartInputs.map((t) => sh`"$ROOT"${t}`), " ")})
DRY_RUN="\${K3S_PLATFORM_APPLY_DRY_RUN:-}"
if [ -n "$DRY_RUN" ]; then
  FINGERPRINT_INPUTS=(${joinShell(restartInputs.map((t) => (stagedOf.has(t) ? sh`"$STAGING"/${stagedOf.get(t)!}` : sh`"$ROOT"${t}`)), " ")})
  DRY_DIR="$(mktemp -d)"
  trap 'rm -rf "$DRY_DIR"' EXIT
fi
# dry_state NAME: in a dry run, the record NAME names is read from (and written to) a scratch copy.
dry_state() {
  [ -n "$DRY_RUN" ] || return 0
  local copy="$DRY_DIR/$1"
  if [ -f "\${!1}" ]; then cp "\${!1}" "$copy"; fi
  printf -v "$1" '%s' "$copy"
}
# dry_verdict yes|no: a dry run ends here, saying whether this apply restarts K3s.
dry_verdict() {
  [ -n "$DRY_RUN" ] || return 0
  echo "apply[$NODE]: dry run: restarts K3s: $1"
  exit 0
}
dry_state STATE
dry_state MANAGED
`
    : raw("");
  const dry = (line: string) => (dryRun ? raw(line) : raw(""));
  const readiness =
    node.role === "server"
      ? sh`until k3s kubectl get --raw=/readyz >/dev/null 2>&1 && k3s kubectl get node "$NODE" >/dev/null 2>&1; do`
      : sh`until systemctl is-active --quiet "$SERVICE"; do`;
  const placeLines = joinShell(placements.map((p) => sh`place ${p.staged} ${p.target} ${p.mode}`));
  const dirLines = joinShell(directories.map((d) => sh`install -d -m 0700 "$ROOT"${d}`));
  const secretLines = joinShell(secretTargets.map((t) => sh`require_secret ${t}`));
  const noProxyCarry = renderNoProxyCarryOver(config, node, fingerprintInputs);
  return sh`#!/usr/bin/env bash
# Apply step for node ${node.name} (${role}), generated by k3s-platform.
set -euo pipefail

ROOT="\${K3S_PLATFORM_ROOT:-}"
STAGING="\${K3S_PLATFORM_STAGING:-${raw(STAGING_DIR)}}"
STATE="$ROOT"${STATE_DIR + "/applied"}
MANAGED="$ROOT"${MANAGED_FILES}
NODE=${node.name}
SERVICE=${service}
READY_TIMEOUT="\${K3S_PLATFORM_READY_TIMEOUT:-${raw(String(READY_TIMEOUT_SECONDS))}}"

fail() { printf 'apply[%s]: %s\\n' "$NODE" "$*" >&2; exit 1; }
${dryRunSetup}${renderHostPreflight(config, node)}${renderInstalledBinary(config, node)}${renderClusterReleaseGuard(config, node)}${preflight}${renderReleasePreflight(config)}
place() {
${dry('  [ -z "$DRY_RUN" ] || return 0\n')}  if ! cmp -s "$STAGING/$1" "$ROOT$2"; then
    install -D -m "$3" "$STAGING/$1" "$ROOT$2"
    echo "apply[$NODE]: updated $2"
  fi
}

${placeLines}
${dirLines}

require_secret() {
  [ -f "$ROOT$1" ] || fail "$1 is missing (secret upload step)"
}
${secretLines}

# Files an earlier apply placed that the plan no longer has are removed (a removed registryAuth
# must not leave credentials behind). Only files listed in the manifest are ever removed.
planned=(${planned})
if [ -f "$MANAGED" ]; then
  while IFS= read -r old; do
    [ -n "$old" ] || continue
    keep=0
    for path in "\${planned[@]}"; do
      if [ "$path" = "$old" ]; then keep=1; fi
    done
    if [ "$keep" = 0 ] && [ -e "$ROOT$old" ]${dry(' && [ -z "$DRY_RUN" ]')}; then
      rm -f "$ROOT$old"
      echo "apply[$NODE]: removed $old (no longer planned)"
    fi
  done <"$MANAGED"
fi
# 0755: the SSH user must still reach the staging directory inside it (it is 0700 itself).
install -d -m 0755 "$(dirname "$STATE")"
printf '%s\\n' "\${planned[@]}" >"$MANAGED"

fingerprint="$(cat ${fingerprintInputs} "$STAGING/${raw(INSTALL_SCRIPT)}" | sha256sum | cut -d' ' -f1)"${noProxyCarry.shell}${renderRecordAdoption(config, node, fingerprintInputs, noProxyCarry.compared)}
# What the install script writes and the unit reads (install.sh: the unit, its env file, and the
# /etc/default and /etc/sysconfig files the unit also reads): a hand edit there is drift, corrected
# by re-running the install. Recorded apart from the fingerprint above: a host applied before this
# record existed adopts its files as they are (no restart on the first up of a newer k3s-platform).
UNIT_STATE="$ROOT"${STATE_DIR + "/applied-unit"}
${dry("dry_state UNIT_STATE\n")}UNIT_FILES=(${units.unit} ${units.env} ${units.overrides})
unit_fingerprint() {
  local f
  for f in "\${UNIT_FILES[@]}"; do
    if [ -f "$ROOT$f" ]; then printf '%s\\n' "$f"; cat "$ROOT$f"; fi
  done | sha256sum | cut -d' ' -f1
}
# The binary the unit runs, by digest (issue 28): replaced outside k3s-platform, it is what K3s runs
# at its next restart (a crash, a reboot). Recorded apart, and adopted when there is no record yet.
BINARY_STATE="$ROOT"${STATE_DIR + "/applied-binary"}
${dry("dry_state BINARY_STATE\n")}binary_fingerprint() {
  if [ -f "$ROOT$K3S_BINARY" ]; then sha256sum "$ROOT$K3S_BINARY" | cut -d' ' -f1; fi
}
running_release() {
  local v
  v="$("$ROOT$K3S_BINARY" --version 2>/dev/null || true)"
  v="\${v#k3s version }"
  printf '%s' "\${v%% *}"
}
if [ "\${UPGRADING:-0}" != 1 ] && [ "${noProxyCarry.compared}" = "$(cat "$STATE" 2>/dev/null || true)" ] && systemctl is-active --quiet "$SERVICE"; then
  if [ ! -f "$UNIT_STATE" ]; then
    unit_fingerprint >"$UNIT_STATE"
    binary_fingerprint >"$BINARY_STATE"
    echo "apply[$NODE]: K3s is up to date ($(running_release); unit files recorded)"
${dry("    dry_verdict no\n")}${upToDate}    exit 0
  fi
  if [ ! -f "$BINARY_STATE" ]; then
    binary_fingerprint >"$BINARY_STATE"
    echo "apply[$NODE]: recorded the sha256 of $K3S_BINARY"
  fi
  unit_same=0
  if [ "$(unit_fingerprint)" = "$(cat "$UNIT_STATE")" ]; then unit_same=1; fi
  binary_now="$(binary_fingerprint)"
  binary_was="$(cat "$BINARY_STATE")"
  if [ "$unit_same" = 1 ] && [ "$binary_now" = "$binary_was" ]; then
    echo "apply[$NODE]: K3s is up to date ($(running_release))"
${dry("    dry_verdict no\n")}${upToDate}    exit 0
  fi
  if [ "$unit_same" = 0 ]; then
    echo "apply[$NODE]: the unit or its environment files changed outside k3s-platform: re-installing"
  else
${binaryDrift(config)}  fi
fi
${dry("dry_verdict yes\n")}${renderDownloadPreflight(config)}${renderBinaryPinPreflight(config)}${preInstall}
# The environment files k3s-platform never writes override the unit's own: moved aside, so K3s
# runs with exactly the planned environment.
for f in ${units.overrides}; do
  if [ -f "$ROOT$f" ]; then
    mv -f "$ROOT$f" "$ROOT$f.moved-by-k3s-platform"
    echo "apply[$NODE]: moved $f aside to $f.moved-by-k3s-platform (it overrides the unit's environment)"
  fi
done
${renderBinarySwap(config)}# The install script only writes and enables the unit; the restart is ours. K3s' unit is
# Type=notify with TimeoutStartSec=0, so a blocking \`systemctl start\` waits, with no limit, until
# K3s reports ready (k3s-io/k3s#11808): a node that never gets ready would stall \`pulumi up\`.
# So: stop (bounded by the unit's stop timeout), then queue the start (--no-block) and let the
# readiness loop below bound the wait; after the stop, the old process cannot answer that loop, as
# it could right after a queued restart. (Something K3s reads at start changed, so it restarts even
# when the install script itself sees no change.)
# umask 022: bundle.sh runs with umask 077, and the install script writes the unit with tee, under
# the caller's umask (install.sh create_systemd_service_file); a 0600 unit makes systemd warn on
# every reload. The script itself makes the env file 0600 (create_env_file: chmod 0600).
# env -i (issue 28): install.sh copies every K3S_* and CONTAINERD_* variable of its environment, and
# the proxy ones in any case, into the unit's env file (create_env_file: sh -c export | ... | grep -E
# '^(K3S|CONTAINERD)_'): a K3S_TOKEN or K3S_PLATFORM_* exported by a login shell or by the caller
# would reach the unit. It runs with PATH and the run's own variables only; install-k3s.sh exports
# the planned ones. K3S_PLATFORM_ROOT is the test sandbox's root, never set on a host.
install_env=(PATH="$PATH" INSTALL_K3S_SKIP_START=true)
for name in INSTALL_K3S_VERSION K3S_PLATFORM_ROOT; do
  if [ -n "\${!name+x}" ]; then install_env+=("$name=\${!name}"); fi
done
if ! (umask 022 && env -i "\${install_env[@]}" timeout ${raw(String(INSTALL_TIMEOUT_SECONDS))} bash "$STAGING/${raw(INSTALL_SCRIPT)}"); then
  fail "host $HOST, step install: the K3s install script failed or ran over ${raw(String(INSTALL_TIMEOUT_SECONDS))}s"
fi
resolve_k3s_binary
${renderBinaryPinCheck(config)}timeout ${raw(String(STOP_TIMEOUT_SECONDS + 30))} systemctl stop "$SERVICE" || fail "host $HOST, step stop: systemctl stop $SERVICE failed or ran over ${raw(String(STOP_TIMEOUT_SECONDS + 30))}s"
systemctl start --no-block "$SERVICE"

started=$SECONDS
next=$((SECONDS + 10))
${readiness}
  if [ $((SECONDS - started)) -ge "$READY_TIMEOUT" ]; then
    fail "host $HOST, step start: $SERVICE not ready after \${READY_TIMEOUT}s; see journalctl -u $SERVICE on $HOST"
  fi
  if [ "$SECONDS" -ge "$next" ]; then
    echo "apply[$NODE]: waiting for $SERVICE to serve ($((SECONDS - started))s)"
    next=$((SECONDS + 10))
  fi
  sleep 2
done
echo "apply[$NODE]: $SERVICE serves after $((SECONDS - started))s"
${postInstall}echo "$fingerprint" >"$STATE"
unit_fingerprint >"$UNIT_STATE"
binary_fingerprint >"$BINARY_STATE"
echo "apply[$NODE]: K3s $(running_release) is running${raw(config.k3s.version ? "" : ` (channel ${config.k3s.channel ?? "stable"}: the cluster's release)`)}"
${final}`.text;
}

/**
 * K3S_BINARY, the k3s binary the unit runs (issue 28), pure. Air-gapped: binaryPath (its directory
 * is INSTALL_K3S_BIN_DIR). Downloaded: the installed unit's ExecStart, else where install.sh puts
 * it (setup_env: /usr/local/bin, or /opt/bin when root cannot write /usr/local/bin and /opt/bin
 * exists, as on hosts with a read-only /usr). The version rules, the channel pin and the binary's
 * digest record read it.
 */
export function renderInstalledBinary(config: ResolvedConfig, node: NodeConfig): Shell {
  if (config.k3s.airgap.enabled) return sh`resolve_k3s_binary() { K3S_BINARY=${config.k3s.airgap.binaryPath}; }
resolve_k3s_binary
`;
  // Resolved again after the install: a first install on a read-only /usr puts it in /opt/bin.
  return sh`# The k3s binary the unit runs: its ExecStart, else where install.sh puts it (setup_env: /usr/local/bin, or /opt/bin).
resolve_k3s_binary() {
  local exec_start
  K3S_BINARY=/usr/local/bin/k3s
  if [ -f "$ROOT"${unitFiles(serviceName(node)).unit} ]; then
    exec_start="$(sed -n 's/^ExecStart=//p' "$ROOT"${unitFiles(serviceName(node)).unit})"
    exec_start="\${exec_start%% *}"
    if [ -n "$exec_start" ]; then K3S_BINARY="$exec_start"; fi
  elif [ ! -e "$ROOT/usr/local/bin/k3s" ] && [ -x "$ROOT/opt/bin/k3s" ]; then
    K3S_BINARY=/opt/bin/k3s
  fi
}
resolve_k3s_binary
`;
}

/**
 * The binary changed since the last apply while nothing else did. Downloaded: drift, corrected by
 * re-running the install (install.sh installed_hash_matches: a binary that is not the release's is
 * downloaded again). Air-gapped there is no release to restore it from, and restarting would run
 * whatever was copied there: refused, naming the host, the file and the way out.
 */
function binaryDrift(config: ResolvedConfig): Shell {
  if (!config.k3s.airgap.enabled) return raw(`    echo "apply[$NODE]: $K3S_BINARY changed outside k3s-platform (sha256 $binary_now, recorded $binary_was): re-installing the release"
`);
  return raw(`    fail "host $HOST: $K3S_BINARY changed outside k3s-platform (sha256 $binary_now, recorded $binary_was after the last apply): K3s would run it at its next restart. Put the release back; or, to upgrade, stage the new release at $K3S_BINARY-<version> and set k3s.version (docs/upgrading.md); to keep this binary as it is: rm $BINARY_STATE on $HOST, then run pulumi up again"
`);
}

/** Whether the stack follows a channel (no pinned k3s.version): its cluster release is recorded once (k3s/release.ts). */
export function followsChannel(config: ResolvedConfig): boolean {
  return !config.k3s.version && config.k3s.channel !== undefined;
}

/**
 * apply.sh on a channel stack, in preflight (before anything is placed): the cluster's release from
 * K3S_PLATFORM_CLUSTER_RELEASE; a node that runs K3s must run exactly it (a node of another
 * release is refused, naming host, both releases and the way out); the install is pinned to it.
 */
export function renderClusterReleaseGuard(config: ResolvedConfig, node: NodeConfig): Shell {
  if (!followsChannel(config)) return raw("");
  const { unit } = unitFiles(serviceName(node));
  return sh`
# Channel ${config.k3s.channel ?? "stable"}: the cluster's release, recorded once per stack (<stack>-k3s-release; components/k3s/release.ts).
CHANNEL=${config.k3s.channel ?? "stable"}
CLUSTER_RELEASE="\${${raw(CLUSTER_RELEASE_VARIABLE)}:-}"
[[ "$CLUSTER_RELEASE" =~ ^v1\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$ ]] || preflight_fail "no cluster release for channel $CHANNEL (${raw(CLUSTER_RELEASE_VARIABLE)}='$CLUSTER_RELEASE'; the k3s-release step records it)"
if [ -x "$ROOT$K3S_BINARY" ] && { [ -f "$ROOT"${unit} ] || [ -f "$STATE" ]; }; then
  running="$("$ROOT$K3S_BINARY" --version 2>/dev/null || true)"
  running="\${running#k3s version }"
  running="\${running%% *}"
  [ "$running" = "$CLUSTER_RELEASE" ] || preflight_fail "it runs K3s '$running', the cluster's release (channel $CHANNEL, recorded at the first up) is $CLUSTER_RELEASE; a channel never moves a node: set k3s.version to the release the cluster should run (the upgrade flow moves every node there; docs/upgrading.md)"
fi
export INSTALL_K3S_VERSION="$CLUSTER_RELEASE"
`;
}

/**
 * apply.sh, after the fingerprint: records taken over an install-k3s.sh that differs from the
 * planned one only in how the release was named, for the same release, are the same install; the
 * record is rewritten and the node is not restarted (review of issue 28). install.sh prefers
 * INSTALL_K3S_VERSION over INSTALL_K3S_CHANNEL (get_release_version), so:
 * - a channel stack: install-k3s.sh used to export INSTALL_K3S_CHANNEL=<channel> (after the
 *   INSTALL_K3S_EXEC line, where installEnv put it) beside the cluster's release, which won;
 * - a pinned stack outside prod (prod never follows a channel): it may have followed a channel
 *   that installed this very release, with no release line (or, before, the channel line). Only
 *   when no upgrade is due (UPGRADING, the upgrade guard: the node runs the pinned release), so an
 *   upgrade from a channel's release still installs.
 */
function renderRecordAdoption(config: ResolvedConfig, node: NodeConfig, fingerprintInputs: Shell, compared: Shell): Shell {
  const version = config.k3s.version;
  let from: string;
  let variants: string[];
  // The channel stack's guard (renderClusterReleaseGuard) already refused a node on another release.
  let runs = raw("");
  if (followsChannel(config)) {
    from = sh`export INSTALL_K3S_EXEC=${node.role}`.text;
    variants = [`${from}\n${sh`export INSTALL_K3S_CHANNEL=${config.k3s.channel ?? "stable"}`.text}`];
  } else if (version && config.environment !== "prod" && !config.k3s.airgap.enabled) {
    from = sh`export INSTALL_K3S_VERSION=${version}`.text;
    const minor = /^v1\.(\d+)\./.exec(version)?.[1];
    variants = ["", ...["stable", "latest", "testing", `v1.${minor}`].map((c) => sh`export INSTALL_K3S_CHANNEL=${c}`.text)];
    // RUNNING_VERSION: what the node runs, as the upgrade guard read it (components/upgrade/render.ts).
    runs = sh` && [ "\${RUNNING_VERSION:-}" = ${version} ]`;
  } else return raw("");
  return sh`
# A record taken over install-k3s.sh naming the same release otherwise is the same install: adopted
# (components/k3s/install.ts renderRecordAdoption).
if [ "\${UPGRADING:-0}" != 1 ]${runs} && [ -f "$STATE" ] && [ "${compared}" != "$(cat "$STATE")" ]; then
  recorded="$(cat "$STATE")"
  legacy_install="$(mktemp)"
  legacy_variants=(${joinShell(variants.map((v) => sh`${v}`), " ")})
  for legacy in "\${legacy_variants[@]}"; do
    while IFS= read -r line || [ -n "$line" ]; do
      if [ "$line" != ${from} ]; then
        printf '%s\\n' "$line"
      elif [ -n "$legacy" ]; then
        printf '%s\\n' "$legacy"
      fi
    done <"$STAGING/${raw(INSTALL_SCRIPT)}" >"$legacy_install"
    if [ "$(cat ${fingerprintInputs} "$legacy_install" | sha256sum | cut -d' ' -f1)" = "$recorded" ]; then
      echo "${compared}" >"$STATE"
      echo "apply[$NODE]: recorded the install as planned (the same release, named otherwise before)"
      break
    fi
  done
  rm -f "$legacy_install"
fi`;
}

/**
 * Air-gap (issue 28): a release staged beside the running one (preflight found and checked it,
 * NEW_BINARY) replaces binaryPath here, after the upgrade's snapshot, cordon and drain, right
 * before the install. Copied then renamed: the running K3s keeps its inode, the unit never sees a
 * half-written binary.
 */
export function renderBinarySwap(config: ResolvedConfig): Shell {
  if (!config.k3s.airgap.enabled) return raw("");
  return raw(`if [ -n "\${NEW_BINARY:-}" ]; then
  install -m 0755 "$ROOT$NEW_BINARY" "$ROOT$BINARY.k3s-platform-new"
  mv -f "$ROOT$BINARY.k3s-platform-new" "$ROOT$BINARY"
  echo "apply[$NODE]: $BINARY is now $TARGET_RELEASE (from $NEW_BINARY)"
fi
`);
}

/** The variables whose value is a NO_PROXY list (installEnv), in the order the install script exports them. */
const NO_PROXY_VARIABLES = ["NO_PROXY", "CONTAINERD_NO_PROXY"] as const;

/**
 * apply.sh, before the fingerprint, with a proxy: a NO_PROXY the host's env file holds that differs
 * from the planned one only by entries the planned one covers (an IPv4 or IPv6 address inside one
 * of its CIDRs of the same family: shell/cidr.ts; a name under one of its domains; anything under
 * `*`; a node's SSH host name listed right before an address the planned value covers, as the
 * list of before issue 26 had each node's host then its node IP: K3s dials nodes by address, and
 * the first server's join name stays listed) keeps all traffic where it goes: the fingerprint is
 * then taken over the install script as it was applied (the export line with
 * that value), so the running K3s is not restarted for it. This is the move from the NO_PROXY that
 * listed every node address (before issue 26) to the node networks: an existing cluster whose
 * noProxy covered its nodes changes no running node. An install records the planned fingerprint
 * (what it installed); `compared` is what the record is compared with. Anything else (an entry
 * added, an uncovered entry dropped) restarts K3s as any changed input does; so does any other
 * change, which then installs the planned value. Go's NO_PROXY matching:
 * golang.org/x/net/http/httpproxy (CL 115255). The env file format: install.sh create_env_file
 * writes each variable as the shell's `export` prints it, NAME='value' (quotes removed here).
 * Without a proxy: nothing, and apply.sh is as it was.
 */
export function renderNoProxyCarryOver(config: ResolvedConfig, node: NodeConfig, fingerprintInputs: Shell): { shell: Shell; compared: Shell } {
  const env = installEnv(config, node);
  const variables = NO_PROXY_VARIABLES.filter((v) => env[v] !== undefined);
  if (variables.length === 0) return { shell: raw(""), compared: raw("$fingerprint") };
  const carries = joinShell(variables.map((v) => sh`carry_no_proxy ${v} ${env[v]!}`));
  return {
    shell: sh`
# A NO_PROXY equivalent to the planned one is kept (components/k3s/install.ts renderNoProxyCarryOver).
ENV_FILE="$ROOT"${unitFiles(serviceName(node)).env}
INSTALL_AS_APPLIED="$(mktemp)"
cp "$STAGING/${raw(INSTALL_SCRIPT)}" "$INSTALL_AS_APPLIED"
# applied_env NAME: NAME's value in the unit's env file, its quotes removed; fails when absent.
applied_env() {
  local line
  [ -f "$ENV_FILE" ] || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "$1="*)
        line="\${line#"$1="}"
        case "$line" in "'"*"'" | '"'*'"') line="\${line:1:\${#line}-2}" ;; *) ;; esac
        printf '%s' "$line"
        return 0
        ;;
      *) ;;
    esac
  done <"$ENV_FILE"
  return 1
}
${CIDR_FUNCTIONS}
# no_proxy_covers ENTRY LIST...: a LIST entry keeps everything ENTRY names off the proxy.
no_proxy_covers() {
  local entry="$1" e ip=0
  shift
  # An address of either family (a dual-stack cluster listed each node's IPv6 address too).
  if ipv4_int "$entry" >/dev/null || ipv6_hex "$entry" >/dev/null; then ip=1; fi
  for e in "$@"; do
    [ "$e" != "*" ] || return 0
    if [ "$ip" = 1 ] && [[ "$e" == */* ]]; then
      if cidr_contains "$e" "$entry"; then return 0; fi
    elif [ "$ip" = 0 ] && [[ "$entry" != */* && "$entry" != *:* && "$e" != */* && "$e" != *:* ]] && [ -n "$e" ]; then
      # Names: "d" covers d and every name under it, ".d" every name under d.
      if [ "$entry" = "$e" ] || [[ "$entry" == *".\${e#.}" ]]; then return 0; fi
    fi
  done
  return 1
}
# is_ip ENTRY: an address of either family (no CIDR, no name).
is_ip() {
  ipv4_int "$1" >/dev/null || ipv6_hex "$1" >/dev/null
}
# node_host_covered NAME NEXT PLANNED...: NAME is a node's SSH host name as the NO_PROXY of before
# the node networks listed it, each node's host directly followed by its node addresses (install.ts
# noProxyList before issue 26): NEXT, the entry after it, is an address the planned value covers
# and no longer lists. K3s dials nodes by address, never by SSH host name (a first server joined
# by its host name keeps it listed), so dropping such a name keeps all K3s traffic where it goes.
node_host_covered() {
  local name="$1" next="$2" p
  shift 2
  [[ -n "$name" && "$name" != */* && "$name" != *:* && "$name" != "*" ]] || return 1
  ! is_ip "$name" || return 1
  if [ -z "$next" ] || ! is_ip "$next"; then return 1; fi
  for p in "$@"; do [ "$p" != "$next" ] || return 1; done
  no_proxy_covers "$next" "$@"
}
# no_proxy_equivalent APPLIED PLANNED: every planned entry is applied, every other applied one
# covered (by a planned entry, or a node's host name whose address is: node_host_covered).
no_proxy_equivalent() {
  local -a applied planned
  local e p found i
  IFS=, read -r -a applied <<<"$1"
  IFS=, read -r -a planned <<<"$2"
  for p in "\${planned[@]}"; do
    found=0
    for e in "\${applied[@]}"; do if [ "$e" = "$p" ]; then found=1; break; fi; done
    [ "$found" = 1 ] || return 1
  done
  for i in "\${!applied[@]}"; do
    e="\${applied[$i]}"
    found=0
    for p in "\${planned[@]}"; do if [ "$e" = "$p" ]; then found=1; break; fi; done
    [ "$found" = 1 ] || no_proxy_covers "$e" "\${planned[@]}" || node_host_covered "$e" "\${applied[$((i + 1))]:-}" "\${planned[@]}" || return 1
  done
}
# quoted V: V as the renderer writes it in an export line (components/shell/quote.ts shellQuote).
quoted() {
  if [[ "$1" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "$1"; fi
}
# carry_no_proxy NAME PLANNED: the applied value replaces the planned one in INSTALL_AS_APPLIED when equivalent.
carry_no_proxy() {
  local applied want have line
  applied="$(applied_env "$1")" || return 0
  [ "$applied" != "$2" ] || return 0
  no_proxy_equivalent "$applied" "$2" || return 0
  want="export $1=$(quoted "$2")"
  have="export $1=$(quoted "$applied")"
  while IFS= read -r line || [ -n "$line" ]; do
    if [ "$line" = "$want" ]; then printf '%s\n' "$have"; else printf '%s\n' "$line"; fi
  done <"$INSTALL_AS_APPLIED" >"$INSTALL_AS_APPLIED.new"
  mv -f "$INSTALL_AS_APPLIED.new" "$INSTALL_AS_APPLIED"
  CARRIED=1
  echo "apply[$NODE]: $1 here lists entries the planned value covers (node addresses before the node networks): equivalent, kept until K3s restarts for another reason"
}
CARRIED=0
${carries}
# Compared with the record: the fingerprint of what runs. Recorded after an install: the planned one.
kept_fingerprint="$fingerprint"
if [ "$CARRIED" = 1 ]; then
  kept_fingerprint="$(cat ${fingerprintInputs} "$INSTALL_AS_APPLIED" | sha256sum | cut -d' ' -f1)"
fi
rm -f "$INSTALL_AS_APPLIED"`,
    compared: raw("$kept_fingerprint"),
  };
}
