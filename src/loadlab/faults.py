"""Faults injected while a run measures: what each does, when it happened, the errors it
caused and how long the service took to answer without errors again.

`run --fault KIND --fault-at T` (repeatable, paired in order): T seconds into the measured
window. A thread waits for the load generator to say it is measuring (its status file), then
performs each fault on time; the stack is never restarted by loadlab: every service must
recover by itself (a dead pooled connection is invalidated on its first error and the next
checkout connects again).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg2
from sqlalchemy.engine import make_url

from loadlab.errors import UsageError
from loadlab.settings import StackSettings
from loadlab.stack import postgres, procs

SLOW_SECONDS = 5.0  # how long pg-slow holds its locks

KINDS = {
    "pg-restart": "PostgreSQL restarted (fast shutdown, then started again)",
    "pg-terminate": "every connection of the services' role terminated (pg_terminate_backend)",
    "pgbouncer-restart": "PgBouncer stopped and started again",
    "service-kill": "the web worker serving the most connections killed (SIGKILL)",
    "pg-slow": f"every user row locked for {SLOW_SECONDS:g} s (SELECT ... FOR UPDATE held)",
}


def plan(kinds: list[str], ats: list[float], duration: float, pgbouncer: bool) -> tuple:
    """(kind, at) pairs from the flags; bad input is one line (UsageError), said before any
    load is sent."""
    if len(kinds) != len(ats):
        raise UsageError(
            f"{len(kinds)} --fault and {len(ats)} --fault-at: give one time for each fault"
        )
    for kind, at in zip(kinds, ats, strict=True):
        if kind not in KINDS:
            raise UsageError(f"unknown fault {kind!r} (known: {', '.join(KINDS)})")
        if not 0 < at < duration:
            raise UsageError(
                f"--fault-at {at:g}s is outside the measured window (0-{duration:g} s)"
            )
        if kind == "pgbouncer-restart" and not pgbouncer:
            raise UsageError("pgbouncer-restart needs PgBouncer: start the stack with --pgbouncer")
    return tuple(sorted(zip(kinds, ats, strict=True), key=lambda f: f[1]))


@dataclass
class Injected:
    kind: str
    wall: float  # when it was done (time.time())
    detail: str


class Injector(threading.Thread):
    """Performs the planned faults on time once the run measures; stops when told."""

    def __init__(self, faults: tuple, status: Path, act: Callable[[str], str]) -> None:
        super().__init__(name="loadlab-faults", daemon=True)
        self.faults, self.status, self.act = faults, status, act
        self.done: list[Injected] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self._measuring():
            if self.stopping.wait(0.1):
                return
        start = time.time()
        for kind, at in self.faults:
            if self.stopping.wait(max(start + at - time.time(), 0)):
                return
            wall = time.time()
            try:
                detail = self.act(kind)
            except Exception as exc:  # the fault's own failure is reported, the run goes on
                detail = f"could not be done: {type(exc).__name__}: {exc}"
            self.done.append(Injected(kind, wall, detail))

    def _measuring(self) -> bool:
        try:
            return bool(json.loads(self.status.read_text()).get("measuring"))
        except (OSError, ValueError):  # not written yet, or caught mid-write
            return False

    def stop(self) -> list[Injected]:
        self.stopping.set()
        self.join(timeout=SLOW_SECONDS + 30)
        return self.done


def outcomes(
    injected: list[Injected], measure_start: float, timeline: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per fault: its second in the measured window, the failed requests from then until the
    next fault (or the end), and the seconds until the last second with a failure has passed
    (0: no request failed; None: still failing when the run ended)."""
    found = []
    for index, fault in enumerate(injected):
        at = fault.wall - measure_start
        # Whole seconds: the fault's own second up to the next fault's second, not into it.
        until = int(injected[index + 1].wall - measure_start) if index + 1 < len(injected) else None
        rows = [r for r in timeline if r["t"] >= int(at) and (until is None or r["t"] < until)]
        failing = [r["t"] for r in rows if r["failures"]]
        still = bool(failing) and rows[-1]["t"] == failing[-1] and until is None
        found.append(
            {
                "kind": fault.kind,
                "what": KINDS[fault.kind],
                "at_s": round(at, 2),
                "detail": fault.detail,
                "failed_requests": sum(r["failures"] for r in rows),
                "recovery_s": None
                if still
                else (round(failing[-1] + 1 - at, 1) if failing else 0.0),
            }
        )
    return found


