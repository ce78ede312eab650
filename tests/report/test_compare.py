"""One run's sentences on two variants, on constructed timelines: figures, never a verdict."""

from __future__ import annotations

from typing import Any

from loadlab.analysis.compare import ONE_RUN, verdicts


def _variant(p99s: list[float], whole_p99: float) -> dict[str, Any]:
    timeline = [{"p50_ms": 10.0, "p99_ms": p, "rps": 100} for p in [0.0, *p99s, 0.0]]
    return {
        "timeline": timeline,
        "latency_ms": {"p50": 10.0, "p99": whole_p99},
        "throughput_rps": 100.0,
    }


def test_seconds_far_apart_still_give_no_verdict() -> None:
    """Seconds that never overlap were called 'beyond the spread': per-second values are
    autocorrelated, so one run says which is higher and that a verdict needs rounds."""
    sentence, closing = verdicts(
        {"a": _variant([100, 110, 120, 105], 120), "b": _variant([300, 310, 320, 305], 320)}
    )
    assert sentence.startswith("p99 latency in a typical second: a 107.5 ms vs b 307.5 ms")
    for verdict_words in ("do not overlap", "could be noise", "better", "real"):
        assert verdict_words not in sentence
    assert closing == ONE_RUN and "not a verdict" in closing and "--repeat" in closing


def test_a_whole_run_figure_ranking_the_other_way_is_said() -> None:
    sentence, _ = verdicts(
        {"a": _variant([100, 110, 120, 105], 900), "b": _variant([300, 310, 320, 305], 320)}
    )
    assert "the ranking is reversed (a 900.0 vs b 320.0 ms)" in sentence


def test_equal_figures_say_nothing() -> None:
    assert verdicts({"a": _variant([100, 100], 100), "b": _variant([100, 100], 100)}) == []
