"""Figures the docs quote from committed reports are generated, never typed: the page must
hold exactly what the reports' JSON gives today."""

from __future__ import annotations

import json
import re
from pathlib import Path

from loadlab import ROOT, bench
from loadlab.analysis import agreement, noise
from loadlab.report import results as results_page

STATISTICS = ROOT / "docs" / "statistics.md"
BLOCK = re.compile(r"<!-- generated: noise.table -->\n(.*?)<!-- end -->", re.S)


# A report's page, or the summary `evidence --retire` kept of it in reports/history/.
CALIBRATIONS = re.compile(r"\(\.\./reports/(?:history/)?([^/]+?)(?:/index\.html|\.json)\)")


def _calibration_block() -> str:
    found = BLOCK.search(STATISTICS.read_text())
    assert found, "docs/statistics.md lost its generated calibration table"
    return found[1]


def test_the_calibration_table_is_the_reports_own() -> None:
    block = _calibration_block()
    folders = CALIBRATIONS.findall(block)
    assert folders, "the table names no report"
    expected = noise.table(ROOT / "reports", folders)
    assert block == expected, f"regenerate the table in docs/statistics.md:\n{expected}"


def test_a_figure_changed_by_hand_fails(tmp_path: object) -> None:
    """The check above is not vacuous: one digit changed in the table no longer matches."""
    block = _calibration_block()
    folders = CALIBRATIONS.findall(block)
    changed = re.sub(r"\| (\d)", lambda m: f"| {(int(m[1]) + 1) % 10}", block, count=1)
    assert changed != block
    assert changed != noise.table(ROOT / "reports", folders)


README = ROOT / "README.md"
DUELS = re.compile(r"<!-- generated: agreement.table -->\n(.*?)<!-- end -->", re.S)


def _duels_block() -> tuple[str, list[str]]:
    found = DUELS.search(README.read_text())
    assert found, "README.md lost its generated table of the three headline duels"
    # A run's page, or the summary `evidence --retire` kept of it.
    folders = re.findall(r"\]\(reports/(?:history/)?([^/]+?)(?:/index\.html|\.json)\)", found[1])
    assert len(folders) >= 3, "the table names fewer than three duels"
    return found[1], folders


def test_the_three_duels_table_is_the_reports_own() -> None:
    block, folders = _duels_block()
    expected = agreement.table(ROOT / "reports", folders)
    assert block == expected, f"regenerate the duels table in README.md:\n{expected}"


def test_a_duel_figure_changed_by_hand_fails() -> None:
    block, folders = _duels_block()
    changed = re.sub(r"(\d),(\d)", lambda m: f"{(int(m[1]) + 1) % 10},{m[2]}", block, count=1)
    assert changed != block
    assert changed != agreement.table(ROOT / "reports", folders)


BENCH = re.compile(r"<!-- generated: bench.quoted -->\n(.*?)<!-- end -->", re.S)


def test_the_bench_table_is_the_reports_own() -> None:
    found = BENCH.search((ROOT / "docs" / "reading-a-report.md").read_text())
    assert found, "docs/reading-a-report.md lost its generated bench table"
    folder = re.findall(r"\]\(\.\./reports/([^/]+)/bench\.json\)", found[1])[0]
    expected = bench.quoted(ROOT / "reports", folder, "../reports/")
    assert found[1] == expected, f"regenerate the bench table in the page:\n{expected}"
    changed = found[1].replace("0.", "1.", 1)
    assert changed != expected  # a figure changed by hand would fail the check above


DISTRIBUTED = ROOT / "docs" / "distributed.md"
COMPOSE_RUN = re.compile(r"<!-- compose-run: reports/([^ ]+) -->\n(.*?)<!-- end -->", re.S)


def _shown_lines_are_the_reports(folder: str, block: str) -> dict:
    """A run's output quoted in the docs: its closing lines (flags, each stack's figures,
    faults, verdicts, the ceiling) are what its committed report's JSON gives; returns the
    report's summary."""
    from loadlab.duel import closing_lines

    summary = json.loads((ROOT / "reports" / folder / "summary.json").read_text())
    shown = block.splitlines()
    missing = [line for line in closing_lines(summary) if line not in shown]
    assert missing == [], f"reports/{folder}: the quoted output lacks these lines"
    return summary


