"""--isolate and --cpus: what each asks for, bad input refused before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.errors import UsageError
from loadlab.stack import placement

TWO_CPUS = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a split needs 2 CPUs")


@TWO_CPUS
def test_a_bare_split_gives_the_generator_the_last_cpu() -> None:
    found = placement.resolve("split", None)
    last = max(placement.available())
    assert found.generator == (last,) and last not in found.stack and found.stack
    assert placement.resolve(None, "generator=0 stack=1") == placement.Placement(
        "split", (0,), (1,)
    )


def test_shared_and_priority_keep_every_cpu_for_both() -> None:
    for mode in ("shared", "priority"):
        found = placement.resolve(mode, None)
        assert found.cpus("generator") == found.cpus("stack") == placement.available()
    assert placement.resolve(None, None).mode == placement.DEFAULT_MODE == "priority"


@pytest.mark.parametrize(
    ("isolate", "cpus", "said"),
    [
        (None, "generator=0 stack=0", "is on both sides"),
        (None, "generator=0 stack=999", "does not exist here"),
        (None, "generator=0", "the stack side has no CPU"),
        (None, "generator= stack=0", "the generator side has no CPU"),
        (None, "generator=0 stack=x", "is not a CPU number or range"),
        (None, "generator=3-1 stack=0", "runs backwards"),
        (None, "cpu=0 stack=1", "give generator=LIST stack=LIST"),
        ("priority", "generator=0 stack=1", "--cpus sets a split"),
        ("fast", None, "choose one of"),
    ],
)
def test_bad_placements_are_refused(isolate: str | None, cpus: str | None, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        placement.resolve(isolate, cpus)


def test_bad_cpus_exit_2_in_one_line_and_start_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-m", "loadlab", "up", "--state-dir", str(state),
         "--cpus", "generator=0 stack=0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "loadlab: --cpus: CPU 0 is on both sides; give each its own"
    assert not state.exists()  # nothing started, no state written


def test_every_thread_of_a_process_is_pinned_and_its_children_inherit() -> None:
    """A process with a thread and a child started before the placement: all pinned."""
    cpu = min(placement.available())
    code = (
        "import threading, subprocess, sys, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        placement.Placement("split", (), (cpu,)).apply_to_stack([proc.pid])
        found = placement.observed({"p": [proc.pid]})
        assert found["p"]["cpus"] == [cpu] and found["p"]["nice"] == 0
    finally:
        import psutil

        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()


@pytest.mark.skipif(
    os.geteuid() != 0 or not placement.autogroups_on(), reason="needs root and autogroups"
)
def test_priority_raises_a_session_leaders_group_and_never_the_callers() -> None:
    """A Locust process leads its own session: its autogroup is raised. A process in the
    caller's session is not: raising that group would raise the user's whole terminal
    session, and it would stay raised after loadlab exits."""
    own = Path("/proc/self/autogroup").read_text()
    leader = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                              start_new_session=True)  # fmt: skip
    member = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        placement.prioritise(leader.pid)
        placement.prioritise(member.pid)
        assert Path(f"/proc/{leader.pid}/autogroup").read_text().split()[-1] == "-10"
        assert os.getpriority(os.PRIO_PROCESS, member.pid) == placement.GENERATOR_NICE
        assert Path("/proc/self/autogroup").read_text() == own
    finally:
        for proc in (leader, member):
            proc.kill()
            proc.wait()
