"""Where the generator and the stack run: the same cores, cores of their own, or the same
cores with the generator first.

On a small machine the load generator competes with what it measures: a late Locust
scheduler adds its own delay to every latency. Three ways, all measured on this machine
(docs/statistics.md, `loadlab calibrate --isolate MODE`):

- `shared`: everything on every CPU (what plain Locust does).
- `split`: the generator (Locust, loadlab's own sampling) on its CPUs, the stack (services,
  PgBouncer, PostgreSQL and all their children) on the others.
- `priority`: every CPU for everyone, the generator's processes at a higher priority. With
  the kernel's autogroups on (/proc/sys/kernel/sched_autogroup_enabled), plain nice weighs
  only within a session's group, so the generator's groups get the priority too.

A placement is applied when a run starts (to the stack's process trees as they are, every
thread of every process: a worker or backend forked later inherits it) and to each Locust
process as it starts; loadlab's own process takes the generator's side first, so the
processes it starts inherit it. One command runs under one placement, so the CLI activates
it once (`activate`) and the run, sweep, tune and UI code read it (`active`) rather than
carry it through every plan.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from loadlab.errors import UsageError

MODES = ("shared", "split", "priority")
# What a command runs under when neither --isolate nor --cpus is given: measured on this
# machine (docs/statistics.md): the generator's delay fell tenfold for Flask and fivefold
# for FastAPI against `shared`, with most of the throughput kept; `split` cost a third of it
# and gave the noisiest rounds.
DEFAULT_MODE = "priority"
GENERATOR_NICE = -10  # the generator's nice in `priority` mode (root only)
AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


@dataclass(frozen=True)
class Placement:
    """Which CPUs each side may use, and whether the generator runs first."""

    mode: str = "shared"
    generator: tuple[int, ...] = field(default_factory=tuple)  # empty: every CPU
    stack: tuple[int, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if self.mode == "split":
            return f"split: generator on CPU {_span(self.generator)}, stack on {_span(self.stack)}"
        if self.mode == "priority":
            return f"priority: every CPU for both, the generator at nice {GENERATOR_NICE}"
        return "shared: generator and stack on every CPU"

    def cpus(self, side: str) -> set[int]:
        chosen = self.generator if side == "generator" else self.stack
        return set(chosen) if chosen else available()

    def take_generator_side(self) -> None:
        """This process (loadlab's CLI: its monitor, the Locust processes it starts) on the
        generator's side."""
        _pin_process(os.getpid(), self.cpus("generator"))
        if self.mode == "priority":
            prioritise(os.getpid())

    def apply_to_stack(self, pids: list[int]) -> None:
        """Each process tree rooted at `pids` (a service, PgBouncer, the postmaster) on the
        stack's CPUs, every thread of every process, at the default priority (a process
        started by loadlab in `priority` mode inherited the generator's)."""
        for root in pids:
            for proc in _tree(root):
                _pin_process(proc.pid, self.cpus("stack"), nice=0)

    def stack_argv(self, argv: list[str]) -> list[str]:
        """A stack process's command, started on the stack's CPUs from its first instruction
        (taskset), so everything it forks inherits them."""
        if not self.stack:
            return argv
        return ["taskset", "--cpu-list", _span(self.stack), *argv]

    def generator_started(self, pid: int) -> None:
        """A Locust process just started (it inherits this process's CPUs; in its own
        session it has an autogroup of its own, which needs the priority again)."""
        _pin_process(pid, self.cpus("generator"))
        if self.mode == "priority":
            prioritise(pid)


def available() -> set[int]:
    """The CPUs this machine lets loadlab use (all online ones, whatever this process's own
    affinity is now)."""
    return set(range(psutil.cpu_count() or 1))


def resolve(isolate: str | None, cpus: str | None) -> Placement:
    """The placement asked for: `isolate` is a mode (or None: shared unless `cpus` is
    given), `cpus` is "generator=LIST stack=LIST" (LIST like 0 or 0,2 or 1-3). `split`
    without `cpus` gives the generator the last CPU and the stack the rest."""
    mode = isolate or ("split" if cpus else DEFAULT_MODE)
    if mode not in MODES:
        raise UsageError(f"--isolate {mode}: choose one of {', '.join(MODES)}")
    if cpus and mode != "split":
        raise UsageError(f"--cpus sets a split: not with --isolate {mode}")
    have = available()
    if mode != "split":
        return Placement(mode)
    if not cpus:
        if len(have) < 2:
            raise UsageError("--isolate split needs 2 CPUs or more: this machine has 1")
        last = max(have)
        return Placement("split", (last,), tuple(sorted(have - {last})))
    sides = _parse_sides(cpus)
    for side, chosen in sides.items():
        missing = sorted(chosen - have)
        if missing:
            raise UsageError(
                f"--cpus {side}={_span(tuple(sorted(chosen)))}: CPU {_span(tuple(missing))} "
                f"does not exist here (CPUs {_span(tuple(sorted(have)))})"
            )
    overlap = sides["generator"] & sides["stack"]
    if overlap:
        raise UsageError(
            f"--cpus: CPU {_span(tuple(sorted(overlap)))} is on both sides; give each its own"
        )
    return Placement("split", tuple(sorted(sides["generator"])), tuple(sorted(sides["stack"])))


def _parse_sides(text: str) -> dict[str, set[int]]:
    sides: dict[str, set[int]] = {}
    for part in text.replace(";", " ").split():
        side, _, listed = part.partition("=")
        if side not in ("generator", "stack") or side in sides:
            raise UsageError(f"--cpus {text!r}: give generator=LIST stack=LIST, each once")
        sides[side] = _cpu_list(listed, text)
    for side in ("generator", "stack"):
        if not sides.get(side):
            raise UsageError(f"--cpus {text!r}: the {side} side has no CPU")
    return sides


def _cpu_list(listed: str, text: str) -> set[int]:
    chosen: set[int] = set()
    for item in filter(None, listed.split(",")):
        found = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not found:
            raise UsageError(f"--cpus {text!r}: {item!r} is not a CPU number or range")
        low, high = int(found[1]), int(found[2] or found[1])
        if high < low:
            raise UsageError(f"--cpus {text!r}: the range {item} runs backwards")
        chosen |= set(range(low, high + 1))
    return chosen


def _span(cpus: tuple[int, ...]) -> str:
    return ",".join(str(c) for c in cpus)


def _tree(root: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(root)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _pin_process(pid: int, cpus: set[int], nice: int | None = None) -> None:
    """Every thread of the process (a thread's affinity and nice are its own; a new thread
    or child inherits its creator's)."""
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)
            if nice is not None and os.getpriority(os.PRIO_PROCESS, tid) != nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)


