"""Passwords: one file (mode 600), URLs that name it, and `redact` for everything shown."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from loadlab.settings import StackSettings
from loadlab.stack import credentials, postgres, procs
from tests.conftest import Stack


def test_redact_drops_the_password_and_the_password_file() -> None:
    url = "postgresql://u:s3cret@db:5433/app?passfile=/x/pgpass&sslmode=require&password=p2"
    assert credentials.redact(url) == "postgresql://u@db:5433/app?sslmode=require"


def test_settings_never_serialise_a_password() -> None:
    settings = StackSettings(database_url="postgresql://u:s3cret@db/app")
    assert "s3cret" not in settings.model_dump_json()
    assert settings.model_dump()["database_url"] == "postgresql://u@db/app"


def test_a_given_password_moves_into_the_password_file(tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    kept = credentials.store(passfile, "postgresql://u:p%3Aw%5Cd@db:5433/app")
    assert "p:w" not in kept and make_url(kept).query["passfile"] == str(passfile)
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert passfile.read_text() == "db:5433:app:u:p\\:w\\\\d\n"  # libpq's escapes
    assert credentials.store(passfile, "postgresql://v@db/app") == "postgresql://v@db/app"


def test_role_passwords_are_made_once_and_kept(tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    first = credentials.role_password(passfile, "loadlab_app")
    assert len(first) >= 32 and credentials.role_password(passfile, "loadlab_app") == first
    assert credentials.role_password(passfile, "loadlab_admin") != first


def test_scram_verifier_proves_the_password() -> None:
    """RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")), from the stated salt."""
    verifier = credentials.scram_sha_256("pencil")
    method, rest = verifier.split("$", 1)
    iterations, salt = rest.split("$")[0].split(":")
    stored, server = rest.split("$")[1].split(":")
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert method == "SCRAM-SHA-256" and iterations == "4096"
    assert base64.b64decode(stored) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server) == hmac.new(salted, b"Server Key", "sha256").digest()


def _connect(url: str, **kwargs: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url, connect_timeout=5, **kwargs)
    conn.autocommit = True
    return conn


def test_nobody_logs_in_without_the_password(stack: Stack, tmp_path: Path) -> None:
    """The issue's reproduction: any local account could log in as the superuser (trust)."""
    empty = tmp_path / "empty-pgpass"
    empty.touch(mode=0o600)
    for user, dbname in ((postgres.ADMIN, "postgres"), (postgres.APP, postgres.DB_NAME)):
        url = postgres.url(stack.settings.pg_port, dbname, user=user)
        with pytest.raises(psycopg2.OperationalError, match="password"):
            _connect(url, passfile=str(empty))
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            _connect(url, password="guess", passfile=str(empty))


def test_the_services_role_reads_and_writes_the_tables_and_nothing_else(stack: Stack) -> None:
    state = procs.load_state(stack.settings.state_dir)
    assert state is not None and make_url(state.database_url).username == postgres.APP
    conn = _connect(state.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE users SET visits = visits WHERE id = 1 RETURNING id")
            assert cur.fetchone() == (1,)
            for forbidden in (
                "CREATE TABLE evil (x int)",
                "CREATE TEMP TABLE evil (x int)",
                "COPY (SELECT 1) TO PROGRAM 'id'",
                "TRUNCATE users",
                "DROP TABLE users",
                "SELECT * FROM loadlab_schema",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(forbidden)
    finally:
        conn.close()
    other = postgres.url(stack.settings.pg_port, "postgres", user=postgres.APP)
    with pytest.raises(psycopg2.OperationalError, match="CONNECT privilege"):
        _connect(other, passfile=str(credentials.passfile(stack.settings.state_dir)))
