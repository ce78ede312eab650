"""A verdict holds across repeated duels only when every one reached it, the same way."""

from __future__ import annotations

from loadlab.analysis import agreement
from loadlab.analysis.repeats import Judgement


def _judged(better: str, real: bool) -> Judgement:
    side = {"n": 5, "mean": 1.0, "ci95": [0.9, 1.1]}
    worse = "fastapi_async" if better == "flask_sync" else "flask_sync"
    return Judgement("p99", "p99 latency", "ms", better, worse, side, side, 0.01, real, 5, 0.1)


def test_held_only_when_all_agree_in_direction_and_significance() -> None:
    assert agreement._held([_judged("flask_sync", True)] * 3) == "held in all 3: Flask better"
    flipped = [_judged("flask_sync", True), _judged("fastapi_async", True)]
    assert agreement._held(flipped).startswith("**did not hold**")
    one_noise = [_judged("flask_sync", True), _judged("flask_sync", False)]
    assert agreement._held(one_noise) == "**did not hold**: Flask better, noise"
    assert agreement._held([_judged("flask_sync", False)] * 3).startswith("no difference")


def _stack(p99: float) -> dict[str, object]:
    """A stack's five rounds with a p99 near `p99` (a jitter of 1%) and nothing else apart."""
    from loadlab.analysis import repeats

    rounds = [
        {
            "throughput_rps": 500.0 + k,
            "latency_ms": {"p50": 50.0 + k, "p95": 90.0 + k, "p99": p99 * (1 + k / 100)},
            "error_rate": 0.0,
        }
        for k in (-2, -1, 0, 1, 2)
    ]
    return repeats.with_rounds(rounds)


def _row(rows: list[str], label: str) -> list[str]:
    return [c.strip() for c in next(r for r in rows if r.startswith(f"| {label} |")).split("|")]


def test_pairs_held_says_which_orderings_every_run_reached_and_which_reversed() -> None:
    one = {"variants": {"a": _stack(100), "b": _stack(200), "c": _stack(150)}}
    two = {"variants": {"a": _stack(100), "b": _stack(200), "c": _stack(300)}}
    rows = agreement.pairs_held([one, two])
    _, _, held, some, reversed_, noise, _ = _row(rows, "p99 latency")
    assert held == "a over b (2 of 2), a over c (2 of 2)"
    assert some == "none"
    assert reversed_ == "b / c"  # c beat b in one run and lost to it in the other
    assert _row(rows, "throughput")[5] == "3 pair(s)"  # equal rounds: noise, never a verdict
    three = {"variants": {"a": _stack(100), "b": _stack(100)}}
    rows = agreement.pairs_held([one, two, three])
    _, _, held, some, *_ = _row(rows, "p99 latency")
    assert held == "a over c (2 of 2)"
    assert some == "a over b (2 of 3)"
