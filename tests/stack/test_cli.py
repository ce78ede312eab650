"""`python -m loadlab` as a user runs it: up (with PgBouncer), status, verify, down; and the
bad-usage cases, each one line and exit code 2, leaving nothing running."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadlab.stack import procs
from loadlab.verify import SEQUENCE
from tests.cli import cold, loadlab
from tests.conftest import Stack, free_port


def port_flags(state_dir: Path) -> list[str]:
    return [
        "--state-dir",
        str(state_dir),
        "--pg-port",
        str(free_port()),
        "--pgbouncer-port",
        str(free_port()),
        "--port",
        f"flask_sync={free_port()}",
        "--port",
        f"fastapi_async={free_port()}",
        "--scale",
        "0.05",
        "--web-workers",
        "1",
    ]


def recorded_pids(state_dir: Path) -> list[int]:
    state = procs.load_state(state_dir)
    return [c.pid for c in state.components if c.pid] if state else []


def test_up_status_verify_down_with_pgbouncer(tmp_path: Path) -> None:
    up = cold("up", "--pgbouncer", *port_flags(tmp_path))
    assert up.returncode == 0, up.stderr
    try:
        pids = recorded_pids(tmp_path)
        status = cold("status", "--json", "--state-dir", str(tmp_path))
        assert status.returncode == 0
        components = json.loads(status.stdout)["components"]
        assert [c["name"] for c in components] == [
            "postgres",
            "pgbouncer",
            "flask_sync",
            "fastapi_async",
        ]
        assert all(c["healthy"] and c["pid"] in pids for c in components)
        # The generated passwords live in the password file (mode 600) and nowhere else.
        passwords = _passwords(tmp_path)
        assert len(passwords) == 2
        shown = status.stdout + cold("status", "--state-dir", str(tmp_path)).stdout + up.stdout
        assert not [p for p in passwords if p in shown]
        assert _files_holding(tmp_path, passwords) == [tmp_path / "pgpass"]
        verify = cold("verify", "--state-dir", str(tmp_path))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        n = len(SEQUENCE)
        assert f"{n} of {n} requests identical" in verify.stdout
        again = cold("up", "--state-dir", str(tmp_path))
        assert again.returncode == 0 and "already up" in again.stdout
        # Concurrent load through PgBouncer in transaction mode: asyncpg's prepared
        # statements and psycopg2's sessions must survive server connections being shared.
        run = cold(
            "run", "--state-dir", str(tmp_path), "--out", str(tmp_path / "report"),
            "--users", "20", "--spawn-rate", "20", "--duration", "3s", "--warmup", "1s",
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        summary = json.loads((tmp_path / "report" / "summary.json").read_text())
        assert summary["environment"]["pgbouncer"] != "not used"
        for name, v in summary["variants"].items():
            assert v["requests"] > 0 and v["failures"] == 0, (name, v["errors"])
            assert all(c["holds"] for c in v["integrity"])
            # PgBouncer's cost per request is reported beside the others', and the
            # service's connections are found by name through it (PgBouncer passes on
            # the client's application_name to the server connection serving it).
            assert v["cpu_ms_per_request"]["pgbouncer"] >= 0
            assert v["database_connections"]["open_max"] >= 1
    finally:
        down = cold("down", "--purge", "--state-dir", str(tmp_path))
    assert down.returncode == 0
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )
    assert not tmp_path.joinpath("state.json").exists()


def _passwords(state_dir: Path) -> list[str]:
    """The passwords in the state folder's password file (the last field of each line)."""
    passfile = state_dir / "pgpass"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    return [line.rsplit(":", 1)[1] for line in passfile.read_text().splitlines()]


