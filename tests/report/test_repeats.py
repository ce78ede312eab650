"""Repeated rounds: intervals, Welch's test and Holm's family, verdicts and per-round flags, on
constructed figures (the real repeated run is in tests/load/test_run.py)."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest

from loadlab.analysis import repeats, significance
from loadlab.report.writer import flags


@pytest.mark.parametrize(
    ("n", "t"),
    # Student's t at 97.5% from printed tables, for 2, 9, 30 and 40 degrees of freedom: the
    # old hand-written table stopped at 30 and used the normal 1.96 beyond.
    [(3, 4.303), (10, 2.262), (31, 2.042), (41, 2.021)],
)
def test_interval_is_the_t_interval_of_the_mean(n: int, t: float) -> None:
    values = [10.0, 12.0] * (n // 2) + [11.0] * (n % 2)
    i = repeats.interval(values)
    sd = statistics.stdev(values)
    assert (i["n"], i["mean"], i["min"], i["max"]) == (n, 11.0, 10.0, 12.0)
    assert i["ci95"] == pytest.approx(
        [11.0 - t * sd / math.sqrt(n), 11.0 + t * sd / math.sqrt(n)], abs=2e-3
    )


def test_interval_is_not_cut_at_zero() -> None:
    """With three rounds of 1, 2 and 3 the mean is pinned down only to 2 +- 2.48: a lower
    end below 0 says so; cutting it at 0 hid it."""
    i = repeats.interval([1.0, 2.0, 3.0])
    assert i["ci95"] == pytest.approx(
        [2.0 - 4.303 / math.sqrt(3), 2.0 + 4.303 / math.sqrt(3)], abs=1e-3
    )
    assert i["ci95"][0] < 0


def test_one_value_has_no_interval() -> None:
    assert repeats.interval([5.0])["ci95"] is None


def test_more_rounds_narrow_the_interval() -> None:
    few = repeats.interval([10.0, 12.0, 11.0, 13.0])
    many = repeats.interval([10.0, 12.0, 11.0, 13.0] * 4)
    assert many["ci95"][1] - many["ci95"][0] < few["ci95"][1] - few["ci95"][0]


def _round(p99: float, rps: float = 100.0, holds: bool = True) -> dict[str, Any]:
    return {
        "requests": 1000,
        "failures": 0,
        "error_rate": 0.0,
        "errors": {},
        "throughput_rps": rps,
        "latency_ms": {"p50": p99 / 3, "p95": p99 / 1.5, "p99": p99},
        "locust_requests": 1000,
        "integrity": [{"request": "visit", "acknowledged": 9, "applied": 9, "in_doubt": 0,
                       "holds": holds}],
        "generator_saturated": False,
        "machine_cpu_mean": 50.0,
    }  # fmt: skip


def _variant(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return repeats.with_rounds(rounds)


def test_with_rounds_keeps_round_one_and_adds_the_means() -> None:
    v = _variant([_round(100.0), _round(200.0), _round(300.0)])
    assert v["latency_ms"]["p99"] == 100.0  # round 1 in full
    assert [r["latency_ms"]["p99"] for r in v["rounds"]] == [100.0, 200.0, 300.0]
    assert v["across_rounds"]["p99"]["mean"] == 200.0
    assert set(v["across_rounds"]) == {m[0] for m in repeats.METRICS}
    assert "rounds" not in _variant([_round(100.0)])


def test_verdict_names_the_better_variant_when_rounds_separate() -> None:
    a = _variant([_round(p) for p in (100, 110, 105, 95, 102)])
    b = _variant([_round(p) for p in (300, 310, 305, 295, 302)])
    p99 = next(s for s in repeats.verdicts({"a": a, "b": b}) if s.startswith("p99"))
    assert p99.startswith("p99 latency: a 102.4 ms vs b 302.4 ms (mean of 5 and 5 rounds")
    assert "Welch's t-test p < 0.0001" in p99 and "a is better" in p99
    assert "over the 5 tests of this run, Holm" in p99


def test_five_rounds_can_decide_a_family_of_ten() -> None:
    """The exact permutation test on 5 rounds a side can never go below 2/252 = 0.0079,
    above 0.05/10: a correct family of ten could never decide. Welch's t can."""
    names = ("a", "b", "c")  # 3 pairs x 5 figures = 15 tests
    found = repeats.verdicts(
        {n: _variant([_round(100.0 * (k + 1) + p) for p in (0, 4, 2, 6, 3)])
         for k, n in enumerate(names)}
    )  # fmt: skip
    p99s = [s for s in found if s.startswith("p99")]
    assert len(p99s) == 3 and all("is better, beyond" in s for s in p99s)
    assert all("over the 15 tests of this run" in s for s in p99s)


def test_three_stacks_get_a_verdict_for_every_pair() -> None:
    a = _variant([_round(p) for p in (100, 110, 105, 95, 102)])
    b = _variant([_round(p) for p in (300, 310, 305, 295, 302)])
    c = _variant([_round(p) for p in (101, 109, 104, 96, 103)])
    found = [s for s in repeats.verdicts({"a": a, "b": b, "c": c}) if s.startswith("p99")]
    assert len(found) == 3
    assert any(s.startswith("p99 latency: a") and "vs b" in s and "a is better" in s
               for s in found)  # fmt: skip
    assert any(s.startswith("p99 latency: c") and "vs b" in s and "c is better" in s
               for s in found)  # fmt: skip
    a_vs_c = next(s for s in found if " vs a " in s or " vs c " in s)
    assert "not distinguishable from round-to-round noise" in a_vs_c