def actions(settings: StackSettings, service: str) -> Callable[[str], str]:
    """What each fault does to the running stack and to `service`; returns what was done."""

    def act(kind: str) -> str:
        state = procs.load_state(settings.state_dir)
        if state is None:
            raise RuntimeError("the stack is not running")
        if kind == "pg-restart":
            return restart_postgres(state)
        if kind == "pg-terminate":
            return _terminate(state, service)
        if kind == "pgbouncer-restart":
            return _restart_pgbouncer(settings, state)
        if kind == "service-kill":
            component = state.get(service)
            if component is None or component.pid is None:
                raise RuntimeError(f"{service} is not one of loadlab's running services")
            pid, connections = kill_busiest_worker(component)
            return f"worker {pid} killed ({connections} connections open)"
        return _slow(state.direct_database_url)

    return act


def restart_postgres(state: procs.State) -> str:
    server = state.get("postgres")
    if server is None or server.data_dir is None:
        raise RuntimeError("PostgreSQL was not started by loadlab")
    before = server.current_pid()
    done = subprocess.run(
        [str(postgres.find_bin(None) / "pg_ctl"), "restart", "-D", server.data_dir, "-m", "fast",
         "-w", "-l", "/dev/null"],
        user=procs.unprivileged_user(), cwd="/", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "pg_ctl failed")
    return f"postmaster {before} -> {server.current_pid()}"


def _terminate(state: procs.State, service: str) -> str:
    """Every backend of the services' role (through PgBouncer too, where the server
    connections carry no service's name); loadlab's own monitoring logs in as another."""
    role = make_url(state.database_url).username
    with psycopg2.connect(state.direct_database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename = %s AND pid <> pg_backend_pid()",
            (role,),
        )
        (count,) = cur.fetchone()
    conn.close()
    return f"{count} connections of {role} terminated while {service} was driven"


def _restart_pgbouncer(settings: StackSettings, state: procs.State) -> str:
    old = state.get("pgbouncer")
    if old is None or old.pid is None:
        raise RuntimeError("PgBouncer is not running")
    argv = psutil.Process(old.pid).cmdline()
    procs.stop(old)
    log = Path(old.log) if old.log else settings.state_dir / "logs" / "pgbouncer.log"
    new = procs.start(
        "pgbouncer", argv, url=old.url, log=log, user=procs.unprivileged_user(), cwd=Path("/")
    )
    state.components = [new if c is old else c for c in state.components]
    procs.save_state(settings.state_dir, state)  # `down` must stop the new one
    return f"pid {old.pid} -> {new.pid}"


def kill_busiest_worker(component: procs.Component, patience: float = 0.0) -> tuple[int, int]:
    """SIGKILL to the worker process holding the most client connections on the service's
    port (uvicorn's children include multiprocessing's resource tracker, which serves none),
    after waiting up to `patience` s for one that holds any; its (pid, connections)."""
    port = int(component.url.rsplit(":", 1)[1])

    def serving(proc: psutil.Process) -> int:
        try:
            return sum(
                c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                for c in proc.net_connections("tcp")
            )
        except psutil.Error:
            return 0

    deadline = time.monotonic() + patience
    while True:
        counts = {w: serving(w) for w in psutil.Process(component.pid).children()}
        if not counts:
            raise RuntimeError(f"{component.name} has no worker processes")
        busiest = max(counts, key=counts.__getitem__)
        if counts[busiest] > 0 or time.monotonic() >= deadline:
            busiest.kill()
            return busiest.pid, counts[busiest]
        time.sleep(0.1)


def _slow(database_url: str) -> str:
    """Lock every user row for SLOW_SECONDS, then let go: requests that touch one wait."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM (SELECT id FROM users FOR UPDATE) AS locked")
            (rows,) = cur.fetchone()
            time.sleep(SLOW_SECONDS)
        conn.rollback()
    finally:
        conn.close()
    return f"{rows:,} user rows locked for {SLOW_SECONDS:g} s"