def test_the_compose_runs_output_is_its_reports_own() -> None:
    """docs/distributed.md shows a real `--profile load` run's output, and the image it ran
    in was built from a commit with no uncommitted changes."""
    found = COMPOSE_RUN.search(DISTRIBUTED.read_text())
    assert found, "docs/distributed.md lost the output of its compose run"
    folder, block = found[1], found[2]
    summary = _shown_lines_are_the_reports(folder, block)
    commit = summary["environment"]["git_commit"]
    assert commit != "unknown" and "uncommitted" not in commit, commit
    assert f"/reports/{folder}/index.html" in block


HEADLINE_RUN = re.compile(r"<!-- headline-run: reports/([^ ]+) -->\n(.*?)<!-- end -->", re.S)


def test_the_readmes_headline_output_is_its_reports_own() -> None:
    """The README quotes `make loadtest`'s output: its closing lines are its report's, and
    the report is the headline `make evidence` made last."""
    found = HEADLINE_RUN.search(README.read_text())
    assert found, "README.md lost the output of its headline run"
    folder, block = found[1], found[2]
    _shown_lines_are_the_reports(folder, block)
    assert f"/reports/{folder}/index.html" in block
    manifest = json.loads((ROOT / "reports" / "evidence.json").read_text())
    headline = next(e for e in manifest["experiments"] if e["name"] == "headline")
    assert f"reports/{folder}/index.html" in headline["reports"]


def test_a_changed_line_of_a_quoted_output_fails() -> None:
    found = HEADLINE_RUN.search(README.read_text())
    assert found
    block = found[2]
    line = next(x for x in block.splitlines() if " req/s  p50 " in x)
    changed = block.replace(line, line.replace(" req/s", "0 req/s", 1))
    try:
        _shown_lines_are_the_reports(found[1], changed)
    except AssertionError:
        return
    raise AssertionError("a figure changed in the quoted output went unseen")


def _evidence_pages() -> list[tuple[Path, str]]:

    pages = [(p, p.read_text()) for p in sorted((ROOT / "docs").glob("*.md"))]
    return [(p, text) for p, text in pages if results_page.BLOCK.search(text)]


def test_every_evidence_block_in_the_docs_is_the_reports_own() -> None:
    """Each `<!-- generated: evidence NAME -->` block holds what the committed reports of
    that experiment give today (evidence --results writes them)."""

    pages = _evidence_pages()
    assert len(pages) >= 4, "the docs lost their generated evidence blocks"
    for page, text in pages:
        assert results_page.fill_blocks(text) == text, (
            f"{page.name}: regenerate with `python -m loadlab evidence --results`"
        )


def test_an_evidence_figure_changed_by_hand_fails() -> None:

    page, text = next((p, t) for p, t in _evidence_pages() if "| flask_sync |" in t)
    start = text.index("| flask_sync |")
    changed = text[:start] + re.sub(
        r"\d", lambda m: str((int(m[0]) + 1) % 10), text[start:], count=1
    )
    assert changed != text and results_page.fill_blocks(changed) != changed, page.name


STORY_BLOCK = re.compile(r"<!-- generated: story headline -->\n(.*?)<!-- end -->", re.S)


def test_the_readmes_story_of_the_headline_is_its_reports_own() -> None:

    text = README.read_text()
    found = STORY_BLOCK.search(text)
    assert found, "README.md lost its generated story of the headline run"
    assert results_page.fill_blocks(text) == text, (
        "regenerate: python -m loadlab evidence --results"
    )
    start = found.start(1) + found[1].index("- ")  # past the link line, into the bullets
    changed = text[:start] + re.sub(
        r"\d", lambda m: str((int(m[0]) + 1) % 10), text[start:], count=1
    )
    assert results_page.fill_blocks(changed) != changed


TAILS_BLOCK = re.compile(r"<!-- generated: tails all-stacks -->\n(.*?)<!-- end -->", re.S)


def test_where_each_stacks_tail_was_is_its_reports_own() -> None:
    """The table of each stack's parts (pool wait, queue, SQL...) in best-against-best.md is
    made from the all-stacks report, a row per stack, and a digit changed by hand fails."""
    page = ROOT / "docs" / "best-against-best.md"
    text = page.read_text()
    found = TAILS_BLOCK.search(text)
    assert found, "docs/best-against-best.md lost its generated table of the stacks' tails"
    assert results_page.fill_blocks(text) == text, "regenerate: evidence --results"
    rows = [line for line in found[1].splitlines() if line.startswith("| fastapi_async |")]
    assert len(rows) == 1 and rows[0].endswith("|"), found[1]
    start = text.index(rows[0])
    changed = text[:start] + re.sub(
        r"\d", lambda m: str((int(m[0]) + 1) % 10), text[start:], count=1
    )
    assert results_page.fill_blocks(changed) != changed
