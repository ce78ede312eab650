"""The micro-benchmark harness, in the spirit of SQLAlchemy's `examples/performance`.

An experiment is a generator function registered with `@experiment`: its docstring's first
line is its label, it sets up what its variants share, and it yields them as a dict of name
-> `run(count) -> Trial`. Its variants differ on one axis only (named in the decorator). Each
variant gets a warm-up (a tenth of the operations) and then `repeat` timed passes, in an
order that rotates from pass to pass so that drift in the machine does not favour one
variant; the median, min and max are kept. A variant measures its own time, so setting up a
session or an event loop is never counted.

Profiling (counting greenlet switches, tracing memory) slows what it watches, so it never
runs in a timed pass: an experiment's `probe` yields variants too, each run once, after the
timed passes, and its figures are reported as counted, not timed.

A variant that fails reports its failure as its measured outcome (the deliberate deadlock,
the PgBouncer errors); one that raises is recorded with its error, and the next runs.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from loadlab.errors import INTERRUPTED, stop_if_interrupted

T = TypeVar("T")


@dataclass
class Trial:
    """One pass of one variant: its seconds, and any figures it measured (counts, memory)."""

    seconds: float
    figures: dict[str, float] = field(default_factory=dict)
    outcome: str | None = None  # what happened, when that is the finding (an error, a stall)


Variants = dict[str, Callable[[int], Trial]]
Build = Callable[["Context", int], Iterator[Variants]]  # what the decorator is given
Setup = Callable[["Context", int], AbstractContextManager[Variants]]  # ... and keeps


@dataclass(frozen=True)
class Experiment:
    name: str
    group: str  # "serial" (the article's benchmark table) or "overheads" (its five sources)
    axis: str  # the one thing its variants differ in
    label: str
    full: int  # operations per pass at the article's size
    quick: int  # ... in --quick mode (the tests)
    build: Setup
    probe: Setup | None = None


REGISTRY: dict[str, Experiment] = {}


def experiment(
    group: str, axis: str, full: int, quick: int, probe: Build | None = None
) -> Callable[[Build], Build]:
    """Register a generator function as an experiment named after it."""

    def register(build: Build) -> Build:
        label = (build.__doc__ or build.__name__).strip().splitlines()[0]
        REGISTRY[build.__name__] = Experiment(
            build.__name__,
            group,
            axis,
            label,
            full,
            quick,
            contextmanager(build),
            probe and contextmanager(probe),
        )
        return build

    return register


def profiled(
    group: str, axis: str, full: int, quick: int
) -> Callable[[Callable[..., Variants]], Callable[..., Variants]]:
    """Register `make(context, count, stack, profiling) -> Variants` as an experiment named
    after it: its timed passes run the variants made with profiling off, its probe pass the
    same variants made with profiling on (resources they open go on `stack`)."""

    def register(make: Callable[..., Variants]) -> Callable[..., Variants]:
        def build(context: Context, count: int, profiling: bool = False) -> Iterator[Variants]:
            with ExitStack() as stack:
                yield make(context, count, stack, profiling)

        def probe(context: Context, count: int) -> Iterator[Variants]:
            yield from build(context, count, profiling=True)

        build.__name__, build.__doc__ = make.__name__, make.__doc__
        experiment(group, axis, full, quick, probe)(build)
        return make

    return register


@dataclass
class Context:
    """What every experiment needs: the database (a plain postgresql:// URL with its
    password file), PgBouncer's URL if there is one, and one event loop for async variants."""

    database_url: str
    pgbouncer_url: str | None = None
    postgres_log: Path | None = None  # PostgreSQL's log, where it writes each parse it logs
    quick: bool = False
    log: Callable[[str], None] = print
    _runner: asyncio.Runner | None = None

    def url(self, driver: str, through_pgbouncer: bool = False) -> str:
        base = self.pgbouncer_url if through_pgbouncer else self.database_url
        if base is None:
            raise RuntimeError("PgBouncer is not running")
        return f"postgresql+{driver}://{base.split('://', 1)[1]}"

    def run_async(self, work: Awaitable[T]) -> T:
        """Run a coroutine on the experiment run's one event loop (engines made on it stay
        usable across passes)."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(_interruptible(work))

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


async def _interruptible(work: Awaitable[T]) -> T:
    """Ctrl-C or SIGTERM cancels this task at its next await, as asyncio does with Ctrl-C,
    instead of raising KeyboardInterrupt wherever the signal lands: inside asyncpg's protocol
    callbacks that crashed the interpreter (a segfault, seen in CI)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    saved = {
        s: signal.getsignal(s)
        for s in (signal.SIGINT, signal.SIGTERM)
        # An ignored signal stays ignored; None: a handler not set from Python, left alone.
        if signal.getsignal(s) not in (signal.SIG_IGN, None)
    }

    def interrupt() -> None:
        INTERRUPTED.set()
        task.cancel()

    for s in saved:
        loop.add_signal_handler(s, interrupt)
    try:
        return await work
    except asyncio.CancelledError:
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        for s, handler in saved.items():
            loop.remove_signal_handler(s)
            signal.signal(s, handler)


