"""`loadlab bench`: what loadlab's generator costs, beside plain Locust on the same target.

On two shared cores every CPU millisecond the generator spends is taken from the stack it
measures, so its cost is a figure of its own. Each tool (plain Locust with a FastHttpUser
and no checks: infra/bench/plain_locustfile.py; loadlab's own scenario file under plain
Locust; and `loadlab run`) drives one running stack at the same users, in turn, for a short
and a long window, several times.
Each pass gives a point: the requests it sent and the CPU its processes used (the operating
system's accounting of the finished command and everything it waited for). A straight line
through a tool's points splits its cost in two:

- marginal: CPU ms per request, the slope (the recorder, the checks, the sampling);
- fixed: CPU seconds at zero requests, the intercept (start-up, merging, pages, the reset).

A benchmark, not a test: the figures are this machine's, printed with their spread.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.settings import StackSettings

PLAIN_LOCUSTFILE = ROOT / "infra" / "bench" / "plain_locustfile.py"
# The goals for loadlab against plain Locust.
GOAL_MARGINAL_RATIO = 1.1
GOAL_FIXED_S = 3.0
# Plain Locust; loadlab's users (its scenario file: answer checks, recorder, Server-Timing)
# under plain Locust; and the whole `loadlab run` (those users, plus the sampling of the stack,
# warm-up, merging, pages), as it runs by default (--isolate priority: the generator first)
# and as plain Locust runs (--isolate shared). The second says which part a difference is in;
# the last is the like-for-like one the goal is read against: a generator that runs first
# answers each response as it comes, where one that waits for a CPU finds several ready at
# each wake-up and pays the event loop's round once for all of them, so the same code costs
# more CPU per request in `priority` (measured: ~10% at 50 users here).
TOOLS = ("plain Locust", "loadlab's users", "loadlab run", "loadlab run, shared")


@dataclass(frozen=True)
class Pass:
    tool: str
    seconds: float  # the window asked for
    requests: int
    cpu_s: float  # user + system of the command and everything it waited for
    wall_s: float


@dataclass(frozen=True)
class Cost:
    marginal_ms: float  # CPU ms per request, the slope
    fixed_s: float  # CPU s at zero requests, the intercept
    residual_s: float  # the points' spread around the line (sd of the residuals)


def fit(passes: list[Pass]) -> Cost:
    """Least squares through (requests, cpu_s): two window lengths or more are needed."""
    xs = [float(p.requests) for p in passes]
    ys = [p.cpu_s for p in passes]
    if len(set(xs)) < 2:
        raise ValueError("a line needs passes with different request counts")
    slope, intercept = statistics.linear_regression(xs, ys)
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    spread = statistics.stdev(residuals) if len(residuals) > 2 else 0.0
    return Cost(slope * 1000.0, intercept, spread)


def _timed(argv: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """(exit code, CPU s, wall s) of a command and every process it waited for."""
    started = time.monotonic()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    errors = child.stderr.read()  # drained while it runs; said if it fails
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if child.returncode != 0:
        last = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"{argv[2]} exited {child.returncode}: {last[0]}")
    return child.returncode, usage.ru_utime + usage.ru_stime, wall


def plain_locust(
    url: str, users: int, seconds: float, scale: float, work: Path, loadlab_users: bool = False
) -> Pass:
    """Locust alone, on its plain file or (loadlab_users) on loadlab's select_update file."""
    from loadlab.load.runner import LOCUST_PYTHONPATH, LOCUSTFILES

    prefix = work / f"plain-{time.monotonic_ns()}"
    locustfile = LOCUSTFILES / "select_update.py" if loadlab_users else PLAIN_LOCUSTFILE
    argv = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "--host", url,
        "--json-file", str(prefix), "--only-summary", "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    env = {**os.environ, "LOADLAB_SCALE": str(scale), "PYTHONPATH": LOCUST_PYTHONPATH}
    _, cpu, wall = _timed(argv, env)
    # The JSON file, not --csv: Locust writes its CSV from a timer every second and not again
    # at the end, so the CSV misses the last second's requests (found by the bench's test).
    entries = json.loads(Path(f"{prefix}.json").read_text())
    tool = TOOLS[1] if loadlab_users else TOOLS[0]
    return Pass(tool, seconds, sum(e["num_requests"] for e in entries), cpu, wall)


