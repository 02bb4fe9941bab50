#!/bin/sh
# e2e stand-in for k3s-uninstall.sh, which the K3s install script writes next to the binary (the
# stand-in install script copies it to BIN_DIR for the role it installs, as the real one does)
# (install.sh create_uninstall). Like the real one: stops the service, removes the unit, its env
# file, /etc/rancher/k3s, /var/lib/rancher/k3s, the binary and itself; records the call.
set -eu
echo "$(date +%s.%N) k3s-uninstall.sh" >>/var/log/k3sp/calls.log
systemctl stop k3s
rm -f /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s
rm -f /usr/local/bin/k3s "$0"
