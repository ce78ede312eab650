"""PgBouncer in transaction mode between the services and PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.settings import StackSettings
from loadlab.stack import credentials, postgres, procs
from loadlab.stack.credentials import write_private
from loadlab.stack.procs import Component, State

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


def render_config(
    direct_url: str, listen_addr: str, port: int, folder: Path, user: str, secret: str
) -> str:
    """Write pgbouncer.ini and its auth file (mode 600) into `folder` from
    infra/pgbouncer/pgbouncer.ini (the compose setup calls this too). `secret` is the
    role's SCRAM verifier (the server's own, so PgBouncer can pass the client's proof on) or
    its password. Returns the URL that reaches the database through PgBouncer (no password)."""
    target = urlsplit(direct_url)
    dbname = target.path.lstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    auth_file = folder / "userlist.txt"
    write_private(auth_file, f'"{user}" "{secret}"\n')
    (folder / "pgbouncer.ini").write_text(
        TEMPLATE.read_text().format(
            dbname=dbname,
            pg_host=target.hostname,
            pg_port=target.port or 5432,
            listen_addr=listen_addr,
            listen_port=port,
            auth_file=auth_file,
        )
    )
    return f"postgresql://{user}@{listen_addr}:{port}/{dbname}"


def start(
    direct_url: str, user: str, secret: str, port: int, folder: Path, log: Path, run_as: str | None
) -> tuple[Component, str]:
    """Start PgBouncer on 127.0.0.1:port in front of `direct_url` for `user`; returns it and
    the URL the services should use instead (without a password)."""
    binary = find_binary()
    service_url = render_config(direct_url, "127.0.0.1", port, folder, user, secret)
    if run_as:
        for path in (folder, *folder.iterdir()):
            procs.give_to(path, run_as)
    component = procs.start(
        "pgbouncer",
        [binary, str(folder / "pgbouncer.ini")],
        url=service_url,
        log=log,
        user=run_as,
        cwd=Path("/"),
    )
    return component, service_url


@contextmanager
def transaction_pooler(settings: StackSettings, state: State) -> Iterator[tuple[str, int] | None]:
    """A PgBouncer in transaction mode in front of the stack's PostgreSQL, for the services'
    role: (its URL, its PID). The stack's own when it runs one; else, on loadlab's own
    cluster, one started for the block (a private folder, a free port) and stopped after it.
    None on a database loadlab did not start: PgBouncer would need the role's password."""
    if state.pgbouncer:
        own = state.get("pgbouncer")
        pid = own.current_pid() if own else None
        if pid is None:
            raise UsageError("the stack's PgBouncer is not running: see `python -m loadlab status`")
        yield state.database_url, pid
        return
    server = state.get("postgres")
    if server is None or server.pid is None:
        yield None
        return
    passfile = credentials.passfile(settings.state_dir)
    # PgBouncer passes the role's SCRAM proof on: it needs the verifier PostgreSQL holds.
    (verifier,) = postgres.fetch_one(
        state.direct_database_url,
        f"SELECT rolpassword FROM pg_authid WHERE rolname = '{postgres.APP}'",
    )
    user = procs.unprivileged_user()
    with tempfile.TemporaryDirectory(prefix="loadlab-pgbouncer-") as folder:
        if user:
            procs.give_to(Path(folder), user)
        # Started and stopped with interrupts held: a Ctrl-C in between would leave it running.
        with procs.interrupts_held():
            component, through = start(
                state.direct_database_url,
                postgres.APP,
                verifier,
                procs.free_port(),
                Path(folder),
                Path(folder) / "pgbouncer.log",
                user,
            )
        try:
            url = credentials.with_passfile(through, passfile)
            postgres.wait_ready(url, settings.ready_timeout, component)
            assert component.pid is not None
            yield url, component.pid
        finally:
            with procs.interrupts_held():
                procs.stop(component)
