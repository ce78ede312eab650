"""The per-second verdicts, on constructed timelines."""

from __future__ import annotations

from typing import Any

from loadlab.analysis.compare import verdicts


def _variant(p99s: list[float], whole_p99: float) -> dict[str, Any]:
    timeline = [{"p50_ms": 10.0, "p99_ms": p, "rps": 100} for p in [0.0, *p99s, 0.0]]
    return {
        "timeline": timeline,
        "latency_ms": {"p50": 10.0, "p99": whole_p99},
        "throughput_rps": 100.0,
    }


def test_clear_difference_is_called_clear() -> None:
    (sentence,) = verdicts(
        {"a": _variant([100, 110, 120, 105], 120), "b": _variant([300, 310, 320, 305], 320)}
    )
    assert sentence.startswith("p99 latency in a typical second: a 107.5 ms vs b 307.5 ms")
    assert "do not overlap" in sentence and "reversed" not in sentence


def test_overlapping_seconds_are_called_noise() -> None:
    (sentence,) = verdicts(
        {"a": _variant([100, 200, 300, 150], 300), "b": _variant([120, 210, 290, 170], 290)}
    )
    assert "could be noise" in sentence


def test_a_whole_run_figure_ranking_the_other_way_is_said() -> None:
    (sentence,) = verdicts(
        {"a": _variant([100, 110, 120, 105], 900), "b": _variant([300, 310, 320, 305], 320)}
    )
    assert "the ranking is reversed (a 900.0 vs b 320.0 ms)" in sentence
