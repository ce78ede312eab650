"""An isolated run for real: while `calibrate --isolate` drives a stack, every Locust process
is allowed only the generator's CPUs, and every service, PgBouncer and PostgreSQL process
(backends included) only the stack's; then the calibration report it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadlab.stack import placement, procs
from tests.cli import loadlab
from tests.conftest import Stack

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a split needs 2 CPUs")


def _cpus(proc: psutil.Process) -> set[int]:
    """The CPUs any thread of the process may use."""
    allowed: set[int] = set()
    for tid in os.listdir(f"/proc/{proc.pid}/task"):
        allowed |= os.sched_getaffinity(int(tid))
    return allowed


def _stack_processes(stack: Stack) -> list[psutil.Process]:
    state = procs.load_state(stack.settings.state_dir)
    assert state is not None
    found = []
    for c in state.components:
        pid = c.current_pid()
        if pid is not None:
            root = psutil.Process(pid)
            found += [root, *root.children(recursive=True)]
    return found


def test_an_isolated_calibration_keeps_each_side_on_its_cpus(stack: Stack, tmp_path: Path) -> None:
    split = placement.resolve("split", None)
    out = tmp_path / "calibration"
    run = subprocess.Popen(
        [sys.executable, "-m", "loadlab", "calibrate", "--state-dir",
         str(stack.settings.state_dir), "--isolate", "--variant", "flask_sync", "--rounds", "3",
         "--duration", "3s", "--warmup", "1s", "--users", "10", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    locusts: dict[int, set[int]] = {}
    stack_seen: dict[int, tuple[str, set[int]]] = {}
    try:
        while run.poll() is None:
            try:
                for child in psutil.Process(run.pid).children(recursive=True):
                    if "locust" in " ".join(child.cmdline()):
                        locusts[child.pid] = _cpus(child)
                for proc in _stack_processes(stack):
                    stack_seen[proc.pid] = (proc.name(), _cpus(proc))
            except (psutil.Error, FileNotFoundError, ProcessLookupError):
                pass  # a process that ended while it was looked at
            time.sleep(0.2)
        output = run.stdout.read() if run.stdout else ""
        assert run.returncode == 0, output
        assert locusts, "no Locust process was seen"
        assert all(cpus == set(split.generator) for cpus in locusts.values()), locusts
        names = {name for name, _ in stack_seen.values()}
        assert "postgres" in names and len(stack_seen) > 8  # the postmaster, its backends...
        strays = {pid: seen for pid, seen in stack_seen.items() if seen[1] != set(split.stack)}
        assert not strays, strays
        summary = json.loads((out / "summary.json").read_text())
        assert summary["kind"] == "calibration"
        assert list(summary["variants"]) == ["flask_sync A", "flask_sync B"]
        assert [len(v["rounds"]) for v in summary["variants"].values()] == [3, 3]
        assert summary["run_order"][:4] == [["flask_sync A", 1], ["flask_sync B", 1],
                                             ["flask_sync B", 2], ["flask_sync A", 2]]  # fmt: skip
        c = summary["calibration"]
        assert c["rounds"] == 3 and set(c["figures"]) >= {"throughput_rps", "p50", "p99"}
        assert all(f["cv"] is None or f["cv"] >= 0 for f in c["figures"].values())
        first = summary["variants"]["flask_sync A"]["placement"]
        assert first["mode"] == "split" and first["stack_cpus"] == list(split.stack)
        assert all(set(o["cpus"]) <= set(split.stack) for o in first["observed"].values())
        assert summary["environment"]["placement"] == split.describe()
        page = (out / "index.html").read_text()
        assert "This machine&#39;s noise" in page or "This machine's noise" in page
        assert "rounds a side for 10%" in page
    finally:
        if run.poll() is None:
            run.terminate()
            run.wait()
        # The session's stack back on every CPU for the tests after this one.
        placement.Placement().apply_to_stack([p.pid for p in _stack_processes(stack)])


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["calibrate", "--rounds", "2"], "calibrate --rounds 2: a spread needs 3 rounds"),
        (["run", "--repeat", "auto", "--users", "7"], "--repeat auto: no calibration"),
        (["run", "--budget", "10m"], "--budget goes with --repeat auto"),
        (["run", "--repeat", "0"], "--repeat 0: give 1 or more, or auto"),
    ],
)
def test_bad_rounds_exit_2_and_send_nothing(stack: Stack, args: list[str], said: str) -> None:
    done = loadlab(*args, "--state-dir", str(stack.settings.state_dir), timeout=60)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1
