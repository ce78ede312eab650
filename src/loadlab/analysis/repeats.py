"""Is a difference real? Each variant run in several rounds: the mean of each figure over the
rounds with a 95% confidence interval, and an exact permutation test between two variants.

A round is one whole run of a variant (warm-up, then measured time). Round-to-round spread
includes what one run cannot show: the machine's drift, a checkpoint that fell in one run.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable
from typing import Any

from scipy import stats

ALPHA = 0.05
EXACT_LIMIT = 200_000  # beyond this many splits, sample them
SAMPLED_SPLITS = 20_000

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
)

# (key in across_rounds, label, unit, higher is better, how to read it off a round)
METRICS: tuple[tuple[str, str, str, bool, Callable[[dict[str, Any]], float]], ...] = (
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
    sd = statistics.stdev(values) if n > 1 else None
    ci = None
    if sd is not None:
        half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
        ci = [mean - half, mean + half]
    return {"n": n, "mean": mean, "sd": sd, "ci95": ci, "min": min(values), "max": max(values)}


def permutation_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the difference of means: the share of all ways of splitting the
    pooled values into groups of these sizes whose difference is at least as large."""
    pooled = a + b
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    total = sum(pooled)

    def as_large(group_a: tuple[float, ...]) -> bool:
        sum_a = sum(group_a)
        diff = sum_a / len(a) - (total - sum_a) / len(b)
        return abs(diff) >= observed - 1e-12 * max(1.0, observed)

    if math.comb(len(pooled), len(a)) <= EXACT_LIMIT:
        splits = [
            as_large(tuple(pooled[i] for i in idx))
            for idx in itertools.combinations(range(len(pooled)), len(a))
        ]
        return sum(splits) / len(splits)
    rng = random.Random(0)  # the same p for the same figures
    hits = sum(as_large(tuple(rng.sample(pooled, len(a)))) for _ in range(SAMPLED_SPLITS))
    return (hits + 1) / (SAMPLED_SPLITS + 1)


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest p-value the permutation test can give with these many rounds."""
    return (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a)


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


def holm(p_values: list[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down test: which of several p-values are significant at `alpha` taken
    over all of them together (testing four figures at 5% each would call a difference
    real by chance far more often than one time in twenty)."""
    significant = [False] * len(p_values)
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        significant[i] = True
    return significant


def rounds_needed(figures: int, alpha: float = ALPHA) -> int:
    """Rounds per variant for the most extreme result to pass Holm's first threshold."""
    return next(n for n in range(2, 100) if smallest_p(n, n) <= alpha / figures)


def verdicts(variants: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per figure that differs, for the first two variants, from their rounds:
    the means and intervals, the permutation test, and Holm's verdict. The family Holm
    corrects over is every figure in METRICS (throughput left out of open-model runs), fixed
    before any data is seen: a figure whose means happen to be equal still counts (with
    p = 1), or the correction would shrink with the data."""
    if len(variants) != 2:
        return []
    (name_a, a), (name_b, b) = variants.items()
    rounds_a, rounds_b = a.get("rounds") or [a], b.get("rounds") or [b]
    # In open-model runs the schedule sets the throughput: it is not in the family, which is
    # still fixed before any data is seen (by the kind of run).
    opened = "offered_rps" in a and "offered_rps" in b
    family = []
    for key, label, unit, higher_is_better, read in METRICS:
        if opened and key == "throughput_rps":
            continue
        values_a = [float(read(r)) for r in rounds_a]
        values_b = [float(read(r)) for r in rounds_b]
        ia, ib = interval(values_a), interval(values_b)
        a_better = (ia["mean"] > ib["mean"]) == higher_is_better
        differs = ia["mean"] != ib["mean"]
        p = permutation_p(values_a, values_b) if differs else 1.0
        family.append((label, unit, a_better, ia, ib, p, differs))
    significant = holm([f[5] for f in family])
    first_threshold = ALPHA / len(family)
    floor = smallest_p(len(rounds_a), len(rounds_b))
    sentences = []
    for (label, unit, a_better, ia, ib, p, differs), real in zip(family, significant, strict=True):
        if not differs:
            continue
        (better, good), (worse, bad) = ((name_a, ia), (name_b, ib))[:: 1 if a_better else -1]
        sentence = (
            f"{label}: {better} {_fmt(good['mean'], unit)} vs {worse} {_fmt(bad['mean'], unit)} "
            f"(mean of {ia['n']} and {ib['n']} rounds; 95% intervals "
            f"{_span(good, unit)} vs {_span(bad, unit)}); permutation test p = {p:.3f}: "
        )
        if real:
            sentence += (
                f"{better} is better, and the difference is unlikely to be noise (5% level "
                f"over the {len(family)} figures compared, Holm)."
            )
        elif floor > first_threshold:
            sentence += (
                f"too few rounds to tell (their smallest possible p is {floor:.3f}, above the "
                f"{first_threshold:.3f} that {len(family)} figures compared at once need; use "
                f"--repeat {rounds_needed(len(family))} or more)."
            )
        else:
            sentence += "not distinguishable from round-to-round noise."
        sentences.append(sentence)
    return sentences


def _span(i: dict[str, Any], unit: str) -> str:
    lo, hi = i["ci95"]
    return f"{_fmt(lo, unit)} to {_fmt(hi, unit)}"
