"""The machine's own noise, from a calibration: one stack run against itself in alternating
rounds (A/A), as if it were two stacks.

Per figure: the round-to-round spread (standard deviation and coefficient of variation,
pooled over the two sides), the A/A difference and its test (it should be noise), and the
rounds a side that would detect a 5, 10 and 20% difference at 80% power in a run with a
family of this size. `--repeat auto` reads the newest matching calibration to choose the
rounds before a run starts.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from loadlab.analysis import repeats, significance

DIFFERENCES = (0.05, 0.10, 0.20)
# --repeat auto: the difference every figure but the error rate should be detectable at.
AUTO_DIFFERENCE = 0.10
MAX_AUTO_ROUNDS = 30


def calibration(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The noise figures of an A/A run's two sides (analysis of `loadlab calibrate`)."""
    tests = len(repeats.family(variants))
    sides = list(variants.values())
    opened = all("offered_rps" in v for v in sides)
    figures = {}
    for key, label, unit, _, read in repeats.METRICS:
        if opened and key == "throughput_rps":
            continue
        a, b = ([float(read(r)) for r in v.get("rounds") or [v]] for v in sides)
        mean = statistics.fmean(a + b)
        sd = significance.pooled_sd(a, b) or 0.0
        cv = sd / abs(mean) if mean else None
        figures[key] = {
            "label": label,
            "unit": unit,
            "mean": mean,
            "sd": sd,
            "cv": cv,
            "a_mean": statistics.fmean(a),
            "b_mean": statistics.fmean(b),
            "a_b_difference": (statistics.fmean(b) - statistics.fmean(a)) / statistics.fmean(a)
            if statistics.fmean(a)
            else None,
            "p": significance.welch_p(a, b),
            "detectable": repeats.detectable_share(a, b, tests),
            "rounds_needed": {
                f"{d:.0%}": None if cv is None else significance.rounds_for(cv, d, tests)
                for d in DIFFERENCES
            },
        }
    return {
        "rounds": min(len(v.get("rounds") or [v]) for v in sides),
        "tests": tests,
        "alpha": significance.ALPHA,
        "power": significance.POWER,
        "figures": figures,
    }


def matching(
    reports: Path, plan: dict[str, Any], cpu_count: int, mode: str, variant: str | None = None
) -> Path | None:
    """The newest calibration in `reports` for this scenario and load, on a machine with as
    many CPUs, under the same placement mode (and of `variant`, when given)."""
    for path in sorted(reports.glob("*/summary.json"), reverse=True):
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if s.get("kind") != "calibration":
            continue
        ran = s.get("plan") or {}
        placed = (next(iter(s["variants"].values())).get("placement") or {}).get("mode")
        stack = next(iter(s["variants"]), "").rsplit(" ", 1)[0]
        if (
            (variant is None or stack == variant)
            and ran.get("scenario") == plan["scenario"]
            and ran.get("users") == plan["users"]
            and ran.get("arrival_rate") == plan["arrival_rate"]
            and (s.get("environment") or {}).get("cpu_count") == cpu_count
            and (placed or "shared") == mode
        ):
            return path.parent
    return None


def auto_rounds(
    calibrated: dict[str, Any] | None, round_seconds: float, budget: float | None
) -> tuple[int, str]:
    """--repeat auto: rounds a side, and why. From a calibration, the rounds that detect
    AUTO_DIFFERENCE in every figure but the error rate; a budget caps them (at least 3)."""
    fit = max(3, int(budget // round_seconds)) if budget else None
    if calibrated is None:
        assert fit is not None  # the CLI refuses auto with neither
        return fit, f"no matching calibration: the {fit} rounds that fit the budget"
    needed = [
        f["rounds_needed"][f"{AUTO_DIFFERENCE:.0%}"]
        for key, f in calibrated["figures"].items()
        if key != "error_rate"
    ]
    want = MAX_AUTO_ROUNDS if any(n is None for n in needed) else max([3, *needed])
    want = min(want, MAX_AUTO_ROUNDS)
    if fit is not None and fit < want:
        return fit, (
            f"the calibration asks {want} rounds to detect {AUTO_DIFFERENCE:.0%} in every "
            f"figure; {fit} fit the budget"
        )
    return want, f"the calibration's rounds to detect {AUTO_DIFFERENCE:.0%} in every figure"


def round_seconds(warmup: float, duration: float, variants: int) -> float:
    """A round of every variant, start-up and data reset included (about 8 s each here)."""
    return variants * (warmup + duration + 8.0)


def describe_cv(cv: float | None) -> str:
    return "-" if cv is None or math.isnan(cv) else f"{cv:.1%}"


TABLE_HEAD = (
    "| report | stack | CPUs | req/s | p99 ms | spread of req/s, p50, p99 | rounds a side "
    "for 10% (req/s, p50, p99) | generator delay p99 ms | of it waiting for a CPU |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)


def table(reports: Path, folders: list[str]) -> str:
    """The markdown table docs/statistics.md shows of these calibrations: generated from
    their summary.json (tests/report/test_docs_figures.py checks the page holds it)."""
    from loadlab.report.history import kept_summary

    rows = []
    for folder in folders:
        s, page = kept_summary(reports, folder)
        c = s["calibration"]["figures"]
        sides = list(s["variants"].values())
        rounds = [r for v in sides for r in v.get("rounds") or [v]]
        delays = sorted(r["generator_delay_ms"]["p99"] for r in rounds)
        shares = [
            r["generator_delay_ms"]["cpu_wait_share"]
            for r in rounds
            if r["generator_delay_ms"].get("cpu_wait_share") is not None
        ]
        mode = (sides[0].get("placement") or {}).get("mode", "shared")
        stack = next(iter(s["variants"])).rsplit(" ", 1)[0]
        spread = ", ".join(describe_cv(c[k]["cv"]) for k in ("throughput_rps", "p50", "p99"))
        needed = ", ".join(
            str(c[k]["rounds_needed"]["10%"] or ">200") for k in ("throughput_rps", "p50", "p99")
        )
        rows.append(
            f"| [{folder[:15]}](../reports/{page}) | {stack} | {mode} | "
            f"{c['throughput_rps']['mean']:,.0f} | {c['p99']['mean']:,.0f} | {spread} | "
            f"{needed} | {statistics.median(delays):,.1f} ({delays[0]:,.1f}-{delays[-1]:,.1f}) | "
            + (f"{statistics.fmean(shares):.0%} |" if shares else "- |")
        )
    return TABLE_HEAD + "\n".join(rows) + "\n"
