#!/bin/sh
# Sandbox stand-in for the K3s install script (get.k3s.io; source: k3s-io/k3s, install.sh), under
# $K3S_PLATFORM_ROOT. Written here, not copied; it models what decides apply.sh's behaviour:
#  - Init system: /sbin/openrc-run executable -> the OpenRC path (an /etc/init.d script), even on a
#    systemd host (setup_env: HAS_OPENRC is tested first).
#  - Release: INSTALL_K3S_VERSION wins; else the channel INSTALL_K3S_CHANNEL (default stable) is
#    resolved on every run (get_release_version: the channel URL's redirect target; here the file
#    $STANDIN_CHANNELS/<channel>). Download mode installs that release over ${BIN_DIR}/k3s when it
#    differs (download_and_verify); INSTALL_K3S_SKIP_DOWNLOAD=true only needs ${BIN_DIR}/k3s
#    executable (verify_k3s_is_executable).
#  - The env file is created, chmod 0600, then filled (create_env_file); the unit is written with
#    `tee`, so its mode follows the caller's umask (create_systemd_service_file). The unit reads
#    /etc/default/%N, /etc/sysconfig/%N and the env file (EnvironmentFile=-...).
#  - Hashes of binary, unit and env file before and after (get_installed_hashes); unchanged and no
#    INSTALL_K3S_FORCE_RESTART: no restart; INSTALL_K3S_SKIP_START=true: no start at all.
# Each run appends "install version=<release> channel=<channel>" to $STANDIN_LOG.
set -eu
ROOT="${K3S_PLATFORM_ROOT:?}"
case "${INSTALL_K3S_EXEC:-server}" in agent*) name=k3s-agent ;; *) name=k3s ;; esac
BIN_DIR="${INSTALL_K3S_BIN_DIR:-/usr/local/bin}"
unit="/etc/systemd/system/$name.service"
env_file="$unit.env"
hashes() { sha256sum "$ROOT$BIN_DIR/k3s" "$ROOT$unit" "$ROOT$env_file" 2>&1 || true; }
before="$(hashes)"

if [ -x "$ROOT/sbin/openrc-run" ]; then
  mkdir -p "$ROOT/etc/init.d"
  printf '#!/sbin/openrc-run\ncommand=%s/k3s\n' "$BIN_DIR" >"$ROOT/etc/init.d/$name"
  echo "install openrc" >>"${STANDIN_LOG:-/dev/null}"
  exit 0
fi

channel="${INSTALL_K3S_CHANNEL:-stable}"
if [ -n "${INSTALL_K3S_VERSION:-}" ]; then
  release="$INSTALL_K3S_VERSION"
else
  release="$(cat "${STANDIN_CHANNELS:?}/$channel")"
fi
case "${INSTALL_K3S_SKIP_DOWNLOAD:-}" in
  true | binary)
    [ -x "$ROOT$BIN_DIR/k3s" ] || { echo "[ERROR]  Executable k3s binary not found at $BIN_DIR/k3s" >&2; exit 1; } ;;
  *)
    mkdir -p "$ROOT$BIN_DIR"
    printf '#!/bin/sh\necho "k3s version %s (stand-in)"\n' "$release" >"$ROOT$BIN_DIR/k3s.tmp"
    chmod 0755 "$ROOT$BIN_DIR/k3s.tmp"
    if ! cmp -s "$ROOT$BIN_DIR/k3s.tmp" "$ROOT$BIN_DIR/k3s"; then mv -f "$ROOT$BIN_DIR/k3s.tmp" "$ROOT$BIN_DIR/k3s"; else rm -f "$ROOT$BIN_DIR/k3s.tmp"; fi ;;
esac
echo "install version=$release channel=$channel" >>"${STANDIN_LOG:-/dev/null}"

mkdir -p "$ROOT/etc/systemd/system"
touch "$ROOT$env_file"
chmod 0600 "$ROOT$env_file"
env | grep -E '^(K3S_|CONTAINERD_|HTTPS?_PROXY=|NO_PROXY=)' | sort | tee "$ROOT$env_file" >/dev/null || true
tee "$ROOT$unit" >/dev/null <<UNIT
[Unit]
Description=Lightweight Kubernetes (sandbox stand-in)
[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$env_file
TimeoutStartSec=0
ExecStart=$BIN_DIR/k3s ${INSTALL_K3S_EXEC:-server}
UNIT

if [ "${INSTALL_K3S_SKIP_START:-}" = true ]; then
  exit 0
elif [ "$before" = "$(hashes)" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != true ]; then
  echo "[INFO]  No change detected so skipping service start"
else
  systemctl restart "$name"
fi
