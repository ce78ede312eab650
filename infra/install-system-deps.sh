#!/usr/bin/env bash
# Installs the system programs loadlab runs (PostgreSQL server, PgBouncer, Chromium for the
# report check) from Debian's packages when they are missing. Needs root (or sudo) to install;
# otherwise it says what is missing and leaves it to you.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v chromium >/dev/null || missing+=(chromium)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "loadlab needs these Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
  exit 2
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system-wide pgbouncer/postgresql service on install where systemd runs;
# loadlab starts its own, on its own ports, and needs none of them.
