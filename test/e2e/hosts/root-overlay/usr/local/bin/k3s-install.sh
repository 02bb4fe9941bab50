#!/bin/sh
# e2e stand-in for the K3s install script (get.k3s.io; source: k3s-io/k3s, install.sh). Written
# here, not copied; it models the documented behaviour that decides whether K3s restarts:
#  - BIN_DIR is INSTALL_K3S_BIN_DIR; unset: /usr/local/bin, or /opt/bin when root cannot write
#    /usr/local/bin and /opt/bin exists (setup_env, the k3s-ro-test probe). With INSTALL_K3S_SKIP_DOWNLOAD=true
#    (or =binary) nothing is downloaded and "${BIN_DIR}/k3s" must be executable, else it fails
#    with "Executable k3s binary not found at ${BIN_DIR}/k3s" (verify_k3s_is_executable).
#  - The unit name comes from the exec command: server -> k3s, agent -> k3s-agent; the unit is
#    ${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}/<name>.service, its env file <name>.service.env.
#  - The env file is rewritten from the environment: every K3S_* and CONTAINERD_* variable, then
#    the (NO|HTTP|HTTPS)_PROXY ones in any case, one per line as `export` prints them (a newline
#    inside a value becomes a line of its own) (create_env_file).
#  - get_installed_hashes: sha256 of the binary, the unit file and the env file, before and after.
#    Unchanged and INSTALL_K3S_FORCE_RESTART != true: "No change detected so skipping service
#    start", no restart. Otherwise the iptables rewrite below, then `systemctl restart <name>`
#    (service_enable_and_start). INSTALL_K3S_SKIP_START=true: no start at all, no rewrite.
#  - Init system: /sbin/openrc-run executable -> the OpenRC path (an /etc/init.d/<name> script
#    instead of the systemd unit; the stand-in stops there), tested before systemd (setup_env: HAS_OPENRC first). apply.sh's preflight
#    refuses such a host before the script runs.
#  - Release: INSTALL_K3S_VERSION wins; else INSTALL_K3S_CHANNEL (default stable) is resolved on
#    every run (get_release_version, the channel URL's redirect; here /var/lib/k3sp-stub/channels/
#    <channel>), and a download replaces the binary when the release differs (download_and_verify;
#    here the stand-in binary's binary-version). Air-gapped (SKIP_DOWNLOAD) nothing is resolved.
#  - File modes: the env file is touched and chmod 0600 before it is filled (create_env_file); the
#    unit is written with tee, so its mode follows the caller's umask (create_systemd_service_file).
#    The unit is Type=notify with TimeoutStartSec=0 and reads /etc/default/%N, /etc/sysconfig/%N
#    and the env file (EnvironmentFile=-...).
#  - The uninstaller for that unit only: ${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh, i.e.
#    k3s-uninstall.sh on a server, k3s-agent-uninstall.sh on an agent (create_uninstall).
# config.yaml, its drop-ins, registries.yaml and resolv.conf are not hashed: a change to them alone
# restarts nothing. Each run is also recorded in /var/log/k3sp/install.log for the tests.
set -eu
log=/var/log/k3sp/install.log
info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR]  $*" >&2; exit 1; }

exec_cmd="${INSTALL_K3S_EXEC:-}"
case "$exec_cmd" in
  "" | -*) if [ -n "${K3S_URL:-}" ]; then cmd=agent; else cmd=server; fi ;;
  *) cmd="${exec_cmd%% *}" ;;
esac
if [ "$cmd" = server ]; then name=k3s; else name="k3s-$cmd"; fi
if [ -n "${INSTALL_K3S_BIN_DIR:-}" ]; then
  BIN_DIR="$INSTALL_K3S_BIN_DIR"
else
  # Root cannot write /usr/local/bin (read-only /usr) and /opt/bin exists: /opt/bin (setup_env).
  BIN_DIR=/usr/local/bin
  if ! sh -c "touch $BIN_DIR/k3s-ro-test && rm -rf $BIN_DIR/k3s-ro-test" 2>/dev/null && [ -d /opt/bin ]; then
    BIN_DIR=/opt/bin
  fi
