"""A throwaway PostgreSQL cluster of loadlab's own: initdb in the state folder, loopback only."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.stack import procs
from loadlab.stack.credentials import redact, with_passfile, write_private
from loadlab.stack.procs import Component

DB_NAME = "loadlab"
ADMIN = "loadlab_admin"  # the cluster's superuser: up and seed (schema, seed, statistics)
APP = "loadlab_app"  # the services: may only read and write the application tables
CONF = ROOT / "infra" / "postgres" / "postgresql.conf"
SCHEMA = ROOT / "infra" / "postgres" / "schema.sql"
GRANTS = ROOT / "infra" / "postgres" / "grants.sql"


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


def url(port: int, dbname: str = DB_NAME, user: str = ADMIN, passfile: Path | None = None) -> str:
    """A URL of loadlab's own cluster; the password comes from `passfile`."""
    base = f"postgresql://{user}@127.0.0.1:{port}/{dbname}"
    return base if passfile is None else with_passfile(base, passfile)


def _password_protected(pgdata: Path) -> bool:
    hba = (pgdata / "pg_hba.conf").read_text().splitlines()
    rules = [line.split() for line in hba if line.strip() and not line.lstrip().startswith("#")]
    return bool(rules) and all(rule[-1] == "scram-sha-256" for rule in rules)


def init_cluster(pg_bin: Path, pgdata: Path, user: str | None, admin_password: str) -> None:
    """initdb once, password authentication only; the cluster is kept between `up`s until
    `down --purge`. A cluster made by an older loadlab, which trusted every local
    connection, holds only seed data: it is made anew."""
    if (pgdata / "PG_VERSION").exists():
        if _password_protected(pgdata):
            return
        print(f"the cluster in {pgdata} lets anyone log in without a password: making it anew")
        shutil.rmtree(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    if user:
        procs.give_to(pgdata, user)
    pgdata.chmod(0o700)
    pwfile = pgdata.parent / ".initdb-password"  # for initdb only, removed after
    write_private(pwfile, admin_password)
    if user:
        procs.give_to(pwfile, user)
    try:
        result = subprocess.run(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                ADMIN,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            user=user,
            cwd="/",
        )
    finally:
        pwfile.unlink(missing_ok=True)
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


def create_database(port: int, passfile: Path) -> None:
    """The `loadlab` database in our own cluster, with pg_stat_statements; other databases
    closed to anyone but the superuser."""
    conn = psycopg2.connect(url(port, "postgres", passfile=passfile))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DB_NAME}")
        cur.execute("REVOKE ALL ON DATABASE postgres FROM PUBLIC")
    conn.close()
    conn = psycopg2.connect(url(port, passfile=passfile))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    conn.close()


def grant_app_role(admin_url: str, verifier: str) -> None:
    """Create (or update) the services' role with this SCRAM verifier as its password, and
    give it exactly infra/postgres/grants.sql: read and write the application tables."""
    conn = psycopg2.connect(admin_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(
                sql.SQL(
                    verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s"
                ).format(sql.Identifier(APP)),
                (verifier,),
            )
            cur.execute(GRANTS.read_text())
    finally:
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


def given_database(database_url: str, timeout: float) -> str:
    """A database given for services loadlab did not start (`--target` with
    `--database-url`), which runs and verify reset: answering, and holding no tables loadlab
    did not make (apply_schema refuses those: the reset empties its tables)."""
    wait_ready(database_url, timeout)
    apply_schema(database_url)
    return database_url
