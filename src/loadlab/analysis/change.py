"""`loadlab compare OLD NEW`: how each variant's figures changed between two reports.

A change counts as a regression when NEW is worse than OLD by more than the threshold
(relative). With rounds (`--repeat`) the threshold itself is tested: a one-sided test that
NEW is worse beyond it, Holm over every variant and figure compared (any of them fails the
run). Rounds on one side only: the one run is tested against the other side's rounds, its
spread taken to be theirs. One run a side: nothing tells a change from noise, and the page
says only the threshold was applied. Error rates start at 0 so often that a relative
threshold alone would call 0.00% to 0.01% a regression: they also need to grow by
ERROR_FLOOR (absolute).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadlab.analysis import repeats, significance
from loadlab.errors import UsageError

ERROR_FLOOR = 0.001  # 0.1 percentage points

# Throughput, p50, p95, p99 and error rate, read off a run or each of its rounds.
RUN_FIGURES = repeats.METRICS


@dataclass(frozen=True)
class Change:
    variant: str
    figure: str
    unit: str
    old: float | None
    new: float | None
    relative: float | None  # (new - old) / old; None when old is 0 or a side has no value
    worse: bool  # in the bad direction beyond the threshold
    # One-sided p that NEW is worse beyond the threshold (significance.beyond_p); None with
    # one run a side, where only the threshold is applied.
    p: float | None
    noise: bool | None  # worse, but not beyond the threshold by the test (Holm); None: no test
    regression: bool  # what makes `compare` exit 1
    rounds_old: int = 1
    rounds_new: int = 1
    # The smallest worsening (relative to OLD) these rounds would flag 80% of the time: the
    # threshold plus what the rounds' spread hides. None without a test.
    detectable: float | None = None


def load(folder: Path) -> dict[str, Any]:
    """A report folder's summary.json, or one line and exit 2."""
    path = folder / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{folder} is not a loadlab report (no readable summary.json)") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("variants"), dict):
        raise UsageError(f"{folder} is not a loadlab report (summary.json has no variants)")
    return summary


def _kind(summary: dict[str, Any]) -> str:
    return "sweep" if summary.get("kind") == "sweep" else "run"


def _values(v: dict[str, Any], read: Any) -> list[float]:
    return [float(read(r)) for r in v.get("rounds") or [v]]


def _worse(figure: str, old: float, new: float, higher_is_better: bool, threshold: float) -> bool:
    step = new - old if not higher_is_better else old - new  # > 0: worse
    if figure == "error_rate":
        return step > max(threshold * old, ERROR_FLOOR)
    return step > threshold * abs(old)


