"""Side by side in one report: `run --compare-pgbouncer` (each stack straight to PostgreSQL
and through PgBouncer, and asyncpg's default statement cache behind PgBouncer failing beside
the documented settings that run clean) and `run --profiles` (the article's pool deadlock
against its fix); the copies they start are gone after them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from loadlab import ROOT, side_by_side
from loadlab.settings import StackSettings
from loadlab.stack import lifecycle, procs
from tests import cli
from tests.conftest import Stack

SHORT = ["--users", "20", "--spawn-rate", "20", "--warmup", "1s", "--duration", "3s"]


def loadlab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli.loadlab(*args, env=env, cwd=ROOT, timeout=300)


def _service_pids(state_dir: Path) -> dict[str, int | None]:
    state = procs.load_state(state_dir)
    assert state is not None
    return {c.name: c.pid for c in state.components}


def test_each_stack_direct_and_through_pgbouncer_in_one_report(
    stack: Stack, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    before = _service_pids(stack.settings.state_dir)
    done = loadlab(
        "run", "--state-dir", str(stack.settings.state_dir),
        "--variants", "flask_sync,fastapi_async", *SHORT, "--compare-pgbouncer", "--out", str(out),
    )  # fmt: skip
    # The defaults leg fails on purpose: a note, not a failed run.
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    variants = summary["variants"]
    assert list(variants) == [
        "flask_sync",
        "flask_sync+pgbouncer",
        "fastapi_async",
        "fastapi_async+pgbouncer",
        "fastapi_async+pgbouncer-asyncpg-defaults",
    ]
    direct, pooled = side_by_side.ROUTES.values()
    routes = [v["leg"]["route"] for v in variants.values()]
    assert routes == [direct, pooled, direct, pooled, pooled]
    for name, v in variants.items():
        assert v["requests"] > 0 and v["requests"] == v["locust_requests"], name
        assert all(c["holds"] for c in v["integrity"]), (name, v["integrity"])
        if name.endswith(side_by_side.DEFAULTS_SUFFIX):
            continue
        # The documented settings (and psycopg2, which prepares nothing) run clean.
        assert v["failures"] == 0 and v["leg"]["driver_exceptions"] == {}, (name, v["errors"])
    # asyncpg's defaults behind PgBouncer: its cached statements are not on the next server
    # connection. Counted by the generator and, by class, from the service's log.
    broken = variants["fastapi_async+pgbouncer-asyncpg-defaults"]
    assert broken["failures"] > 0 and broken["leg"]["expected_failure"]
    assert set(broken["leg"]["driver_exceptions"]) <= {
        "InvalidSQLStatementNameError",
        "DuplicatePreparedStatementError",
    }
    assert sum(broken["leg"]["driver_exceptions"].values()) > 0
    assert not [f for f in summary["flags"] if f.startswith("FAIL")]
    assert any("as expected" in f for f in summary["flags"])
    page = (out / "index.html").read_text()
    assert "Straight to PostgreSQL and through PgBouncer" in page
    # Whether the stacks' ranking holds on both routes is said, either way.
    assert ("The ranking flips with the route" in page) != ("leads on both routes" in page)
    assert "InvalidSQLStatementNameError" in page or "DuplicatePreparedStatementError" in page
    # The copies are stopped and their ports free; the stack's own services were not touched.
    for name, v in variants.items():
        if "+" in name:
            assert lifecycle.port_free(urlsplit(v["url"]).port or 0), name
    assert _service_pids(stack.settings.state_dir) == before


def test_on_a_stack_behind_pgbouncer_the_copy_goes_direct(
    bouncer_stack: StackSettings, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    done = loadlab(
        "run", "--state-dir", str(bouncer_stack.state_dir), "--variants", "flask_sync",
        *SHORT, "--compare-pgbouncer", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    variants = json.loads((out / "summary.json").read_text())["variants"]
    assert {n: v["leg"]["route"] for n, v in variants.items()} == {
        "flask_sync": side_by_side.ROUTES[True],
        "flask_sync+direct": side_by_side.ROUTES[False],
    }
    assert all(v["failures"] == 0 for v in variants.values())


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--target", "http://127.0.0.1:9"], "not with --target, --fault"),
        (["--fault", "pg-restart", "--fault-at", "2s"], "not with --target, --fault"),
    ],
)
def test_bad_combinations_are_one_line_and_exit_2(
    stack: Stack, tmp_path: Path, flags: list[str], said: str
) -> None:
    out = tmp_path / "r"
    done = loadlab(
        "run", "--state-dir", str(stack.settings.state_dir), "--duration", "10s",
        "--compare-pgbouncer", *flags, "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert said in line and not out.exists()


def test_driver_exceptions_are_counted_once_per_traceback_after_the_offset(
    tmp_path: Path,
) -> None:
    log = tmp_path / "service.log"
    old = "asyncpg.exceptions.InvalidSQLStatementNameError: before the run\n"
    chained = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "asyncpg.exceptions.InvalidSQLStatementNameError: prepared statement does not exist\n"
        "\nThe above exception was the direct cause of the following exception:\n\n"
        "sqlalchemy.exc.DBAPIError: (sqlalchemy.dialects.postgresql.asyncpg.Error) prepared\n"
        "    asyncpg.exceptions.TooManyConnectionsError: indented: inside a frame, not counted\n"
    )
    log.write_text(old + chained * 3 + "psycopg2.errors.AdminShutdown: terminating\n")
    found = side_by_side.driver_exceptions(log, offset=len(old))
    assert found == {"InvalidSQLStatementNameError": 3, "AdminShutdown": 1}
    assert side_by_side.driver_exceptions(tmp_path / "missing.log") == {}


def test_the_pool_deadlock_against_its_fix_under_load(stack: Stack, tmp_path: Path) -> None:
    """A second session inside the visit's, on a pool of 5 per worker: every connection ends
    up held by a request waiting for another, until the pool's timeout (1 s here) answers 503.
    The same small pool with one session per request runs clean."""
    out = tmp_path / "r"
    before = _service_pids(stack.settings.state_dir)
    done = loadlab(
        "run", "--state-dir", str(stack.settings.state_dir),
        "--variants", "flask_sync,fastapi_async", *SHORT,
        "--profiles", "nested-session,nested-session-fixed", "--out", str(out),
        LOADLAB_DB_POOL_TIMEOUT="1",
    )  # fmt: skip
    # The deadlock legs fail on purpose (their profile says so): notes, not a failed run.
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    variants = summary["variants"]
    noted = [f for f in summary["flags"] if "as expected: a second session" in f]
    assert {f.split(":")[0] for f in noted} == {
        "flask_sync@nested-session",
        "fastapi_async@nested-session",
    }
    assert list(variants) == [
        "flask_sync@nested-session",
        "flask_sync@nested-session-fixed",
        "fastapi_async@nested-session",
        "fastapi_async@nested-session-fixed",
    ]
    for name, v in variants.items():
        assert v["setup"]["knobs"]["db_pool_size"] == 5, name
        assert all(c["holds"] for c in v["integrity"]), (name, v["integrity"])  # no lost visit
        if name.endswith("-fixed"):
            assert v["failures"] == 0 and v["setup"]["knobs"]["nested_session"] == 0, name
        else:
            assert v["errors"].get("HTTP 503 pool_timeout", 0) > 0, (name, v["errors"])
    assert _service_pids(stack.settings.state_dir) == before  # the stack's own untouched


def test_profiles_that_do_not_exist_are_said_before_anything_starts(
    stack: Stack, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    for profiles, said in (
        ("nested-session,no-such", "no profile 'no-such' for flask_sync"),
        ("nested-session", "--profiles names two or more different profiles"),
    ):
        done = loadlab(
            "run", "--state-dir", str(stack.settings.state_dir), "--variants", "flask_sync",
            "--profiles", profiles, "--out", str(out),
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert said in line and not out.exists()
