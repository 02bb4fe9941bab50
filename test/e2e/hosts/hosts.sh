#!/usr/bin/env bash
# Test hosts for the e2e suite, on this machine only. Each host is a network namespace with its
# own address on a private bridge, its own root filesystem (an overlay of / in its own mount
# namespace, so nothing it writes reaches the machine) and sshd, reachable with a generated key
# as user `deploy` (passwordless sudo). Kernel-, systemd- and K3s-touching commands are
# stand-ins inside the hosts (root-overlay/), recording what they were asked to do.
#
# Every run is its own: a run id (random, or K3SP_RUN) names its namespaces (k3sp-<run>-h<I>),
# veths and bridge (k3b<run>), and it gets a /24 of 10.213.0.0/16 no interface here uses yet;
# DIR/run.env remembers them, so `down` removes only that run's hosts and two runs on one machine
# never touch each other.
#
#   hosts.sh up N DIR    create N hosts; writes DIR/hosts.json, DIR/id_ed25519, DIR/run.env
#   hosts.sh stop I DIR  stop host I's sshd (fault injection);  hosts.sh start I DIR  restart it
#   hosts.sh down DIR    remove this run's hosts, bridge and DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LOCK=/run/lock/k3sp-hosts.lock
RUN="" BRIDGE="" NET=""

