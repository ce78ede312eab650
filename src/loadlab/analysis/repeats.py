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


def _fmt(value: float, unit: str) -> str:
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


def verdicts(variants: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per pair of variants and figure whose means differ: the means and
    intervals, Welch's p, and the verdict at 5% familywise over every test of the run
    (Holm). A difference not found says how large one these rounds could have found."""
    tests = family(variants)
    if not tests:
        return []
    rows = []
    for name_a, name_b, (_, label, unit, higher_is_better, read) in tests:
        values_a, values_b = _values(variants[name_a], read), _values(variants[name_b], read)
        ia, ib = interval(values_a), interval(values_b)
        p = significance.welch_p(values_a, values_b)
        rows.append((name_a, name_b, label, unit, higher_is_better, values_a, values_b, ia, ib, p))
    significant = significance.holm([r[-1] for r in rows])
    sentences = []
    for (name_a, name_b, label, unit, higher, va, vb, ia, ib, p), real in zip(
        rows, significant, strict=True
    ):
        if ia["mean"] == ib["mean"]:
            continue
        a_better = (ia["mean"] > ib["mean"]) == higher
        (better, good), (worse, bad) = ((name_a, ia), (name_b, ib))[:: 1 if a_better else -1]
        sentence = (
            f"{label}: {better} {_fmt(good['mean'], unit)} vs {worse} {_fmt(bad['mean'], unit)} "
            f"(mean of {ia['n']} and {ib['n']} rounds; 95% intervals "
            f"{_span(good, unit)} vs {_span(bad, unit)}); Welch's t-test {_p(p)}: "
        )
        if real:
            sentence += (
                f"{better} is better, beyond round-to-round noise (5% familywise over the "
                f"{len(rows)} tests of this run, Holm)."
            )
        else:
            seen = detectable_share(va, vb, len(rows))
            sentence += "not distinguishable from round-to-round noise" + (
                f"; these rounds could have detected a difference of {seen:.0%} or more "
                f"(80% power, {len(rows)} tests)."
                if seen is not None
                else "."
            )
        sentences.append(sentence)
    return sentences


def _p(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


def _span(i: dict[str, Any], unit: str) -> str:
    lo, hi = i["ci95"]
    return f"{_fmt(lo, unit)} to {_fmt(hi, unit)}"
