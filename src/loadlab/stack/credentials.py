"""Database passwords: kept in one file, never in a URL, a log, a state file or a report.

Passwords live in `<state_dir>/pgpass`, mode 600, in PostgreSQL's own password-file format.
Every URL loadlab passes around names that file (`?passfile=...`) instead of holding a
password; libpq (psycopg2, psycopg 3) and asyncpg both read it. `redact` is the one function
that makes any URL printable; everything loadlab prints or writes goes through it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import URL, make_url

PASSFILE = "pgpass"
_SECRET_QUERY_KEYS = ("password", "passfile")


def redact(database_url: str) -> str:
    """A database URL without its password (nor the password file's path): safe to print
    and to store."""
    url = _without_password(database_url)
    query = {k: v for k, v in url.query.items() if k not in _SECRET_QUERY_KEYS}
    return url.set(query=query).render_as_string(hide_password=False)


def _without_password(database_url: str) -> URL:
    # Not URL.set(password=None): to `set`, None means "leave it as it is".
    return make_url(database_url)._replace(password=None)


def passfile(state_dir: Path) -> Path:
    return state_dir.resolve() / PASSFILE


def with_passfile(database_url: str, path: Path) -> str:
    """The URL with its password taken out and the password file named instead."""
    url = _without_password(database_url)
    return url.update_query_dict({"passfile": str(path)}).render_as_string(hide_password=False)


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def _read(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def write_private(path: Path, text: str) -> None:
    """Replace the file atomically with one readable by its owner only (mode 600 from its
    creation, as libpq demands of a password file; never a moment with wider rights)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def _write(path: Path, lines: list[str]) -> None:
    write_private(path, "".join(f"{line}\n" for line in lines))


def role_password(path: Path, role: str) -> str:
    """The password of one of loadlab's own roles (for any host, port and database),
    generated on first use and kept until `down --purge`."""
    key = f"*:*:*:{_escape(role)}:"
    for line in _read(path):
        if line.startswith(key):
            return line[len(key) :]
    password = secrets.token_urlsafe(24)  # letters, digits, - and _: nothing to escape
    _write(path, [*_read(path), key + password])
    return password


def keep_password(path: Path, role: str, password: str) -> None:
    """Put a role's given password in the password file (for any host, port and database)."""
    key = f"*:*:*:{_escape(role)}:"
    kept = [line for line in _read(path) if not line.startswith(key)]
    _write(path, [key + _escape(password), *kept])


def store(path: Path, database_url: str) -> str:
    """A URL given by the user, its password moved into the password file (for that host,
    port, database and user only); returns the URL to keep. A URL without a password is
    returned as it is: libpq then finds the password as it always would."""
    url = make_url(database_url)
    if not url.password:
        return database_url
    fields = (url.host or "localhost", str(url.port or 5432), url.database or "*")
    key = ":".join(_escape(f) for f in (*fields, url.username or "*")) + ":"
    kept = [line for line in _read(path) if not line.startswith(key)]
    # libpq takes the first matching line: this exact one goes before the wildcard ones.
    _write(path, [key + _escape(str(url.password)), *kept])
    return with_passfile(database_url, path)


def scram_sha_256(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 7677). loadlab sends
    this, never the password, in CREATE ROLE: statements can end up in logs and in
    pg_stat_statements. PgBouncer's auth file gets the same verifier."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
