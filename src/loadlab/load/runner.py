"""Locust invocations: one variant at a time, headless, with an optional master and workers.

Every Locust process is started in its own session and stopped with its whole group; the
run time bounds it, and a watchdog kills it if it overstays by a minute.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.analysis import slo
from loadlab.errors import GateFailed, UsageError
from loadlab.load.arrivals import KINDS
from loadlab.load.monitor import GENERATOR, Monitor
from loadlab.stack import placement
from loadlab.stack.procs import free_port, interrupts_held

LOCUSTFILES = ROOT / "locustfiles"
# What a Locust process imports: the scenarios, and the same loadlab as this process's (a
# second checkout must not drive its Locust with the first one's recorder).
LOCUST_PYTHONPATH = os.pathsep.join([str(LOCUSTFILES), str(ROOT / "src")])
WATCHDOG_GRACE = 60.0
WORKERS_MAX_WAIT = 60  # seconds the master waits for its workers before giving up
REMOTE_MASTER_PORT = 5557  # Locust's default, so remote workers need no extra flag


def scenarios() -> list[str]:
    """Every scenario: one file in locustfiles/, apart from the shared common.py."""
    return sorted(p.stem for p in LOCUSTFILES.glob("*.py") if p.stem != "common")


def scenario_tags(file: Path) -> set[str]:
    """The Locust tags a scenario's tasks carry (`@tag("read")`), read from its source: importing
    it would import Locust, whose gevent patches do not belong in this process."""
    tree = ast.parse(file.read_text())
    return {
        arg.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "tag"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
    }


@dataclass(frozen=True)
class LoadPlan:
    """The load to drive at each variant."""

    scenario: str
    users: int
    spawn_rate: float
    duration: float  # measured seconds
    warmup: float  # seconds before measuring, not counted
    workers: int = 0  # 0: a single local Locust process
    remote_workers: int = 0  # workers started by hand on other machines (docs/distributed.md)
    tags: tuple[str, ...] = ()
    scale: float = 1.0  # of the seeded database, so ids stay in range
    repeat: int = 1  # rounds: each variant driven this many times, in alternating order
    # The open model (load/arrivals.py): requests per second over all Locust processes, with
    # at most `users` in flight; None is the closed model.
    arrival_rate: float | None = None
    arrivals: str = "constant"
    slo: str | None = None  # objectives that gate the run (analysis/slo.py)
    # A user's own Locust file instead of a scenario of locustfiles/ (`scenario` is then its
    # name in reports): loadlab's recorder, gates and report attached (locustfiles/common.py).
    locustfile: str | None = None
    # After the variants, pgbench runs the scenario's SQL at the connections they used
    # (ceiling.py): the database's own ceiling on this machine.
    ceiling: bool = False
    # (kind, seconds into the measured window) of each fault to inject (faults.py).
    faults: tuple[tuple[str, float], ...] = ()
    # Each variant also through PgBouncer (or direct, on a stack behind it): side_by_side.py.
    compare_pgbouncer: bool = False
    # Each variant under each of these profiles instead (side_by_side.profile_legs).
    profiles: tuple[str, ...] = ()
    # Locust's own HTML report beside loadlab's (about 1 MB of template each): on request.
    locust_html: bool = False

    @property
    def tag(self) -> str:
        """The load in a report folder's name: 200u (closed) or 500rps (open)."""
        return f"{self.users}u" if self.arrival_rate is None else f"{self.arrival_rate:g}rps"

    def describe(self) -> str:
        if self.arrival_rate is None:
            return f"{self.users} users"
        return (
            f"{self.arrival_rate:g} req/s offered ({self.arrivals}), at most {self.users} in flight"
        )

    @property
    def generators(self) -> int:
        """Locust processes that send requests: the workers, or the one process."""
        return max(self.workers + self.remote_workers, 1)

    @property
    def file(self) -> Path:
        """The Locust file that holds the users."""
        return Path(self.locustfile) if self.locustfile else LOCUSTFILES / f"{self.scenario}.py"

    def locust_files(self) -> str:
        """Locust's -f: a user's own file gets loadlab's hooks loaded first (common.py
        registers the recorder; a file that imports it shares the same module)."""
        if self.locustfile is None:
            return str(self.file)
        return f"{LOCUSTFILES / 'common.py'},{Path(self.locustfile).resolve()}"

    def __post_init__(self) -> None:
        if self.locustfile is not None:
            _check_locustfile(Path(self.locustfile))
        elif self.scenario not in scenarios():
            raise UsageError(
                f"unknown scenario {self.scenario!r}: choose one of {', '.join(scenarios())}"
            )
        for name in ("users", "spawn_rate", "duration", "repeat"):
            # `not > 0` also refuses nan, for which every comparison is false.
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise UsageError(f"--{name.replace('_', '-')} must be a number above 0")
        if not math.isfinite(self.warmup):
            raise UsageError("--warmup must be a finite number of seconds")
        if min(self.warmup, self.workers, self.remote_workers) < 0:
            raise UsageError("--warmup, --workers and --remote-workers cannot be negative")
        if self.arrival_rate is not None and not (
            self.arrival_rate > 0 and math.isfinite(self.arrival_rate)
        ):
            raise UsageError("--arrival-rate must be a number of requests per second above 0")
        if self.arrivals not in KINDS:
            raise UsageError(f"--arrivals must be one of {', '.join(KINDS)}, not {self.arrivals!r}")
        if self.slo is not None:
            slo.parse(self.slo)  # a malformed objective is refused before anything runs
        if self.tags and not set(self.tags) & scenario_tags(self.file):
            known = ", ".join(sorted(scenario_tags(self.file))) or "none"
            raise UsageError(
                f"--tags {' '.join(self.tags)} selects no task of {self.scenario} "
                f"(its tags: {known})"
            )


