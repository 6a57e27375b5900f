#!/usr/bin/env bash
# Install the Debian packages a REAL node of the local cluster needs, if missing: containerd and
# runc (crun fails on hybrid cgroups), the CNI plugins (bridge, host-local, loopback, portmap),
# iptables, conntrack and socat (kube-proxy, port-forward), dnsmasq (cluster DNS), nginx (the
# ingress). Idempotent; apt-get update runs only when a package is not known to apt. No package
# may start a service: a temporary /usr/sbin/policy-rc.d answers 101 while apt runs.
set -euo pipefail

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
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
say() { printf '[system-deps-node] %s\n' "$*" >&2; }

# Keep a policy-rc.d that is already there (it may say more than "no"); add ours otherwise.
POLICY=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# onyxia-py system-deps-node.sh: no service starts during apt-get install\nexit 101\n' |
    $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 0755 "$POLICY"
  ours=1
fi
cleanup() { [ "$ours" -eq 0 ] || $SUDO rm -f "$POLICY"; }
trap cleanup EXIT

known() { apt-cache show "$1" >/dev/null 2>&1; }
for p in "${missing[@]}"; do
  if ! known "$p"; then
    say "apt-get update (package $p unknown)"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    break
  fi
done
say "installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
