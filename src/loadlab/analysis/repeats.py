"""Is a difference real? Each variant run in several rounds: the mean of each figure over the
rounds with a 95% confidence interval, and Welch's t-test between every two variants, Holm
over every pair and figure (analysis/significance.py says why these).

A round is one whole run of a variant (warm-up, then measured time). Round-to-round spread
includes what one run cannot show: the machine's drift, a checkpoint that fell in one run.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadlab.analysis import significance

ALPHA = significance.ALPHA

# What each round keeps in summary.json: the headline and what the flags check.
ROUND_KEYS = (
    "requests",
    "failures",
    "error_rate",
    "errors",
    "throughput_rps",
    "latency_ms",
    "locust_requests",
    "integrity",
    "generator_saturated",
    "machine_cpu_mean",
)
# Kept where a run has them: the generator's delay, and the open model's schedule.
OPTIONAL_ROUND_KEYS = (
    "generator_delay_ms",
    "offered_rps",
    "achieved_rps",
    "arrivals",
    "latency_uncorrected_ms",
    "placement",
)

# (key in across_rounds, label, unit, higher is better, how to read it off a round)
Metric = tuple[str, str, str, bool, Callable[[dict[str, Any]], float]]
METRICS: tuple[Metric, ...] = (
    ("throughput_rps", "throughput", "req/s", True, lambda r: r["throughput_rps"]),
    ("p50", "p50 latency", "ms", False, lambda r: r["latency_ms"]["p50"]),
    ("p95", "p95 latency", "ms", False, lambda r: r["latency_ms"]["p95"]),
    ("p99", "p99 latency", "ms", False, lambda r: r["latency_ms"]["p99"]),
    ("error_rate", "error rate", "", False, lambda r: r["error_rate"]),
)


def interval(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation and the 95% confidence interval of the mean from
    Student's t with n - 1 degrees of freedom (None with a single value: one round says
    nothing about the spread). The interval is not cut at 0: with few rounds it can reach
    below, and that says how little the rounds pin the mean down."""
    n = len(values)
    mean = statistics.fmean(values)
    sd = math.sqrt(significance.variance(values)) if n > 1 else None
    ci = None
    if sd is not None:
        half = _t97_5(n - 1) * sd / math.sqrt(n)
        ci = [mean - half, mean + half]
    return {"n": n, "mean": mean, "sd": sd, "ci95": ci, "min": min(values), "max": max(values)}


@functools.cache
def _t97_5(df: int) -> float:
    from scipy import stats  # imported when first needed (significance._t says why)

    return float(stats.t.ppf(1 - ALPHA / 2, df))


def is_repeated(variants: dict[str, dict[str, Any]]) -> bool:
    """Whether every variant ran in several rounds (see `with_rounds`)."""
    return bool(variants) and all(v.get("rounds") for v in variants.values())


def with_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's figures: round 1 in full (charts, resources, database time), plus,
    with two rounds or more, every round's headline and the mean and interval over them."""
    figures = dict(rounds[0])
    if len(rounds) > 1:
        figures["rounds"] = [
            {k: r[k] for k in (*ROUND_KEYS, *OPTIONAL_ROUND_KEYS) if k in r} for r in rounds
        ]
        figures["across_rounds"] = {
            key: interval([float(read(r)) for r in rounds]) for key, _, _, _, read in METRICS
        }
    return figures


def fmt(value: float, unit: str) -> str:
    return f"{value:.2%}" if unit == "" else f"{value:,.1f} {unit}"


def family(variants: dict[str, dict[str, Any]]) -> list[tuple[str, str, Metric]]:
    """Every (A, B, figure) a repeated run tests, fixed by the run's kind before any data is
    seen: every pair of variants, each figure of METRICS (throughput left out of open-model
    runs, where the schedule sets it). A figure whose means happen to be equal still counts,
    or the correction would shrink with the data."""
    opened = all("offered_rps" in v for v in variants.values())
    figures = [m for m in METRICS if not (opened and m[0] == "throughput_rps")]
    return [(a, b, m) for a, b in itertools.combinations(variants, 2) for m in figures]


