#!/usr/bin/env bash
# Install what the local cluster's DNS and ingress controllers need, if missing: dnsmasq-base
# (the dnsmasq binary without its system service), nginx-light (nginx with the proxy, map and
# upstream modules) and bind9-dnsutils (dig, for looking at the DNS by hand). The controllers
# run their own dnsmasq and nginx as children; no system service is started or left running.
set -euo pipefail

missing=()
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Stop a system nginx or dnsmasq if one runs after all (started by a package script despite the
# policy, or by hand before): the controllers need their ports and never share the daemons.
stop_services() {
  for svc in nginx dnsmasq; do
    pidfile=/run/$svc.pid
    [ "$svc" = dnsmasq ] && pidfile=/run/dnsmasq/dnsmasq.pid
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "[system-deps-net] stopping the system $svc service" >&2
      $SUDO service "$svc" stop >/dev/null 2>&1 || $SUDO kill "$(cat "$pidfile")" || true
    fi
  done
}

if [ ${#missing[@]} -eq 0 ]; then
  stop_services
  exit 0
fi
echo "[system-deps-net] installing ${missing[*]}" >&2
install() {
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}
# nginx's maintainer scripts would start the system service; a policy-rc.d that denies every
# action (exit 101) plus RUNLEVEL=1 keeps invoke-rc.d from starting anything.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
# apt-get update only when the package lists do not know a package yet.
install 2>/dev/null || { $SUDO apt-get update -qq && install; }
stop_services
