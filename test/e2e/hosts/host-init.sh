#!/usr/bin/env bash
# Runs inside a test host's network and mount namespaces: builds its root (an overlay of /),
# mounts /proc, /dev and /sys into it, and runs sshd chrooted there in the foreground.
set -euo pipefail
host="$1"
hostname "$(cat "$host/upper/etc/hostname")"
mkdir -p "$host/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$host/upper,workdir=$host/work" "$host/root"
mount -t proc proc "$host/root/proc"
# Node objects every host of the run shares, as they share one API server (stand-ins: kubelet, kubectl).
mount --bind "$(dirname "$host")/cluster" "$host/root/var/lib/k3sp-cluster"
mount --rbind /dev "$host/root/dev"
# A stand-in kernel view: cgroup v2 with the memory controller; modules appear as modprobe loads them.
mount -t tmpfs tmpfs "$host/root/sys"
mkdir -p "$host/root/sys/fs/cgroup" "$host/root/sys/module"
echo "cpuset cpu io memory hugetlb pids rdma misc" >"$host/root/sys/fs/cgroup/cgroup.controllers"
mount -t tmpfs tmpfs "$host/root/run"
mount -t tmpfs tmpfs "$host/root/tmp"
mkdir -p "$host/root/run/sshd"
# A systemd host as apply.sh's preflight sees it (sd_booted(3): /run/systemd/system exists); the
# units themselves are the systemctl stand-in's.
mkdir -p "$host/root/run/systemd/system"
exec chroot "$host/root" /usr/sbin/sshd -D -e -f /etc/ssh/k3sp_sshd_config