def loadlab_run(
    state_dir: Path, variant: str, users: int, seconds: float, work: Path, shared: bool = False
) -> Pass:
    """`loadlab run` under its default placement, or (shared) under plain Locust's."""
    out = work / f"run-{time.monotonic_ns()}"
    argv = [
        sys.executable, "-m", "loadlab", "run", "--variants", variant, "--users", str(users),
        "--spawn-rate", str(users), "--duration", f"{seconds:g}s", "--warmup", "0",
        "--out", str(out), "--state-dir", str(state_dir),
        *(["--isolate", "shared"] if shared else []),
    ]  # fmt: skip
    _, cpu, wall = _timed(argv, dict(os.environ))
    summary = json.loads((out / "summary.json").read_text())
    # Every request sent, warm-up and in doubt included: the CPU paid for all of them.
    sent = sum(count for _, _, count in summary["variants"][variant]["outcomes"])
    return Pass(TOOLS[3] if shared else TOOLS[2], seconds, sent, cpu, wall)


def measure(
    state_dir: Path,
    variant: str,
    url: str,
    users: int,
    windows: tuple[float, ...],
    passes: int,
    scale: float,
) -> list[Pass]:
    """The tools in turn (A B C A B C ...), so a drifting machine weighs on each."""
    results = []
    with tempfile.TemporaryDirectory(prefix="loadlab-bench-") as work:
        for number in range(passes):
            for seconds in windows:
                for tool in TOOLS:
                    done = (
                        loadlab_run(
                            state_dir, variant, users, seconds, Path(work), tool == TOOLS[3]
                        )
                        if tool in TOOLS[2:]
                        else plain_locust(url, users, seconds, scale, Path(work), tool == TOOLS[1])
                    )
                    print(
                        f"  pass {number + 1}/{passes}, {seconds:g} s: {tool:<15} "
                        f"{done.requests:>7,} requests  {done.cpu_s:6.2f} s CPU  "
                        f"{done.wall_s:6.1f} s wall",
                        flush=True,
                    )
                    results.append(done)
    return results


def costs(passes: list[Pass]) -> dict[str, Cost]:
    """Each tool's line (a bench made before loadlab's users were a tool has two)."""
    return {
        tool: fit([p for p in passes if p.tool == tool])
        for tool in TOOLS
        if any(p.tool == tool for p in passes)
    }


def table(cost: dict[str, Cost]) -> list[str]:
    """The two costs per tool, and loadlab's against plain Locust's with the goals."""
    plain = cost[TOOLS[0]]
    # Read against the goal like for like (a bench older than the shared pass has only the
    # default's).
    ours = cost.get(TOOLS[3], cost[TOOLS[2]])
    lines = [
        f"{'':<20}{'marginal CPU ms/request':>24}{'fixed CPU s':>13}"
        f"{'points off the line, sd':>25}",
        *(
            f"{name:<20}{c.marginal_ms:>24.3f}{c.fixed_s:>13.2f}{c.residual_s:>23.2f} s"
            for name, c in cost.items()
        ),
    ]
    if TOOLS[1] in cost:
        lines.append(
            f"loadlab's users under plain Locust: {_ratio(cost[TOOLS[1]], plain):.2f}x plain "
            "Locust's marginal cost (the checks, the recorder, Server-Timing)"
        )
    like_for_like = " under plain Locust's placement (shared)" if TOOLS[3] in cost else ""
    lines.append(
        f"loadlab run's marginal cost{like_for_like} is {_ratio(ours, plain):.2f}x plain "
        f"Locust's (goal: at most {GOAL_MARGINAL_RATIO}x); its fixed cost {ours.fixed_s:.1f} s "
        f"against {plain.fixed_s:.1f} s (goal: at most {GOAL_FIXED_S:g} s)"
    )
    if TOOLS[3] in cost:
        lines.append(
            f"loadlab run as it runs by default (priority: the generator first): "
            f"{_ratio(cost[TOOLS[2]], plain):.2f}x plain Locust's marginal cost"
        )
    return lines


