"""loadlab's own PostgreSQL as a container's main process (infra/docker-compose.yml's
`postgres`): the same initdb (password authentication only), settings
(infra/postgres/postgresql.conf), database, pg_stat_statements and schema as `loadlab up`,
through the same functions (stack/postgres.py), on Debian's PostgreSQL as natively.

One code path rather than the official image's entrypoint, so what compose runs is what the
tests run natively. The differences are the container's: the server listens on the compose
network (compose publishes its port on 127.0.0.1 only) and pg_hba admits that network
(`samenet`), by SCRAM password only like every other rule. The services' role and the seed
come from the `seed` job, as `up` does them after the server is ready.

    LOADLAB_ADMIN_PASSWORD=... python -m loadlab.stack.container_postgres
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from loadlab.errors import UsageError
from loadlab.stack import credentials, postgres

DATA = Path(os.environ.get("LOADLAB_PGDATA", "/var/lib/loadlab/pgdata"))
PORT = 5432
# Written once the schema is in: the container's health check, so nothing that needs the
# tables starts before them (pg_isready alone answers before create_database has run).
READY = Path(tempfile.gettempdir()) / "loadlab-postgres-ready"
NETWORK_RULE = "host all all samenet scram-sha-256"


def admit_network(pgdata: Path) -> None:
    """Let clients on the container's own networks in, by password (idempotent)."""
    hba = pgdata / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if NETWORK_RULE not in lines:
        hba.write_text("\n".join([*lines, "# loadlab: the compose network", NETWORK_RULE]) + "\n")


def main() -> int:
    password = os.environ.get("LOADLAB_ADMIN_PASSWORD", "")
    if not password:
        print("set LOADLAB_ADMIN_PASSWORD: the superuser's password", file=sys.stderr)
        return 2
    READY.unlink(missing_ok=True)
    pg_bin = postgres.find_bin(None)
    postgres.init_cluster(pg_bin, DATA, None, password)
    admit_network(DATA)
    server = subprocess.Popen(
        [str(pg_bin / "postgres"), "-D", str(DATA), "-p", str(PORT)]
        + ["-c", "listen_addresses=*", "-c", "unix_socket_directories="]
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        server.send_signal(signal.SIGINT)  # "fast" shutdown, as `down` does natively

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    folder = Path(tempfile.mkdtemp())
    passfile = folder / "passfile"  # for the set-up only: no password stays on disk
    credentials.keep_password(passfile, postgres.ADMIN, password)
    try:
        postgres.wait_ready(postgres.url(PORT, "postgres", passfile=passfile), 60)
        postgres.create_database(PORT, passfile)
        postgres.apply_schema(postgres.url(PORT, passfile=passfile), own_cluster=True)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        server.send_signal(signal.SIGINT)
        server.wait()
        return 2
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    READY.touch()
    print(f"loadlab's PostgreSQL is ready on port {PORT}", flush=True)
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