def _check_locustfile(file: Path) -> None:
    """A readable Python file that defines at least one user class (a class whose base is
    named like Locust's: User, HttpUser, FastHttpUser, LoadlabUser, or another user class of
    the file). Plain users take the open model's starts too (load/plain_users.py)."""
    try:
        tree = ast.parse(file.read_text())
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise UsageError(f"--locustfile {file}: cannot read it as Python ({exc})") from None
    if file.suffix != ".py" or file.name == "common.py":
        raise UsageError(f"--locustfile {file}: give a .py file not named common.py")
    users: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if any(b.endswith("User") or b in users for b in bases):
                users.add(node.name)
    if not users:
        raise UsageError(
            f"--locustfile {file}: no user class in it (a subclass of HttpUser, FastHttpUser "
            "or User, as Locust's documentation writes them)"
        )


def _locust_argv(plan: LoadPlan, host: str, out: Path, role: list[str]) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        plan.locust_files(),
        "--headless",
        "--loglevel",
        "WARNING",
        *role,
    ]
    if "--worker" in role:
        return argv
    argv += [
        "--host",
        host,
        "-u",
        str(plan.users),
        "-r",
        str(plan.spawn_rate),
        "-t",
        f"{int(plan.warmup + plan.duration)}s",
        "--stop-timeout",
        "10",
        "--csv",
        str(out / "locust"),
        "--only-summary",
        "--exit-code-on-error",
        "0",
    ]
    if plan.locust_html:
        argv += ["--html", str(out / "locust.html")]
    if plan.tags:
        argv += ["--tags", *plan.tags]
    return argv


def _open_model_env(plan: LoadPlan) -> dict[str, str]:
    """Each Locust process that sends requests takes an equal share of the rate."""
    if plan.arrival_rate is None:
        return {}
    return {
        "LOADLAB_ARRIVAL_RATE": repr(plan.arrival_rate / plan.generators),
        "LOADLAB_ARRIVALS": plan.arrivals,
    }


