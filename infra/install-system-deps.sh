#!/usr/bin/env bash
# Installs the system programs loadlab runs (PostgreSQL server, PgBouncer, Chromium for the
# report check, Docker and Compose for the compose stack) from Debian's packages when they
# are missing. Needs root (or sudo) to install;
# otherwise it says what is missing and leaves it to you.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v chromium >/dev/null || missing+=(chromium)
# The compose stack's tests (tests/stack/test_compose_live.py): an engine, Compose v1 (the one
# Debian packages) and debootstrap for a base image where no registry is reachable.
# Optional: without them (and no root to install them) those tests are skipped, saying why.
optional=()
# LOADLAB_NO_DOCKER=1 (the GitHub workflow): none of them, not even to try.
[ "${LOADLAB_NO_DOCKER:-}" = 1 ] || {
command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || optional+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || optional+=(docker-compose)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || optional+=(debootstrap)
}

[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo="sudo"
elif [ ${#missing[@]} -eq 0 ]; then
  echo "note: the compose tests will be skipped without ${optional[*]} (apt-get install -y ${optional[*]})" >&2
  exit 0
else
  echo "loadlab needs these Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
  exit 2
fi
missing+=("${optional[@]}")
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system-wide pgbouncer/postgresql service on install where systemd runs;
# loadlab starts its own, on its own ports, and needs none of them.
