"""What exactly ran: versions, settings, machine and commit, for every report."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from loadlab import ROOT

PACKAGES = (
    "sqlalchemy",
    "psycopg2-binary",
    "asyncpg",
    "psycopg",
    "flask",
    "gunicorn",
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "locust",
    "hdrhistogram",
    "greenlet",
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _run(argv: list[str], cwd: Path = ROOT) -> str:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=10, cwd=cwd
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def uncommitted(root: Path = ROOT) -> bool:
    """Whether tracked code differs from HEAD. Report folders are output, not code: a new
    or removed report does not make a run dirty. Nor does a tuned profile: `tune` writes it
    (`make evidence` tunes, then runs the tuned duel), and every report run under it records
    its knobs in each variant's `setup`."""
    argv = ["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
    return bool(_run([*argv, ":!reports", ":!profiles/*.tuned.json"], root))


def changed_since(commit: str, paths: list[str], root: Path = ROOT) -> list[str] | None:
    """The files under `paths` (git pathspecs) that differ between `commit` and HEAD; None
    when this clone does not hold the commit (a shallow one, say)."""
    if not _run(["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], root):
        return None
    return _run(["git", "diff", "--name-only", commit, "HEAD", "--", *paths], root).split()


def git_commit() -> str:
    commit = _run(["git", "rev-parse", "--short=12", "HEAD"])
    if not commit:  # no repository: an image says what it was built from (infra/Dockerfile)
        return os.environ.get("LOADLAB_SOURCE_COMMIT") or "unknown"
    return f"{commit}{' (uncommitted changes)' if uncommitted() else ''}"


def describe(postgres_version: str, pgbouncer: bool, settings: dict[str, Any]) -> dict[str, Any]:
    """The environment block of summary.json."""
    pgbouncer_version = ""
    if pgbouncer:
        first = _run(["pgbouncer", "--version"]).splitlines()
        pgbouncer_version = first[0] if first else "unknown"
    return {
        "python": sys.version.split()[0],
        "postgresql": postgres_version,
        "pgbouncer": pgbouncer_version or "not used",
        "packages": {name: _version(name) for name in PACKAGES},
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "processor": platform.processor() or platform.machine(),
        "git_commit": git_commit(),
        "settings": settings,
    }
