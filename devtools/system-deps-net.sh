#!/usr/bin/env bash
# Install what the local cluster's DNS and ingress controllers need, if missing: dnsmasq-base
# (the dnsmasq binary without its system service), nginx-light (nginx with the proxy, map and
# upstream modules) and bind9-dnsutils (dig, for looking at the DNS by hand). The controllers
# run their own dnsmasq and nginx as children; no system service is started or left running.
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

missing=()
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

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

apt_install system-deps-net "${missing[@]}"
stop_services
