#!/bin/sh
# e2e stand-in for k3s-uninstall.sh, which the K3s install script writes next to the binary (the
# stand-in install script copies it to BIN_DIR for the role it installs, as the real one does)
# (install.sh create_uninstall). Like the real one: stops the service, removes the unit, its env
# file and itself; then, unless another k3s*.service unit is left ("Additional k3s services
# installed, skipping uninstall of k3s"), /etc/rancher/k3s, /var/lib/rancher/k3s and BIN_DIR/k3s.
set -eu
echo "$(date +%s.%N) k3s-uninstall.sh" >>/var/log/k3sp/calls.log
systemctl stop k3s
rm -f /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env
rm -f "$0"
# Another k3s unit left (a host installed once per role): the real script stops here.
for other in /etc/systemd/system/k3s*.service; do
  if [ -e "$other" ]; then echo "Additional k3s services installed, skipping uninstall of k3s"; exit 0; fi
done
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s
rm -f "$(dirname "$0")/k3s" # BIN_DIR/k3s: the real script has its BIN_DIR written in
