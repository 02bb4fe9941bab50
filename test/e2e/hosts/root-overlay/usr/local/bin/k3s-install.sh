#!/bin/sh
# e2e stand-in for the pre-staged K3s install script: records when it ran, with which
# INSTALL_K3S_* environment and config, and marks the unit active.
set -eu
{
  printf 'run %s\n' "$(date +%s.%N)"
  env | grep -E '^(INSTALL_K3S_|K3S_|HTTPS?_PROXY|NO_PROXY|CONTAINERD_)' | sort
  printf 'config.yaml %s\n' "$(sha256sum /etc/rancher/k3s/config.yaml | cut -d' ' -f1)"
} >>/var/log/k3sp/install.log
sleep 0.3 # a real install takes a while: makes overlapping runs visible in the timestamps
printf 'done %s\n' "$(date +%s.%N)" >>/var/log/k3sp/install.log
unit=k3s
[ "${INSTALL_K3S_EXEC:-}" = agent ] && unit=k3s-agent
if [ "$unit" = k3s ]; then
  # What K3s writes for the admin: a kubeconfig pointing at the local API.
  mkdir -p /etc/rancher/k3s
  cat >/etc/rancher/k3s/k3s.yaml <<'KUBECONFIG'
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ZTJlLWNh
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
users:
- name: default
  user:
    client-certificate-data: ZTJlLWNlcnQ=
    client-key-data: ZTJlLWtleQ==
KUBECONFIG
  chmod 600 /etc/rancher/k3s/k3s.yaml
fi
mkdir -p /var/lib/k3sp-stub/active
touch "/var/lib/k3sp-stub/active/$unit"
