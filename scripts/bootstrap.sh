#!/usr/bin/env bash
# Installs what Neutrino needs on a fresh Debian 12 machine: system packages, a virtualenv, the
# package itself (editable) and, with --test, the test tools. Safe to re-run; quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

APT_PACKAGES=(iproute2 iputils-ping nftables dnsmasq-base dnsmasq-utils isc-dhcp-client conntrack tcpdump
              postgresql-client mariadb-client python3-venv chromium chromium-driver radvd keepalived)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing system packages (run as root or install them): ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.neutrino-installed
extra=""
[ "$want_test" -eq 1 ] && extra="[test]"
if [ ! -f "$stamp$extra" ] || [ pyproject.toml -nt "$stamp$extra" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -e ".$extra"
  touch "$stamp$extra"
fi