fi
SYSTEMD_DIR="${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}"
unit="$SYSTEMD_DIR/$name.service"
env_file="$unit.env"

installed_hashes() { sha256sum "$BIN_DIR/k3s" "$unit" "$env_file" 2>&1 || true; }

{
  printf 'run %s\n' "$(date +%s.%N)"
  env | grep -E '^(INSTALL_K3S_|K3S_|HTTPS?_PROXY|NO_PROXY|CONTAINERD_)' | sort || true
  printf 'config.yaml %s\n' "$(sha256sum /etc/rancher/k3s/config.yaml | cut -d' ' -f1)"
} >>"$log"
pre_hashes="$(installed_hashes)"

case "${INSTALL_K3S_SKIP_DOWNLOAD:-}" in
  true | binary)
    info "Skipping k3s download and verify"
    [ -x "$BIN_DIR/k3s" ] || fatal "Executable k3s binary not found at $BIN_DIR/k3s"
    ;;
  *)
    if [ -n "${INSTALL_K3S_VERSION:-}" ]; then
      release="$INSTALL_K3S_VERSION"
    else
      channel="${INSTALL_K3S_CHANNEL:-stable}"
      info "Finding release for channel $channel"
      release="$(cat "/var/lib/k3sp-stub/channels/$channel" 2>/dev/null)" || fatal "e2e stand-in: no release for channel $channel"
    fi
    info "Using $release as release"
    echo "$release" >/var/lib/k3sp-stub/binary-version
    ;;
esac

if [ -x /sbin/openrc-run ]; then
  mkdir -p /etc/init.d
  printf '#!/sbin/openrc-run\ncommand="%s/k3s"\n' "$BIN_DIR" >"/etc/init.d/$name"
  chmod 0755 "/etc/init.d/$name"
  info "openrc: Creating service file /etc/init.d/$name"
  printf 'done %s\n' "$(date +%s.%N)" >>"$log"
  exit 0
fi

mkdir -p "$SYSTEMD_DIR"
rm -f "$unit" "$env_file"
# `export -p` prints `export NAME='value'`; continuation lines of a multi-line value stay lines.
exported="$(export -p)"
: >"$env_file"
chmod 0600 "$env_file"
printf '%s\n' "$exported" | while read -r _ assignment; do printf '%s\n' "$assignment"; done | grep -E '^(K3S|CONTAINERD)_' >>"$env_file" || true
printf '%s\n' "$exported" | while read -r _ assignment; do printf '%s\n' "$assignment"; done | grep -Ei '^(NO|HTTP|HTTPS)_PROXY' >>"$env_file" || true
tee "$unit" >/dev/null <<UNIT
[Unit]
Description=Lightweight Kubernetes (e2e stand-in unit)
[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$env_file
TimeoutStartSec=0
ExecStart=$BIN_DIR/k3s $exec_cmd $*
UNIT

install -m 0755 "/usr/local/lib/k3sp/uninstall/$name-uninstall.sh" "$BIN_DIR/$name-uninstall.sh"

sleep 0.3 # a real install takes a while: makes overlapping runs visible in the timestamps
if [ "${INSTALL_K3S_SKIP_START:-}" = true ]; then
  :
elif [ "$pre_hashes" = "$(installed_hashes)" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != true ]; then
  info "No change detected so skipping service start"
else
  # The script's own start: first iptables and ip6tables are rewritten without the KUBE- and
  # flannel rules, when both tools exist and the rules hold no "-A CNI-HOSTPORT-MASQ -j MASQUERADE"
  # (service_enable_and_start, has_working_xtables); recorded as "start" (and "xtables <tool>").
  printf 'start %s\n' "$(date +%s.%N)" >>"$log"
  for xtables in iptables ip6tables; do
    if command -v "$xtables-save" >/dev/null && command -v "$xtables-restore" >/dev/null; then
      printf 'xtables %s\n' "$xtables" >>"$log"
    fi
  done
  info "systemd: Starting $name"
  systemctl restart "$name"
fi
printf 'done %s\n' "$(date +%s.%N)" >>"$log"