def _files_holding(folder: Path, secrets: list[str]) -> list[Path]:
    """Every file under `folder` (any depth, whoever owns it) holding one of `secrets`."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if any(secret.encode() in data for secret in secrets):
            found.append(path)
    return found


def _assert_usage_error(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unknown_option_is_one_line_and_exit_2() -> None:
    _assert_usage_error(loadlab("up", "--bogus"), "unrecognized arguments: --bogus")
    _assert_usage_error(loadlab("frobnicate"), "invalid choice")


def test_bad_setting_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _assert_usage_error(loadlab("up", "--state-dir", str(tmp_path), "--pg-port", "80"), "--pg-port")


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--port", "django=9000"], "--port 'django=9000'"),
        (["--port", "flask_sync=http"], "--port 'flask_sync=http'"),
        (["--port", "flask_sync=80"], "outside 1024..65535"),
        (["--variants", "flask_sync,django"], "unknown variant 'django'"),
        (["--profile", "Tuned!"], "profile name 'Tuned!'"),
        (["--profile", "nonesuch"], "no profile 'nonesuch' for flask_sync"),
        (["--web-workers", "0"], "--web-workers"),
    ],
)
def test_bad_stack_choice_is_one_line_exit_2_and_starts_nothing(
    tmp_path: Path, flags: list[str], said: str
) -> None:
    _assert_usage_error(loadlab("up", *port_flags(tmp_path), *flags), said)
    assert recorded_pids(tmp_path) == []


def test_missing_postgres_binaries(tmp_path: Path) -> None:
    result = loadlab("up", *port_flags(tmp_path), env={"LOADLAB_PG_BIN": str(tmp_path / "none")})
    _assert_usage_error(result, "LOADLAB_PG_BIN")
    assert recorded_pids(tmp_path) == []


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        flags = port_flags(tmp_path)
        flags[flags.index("--port") + 1] = f"flask_sync={busy.getsockname()[1]}"
        _assert_usage_error(loadlab("up", *flags), "already in use")
    assert recorded_pids(tmp_path) == []


def test_stale_state_folder(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = procs.State(
        components=[procs.Component(name="postgres", url="x", pid=dead.pid, started_after_boot=1.0)]
    )
    procs.save_state(tmp_path, stale)
    _assert_usage_error(loadlab("up", *port_flags(tmp_path)), "loadlab down")
    assert loadlab("down", "--state-dir", str(tmp_path)).returncode == 0
    assert procs.load_state(tmp_path) is None


def _running_with_port(ports: list[str]) -> list[str]:
    """Processes whose command line names one of these ports (ours: -p N, --port N, :N)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
            f" {p}" in cmd or f":{p}" in cmd for p in ports
        ):
            found.append(cmd)
    return found


