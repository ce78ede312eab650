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
