"""Simulated rounds, no stack: is the error rate of loadlab's verdicts what the pages say?

Two stacks drawn from one distribution, many times over: `--repeat`'s verdicts and
`compare` may call a difference real in at most 5% of the trials (the familywise level),
within sampling error. And on a known shift beyond the threshold, the power at 5 and 10
rounds is measured; docs/statistics.md quotes it (checked here).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from loadlab import ROOT
from loadlab.analysis import change, repeats

TRIALS = 1000
LEVEL = 0.05
# Three standard deviations of a share estimated from TRIALS trials at 5%.
SLACK = 3 * math.sqrt(LEVEL * (1 - LEVEL) / TRIALS)


def _rounds(rng: np.random.Generator, n: int, p99: float = 500.0, cv: float = 0.10,
            rps: float = 700.0) -> dict[str, Any]:  # fmt: skip
    """n rounds of one stack: a shared slow-or-fast factor per round (the machine's drift)
    moves every latency together, latencies skewed (log-normal), throughput against them."""
    rows = []
    for _ in range(n):
        drift = rng.lognormal(0.0, cv)
        rows.append({
            "throughput_rps": rps / drift * rng.normal(1, 0.02),
            "latency_ms": {"p50": p99 / 4 * drift * rng.lognormal(0, 0.03),
                           "p95": p99 / 2 * drift * rng.lognormal(0, 0.05),
                           "p99": p99 * drift * rng.lognormal(0, cv)},
            "error_rate": float(rng.poisson(2)) / 20_000,
        })  # fmt: skip
    return {**rows[0], "rounds": rows}


def _said_real(sentences: list[str]) -> bool:
    return any("beyond round-to-round noise" in s for s in sentences)


@pytest.mark.parametrize("stacks", [2, 3])
def test_repeat_calls_no_more_than_5_percent_of_a_a_trials_real(stacks: int) -> None:
    rng = np.random.default_rng(19 + stacks)
    false = sum(
        _said_real(repeats.verdicts({f"s{k}": _rounds(rng, 5) for k in range(stacks)}))
        for _ in range(TRIALS)
    )
    assert false / TRIALS <= LEVEL + SLACK, false


@pytest.mark.parametrize("threshold", [0.0, 0.05])
def test_compare_calls_no_more_than_5_percent_of_a_a_trials_a_regression(
    threshold: float,
) -> None:
    rng = np.random.default_rng(7)
    false = 0
    for _ in range(TRIALS):
        old = {"variants": {"a": _rounds(rng, 5), "b": _rounds(rng, 5)}}
        new = {"variants": {"a": _rounds(rng, 5), "b": _rounds(rng, 5)}}
        false += any(c.regression for c in change.run_changes(old, new, threshold))
    assert false / TRIALS <= LEVEL + SLACK, false
    if threshold:  # a margin to clear as well as noise: far fewer
        assert false / TRIALS <= LEVEL / 2


def power(rounds: int, shift: float, threshold: float, cv: float, trials: int = 400) -> float:
    """The share of trials in which `compare` flags p99 when NEW's p99 is `shift` worse
    (relative) than OLD's, with the round-to-round spread `cv`, at `threshold`."""
    rng = np.random.default_rng(rounds)
    found = 0
    for _ in range(trials):
        old = {"variants": {"a": _rounds(rng, rounds, cv=cv)}}
        new = {"variants": {"a": _rounds(rng, rounds, p99=500.0 * (1 + shift), cv=cv)}}
        found += any(
            c.regression and c.figure == "p99 latency"
            for c in change.run_changes(old, new, threshold)
        )
    return found / trials


def test_power_on_a_shift_beyond_the_threshold_is_what_the_docs_say() -> None:
    """p99 30% worse, threshold 10%, a round's p99 varying by about 14% (drift and the p99's
    own spread): more rounds find it more often, and docs/statistics.md quotes the figures."""
    five, ten = power(5, 0.30, 0.10, 0.10), power(10, 0.30, 0.10, 0.10)
    assert 0 < five < ten <= 1
    text = (ROOT / "docs" / "statistics.md").read_text()
    quoted = re.search(
        r"found it in (\d+)% of trials with 5 rounds a side and (\d+)% with 10", text
    )
    assert quoted, "docs/statistics.md lost its power sentence"
    assert (int(quoted[1]), int(quoted[2])) == (round(100 * five), round(100 * ten))


def test_the_docs_figures_are_reproducible() -> None:
    """The simulation is seeded: the same figures every time (so the docs can quote them)."""
    assert power(5, 0.30, 0.10, 0.10, trials=50) == power(5, 0.30, 0.10, 0.10, trials=50)


if __name__ == "__main__":  # prints the figures docs/statistics.md quotes
    print(f"power at 5 rounds: {power(5, 0.30, 0.10, 0.10):.0%}")
    print(f"power at 10 rounds: {power(10, 0.30, 0.10, 0.10):.0%}")