def timed(work: Callable[[], dict[str, float] | None]) -> Trial:
    """Time a synchronous pass."""
    start = time.perf_counter()
    figures = work() or {}
    return Trial(time.perf_counter() - start, figures)


async def timed_async(work: Callable[[], Awaitable[dict[str, float] | None]]) -> Trial:
    """Time an asynchronous pass from inside the loop (the loop's start is not counted)."""
    start = time.perf_counter()
    figures = await work() or {}
    return Trial(time.perf_counter() - start, figures)


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def _attempt(run: Callable[[int], Trial], count: int) -> Trial:
    stop_if_interrupted()
    try:
        trial = run(count)
    except Exception as exc:  # a variant's failure is its outcome; the next one still runs
        trial = Trial(float("nan"), outcome=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    stop_if_interrupted()  # a Ctrl-C the pass swallowed (in a GC callback) still stops the run
    return trial


def measure(found: Experiment, context: Context, repeat: int) -> dict[str, Any]:
    """Warm-up, `repeat` timed passes in rotating order, then the probe pass if any."""
    count = found.quick if context.quick else found.full
    passes: dict[str, list[Trial]] = {}
    with found.build(context, count) as variants:
        names = list(variants)
        for name in names:
            _attempt(variants[name], max(1, count // 10))
        for index in range(repeat):
            order = names[index % len(names) :] + names[: index % len(names)]
            for name in order:
                passes.setdefault(name, []).append(_attempt(variants[name], count))
    probed: dict[str, Trial] = {}
    if found.probe is not None:
        with found.probe(context, count) as variants:
            probed = {name: _attempt(run, count) for name, run in variants.items()}
    return {
        "name": found.name,
        "group": found.group,
        "axis": found.axis,
        "label": found.label,
        "operations": count,
        "repeat": repeat,
        "variants": {
            name: _summarise(trials, count, probed.get(name)) for name, trials in passes.items()
        },
    }


def _summarise(trials: list[Trial], count: int, probe: Trial | None) -> dict[str, Any]:
    seconds = [t.seconds for t in trials if t.seconds == t.seconds]  # NaN: the pass raised
    figures: dict[str, list[float]] = {}
    for trial in trials:
        for key, value in trial.figures.items():
            figures.setdefault(key, []).append(value)
    outcomes = sorted({t.outcome for t in trials if t.outcome})
    return {
        "seconds": spread(seconds) if seconds else None,
        "ms_per_op": {k: v * 1000 / count for k, v in spread(seconds).items()} if seconds else None,
        "figures": {key: spread(values) for key, values in figures.items()},
        "counted": dict(probe.figures) if probe else {},
        "outcome": "; ".join(outcomes) or (probe.outcome if probe else None),
    }


def select(names: list[str] | None) -> list[Experiment]:
    """The experiments named (all, in registration order, when None); unknown: ValueError."""
    if not names:
        return list(REGISTRY.values())
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(unknown)} (known: {', '.join(REGISTRY)})")
    return [REGISTRY[n] for n in names]
