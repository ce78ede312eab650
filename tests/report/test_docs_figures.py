"""Figures the docs quote from committed reports are generated, never typed: the page must
hold exactly what the reports' JSON gives today."""

from __future__ import annotations

import re

from loadlab import ROOT
from loadlab.analysis import noise

STATISTICS = ROOT / "docs" / "statistics.md"
BLOCK = re.compile(r"<!-- generated: noise.table -->\n(.*?)<!-- end -->", re.S)


def _calibration_block() -> str:
    found = BLOCK.search(STATISTICS.read_text())
    assert found, "docs/statistics.md lost its generated calibration table"
    return found[1]


def test_the_calibration_table_is_the_reports_own() -> None:
    block = _calibration_block()
    folders = re.findall(r"\(\.\./reports/([^/]+)/index\.html\)", block)
    assert folders, "the table names no report"
    expected = noise.table(ROOT / "reports", folders)
    assert block == expected, f"regenerate the table in docs/statistics.md:\n{expected}"


def test_a_figure_changed_by_hand_fails(tmp_path: object) -> None:
    """The check above is not vacuous: one digit changed in the table no longer matches."""
    block = _calibration_block()
    folders = re.findall(r"\(\.\./reports/([^/]+)/index\.html\)", block)
    changed = re.sub(r"\| (\d)", lambda m: f"| {(int(m[1]) + 1) % 10}", block, count=1)
    assert changed != block
    assert changed != noise.table(ROOT / "reports", folders)
