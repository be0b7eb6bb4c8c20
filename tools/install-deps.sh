#!/usr/bin/env bash
# Installs what building and testing Petrel needs, and only what is missing:
# Debian packages (Lua runtimes, mosquitto, the other brokers of the interop suite, socat) and
# the npm packages from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(lua5.1 lua5.3 lua-bitop lua-socket lua-sec mosquitto mosquitto-clients nats-server rabbitmq-server haproxy socat openssl)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  # Another package manager (unattended upgrades on a fresh machine) may hold apt's locks: wait
  # for them, up to 10 minutes, instead of failing. DPkg::Lock::Timeout covers dpkg's lock;
  # apt-get update's lock on the package lists is waited for here, retrying only on a lock error.
  apt() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  for try in $(seq 60); do
    if err=$(apt update -qq 2>&1 >/dev/null); then break; fi
    if ! grep -qi "lock" <<<"$err" || [ "$try" = 60 ]; then echo "$err" >&2; exit 1; fi
    [ "$try" = 1 ] && echo "deps: another package manager holds apt's lock; waiting for it (at most 10 minutes)"
    sleep 10
  done
  apt install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The brokers are started by the tests with their own configs; the system services are not needed.
  if command -v systemctl >/dev/null 2>&1; then
    for svc in mosquitto nats-server rabbitmq-server; do $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; done
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
