#!/usr/bin/env bash
# Install the Debian packages a REAL node of the local cluster needs, if missing: containerd and
# runc (crun fails on hybrid cgroups), the CNI plugins (bridge, host-local, loopback, portmap),
# iptables, conntrack and socat (kube-proxy, port-forward), dnsmasq (cluster DNS), nginx (the
# ingress). Idempotent; apt-get update runs only when a package is not known to apt. No package
# may start a service: a temporary /usr/sbin/policy-rc.d answers 101 while apt runs.
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

# package:file-it-provides pairs; a package is missing when its file is.
wanted=(
  containerd:/usr/bin/containerd
  runc:/usr/sbin/runc
  containernetworking-plugins:/usr/lib/cni/bridge
  iptables:/usr/sbin/iptables
  conntrack:/usr/sbin/conntrack
  socat:/usr/bin/socat
  dnsmasq-base:/usr/sbin/dnsmasq
  nginx-light:/usr/sbin/nginx
  iproute2:/usr/sbin/ip
  kmod:/usr/sbin/modprobe
  nftables:/usr/sbin/nft
)
missing=()
for pair in "${wanted[@]}"; do
  [ -e "${pair#*:}" ] || missing+=("${pair%%:*}")
done
apt_install system-deps-node "${missing[@]}"