def _ratio(ours: Cost, plain: Cost) -> float:
    return ours.marginal_ms / plain.marginal_ms if plain.marginal_ms > 0 else float("nan")


def quoted(reports: Path, folder: str, link_prefix: str = "reports/") -> str:
    """What the docs show of a committed bench: its table, from its bench.json
    (tests/report/test_docs_figures.py checks docs/reading-a-report.md holds exactly this)."""
    data = json.loads((reports / folder / "bench.json").read_text())
    passes = [Pass(**p) for p in data["passes"]]
    points = len(passes) // len({p.tool for p in passes})
    head = (
        f"[`reports/{folder}/bench.json`]({link_prefix}{folder}/bench.json): {data['users']} users "
        f"at {data['variant']}, {points} points a tool (passes of "
        f"{' and '.join(f'{w:g}' for w in data['windows_s'])} s), commit "
        f"{data['environment']['git_commit'][:7]}, {data['environment']['cpu_count']} CPUs"
    )
    return head + "\n\n```\n" + "\n".join(table(costs(passes))) + "\n```\n"


def document(
    variant: str, users: int, windows: tuple[float, ...], passes: list[Pass]
) -> dict[str, Any]:
    """bench.json: every pass, each tool's line, and what ran where."""
    from loadlab import environment

    cost = costs(passes)
    return {
        "kind": "bench",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "variant": variant,
        "users": users,
        "windows_s": list(windows),
        "environment": {
            "cpu_count": os.cpu_count(),
            "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
            "git_commit": environment.git_commit(),
        },
        "passes": [asdict(p) for p in passes],
        "cost": {tool: asdict(c) for tool, c in cost.items()},
        "marginal_ratio": _ratio(cost.get(TOOLS[3], cost[TOOLS[2]]), cost[TOOLS[0]]),
        "goals": {"marginal_ratio": GOAL_MARGINAL_RATIO, "fixed_s": GOAL_FIXED_S},
    }


def run(settings: StackSettings, variant: str, users: int, quick: bool, out: Path | None) -> Path:
    """Bring the stack up if needed, measure, print the table, stop what it started, and
    write bench.json into its report folder; returns that file."""
    from loadlab.load.experiment import local_targets
    from loadlab.report import schema, writer
    from loadlab.stack import lifecycle, services
    from loadlab.stack.procs import state_lock

    if variant not in services.VARIANTS:
        raise UsageError(f"--variant {variant!r}: one of {', '.join(services.VARIANTS)}")
    if users < 1:
        raise UsageError("--users must be 1 or more")
    windows, rounds = ((2.0, 6.0), 1) if quick else ((5.0, 30.0), 3)
    final = out or ROOT / writer.REPORTS / writer.run_id("select_update", f"bench-{users}u")
    tmp = writer.prepare_out(final)  # a folder that cannot be written: said now
    try:
        # Locked while starting and stopping only: each `loadlab run` takes the lock itself.
        with state_lock(settings.state_dir, "bench"):
            _, started = lifecycle.up(settings)
        try:
            (target,), state = local_targets(settings, [variant])
            print(
                f"bench: {', '.join(TOOLS)} in turn at {variant} ({target.url}), "
                f"{users} users, {' and '.join(f'{w:g}' for w in windows)} s windows, "
                f"{rounds} pass(es) each",
                flush=True,
            )
            points = measure(
                settings.state_dir, variant, target.url, users, windows, rounds, state.scale
            )
        finally:
            if started:
                with state_lock(settings.state_dir, "bench"):
                    lifecycle.down(settings)
        report = document(variant, users, windows, points)
        schema.validate(report, "bench.json")
        (tmp / "bench.json").write_text(json.dumps(report, indent=1) + "\n")
        tmp.rename(final)
    except BaseException:
        writer.discard(tmp)
        raise
    for line in table(costs(points)):
        print(line)
    return final / "bench.json"
