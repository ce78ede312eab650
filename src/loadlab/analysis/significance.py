"""The tests behind every verdict, in one place.

- Two stacks' rounds: Welch's t-test, two-sided. Round figures (a run's p99, its
  throughput) are means and quantiles of thousands of requests, close enough to normal for
  it; unlike an exact permutation test its p is not floored by the number of splits (with
  5 rounds a side no permutation p falls below 2/252 = 0.0079, so a family of ten figures
  could never decide).
- A regression: one-sided, against the threshold itself: is NEW worse than OLD *by more than
  the threshold*? (A test of any difference says nothing about a difference beyond it.)
- A family: every test whose verdict can fail a run, fixed before any data is seen, Holm
  over all of them, so the chance of any false verdict in the run is at most ALPHA.
- What the rounds could have seen: the smallest difference detectable at POWER with this
  many rounds at that spread, at the family's strictest (first) Holm threshold.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from typing import Any

ALPHA = 0.05


def _t() -> Any:
    """scipy's Student's t, imported when first needed: importing scipy.stats costs about
    1.5 s here, paid by every CLI call (a single run judges nothing and never needs it)."""
    from scipy import stats

    return stats.t


POWER = 0.80


def variance(values: Sequence[float]) -> float:
    """The sample variance in floats (statistics.variance is exact, in fractions, and ~20x
    slower: the simulations of the false-verdict rate call this a hundred thousand times)."""
    mean = statistics.fmean(values)
    return sum((x - mean) ** 2 for x in values) / (len(values) - 1)


def _spread_free(values: Sequence[float]) -> bool:
    return len(values) < 2 or min(values) == max(values)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of Welch's t-test that a and b have the same mean (two rounds a side or
    more). With no spread on either side the means are exact: p is 0 if they differ."""
    if statistics.fmean(a) == statistics.fmean(b):
        return 1.0
    if _spread_free(a) and _spread_free(b):
        return 0.0
    return _welch(a, b, "two-sided")


def _welch(a: Sequence[float], b: Sequence[float], alternative: str) -> float:
    """Welch's t-test (scipy.stats.ttest_ind with equal_var=False, written out: the same p,
    without its per-call overhead, which simulations of thousands of runs pay)."""
    va, vb = variance(a) / len(a), variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (
        (va**2 / (len(a) - 1) if va else 0.0) + (vb**2 / (len(b) - 1) if vb else 0.0)
    )
    if alternative == "greater":
        return float(_t().sf(t, df))
    if alternative == "less":
        return float(_t().cdf(t, df))
    return float(2 * _t().sf(abs(t), df))


def beyond_p(
    old: Sequence[float],
    new: Sequence[float],
    threshold: float,
    higher_is_better: bool,
    floor: float = 0.0,
) -> float | None:
    """One-sided p of "NEW is worse than OLD by at most the threshold" (H0), so a small p
    says NEW is worse beyond it. The threshold is relative to OLD's mean; `floor` is an
    absolute least margin (error rates start at 0). With one value on a side, that side's
    spread is taken to be the other side's (a prediction test of one run against rounds);
    with one value on both sides there is nothing to test: None."""
    if len(old) < 2 and len(new) < 2:
        return None
    # NEW against the edge of what is allowed: OLD moved by the threshold in the bad way.
    if higher_is_better:
        edge = [x * (1 - threshold) for x in old]
        alternative = "less"
    else:
        margin = max(threshold * statistics.fmean(old), floor) if floor else 0.0
        edge = [x + margin for x in old] if floor else [x * (1 + threshold) for x in old]
        alternative = "greater"
    gap = statistics.fmean(new) - statistics.fmean(edge)
    bad = gap < 0 if higher_is_better else gap > 0
    if _spread_free(old) and _spread_free(new):
        return 0.0 if bad else 1.0
    if len(old) >= 2 and len(new) >= 2:
        return _welch(new, edge, alternative)
    # One run against rounds: its own spread is the rounds' (scaled like them).
    rounds, one = (edge, new) if len(old) >= 2 else (new, edge)
    sd = math.sqrt(variance(rounds))
    if sd == 0:
        return 0.0 if bad else 1.0
    t = gap / (sd * math.sqrt(1 + 1 / len(rounds)))
    df = len(rounds) - 1
    return float(_t().cdf(t, df) if higher_is_better else _t().sf(t, df))


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
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


@functools.lru_cache(maxsize=4096)
def _factor(n_a: int, n_b: int, tests: int, alpha: float, power: float, sides: int = 2) -> float:
    """(t at the test's level + t at the power), times the spread of a difference of means
    for a unit standard deviation: the detectable difference in standard deviations."""
    df = max(n_a + n_b - 2, 1)
    level = alpha / max(tests, 1)
    return float(
        (_t().ppf(1 - level / sides, df) + _t().ppf(power, df)) * math.sqrt(1 / n_a + 1 / n_b)
    )


def detectable(
    sd: float,
    n_a: int,
    n_b: int,
    tests: int,
    alpha: float = ALPHA,
    power: float = POWER,
    sides: int = 2,
) -> float | None:
    """The smallest difference of means (in the figure's unit) that rounds with this
    standard deviation would find with probability `power`, at the strictest level of a
    Holm family of `tests` (`sides`=1 for a one-sided test). None with one value a side."""
    if n_a + n_b < 3 or min(n_a, n_b) < 1:
        return None
    return _factor(n_a, n_b, tests, alpha, power, sides) * sd


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The rounds' standard deviation, from every side that has two rounds or more."""
    variances = [variance(x) for x in (a, b) if len(x) >= 2]
    return math.sqrt(statistics.fmean(variances)) if variances else None


def rounds_for(
    cv: float, difference: float, tests: int, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Rounds a side to detect a relative `difference` (0.10 for 10%) when a round's
    figure varies with coefficient of variation `cv`; None beyond 200 rounds."""
    if cv <= 0:
        return 2
    for n in range(2, 201):
        if _factor(n, n, tests, alpha, power) * cv <= difference:
            return n
    return None


def ratio_interval(
    top: Sequence[float], bottom: Sequence[float], level: float = 0.95
) -> tuple[float, float] | None:
    """The `level` confidence interval of mean(top) / mean(bottom) from two sides' rounds:
    the log of the ratio +- Student's t (Welch's degrees of freedom) times its standard
    error by the delta method. A percentile bootstrap on 5 rounds a side covered the true
    ratio only ~89% of the time for a nominal 95% (tests/micro/test_findings_duel.py); this
    one keeps its level. None with fewer than two rounds on a side or a mean at or below 0."""
    if len(top) < 2 or len(bottom) < 2:
        return None
    m_top, m_bottom = statistics.fmean(top), statistics.fmean(bottom)
    if m_top <= 0 or m_bottom <= 0:
        return None
    # The variance of log(mean) is about var / (n mean^2).
    v_top = variance(top) / (len(top) * m_top**2)
    v_bottom = variance(bottom) / (len(bottom) * m_bottom**2)
    centre = math.log(m_top / m_bottom)
    if v_top + v_bottom == 0:
        return (math.exp(centre), math.exp(centre))
    df = (v_top + v_bottom) ** 2 / (v_top**2 / (len(top) - 1) + v_bottom**2 / (len(bottom) - 1))
    half = float(_t().ppf(1 - (1 - level) / 2, df)) * math.sqrt(v_top + v_bottom)
    return (math.exp(centre - half), math.exp(centre + half))
