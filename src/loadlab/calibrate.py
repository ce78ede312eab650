"""`loadlab calibrate`: one stack against itself, to measure this machine's noise.

The stack runs in alternating rounds under two names (A and B), exactly as `run --repeat`
drives two stacks: whatever differs between A and B is the machine's, not the code's. The
report gives each figure's round-to-round spread, the A/A test (which should find nothing),
and how many rounds a side a real comparison needs to detect a 5, 10 or 20% difference;
`run --repeat auto` reads it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from loadlab import ROOT
from loadlab.analysis import noise, repeats
from loadlab.duel import Driven, drive_rounds, run_order
from loadlab.errors import UsageError
from loadlab.load.experiment import local_targets, plan_dict
from loadlab.load.runner import LoadPlan
from loadlab.report import writer
from loadlab.settings import StackSettings
from loadlab.stack import placement

MIN_ROUNDS = 3
SIDES = ("A", "B")


def check(plan: LoadPlan) -> None:
    if plan.repeat < MIN_ROUNDS:
        raise UsageError(
            f"calibrate --rounds {plan.repeat}: a spread needs {MIN_ROUNDS} rounds a side or "
            "more (5 or more for a useful one)"
        )


def run(
    settings: StackSettings, plan: LoadPlan, variant: str, out: Path | None, live: bool = True
) -> tuple[int, Path]:
    """Drive `variant` as A and B in `plan.repeat` alternating rounds each; publish the
    calibration report. (exit code, index.html)"""
    check(plan)
    final = out or ROOT / writer.REPORTS / writer.run_id(plan.scenario, f"calibrate-{plan.tag}")
    (target,), state = local_targets(settings, [variant])
    sides = [dataclasses.replace(target, name=f"{variant} {side}") for side in SIDES]
    tmp = writer.prepare_out(final)
    try:
        figures = {
            name: repeats.with_rounds(rounds)
            for name, rounds in drive_rounds(
                plan, sides, state.direct_database_url, tmp, live, settings
            ).items()
        }
        driven = Driven(sides, state.direct_database_url, state.scale, state.pgbouncer)
        environment = driven.environment(settings)
        summary = writer.build_summary(final.name, plan_dict(plan), environment, figures)
        summary["kind"] = "calibration"
        summary["run_order"] = run_order([t.name for t in sides], plan.repeat)
        summary["calibration"] = noise.calibration(figures)
        index = writer.publish(summary, tmp, final)
    except BaseException:
        writer.discard(tmp)
        raise
    print_summary(summary)
    return (1 if writer.failed(summary) else 0), index


def print_summary(summary: dict) -> None:
    c = summary["calibration"]
    for line in summary["flags"]:
        print(f"  ! {line}")
    print(
        f"  A/A, {c['rounds']} rounds a side; {placement.active().describe()}; rounds a side "
        f"to detect a difference at {c['power']:.0%} power ({c['tests']} tests, Holm):"
    )
    for f in c["figures"].values():
        needed = "  ".join(f"{d} {_rounds(f, n)}" for d, n in f["rounds_needed"].items())
        print(
            f"  {f['label']:<12} spread {noise.describe_cv(f['cv']):>6} of {f['mean']:,.4g}   "
            f"A/A {f['a_b_difference'] or 0:+.1%} (p = {f['p']:.3f})   {needed}"
        )


def _rounds(figure: dict, n: int | None) -> str:
    """Rounds a side, '>200' past the search, '-' for a figure that never varied from 0."""
    if figure["cv"] is None:
        return "-"
    return str(n) if n else ">200"
