#!/usr/bin/env bash
# What `docker build` needs on a machine like the tests' (see docs/distributed.md):
#   infra/compose.sh wheels   loadlab's Python packages as wheels in infra/wheels, built by the
#                             host's pip (a proxy that intercepts TLS fails pip inside a build)
#   infra/compose.sh base     a Debian bookworm base image, loadlab-base:bookworm, made with
#                             debootstrap (for a machine that reaches no image registry)
#   infra/compose.sh commit   the commit to build into the image, for its reports:
#                             LOADLAB_SOURCE_COMMIT=$(infra/compose.sh commit)
# Each is skipped when already done: the wheels while pyproject.toml is unchanged, the base
# while the image exists.
set -euo pipefail
cd "$(dirname "$0")/.."

wheels() {
  local stamp="infra/wheels/.stamp" want
  want=$(cksum < pyproject.toml | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && ls infra/wheels/*.whl >/dev/null 2>&1; then
    return 0
  fi
  local py=python3
  [ -x .venv/bin/python ] && py=.venv/bin/python
  rm -f infra/wheels/*.whl
  # (pip warns of each index folder this machine's pip configuration names and lacks)
  "$py" -m pip wheel -q -w infra/wheels '.[services,load]' 'setuptools>=68' 2>&1 \
    | { grep -v '^WARNING: Location' || true; }
  rm -f infra/wheels/loadlab-*.whl  # the image installs loadlab itself, editable
  echo "$want" > "$stamp"
}

base() {
  docker image inspect loadlab-base:bookworm >/dev/null 2>&1 && return 0
  local root
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - loadlab-base:bookworm >/dev/null
  rm -rf "$root"
}

commit() {
  local sha
  sha=$(git rev-parse --short=12 HEAD 2>/dev/null) || { echo unknown; return 0; }
  if [ -n "$(git status --porcelain --untracked-files=no -- . ':!reports' 2>/dev/null)" ]; then
    echo "$sha (uncommitted changes)"
  else
    echo "$sha"
  fi
}

case "${1:-}" in
  wheels) wheels ;;
  base) base ;;
  commit) commit ;;
  *) echo "usage: infra/compose.sh wheels|base|commit" >&2; exit 2 ;;
esac