def _values(v: dict[str, Any], read: Callable[[dict[str, Any]], float]) -> list[float]:
    return [float(read(r)) for r in v.get("rounds") or [v]]


def detectable_share(a: list[float], b: list[float], tests: int) -> float | None:
    """The smallest difference these rounds could have detected (80% power, at the family's
    strictest level), as a share of the mean of both sides."""
    if len(a) < 2 or len(b) < 2:
        return None
    sd = math.sqrt((significance.variance(a) + significance.variance(b)) / 2)
    middle = (statistics.fmean(a) + statistics.fmean(b)) / 2
    found = significance.detectable(sd, len(a), len(b), tests)
    return None if found is None or middle == 0 else found / abs(middle)


@dataclass(frozen=True)
class Judgement:
    """One test of a repeated run: which side's mean is better, and whether beyond noise."""

    key: str  # the figure's key in METRICS ("p99")
    label: str
    unit: str
    better: str  # the variant whose mean is better (the first of the pair when equal)
    worse: str
    good: dict[str, Any]  # the better side's interval (see `interval`)
    bad: dict[str, Any]
    p: float
    real: bool  # beyond noise at 5% familywise (Holm over `tests`)
    tests: int
    detectable: float | None  # the smallest difference the rounds could have found, a share


def judge(variants: dict[str, dict[str, Any]]) -> list[Judgement]:
    """Every test of the run's family (see `family`), Welch's p, Holm at 5% familywise."""
    tests = family(variants)
    rows = []
    for name_a, name_b, (key, label, unit, higher_is_better, read) in tests:
        values_a, values_b = _values(variants[name_a], read), _values(variants[name_b], read)
        ia, ib = interval(values_a), interval(values_b)
        p = significance.welch_p(values_a, values_b)
        a_better = ia["mean"] == ib["mean"] or (ia["mean"] > ib["mean"]) == higher_is_better
        (better, good), (worse, bad) = ((name_a, ia), (name_b, ib))[:: 1 if a_better else -1]
        seen = detectable_share(values_a, values_b, len(tests))
        rows.append((key, label, unit, better, worse, good, bad, p, seen))
    significant = significance.holm([r[7] for r in rows])
    return [
        Judgement(*row[:8], real, len(rows), row[8])  # type: ignore[arg-type]
        for row, real in zip(rows, significant, strict=True)
    ]


def verdicts(variants: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per pair of variants and figure whose means differ: the means and
    intervals, Welch's p, and the verdict at 5% familywise over every test of the run
    (Holm). A difference not found says how large one these rounds could have found."""
    sentences = []
    for j in judge(variants):
        if j.good["mean"] == j.bad["mean"]:
            continue
        sentence = (
            f"{j.label}: {j.better} {fmt(j.good['mean'], j.unit)} vs {j.worse} "
            f"{fmt(j.bad['mean'], j.unit)} (mean of {j.good['n']} and {j.bad['n']} rounds; "
            f"95% intervals {_span(j.good, j.unit)} vs {_span(j.bad, j.unit)}); "
            f"Welch's t-test {_p(j.p)}: "
        )
        if j.real:
            sentence += (
                f"{j.better} is better, beyond round-to-round noise (5% familywise over the "
                f"{j.tests} tests of this run, Holm)."
            )
        else:
            sentence += "not distinguishable from round-to-round noise" + (
                f"; these rounds could have detected a difference of {j.detectable:.0%} or more "
                f"(80% power, {j.tests} tests)."
                if j.detectable is not None
                else "."
            )
        sentences.append(sentence)
    return sentences


def _p(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


def _span(i: dict[str, Any], unit: str) -> str:
    lo, hi = i["ci95"]
    return f"{fmt(lo, unit)} to {fmt(hi, unit)}"
