"""summary.json, findings.json and bench.json keep their declared shape (report/schema.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.report import schema

COMMITTED = sorted(
    p
    for name in ("summary.json", "findings.json", "bench.json")
    for p in (ROOT / "reports").glob(f"*/{name}")
)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_report_validates(path: Path) -> None:
    schema.validate(json.loads(path.read_text()), str(path))


def test_the_docs_hold_the_models_schema() -> None:
    assert (ROOT / "docs" / "summary.schema.json").read_text() == schema.json_schema(), (
        "regenerate it: python -m loadlab report --schema > docs/summary.schema.json"
    )


def _newest_run() -> dict[str, Any]:
    runs = [p for p in COMMITTED if p.name == "summary.json"]
    for path in reversed(runs):
        document = json.loads(path.read_text())
        if document.get("kind", "run") == "run":
            return document
    raise AssertionError("no committed run")


@pytest.mark.parametrize(
    ("break_it", "said"),
    [
        (lambda d: d.pop("variants"), "at variants: Field required"),
        (lambda d: d["environment"].pop("git_commit"), "at environment.git_commit"),
        (
            lambda d: next(iter(d["variants"].values())).update(requests="many"),
            "at variants.",
        ),
        (lambda d: d.update(kind="mystery"), "unknown kind 'mystery'"),
    ],
)
def test_a_broken_report_is_one_line_naming_where(break_it: Any, said: str) -> None:
    document = copy.deepcopy(_newest_run())
    schema.validate(document, "summary.json")  # whole, it passes
    break_it(document)
    with pytest.raises(UsageError) as raised:
        schema.validate(document, "summary.json")
    assert said in str(raised.value) and "\n" not in str(raised.value)


def test_a_report_breaking_its_schema_is_never_published(tmp_path: Path) -> None:
    from loadlab.report import writer

    final = tmp_path / "run"
    tmp = writer.prepare_out(final)
    broken = copy.deepcopy(_newest_run())
    del broken["environment"]
    with pytest.raises(UsageError, match="run/summary.json breaks its schema at environment"):
        writer.publish(broken, tmp, final)
    assert not final.exists() and not (tmp / "summary.json").exists()


def test_a_published_summary_is_compact_and_whole(tmp_path: Path) -> None:
    """summary.json is for machines: no indentation (a third of a report's bytes went to
    it), and nothing lost in the writing."""
    from loadlab.report import writer

    final = tmp_path / "run"
    tmp = writer.prepare_out(final)
    run = _newest_run()
    writer.publish(copy.deepcopy(run), tmp, final)
    text = (final / "summary.json").read_text()
    assert "\n" not in text and '": ' not in text
    assert json.loads(text) == run
