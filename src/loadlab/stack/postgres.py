"""A throwaway PostgreSQL cluster of loadlab's own: initdb in the state folder, loopback only."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.stack import procs
from loadlab.stack.procs import Component

DB_NAME = "loadlab"
DB_USER = "loadlab"
CONF = ROOT / "infra" / "postgres" / "postgresql.conf"
SCHEMA = ROOT / "infra" / "postgres" / "schema.sql"


def find_bin(configured: Path | None) -> Path:
    """The folder holding initdb and postgres."""
    if configured is not None:
        if (configured / "initdb").exists() and (configured / "postgres").exists():
            return configured
        raise UsageError(
            f"LOADLAB_PG_BIN={configured} holds no initdb and postgres: point it at the "
            "folder with PostgreSQL's server binaries (e.g. /usr/lib/postgresql/15/bin)"
        )
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise UsageError(
        "PostgreSQL server binaries (initdb, postgres) not found: "
        "apt-get install postgresql, or set LOADLAB_PG_BIN to their folder"
    )


def _major(path: Path) -> int:
    name = path.parent.name
    return int(name) if name.isdigit() else 0


def redact(database_url: str) -> str:
    """A database URL without its password, safe to print and to store."""
    return make_url(database_url).set(password=None).render_as_string(hide_password=False)


def url(port: int, dbname: str = DB_NAME) -> str:
    return f"postgresql://{DB_USER}@127.0.0.1:{port}/{dbname}"


def init_cluster(pg_bin: Path, pgdata: Path, user: str | None) -> None:
    """initdb once; the cluster is kept between `up`s until `down --purge`."""
    if (pgdata / "PG_VERSION").exists():
        return
    pgdata.mkdir(parents=True, exist_ok=True)
    if user:
        procs.give_to(pgdata, user)
    pgdata.chmod(0o700)
    result = subprocess.run(
        [
            str(pg_bin / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            DB_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        user=user,
        cwd="/",
    )
    if result.returncode != 0:
        raise UsageError(f"initdb failed in {pgdata}: {result.stderr.strip().splitlines()[-1:]}")
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"\n# loadlab: infra/postgres/postgresql.conf\ninclude '{CONF}'\n")


def start(pg_bin: Path, pgdata: Path, port: int, log: Path, user: str | None) -> Component:
    """Start the server on 127.0.0.1:port, no Unix socket."""
    return procs.start(
        "postgres",
        [
            str(pg_bin / "postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ],
        url=url(port),
        log=log,
        user=user,
        cwd=Path("/"),
        stop_signal=signal.SIGINT,  # "fast" shutdown: roll back sessions, exit cleanly
        data_dir=pgdata,
    )


def wait_ready(database_url: str, timeout: float, component: Component | None = None) -> None:
    """Until a connection and `SELECT 1` succeed (through PgBouncer, if that is the URL)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if component is not None and (tail := procs.exited_early(component)):
            raise UsageError(f"{component.name} exited while starting: {tail}")
        try:
            with psycopg2.connect(database_url, connect_timeout=2) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.close()
            return
        except psycopg2.OperationalError as exc:
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            time.sleep(0.2)
    raise UsageError(f"{redact(database_url)} did not answer within {timeout:.0f}s ({last})")


def create_database(port: int) -> None:
    """The `loadlab` database in our own cluster, with pg_stat_statements."""
    conn = psycopg2.connect(url(port, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DB_NAME}")
    conn.close()
    conn = psycopg2.connect(url(port))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.close()


MARK = "loadlab_schema"  # the table schema.sql creates first


def apply_schema(database_url: str, own_cluster: bool = False) -> None:
    """infra/postgres/schema.sql (idempotent: CREATE ... IF NOT EXISTS). Into a database
    given by URL only when it is empty or loadlab made it, since the seed that follows
    empties its tables; a cluster loadlab started itself is its own (and may predate the
    mark)."""
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
                "ORDER BY table_name"
            )
            tables = [row[0] for row in cur.fetchall()]
            if tables and MARK not in tables and not own_cluster:
                raise UsageError(
                    f"{redact(database_url)} already holds tables loadlab did not create "
                    f"({', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}): give "
                    "loadlab an empty database of its own, since its seed empties its tables"
                )
            cur.execute(SCHEMA.read_text())
    finally:
        conn.close()


def fetch_one(database_url: str, sql: str) -> tuple[Any, ...]:
    """The first row of one statement, on a connection of its own (autocommit)."""
    conn = psycopg2.connect(database_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return tuple(cur.fetchone() or ())
    finally:
        conn.close()


def server_version(database_url: str) -> str:
    row = fetch_one(database_url, "SHOW server_version")
    return str(row[0]) if row else "unknown"