def test_holm_shares_the_level_over_the_figures() -> None:
    # Thresholds 0.05/3, 0.05/2, 0.05/1 for the smallest, next and largest p.
    assert significance.holm([0.01, 0.02, 0.04]) == [True, True, True]
    assert significance.holm([0.02, 0.01, 0.04]) == [True, True, True]
    assert significance.holm([0.02, 0.03, 0.04]) == [False, False, False]  # 0.02 > 0.0167
    assert significance.holm([0.001, 0.03, 0.04]) == [True, False, False]  # 0.03 > 0.025
    assert significance.holm([0.04]) == [True]


def test_figures_with_equal_means_stay_in_the_family() -> None:
    """Only p99 differs. Holm's family is the 5 figures declared beforehand, not the 1 that
    happened to differ: p = 0.02 passes 0.05 alone but not 0.05/5."""
    a = _variant([_round(100.0) for _ in range(4)])
    b = _variant([_round(100.0) for _ in range(4)])
    for r, p99 in zip(a["rounds"], (100.0, 120.0, 90.0, 110.0), strict=True):
        r["latency_ms"] = {**r["latency_ms"], "p99": p99}
    for r, p99 in zip(b["rounds"], (130.0, 140.0, 125.0, 135.0), strict=True):
        r["latency_ms"] = {**r["latency_ms"], "p99": p99}
    p = significance.welch_p([100, 120, 90, 110], [130, 140, 125, 135])
    assert 0.01 < p < 0.05
    (p99,) = repeats.verdicts({"a": a, "b": b})
    assert p99.startswith("p99 latency: a 105.0 ms")
    assert "not distinguishable" in p99 and "(80% power, 5 tests)" in p99


def test_verdict_calls_overlapping_rounds_noise_and_says_what_it_could_see() -> None:
    a = _variant([_round(p) for p in (100, 300, 200, 250, 150)])
    b = _variant([_round(p) for p in (120, 290, 210, 240, 160)])
    p99 = next(s for s in repeats.verdicts({"a": a, "b": b}) if s.startswith("p99"))
    assert "not distinguishable from round-to-round noise" in p99
    seen = significance.detectable(
        math.sqrt((statistics.variance([100, 300, 200, 250, 150])
                   + statistics.variance([120, 290, 210, 240, 160])) / 2), 5, 5, 5
    )  # fmt: skip
    assert seen is not None
    assert f"could have detected a difference of {seen / 202:.0%} or more" in p99


def test_a_broken_rule_in_any_round_fails_the_run() -> None:
    v = _variant([_round(100.0), _round(100.0, holds=False)])
    (flag,) = flags({"flask_sync": v})
    assert flag.startswith("FAIL flask_sync round 2: integrity broken")


def test_a_busy_machine_is_said_once_with_its_rounds() -> None:
    rounds = [_round(100.0) for _ in range(4)]
    rounds[1]["machine_cpu_mean"], rounds[3]["machine_cpu_mean"] = 95.0, 91.0
    (flag,) = flags({"fastapi_async": _variant(rounds)})
    assert flag.startswith("fastapi_async (in 2 of 4 rounds: 2, 4): the whole machine was 91-95%")


def test_a_busy_share_that_rounds_to_one_figure_is_said_once() -> None:
    rounds = [_round(100.0) for _ in range(2)]
    rounds[0]["machine_cpu_mean"], rounds[1]["machine_cpu_mean"] = 99.6, 99.9
    (flag,) = flags({"a": _variant(rounds)})
    assert "the whole machine was 100% busy" in flag


def test_open_runs_leave_the_scheduled_throughput_out_of_the_family() -> None:
    """Open model: the schedule sets the throughput, so no throughput verdict, and Holm's
    family is the 4 other figures."""
    opened = {"offered_rps": 100.0, "achieved_rps": 100.0}
    a = _variant([{**_round(100.0 + n, rps=100.0 + n), **opened} for n in range(5)])
    b = _variant([{**_round(200.0 + n, rps=90.0 - n), **opened} for n in range(5)])
    found = repeats.verdicts({"a": a, "b": b})
    assert not any(s.startswith("throughput") for s in found)
    p99 = next(s for s in found if s.startswith("p99 latency"))
    assert "over the 4 tests of this run" in p99


def test_welch_is_scipys_welch() -> None:
    """significance writes Welch's test out (speed); it must give scipy's p exactly."""
    from scipy import stats

    rng = random.Random(3)
    for _ in range(100):
        a = [rng.gauss(10, 2) for _ in range(rng.randint(2, 8))]
        b = [rng.gauss(11, rng.choice([0.5, 3.0])) for _ in range(rng.randint(2, 8))]
        assert significance.welch_p(a, b) == pytest.approx(
            stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9
        )


def test_no_spread_on_either_side_is_exact() -> None:
    assert significance.welch_p([0.0, 0.0, 0.0], [0.0, 0.0]) == 1.0
    assert significance.welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0
