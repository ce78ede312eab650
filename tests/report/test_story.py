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
        assert f"{v['latency_ms']['p50']:,.0f} ms for {story.SHORT[name]}" in said
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
