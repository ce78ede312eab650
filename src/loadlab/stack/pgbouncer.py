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


def render_config(direct_url: str, listen_addr: str, port: int, folder: Path) -> str:
    """Write pgbouncer.ini and its auth file into `folder` from infra/pgbouncer/pgbouncer.ini
    (the compose setup calls this too); returns the URL that reaches the database through it."""
    target = urlsplit(direct_url)
    dbname = target.path.lstrip("/")
    db_user = target.username or "postgres"
    folder.mkdir(parents=True, exist_ok=True)
    auth_file = folder / "userlist.txt"
    auth_file.write_text(f'"{db_user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        TEMPLATE.read_text().format(
            dbname=dbname,
            pg_host=target.hostname,
            pg_port=target.port or 5432,
            listen_addr=listen_addr,
            listen_port=port,
            auth_file=auth_file,
            user=db_user,
        )
    )
    return f"postgresql://{db_user}@{listen_addr}:{port}/{dbname}"


def start(
    direct_url: str, port: int, folder: Path, log: Path, user: str | None
) -> tuple[Component, str]:
    """Start PgBouncer on 127.0.0.1:port in front of `direct_url`; returns it and the URL
    the services should use instead."""
    binary = find_binary()
    service_url = render_config(direct_url, "127.0.0.1", port, folder)
    if user:
        for path in (folder, *folder.iterdir()):
            procs.give_to(path, user)
    component = procs.start(
        "pgbouncer",
        [binary, str(folder / "pgbouncer.ini")],
        url=service_url,
        log=log,
        user=user,
        cwd=Path("/"),
    )
    return component, service_url
