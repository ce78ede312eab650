"""The README's story of the headline run: every figure from the run's summary.json."""

from __future__ import annotations

import copy
import json

from loadlab import ROOT
from loadlab.report import story


def _headline() -> dict:
    manifest = json.loads((ROOT / "reports" / "evidence.json").read_text())
    page = next(e for e in manifest["experiments"] if e["name"] == "headline")["reports"][-1]
    return json.loads((ROOT / page).with_name("summary.json").read_text())


def test_each_stacks_median_and_the_articles_are_told() -> None:
    summary = _headline()
    said = story.bullets(summary)
    for name, v in summary["variants"].items():
        assert f"{story._ms(v['latency_ms']['p50'])} ms for {story.SHORT[name]}" in said
    assert said.count("\n- ") + 1 == said.count("- ")  # one line per bullet


def test_failed_requests_are_counted_not_hidden() -> None:
    summary = copy.deepcopy(_headline())
    flask = summary["variants"]["flask_sync"]
    flask["failures"], flask["error_rate"] = 12, 12 / flask["requests"]
    said = story.bullets(summary)
    assert "Neither stack failed" not in said
    assert f"Flask 12 of {flask['requests']:,}" in said


def test_the_part_with_the_largest_p99_is_named_as_the_tail() -> None:
    summary = copy.deepcopy(_headline())
    server = summary["variants"]["fastapi_async"]["server_ms"]
    server["rest"]["p99"] = 10 * max(p["p99"] for p in server.values())
    said = story.bullets(summary)
    assert "FastAPI's largest part of the tail: *rest of the app*" in said


def _stack(throughputs: list[float], p99s: list[float]) -> dict:
    from loadlab.analysis import repeats

    rounds = [
        {
            "requests": 1000,
            "failures": 0,
            "throughput_rps": rps,
            "latency_ms": {"p50": p99 / 4, "p95": p99 / 2, "p99": p99},
            "error_rate": 0.0,
        }
        for rps, p99 in zip(throughputs, p99s, strict=True)
    ]
    return repeats.with_rounds(rounds)


def test_the_ranking_names_the_best_what_it_beat_and_what_it_could_not_tell_apart() -> None:
    """Three stacks in six rounds: A and B within each other's noise, C far behind on
    throughput and far ahead on latency."""
    variants = {
        "a": _stack([500, 510, 490, 505, 495, 500], [900, 950, 870, 910, 930, 890]),
        "b": _stack([498, 515, 485, 500, 490, 507], [905, 940, 880, 900, 925, 895]),
        "c": _stack([300, 305, 295, 302, 298, 300], [300, 310, 290, 305, 295, 300]),
    }
    rows = {r.split(" | ")[0].lstrip("| "): r for r in story.ranking(variants)[2:]}
    assert rows["throughput"].startswith("| throughput | a 500.0 req/s | c 300.0 req/s | b ")
    assert rows["p99 latency"].startswith("| p99 latency | c 300.0 ms | b 907.5 ms, a 908.3 ms |")
    assert rows["p99 latency"].endswith("| none |")
    assert rows["error rate"] == "| error rate | every stack 0.00% | | |"
