"""PgBouncer in transaction mode between the services and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.stack import procs
from loadlab.stack.procs import Component

TEMPLATE = ROOT / "infra" / "pgbouncer" / "pgbouncer.ini"


def find_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if not found:
        raise UsageError(
            "pgbouncer not found: apt-get install pgbouncer, or run without --pgbouncer"
        )
    return found


def start(
    direct_url: str, port: int, folder: Path, log: Path, user: str | None
) -> tuple[Component, str]:
    """Start PgBouncer on 127.0.0.1:port in front of `direct_url`; returns it and the URL
    the services should use instead."""
    binary = find_binary()
    target = urlsplit(direct_url)
    dbname = target.path.lstrip("/")
    db_user = target.username or "postgres"
    folder.mkdir(parents=True, exist_ok=True)
    auth_file = folder / "userlist.txt"
    auth_file.write_text(f'"{db_user}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        TEMPLATE.read_text().format(
            dbname=dbname,
            pg_host=target.hostname,
            pg_port=target.port or 5432,
            listen_addr="127.0.0.1",
            listen_port=port,
            auth_file=auth_file,
            logfile=folder / "pgbouncer.log",
            pidfile="",
            user=db_user,
        )
    )
    if user:
        for path in (folder, auth_file, ini):
            shutil.chown(path, user, user)
    service_url = f"postgresql://{db_user}@127.0.0.1:{port}/{dbname}"
    component = procs.start(
        "pgbouncer",
        [binary, str(ini)],
        url=service_url,
        log=log,
        user=user,
        cwd=Path("/"),
    )
    return component, service_url