def locust_roles(plan: LoadPlan) -> list[list[str]]:
    """Locust's command-line role of each local process: one standalone process, or a master
    and its local workers. With remote workers the master listens on every interface, on
    Locust's usual port, and waits for them too."""
    if plan.workers == 0 and plan.remote_workers == 0:
        return [[]]
    remote = plan.remote_workers > 0
    port = REMOTE_MASTER_PORT if remote else free_port()
    master = [
        "--master",
        "--expect-workers",
        str(plan.workers + plan.remote_workers),
        "--master-bind-host",
        "0.0.0.0" if remote else "127.0.0.1",
        "--master-bind-port",
        str(port),
    ]
    worker = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [master] + [worker] * plan.workers


def drive(
    plan: LoadPlan, host: str, out: Path, monitor: Monitor, live: bool = True
) -> dict[str, Any]:
    """Run Locust against `host`, writing its CSV and HTML into `out`; returns the recorder's
    result (exact histograms, outcomes, Locust's own totals)."""
    out.mkdir(parents=True, exist_ok=True)
    shared = {"LOADLAB_SCALE": str(plan.scale), **_open_model_env(plan)}
    env = {
        **os.environ,
        **shared,
        "LOADLAB_WARMUP": str(plan.warmup),
        "LOADLAB_RESULT": str(out / "recorder.json"),
        "LOADLAB_STATUS": str(out / "status.json"),
        "PYTHONPATH": LOCUST_PYTHONPATH,
    }
    roles = locust_roles(plan)
    if plan.remote_workers:
        assignments = " ".join(f"{k}={v}" for k, v in shared.items())
        print(
            f"  waiting up to {WORKERS_MAX_WAIT} s for {plan.remote_workers} remote worker(s); "
            f"on each machine run: {assignments} python -m locust -f "
            f"{plan.locust_files()} --worker --master-host <this machine>",
            flush=True,
        )
    procs: list[subprocess.Popen[bytes]] = []
    log = (out / "locust.log").open("ab")
    try:
        for role in roles:
            with interrupts_held():  # no Locust process may run unknown to the clean-up
                proc = subprocess.Popen(
                    _locust_argv(plan, host, out, role),
                    env=env,
                    cwd=out,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                procs.append(proc)
                placement.active().generator_started(proc.pid)
            monitor.add(GENERATOR, proc.pid)
        _wait(procs[0], plan, out / "status.json", live)
        for proc in procs[1:]:  # workers quit when the master does; stopped below if not
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
    finally:
        for proc in procs:
            _stop_group(proc)
        log.close()
    result_path = out / "recorder.json"
    if procs[0].returncode != 0 or not result_path.exists():
        tail = (out / "locust.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise GateFailed(f"Locust failed (exit {procs[0].returncode}): {' | '.join(tail)}")
    (out / "status.json").unlink(missing_ok=True)
    return json.loads(result_path.read_text())


def _wait(master: subprocess.Popen[bytes], plan: LoadPlan, status: Path, live: bool) -> None:
    """Until Locust exits, printing a live line; kill it if it overstays its run time."""
    deadline = time.monotonic() + plan.warmup + plan.duration + WATCHDOG_GRACE + WORKERS_MAX_WAIT
    last_print = 0.0
    tty = sys.stdout.isatty()
    while master.poll() is None:
        if time.monotonic() > deadline:
            _stop_group(master)
            raise GateFailed("Locust overstayed its run time and was stopped: see locust.log")
        time.sleep(0.5)
        if not live or not status.exists() or (not tty and time.monotonic() - last_print < 10):
            continue
        try:
            s = json.loads(status.read_text())
        except (ValueError, OSError):
            continue
        phase = "measuring" if s["measuring"] else "warm-up  "
        line = (
            f"  {s['elapsed']:6.0f}s {phase} users {s['users']:>4}  {s['rps']:7.1f} req/s  "
            f"p99 {s['p99_ms']:8.1f} ms  errors {s['failures']}"
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
        last_print = time.monotonic()
    if tty and live:
        print()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