def _relative(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old == 0:
        return None
    return (new - old) / old


def run_changes(old: dict[str, Any], new: dict[str, Any], threshold: float) -> list[Change]:
    """Each shared variant's figures. The family is every (variant, figure) compared, since
    any of them fails the run: Holm over all of them keeps the chance of a false
    regression anywhere in the comparison at 5%."""
    rows = []
    for name in [n for n in new["variants"] if n in old["variants"]]:
        a, b = old["variants"][name], new["variants"][name]
        opened = "offered_rps" in a and "offered_rps" in b
        for key, label, unit, higher_is_better, read in RUN_FIGURES:
            if opened and key == "throughput_rps":
                continue  # the schedule set it: nothing to judge
            va, vb = _values(a, read), _values(b, read)
            floor = ERROR_FLOOR if key == "error_rate" else 0.0
            p = significance.beyond_p(va, vb, threshold, higher_is_better, floor)
            rows.append((name, key, label, unit, higher_is_better, va, vb, p))
    tested = [r[-1] for r in rows if r[-1] is not None]
    significant = iter(significance.holm(tested))
    family = len(tested)
    changes = []
    for name, key, label, unit, higher_is_better, va, vb, p in rows:
        mean_a, mean_b = statistics.fmean(va), statistics.fmean(vb)
        worse = _worse(key, mean_a, mean_b, higher_is_better, threshold)
        real = next(significant) if p is not None else None
        sd = significance.pooled_sd(va, vb)
        seen = (
            significance.detectable(sd, len(va), len(vb), family, sides=1)
            if p is not None and sd is not None
            else None
        )
        changes.append(
            Change(
                name,
                label,
                unit,
                mean_a,
                mean_b,
                _relative(mean_a, mean_b),
                worse,
                p,
                None if real is None else worse and not real,
                worse and real is not False,
                len(va),
                len(vb),
                None if seen is None or not mean_a else threshold + seen / abs(mean_a),
            )
        )
    return changes


def sweep_changes(old: dict[str, Any], new: dict[str, Any], threshold: float) -> list[Change]:
    changes = []
    for name in [n for n in new["variants"] if n in old["variants"]]:
        a = old["variants"][name]["capacity_rps"]
        b = new["variants"][name]["capacity_rps"]
        # No capacity: not even the first rate held. Treat it as 0 for the comparison.
        worse = _worse("capacity", a or 0.0, b or 0.0, True, threshold) if a else False
        changes.append(
            Change(name, "capacity", "req/s", a, b, _relative(a, b), worse, None, None, worse)
        )
    return changes


def compare(old_dir: Path, new_dir: Path, threshold: float) -> dict[str, Any]:
    """Both reports' shared variants, figure by figure, and what differs in how they ran."""
    if threshold < 0:
        raise UsageError(f"--threshold must be 0% or more, not {threshold:.0%}")
    old, new = load(old_dir), load(new_dir)
    if _kind(old) != _kind(new):
        raise UsageError(
            f"{old_dir} is a {_kind(old)} and {new_dir} a {_kind(new)}: compare like with like"
        )
    shared = [n for n in new["variants"] if n in old["variants"]]
    paired = []
    if not shared and len(old["variants"]) == len(new["variants"]) == 1:
        # Two one-stack reports (the web UI's tests of two stacks, one after the other):
        # side by side, under the later one's name.
        a, b = next(iter(old["variants"])), next(iter(new["variants"]))
        old = {**old, "variants": {b: old["variants"][a]}}
        shared = [b]
        paired = [f"stacks: {a} in the earlier report, {b} in the later one"]
    if not shared:
        raise UsageError(
            f"{old_dir} ({', '.join(old['variants'])}) and {new_dir} "
            f"({', '.join(new['variants'])}) share no variant"
        )
    changes = (sweep_changes if _kind(new) == "sweep" else run_changes)(old, new, threshold)
    rounds = {
        name: [len(report["variants"][name].get("rounds") or [1]) for report in (old, new)]
        for name in shared
    }
    tested = sum(c.p is not None for c in changes)
    return {
        "old": str(old_dir),
        "new": str(new_dir),
        "kind": _kind(new),
        "threshold": threshold,
        "rounds": rounds,
        "test": _test(rounds) if tested else None,
        "family": tested,
        "alpha": significance.ALPHA,
        "changes": [asdict(c) for c in changes],
        "regressions": [asdict(c) for c in changes if c.regression],
        "differences": paired + differences(old, new, shared),
    }


def _test(rounds: dict[str, list[int]]) -> str:
    """Which test `compare` applied, in words for the page."""
    one_sided = any(min(pair) == 1 for pair in rounds.values())
    return (
        "one-sided Welch's t-test of NEW worse than OLD by more than the threshold"
        if not one_sided
        else "one-sided t-test of the one run against the other side's rounds (the one "
        "run's spread taken to be theirs), worse by more than the threshold"
    )


def differences(old: dict[str, Any], new: dict[str, Any], shared: list[str]) -> list[str]:
    """What ran differently, so a reader does not take a changed setting for a regression."""
    said = []
    plan_old = old.get("plan") or old.get("sweep") or {}
    plan_new = new.get("plan") or new.get("sweep") or {}
    keys = ("scenario", "users", "arrival_rate", "duration", "repeat", "workers", "rates", "slo")
    for key in keys:
        if plan_old.get(key) != plan_new.get(key):
            said.append(f"{key}: {plan_old.get(key)} then {plan_new.get(key)}")
    env_old, env_new = old.get("environment") or {}, new.get("environment") or {}
    for key in ("cpu_count", "postgresql", "pgbouncer"):
        if env_old.get(key) != env_new.get(key):
            said.append(f"{key}: {env_old.get(key)} then {env_new.get(key)}")
    for name in shared:
        a = old["variants"][name].get("setup")
        b = new["variants"][name].get("setup")
        if a != b:
            said.append(f"{name} setup: {_setup(a)} then {_setup(b)}")
    return said


def _setup(setup: dict[str, Any] | None) -> str:
    if not setup:
        return "not recorded"
    knobs = ", ".join(f"{k}={v}" for k, v in setup["knobs"].items())
    return f"profile {setup['profile']} ({knobs})"