@pytest.mark.parametrize("after", [1, 2, 3], ids=lambda n: f"after-{n}-started")
def test_interrupt_during_up_leaves_nothing_running(own_state_dir: Path, after: int) -> None:
    """Ctrl-C at three points of `up` (PostgreSQL, one service, both services started):
    everything stopped, including a process started but not yet recorded."""
    flags = port_flags(own_state_dir)
    ports = [flags[i + 1] for i, f in enumerate(flags) if f.endswith("-port")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadlab", "up", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(recorded_pids(own_state_dir)) < after:
        time.sleep(0.01)
    started = recorded_pids(own_state_dir)
    assert len(started) >= after, "up never got that far"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 130 is our own exit; death by SIGINT (-2) is the other conventional answer, seen once
    # in CI. Either way the clean-up must have run and said so.
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "everything started was stopped" in err
    time.sleep(0.5)
    assert [
        p
        for p in started
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ] == []
    assert _running_with_port(ports) == []


def test_up_refuses_a_database_holding_tables_it_did_not_create(
    stack: Stack, tmp_path: Path
) -> None:
    """An app's own DATABASE_URL in the environment is taken, but loadlab's seed (which
    empties `users`) never runs over tables it did not create."""
    import psycopg2

    from loadlab.stack import credentials, postgres

    passfile = credentials.passfile(stack.settings.state_dir)
    admin = psycopg2.connect(postgres.url(stack.settings.pg_port, "postgres", passfile=passfile))
    admin.autocommit = True
    theirs = postgres.url(stack.settings.pg_port, "someone_elses", passfile=passfile)
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS someone_elses")
        cur.execute("CREATE DATABASE someone_elses")
    try:
        conn = psycopg2.connect(theirs)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE users (id int PRIMARY KEY, visits int)")
            cur.execute("INSERT INTO users VALUES (1, 41)")
        up = loadlab("up", *port_flags(tmp_path / "state"), env={"DATABASE_URL": theirs})
        _assert_usage_error(up, "already holds tables loadlab did not create (users)")
        # Services loadlab did not start, with that database behind them: verify and run
        # would reset it, so they refuse it the same way.
        targets = [f"--target={name}={url}" for name, url in stack.urls.items()]
        verify = loadlab("verify", "--database-url", theirs, *targets)
        _assert_usage_error(verify, "already holds tables loadlab did not create (users)")
        run = loadlab("run", "--duration", "1s", *targets, env={"DATABASE_URL": theirs})
        _assert_usage_error(run, "already holds tables loadlab did not create (users)")
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, visits FROM users")
            assert cur.fetchall() == [(1, 41)]
            cur.execute("SELECT to_regclass('loadlab_schema')")
            assert cur.fetchone() == (None,)
        conn.close()
        assert recorded_pids(tmp_path / "state") == []
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS someone_elses WITH (FORCE)")
        admin.close()


def test_up_on_an_existing_database_starts_only_the_services(tmp_path: Path) -> None:
    from loadlab.stack import lifecycle
    from tests.conftest import stack_settings

    # An "existing" PostgreSQL: one loadlab cluster, started outside the `up` under test.
    db_settings = stack_settings(tmp_path / "db")
    try:
        db_state, _ = lifecycle.up(db_settings)
        existing = db_state.direct_database_url
        state_dir = tmp_path / "state"
        up = loadlab("up", "--database-url", existing, *port_flags(state_dir))
        assert up.returncode == 0, up.stderr
        status = json.loads(loadlab("status", "--json", "--state-dir", str(state_dir)).stdout)
        postgres = status["components"][0]
        assert postgres["name"] == "postgres" and postgres["pid"] is None and postgres["healthy"]
        verify = loadlab("verify", "--state-dir", str(state_dir))
        assert verify.returncode == 0, verify.stdout
        assert loadlab("down", "--state-dir", str(state_dir)).returncode == 0
        # `down` stopped its services and left the database it did not start alone.
        assert all(c.alive() for c in db_state.components if c.name == "postgres")
    finally:
        lifecycle.down(db_settings, purge=True)


def test_loadlab_database_url_wins_over_an_apps_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loadlab.settings import StackSettings

    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db/app")
    assert StackSettings().database_url == "postgresql://app@db/app"
    monkeypatch.setenv("LOADLAB_DATABASE_URL", "postgresql://loadlab@db/loadlab")
    assert StackSettings().database_url == "postgresql://loadlab@db/loadlab"
    assert StackSettings(database_url="postgresql://flag@db/x").database_url.endswith("/x")


def test_a_cluster_up_started_is_its_own_even_without_the_mark(stack: Stack) -> None:
    """A cluster made before the loadlab_schema mark existed is still loadlab's own: `seed`
    (and `up`) on it must not refuse it, and they put the mark back."""
    import psycopg2

    conn = psycopg2.connect(stack.database_url)
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE loadlab_schema")
    try:
        seeded = loadlab("seed", "--state-dir", str(stack.settings.state_dir))
        assert seeded.returncode == 0, seeded.stderr
        with conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('loadlab_schema') IS NOT NULL")
            assert cur.fetchone() == (True,)
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS loadlab_schema (created_at timestamptz)")
        conn.close()


def test_a_password_in_the_database_url_is_written_nowhere(stack: Stack, tmp_path: Path) -> None:
    """The issue's reproduction: `--database-url postgresql://user:PASSWORD@...` put the
    password in up's output, status, state.json, summary.json and the page."""
    import psycopg2

    from loadlab.stack import credentials, postgres

    password = "Tr0ub4dor-and-3"
    admin = psycopg2.connect(
        postgres.url(
            stack.settings.pg_port,
            "postgres",
            passfile=credentials.passfile(stack.settings.state_dir),
        )
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS theirs WITH (FORCE)")
        cur.execute("DROP ROLE IF EXISTS their_app")
        cur.execute(f"CREATE ROLE their_app LOGIN PASSWORD '{password}'")
        cur.execute("CREATE DATABASE theirs OWNER their_app")
    state_dir, report = tmp_path / "state", tmp_path / "report"
    url = f"postgresql://their_app:{password}@127.0.0.1:{stack.settings.pg_port}/theirs"
    try:
        outputs = [loadlab("up", "--database-url", url, *port_flags(state_dir))]
        assert outputs[0].returncode == 0, outputs[0].stderr
        outputs.append(loadlab("status", "--state-dir", str(state_dir)))
        outputs.append(loadlab("status", "--json", "--state-dir", str(state_dir)))
        outputs.append(
            loadlab(
                "run",
                "--state-dir",
                str(state_dir),
                "--out",
                str(report),
                "--variants",
                "fastapi_async",
                "--users",
                "5",
                "--duration",
                "2s",
                "--warmup",
                "1s",
            )  # fmt: skip
        )
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        summary = json.loads((report / "summary.json").read_text())
        assert summary["environment"]["settings"]["database_url"] is None  # from the state
        assert summary["variants"]["fastapi_async"]["requests"] > 0
        outputs.append(loadlab("down", "--state-dir", str(state_dir)))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        assert not [o for o in outputs if password in o.stdout + o.stderr]
        assert _files_holding(report, [password]) == []
        # The one place it is kept: the password file, mode 600.
        assert _files_holding(state_dir, [password]) == [state_dir / "pgpass"]
        assert _passwords(state_dir) == [password]
    finally:
        loadlab("down", "--state-dir", str(state_dir))
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS theirs WITH (FORCE)")
            cur.execute("DROP ROLE IF EXISTS their_app")
        admin.close()