def prioritise(pid: int) -> None:
    """The process (every thread), and its autogroup when the kernel groups by session and
    the process leads its own session, at GENERATOR_NICE (a process in the user's terminal
    session would raise the whole session, and leave it raised after loadlab exits).
    Lowering a nice needs root; otherwise it stays as it is (the run records what held)."""
    leads = False
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(tid), GENERATOR_NICE)
        leads = os.getsid(pid) == pid
    if autogroups_on() and leads:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(GENERATOR_NICE))


def autogroups_on() -> bool:
    try:
        return AUTOGROUP.read_text().strip() == "1"
    except OSError:
        return False


def observed(pids: dict[str, list[int]]) -> dict[str, Any]:
    """What held, per component: the CPUs its processes may use (the union over every
    thread of its tree), and the lowest nice among them."""
    found: dict[str, Any] = {}
    for name, roots in pids.items():
        cpus: set[int] = set()
        nice: int | None = None
        for root in roots:
            for proc in _tree(root):
                with contextlib.suppress(psutil.Error, OSError):
                    for tid in os.listdir(f"/proc/{proc.pid}/task"):
                        with contextlib.suppress(OSError):
                            cpus |= os.sched_getaffinity(int(tid))
                    value = proc.nice()
                    nice = value if nice is None else min(nice, value)
        if cpus:
            found[name] = {"cpus": sorted(cpus), "nice": nice}
    return found


_ACTIVE: list[Placement] = [Placement()]


def activate(placement: Placement) -> Placement:
    """This command's placement, from now on: loadlab's own process takes the generator's
    side at once (the processes it starts inherit it)."""
    _ACTIVE[0] = placement
    placement.take_generator_side()
    return placement


def active() -> Placement:
    return _ACTIVE[0]


def record(placement: Placement, stack: dict[str, list[int]], generator_cpu: float | None,
           stack_cpu: float | None) -> dict[str, Any]:  # fmt: skip
    """What a run's page and summary.json say of it: the mode, each side's CPUs, what held
    per component, and each side's CPU use (percent of one core) against its share."""
    return {
        "mode": placement.mode,
        "described": placement.describe(),
        "generator_cpus": sorted(placement.cpus("generator")),
        "stack_cpus": sorted(placement.cpus("stack")),
        "observed": observed(stack),
        "generator_cpu_mean": generator_cpu,
        "generator_share": 100.0 * len(placement.cpus("generator")),
        "stack_cpu_mean": stack_cpu,
        "stack_share": 100.0 * len(placement.cpus("stack")),
        # The nice the generator's side got (loadlab's own process; its Locust processes
        # the same): a priority asked for without root does not hold, and this says so.
        "generator_nice": os.getpriority(os.PRIO_PROCESS, 0),
    }
