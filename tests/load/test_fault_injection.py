"""`run --fault KIND --fault-at T`: every fault kind, injected while measuring, against the
duel's services and the two stacks beside them (FastAPI's def handlers, Flask on gevent), on
a stack of its own behind PgBouncer (two web workers each). Each service
recovers by itself, every request stays counted, and the data keeps its integrity."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy.engine import make_url

from loadlab import ROOT, faults
from loadlab.settings import StackSettings
from loadlab.stack import postgres, procs
from tests import cli
from tests.conftest import Stack

# Every kind in one measured window, pg-slow last (it holds its locks for SLOW_SECONDS).
SCHEDULE = (
    ("pg-terminate", 2),
    ("service-kill", 5),
    ("pgbouncer-restart", 8),
    ("pg-restart", 11),
    ("pg-slow", 14),
)
# The stacks beside the duel (FastAPI's def handlers, Flask on gevent, FastAPI on Granian): a
# connection cut under them and a worker killed, in a shorter window (make test's time counts).
SHORT = (("pg-terminate", 2), ("service-kill", 5))
RECOVERY_S = 8.0  # the stated bound: no errors again within this of any fault


def loadlab(*args: str) -> subprocess.CompletedProcess[str]:
    return cli.loadlab(*args, cwd=ROOT, timeout=240)


@pytest.mark.parametrize(
    ("variant", "schedule", "duration"),
    [
        ("flask_sync", SCHEDULE, 22),
        ("fastapi_async", SCHEDULE, 22),
        ("fastapi_sync", SHORT, 14),
        ("flask_gevent", SHORT, 14),
        ("fastapi_granian", SHORT, 14),
    ],
)
def test_every_fault_kind_is_survived_and_nothing_is_lost(
    bouncer_stack: StackSettings,
    tmp_path: Path,
    variant: str,
    schedule: tuple[tuple[str, int], ...],
    duration: int,
) -> None:
    out = tmp_path / "r"
    flags = [x for kind, at in schedule for x in ("--fault", kind, "--fault-at", f"{at}s")]
    done = loadlab(
        "run", "--state-dir", str(bouncer_stack.state_dir), "--variants", variant,
        "--users", "20", "--spawn-rate", "20", "--warmup", "2s", "--duration", f"{duration}s",
        *flags, "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plan"]["faults"] == [[kind, float(at)] for kind, at in schedule]
    (v,) = summary["variants"].values()
    found = v["faults"]
    assert [f["kind"] for f in found] == [kind for kind, _ in schedule]
    for f, (_, at) in zip(found, schedule, strict=True):
        assert not f["detail"].startswith("could not be done"), f
        assert at - 0.5 <= f["at_s"] <= at + 1.5, f  # on time, within the poll's slack
        assert f["recovery_s"] is not None and f["recovery_s"] <= RECOVERY_S, f
    # Something broke (the restarts and the kill cut requests), and every request counted.
    assert sum(f["failed_requests"] for f in found) == v["failures"] > 0
    assert v["requests"] == v["locust_requests"]
    # The last seconds ran clean: the service recovered without being restarted.
    assert all(row["failures"] == 0 for row in v["timeline"][-3:]), v["timeline"][-5:]
    (visits,) = v["integrity"]
    assert visits["holds"], visits
    # The page marks and lists them.
    page = (out / "index.html").read_text()
    assert "<h2>Faults</h2>" in page and page.count('stroke="#c0392b"') >= 2 * len(schedule)
    components = json.loads((bouncer_stack.state_dir / "state.json").read_text())["components"]
    state_url = next(c["url"] for c in components if c["name"] == variant)
    assert httpx.get(f"{state_url}/healthz", timeout=10).status_code == 200
    _trust_kept(bouncer_stack.state_dir, out, components)


def _trust_kept(state_dir: Path, report: Path, components: list[dict[str, object]]) -> None:
    """What issue "trust first" made true holds after the faults: every server (the
    restarted PostgreSQL and PgBouncer too) listens on 127.0.0.1 only, the services log in
    with a role that is not a superuser, and no password is in the report or the logs."""
    from tests.stack.test_cli import _files_holding, _passwords

    for c in components:
        pid = postgres_pid(state_dir) if c["name"] == "postgres" else c["pid"]
        assert isinstance(pid, int), c
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            for conn in proc.net_connections("tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    assert conn.laddr.ip == "127.0.0.1", (c["name"], conn.laddr)
    state = procs.load_state(state_dir)
    assert state is not None
    role = make_url(state.database_url).username
    (superuser,) = postgres.fetch_one(
        state.direct_database_url, f"SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'"
    )
    assert role == postgres.APP and superuser is False
    secrets = _passwords(state_dir)
    assert _files_holding(report, secrets) == []
    assert len(list((state_dir / "logs").glob("*.log"))) >= 4  # postgres, pgbouncer, services
    assert _files_holding(state_dir / "logs", secrets) == []


def postgres_pid(state_dir: Path) -> int | None:
    state = procs.load_state(state_dir)
    server = state.get("postgres") if state else None
    return server.current_pid() if server else None  # pg-restart made a new postmaster


def test_bad_fault_flags_are_one_line_and_exit_2(stack: Stack, tmp_path: Path) -> None:
    base = ["run", "--state-dir", str(stack.settings.state_dir), "--duration", "10s"]
    for flags, said in (
        (["--fault", "pg-explode", "--fault-at", "2s"], "unknown fault 'pg-explode'"),
        (["--fault", "pg-restart", "--fault-at", "12s"], "--fault-at 12s is outside"),
        (["--fault", "pg-restart"], "1 --fault and 0 --fault-at"),
        (["--fault", "pgbouncer-restart", "--fault-at", "2s"], "pgbouncer-restart needs PgBouncer"),
        (
            ["--fault", "pg-restart", "--fault-at", "2s", "--target", "http://127.0.0.1:9"],
            "--fault breaks loadlab's own stack",
        ),
    ):
        out = tmp_path / "r"
        done = loadlab(*base, *flags, "--out", str(out))
        assert done.returncode == 2, (flags, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert said in line, line
        assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_recovery_is_read_from_the_timeline() -> None:
    injected = [faults.Injected("pg-restart", 100.0, "x"), faults.Injected("pg-slow", 110.0, "y")]
    timeline = [
        {"t": t, "failures": n} for t, n in enumerate([0] * 10 + [0, 3, 2, 0, 0] + [0] * 10)
    ]
    first, second = faults.outcomes(injected, 90.0, timeline)
    assert first["at_s"] == 10.0 and first["failed_requests"] == 5
    assert first["recovery_s"] == 3.0  # failures until second 12 included: 13 - 10
    assert second["failed_requests"] == 0 and second["recovery_s"] == 0.0
    still = faults.outcomes(injected[:1], 90.0, timeline[:13])
    assert still[0]["recovery_s"] is None  # failing in the run's last second