fail() { echo "hosts: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || fail "$1 is missing (apt-get install $2)"; }

address() { echo "$NET.$((10 + $1))"; }
netns() { echo "k3sp-$RUN-h$1"; }

# load_run DIR: this run's id, bridge and network, as `up` chose them; false when DIR has none.
load_run() {
  [ -f "$1/run.env" ] || return 1
  RUN="$(sed -n 's/^RUN=//p' "$1/run.env")"
  NET="$(sed -n 's/^NET=//p' "$1/run.env")"
  [[ "$RUN" =~ ^[0-9a-f]{6}$ && "$NET" =~ ^10\.213\.[0-9]+$ ]] || fail "$1/run.env is not a hosts.sh run"
  BRIDGE="k3b$RUN"
}

# free_net: the first 10.213.K.0/24 that no interface on this machine has an address in.
free_net() {
  local k used
  used="$(ip -4 -o addr show | awk '{print $4}')"
  for k in $(seq 0 254); do
    if ! grep -q "^10\.213\.$k\." <<<"$used"; then echo "10.213.$k"; return 0; fi
  done
  fail "no free /24 left in 10.213.0.0/16"
}

wait_for_ssh() {
  local addr="$1" i
  for i in $(seq 1 100); do
    if timeout 1 bash -c "</dev/tcp/$addr/22" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "sshd on $addr did not come up"
}

# prepare_root I DIR: the files host I sees on top of /: identity, user, keys, stand-ins.
prepare_root() {
  local i="$1" dir="$2" upper="$2/h$1/upper"
  mkdir -p "$upper/etc/ssh" "$upper/etc/sudoers.d" "$upper/home/deploy/.ssh" "$upper/run/sshd" \
    "$upper/var/log/k3sp" "$upper/var/lib/k3sp-stub" "$upper/tmp" "$dir/h$1/work"
  cp -a "$HERE/root-overlay/." "$upper/"
  # The run's shared node objects (the API server's view), bind-mounted by host-init.sh.
  mkdir -p "$dir/cluster" "$upper/var/lib/k3sp-cluster"
  rm -f "$upper"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N "" -C "" -f "$upper/etc/ssh/ssh_host_ed25519_key"
  cat >"$upper/etc/ssh/k3sp_sshd_config" <<CONF
Port 22
ListenAddress $(address "$i")
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd-k3sp.pid
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
AllowUsers deploy
Subsystem sftp internal-sftp
CONF
  cp /etc/passwd /etc/group /etc/shadow "$upper/etc/"
  echo "deploy:x:2000:2000:k3s-platform e2e:/home/deploy:/bin/bash" >>"$upper/etc/passwd"
  echo "deploy:x:2000:" >>"$upper/etc/group"
  echo 'deploy:*:19000:0:99999:7:::' >>"$upper/etc/shadow"
  echo "k3sp-h$i" >"$upper/etc/hostname"  # inside its own UTS namespace: no clash across runs
  { cat /etc/hosts; echo "127.0.1.1 k3sp-h$i"; } >"$upper/etc/hosts"
  echo "deploy ALL=(ALL) NOPASSWD:ALL" >"$upper/etc/sudoers.d/deploy"
  chmod 0440 "$upper/etc/sudoers.d/deploy"
  cp "$dir/id_ed25519.pub" "$upper/home/deploy/.ssh/authorized_keys"
  chown -R 2000:2000 "$upper/home/deploy"
  chmod 700 "$upper/home/deploy/.ssh"
  chmod 600 "$upper/home/deploy/.ssh/authorized_keys"
}

start_host() {
  local i="$1" dir="$2"
  load_run "$dir" || fail "$dir holds no hosts.sh run"
  ip netns exec "$(netns "$i")" unshare --mount --uts --propagation private --fork --kill-child \
    bash "$HERE/host-init.sh" "$dir/h$i" >"$dir/h$i/sshd.log" 2>&1 &
  echo $! >"$dir/h$i/pid"
  wait_for_ssh "$(address "$i")"
}

stop_host() {
  local pidfile="$2/h$1/pid" i ns
  load_run "$2" || return 0
  ns="$(netns "$1")"
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  # Everything left in the host's network namespace (sshd and its sessions) goes too.
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  for i in $(seq 1 50); do
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
}

up() {
  local n="$1" dir="$2" i ns
  [ "$(id -u)" -eq 0 ] || fail "must run as root (network namespaces, mounts)"
  need ip iproute2; need sshd openssh-server; need sudo sudo; need unshare util-linux; need flock util-linux
  # Each host's root is an overlay of this machine's /: K3s or k3s-platform state here would show
  # on every host (and a host's removal of it reads as present in its upper layer: a whiteout).
  local p
  for p in /var/lib/k3s-platform /var/lib/rancher /etc/rancher; do
    [ ! -e "$p" ] || fail "this machine has $p: every test host is an overlay of /, so each would start with it; remove it (a test that ran a script without its sandbox root leaves it) or use a machine without K3s"
  done
  mkdir -p "$dir"
  ! load_run "$dir" || fail "$dir already holds run $RUN (hosts.sh down $dir first)"
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C "k3s-platform-e2e" -f "$dir/id_ed25519"
  RUN="${K3SP_RUN:-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}"
  [[ "$RUN" =~ ^[0-9a-f]{6}$ ]] || fail "K3SP_RUN must be 6 hex digits"
  BRIDGE="k3b$RUN"
  # Choosing a free network and taking it (the bridge address) is one step for concurrent runs.
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock 9
  ip link show "$BRIDGE" >/dev/null 2>&1 && fail "bridge $BRIDGE exists: run id $RUN is taken"
  NET="$(free_net)"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  printf 'RUN=%s\nNET=%s\n' "$RUN" "$NET" >"$dir/run.env"
  flock -u 9
  exec 9>&-
  local json="["
  for i in $(seq 1 "$n"); do
    ns="$(netns "$i")"
    ip netns add "$ns"
    ip link add "k3v$RUN$i" type veth peer name eth0 netns "$ns"
    ip link set "k3v$RUN$i" master "$BRIDGE" up
    ip -n "$ns" addr add "$(address "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    prepare_root "$i" "$dir"
    start_host "$i" "$dir"
    json+="$([ "$i" -gt 1 ] && echo ,){\"index\":$i,\"address\":\"$(address "$i")\",\"user\":\"deploy\",\"upper\":\"$dir/h$i/upper\",\"hostKey\":\"$(cut -d' ' -f1,2 "$dir/h$i/upper/etc/ssh/ssh_host_ed25519_key.pub")\"}"
  done
  echo "$json]" >"$dir/hosts.json"
  echo "hosts: $n up on $NET.0/24, run $RUN ($dir/hosts.json)"
}

down() {
  local dir="$1" ns i
  if load_run "$dir"; then
    for ns in $(ip netns list 2>/dev/null | awk -v p="k3sp-$RUN-h" 'index($1, p) == 1 {print $1}'); do
      i="${ns#"k3sp-$RUN-h"}"
      stop_host "$i" "$dir"
      ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
  rm -rf "$dir"
  echo "hosts: down${RUN:+ (run $RUN)}"
}

case "${1:-}" in
  up) up "${2:?N}" "${3:?DIR}" ;;
  stop) stop_host "${2:?I}" "${3:?DIR}" ;;
  start) start_host "${2:?I}" "${3:?DIR}" ;;
  down) down "${2:?DIR}" ;;
  *) fail "usage: hosts.sh up N DIR | stop I DIR | start I DIR | down DIR" ;;
esac
