#!/bin/sh
# Sandbox stand-in for the K3s install script (get.k3s.io; source: k3s-io/k3s, install.sh), under
# $K3S_PLATFORM_ROOT. Written here, not copied; it models what decides apply.sh's behaviour:
#  - Init system: /sbin/openrc-run executable -> the OpenRC path (an /etc/init.d script), even on a
#    systemd host (setup_env: HAS_OPENRC is tested first).
#  - Release: INSTALL_K3S_VERSION wins; else the channel INSTALL_K3S_CHANNEL (default stable) is
#    resolved on every run (get_release_version: the channel URL's redirect target; here the file
#    $ROOT/var/lib/k3sp-stub/channels/<channel>, as on the e2e hosts). Download mode installs that release over ${BIN_DIR}/k3s when it
#    differs (download_and_verify); INSTALL_K3S_SKIP_DOWNLOAD=true only needs ${BIN_DIR}/k3s
#    executable (verify_k3s_is_executable).
#  - BIN_DIR: INSTALL_K3S_BIN_DIR; unset, /usr/local/bin, or /opt/bin when root cannot write
#    /usr/local/bin (the k3s-ro-test probe) and /opt/bin exists (setup_env). Here a host whose
#    /usr/local/bin is not a directory stands for a read-only /usr.
#  - The env file is created, chmod 0600, then filled with every K3S_* and CONTAINERD_* variable,
#    then the (NO|HTTP|HTTPS)_PROXY ones in any case, as `export` prints them (NAME='value')
#    (create_env_file; K3S_PLATFORM_ROOT aside: the sandbox's own root, which a host never has);
#    the unit is written with `tee`, so its mode follows the caller's umask
#    (create_systemd_service_file). The unit reads /etc/default/%N, /etc/sysconfig/%N and the env
#    file (EnvironmentFile=-...).
#  - Hashes of binary, unit and env file before and after (get_installed_hashes); unchanged and no
#    INSTALL_K3S_FORCE_RESTART: no restart; INSTALL_K3S_SKIP_START=true: no start at all, and so
#    no iptables rewrite either: only on a start, iptables-save | grep -v KUBE- | grep -iv flannel |
#    iptables-restore runs first, for iptables and ip6tables, when both tools exist and the rules
#    hold no "-A CNI-HOSTPORT-MASQ -j MASQUERADE" (service_enable_and_start, has_working_xtables);
#    logged here as "xtables <tool>".
# Each run appends "install version=<release> channel=<channel>" to $ROOT/var/log/k3sp/install.log.
# Paths under the sandbox root, not variables: apply.sh runs the install under `env -i`.
set -eu
ROOT="${K3S_PLATFORM_ROOT:?}"
mkdir -p "$ROOT/var/log/k3sp"
STANDIN_LOG="$ROOT/var/log/k3sp/install.log"
case "${INSTALL_K3S_EXEC:-server}" in agent*) name=k3s-agent ;; *) name=k3s ;; esac
if [ -n "${INSTALL_K3S_BIN_DIR:-}" ]; then
  BIN_DIR="$INSTALL_K3S_BIN_DIR"
else
  BIN_DIR=/usr/local/bin
  if ! sh -c "touch $ROOT$BIN_DIR/k3s-ro-test && rm -rf $ROOT$BIN_DIR/k3s-ro-test" 2>/dev/null && [ -d "$ROOT/opt/bin" ]; then
    BIN_DIR=/opt/bin
  fi
fi
unit="/etc/systemd/system/$name.service"
env_file="$unit.env"
hashes() { sha256sum "$ROOT$BIN_DIR/k3s" "$ROOT$unit" "$ROOT$env_file" 2>&1 || true; }
before="$(hashes)"

if [ -x "$ROOT/sbin/openrc-run" ]; then
  # The OpenRC path: /etc/init.d/<name>, its env file /etc/rancher/k3s/<name>.env, rc-update add
  # (setup_env, create_openrc_service_file, openrc_enable).
  mkdir -p "$ROOT/etc/init.d" "$ROOT/etc/rancher/k3s"
  printf '#!/sbin/openrc-run\ncommand=%s/k3s\n' "$BIN_DIR" >"$ROOT/etc/init.d/$name"
  : >"$ROOT/etc/rancher/k3s/$name.env"
  echo "install openrc (rc-update add $name default)" >>"$STANDIN_LOG"
  exit 0
fi

channel="${INSTALL_K3S_CHANNEL:-stable}"
if [ -n "${INSTALL_K3S_VERSION:-}" ]; then
  release="$INSTALL_K3S_VERSION"
else
  release="$(cat "$ROOT/var/lib/k3sp-stub/channels/$channel")"
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
echo "install version=$release channel=$channel" >>"$STANDIN_LOG"

mkdir -p "$ROOT/etc/systemd/system"
touch "$ROOT$env_file"
chmod 0600 "$ROOT$env_file"
exported="$(export -p)"
printf '%s\n' "$exported" | while read -r _ assignment; do printf '%s\n' "$assignment"; done | grep -E '^(K3S|CONTAINERD)_' | grep -v '^K3S_PLATFORM_ROOT=' | tee "$ROOT$env_file" >/dev/null || true
printf '%s\n' "$exported" | while read -r _ assignment; do printf '%s\n' "$assignment"; done | grep -Ei '^(NO|HTTP|HTTPS)_PROXY' | tee -a "$ROOT$env_file" >/dev/null || true
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
  for xtables in iptables ip6tables; do
    if command -v "$xtables-save" >/dev/null && command -v "$xtables-restore" >/dev/null; then
      echo "xtables $xtables" >>"$STANDIN_LOG"
    fi
  done
  systemctl restart "$name"
fi
