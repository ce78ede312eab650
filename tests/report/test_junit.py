"""--junit: the checks of a run, a sweep or a comparison as JUnit XML, failed exactly as the
command's exit code is."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from loadlab import ROOT
from loadlab.analysis import slo
from loadlab.report import junit, writer
from tests.cli import loadlab
from tests.report.test_change import _figures, _run


def _parsed(path: Path) -> tuple[ET.Element, dict[str, str | None]]:
    """The document, and each test case's name -> its failure message (None: passed)."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = {}
    for suite in root.iter("testsuite"):
        found = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(found)
        assert int(suite.get("failures", "-1")) == sum(c.find("failure") is not None for c in found)
        for case in found:
            failure = case.find("failure")
            cases[case.get("name", "")] = None if failure is None else failure.get("message")
    return root, cases


COMMITTED = sorted((ROOT / "reports").glob("*/summary.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_a_committed_report_fails_its_junit_exactly_when_it_failed(
    path: Path, tmp_path: Path
) -> None:
    summary = json.loads(path.read_text())
    cases, properties = junit.for_report(path.parent)
    failed = any(c.failed for c in cases)
    assert failed == bool(writer.failed(summary)), [c for c in cases if c.failed]
    _, parsed = _parsed(junit.write(tmp_path / "j.xml", "run", cases, properties))
    assert len(parsed) == len({c.name for c in cases})


def _variant(**overrides: Any) -> dict[str, Any]:
    v = {
        "requests": 1000,
        "failures": 0,
        "error_rate": 0.0,
        "locust_requests": 1000,
        "latency_ms": {"p50": 20.0, "p95": 60.0, "p99": 120.0},
        "throughput_rps": 300.0,
        "integrity": [
            {"request": "POST /users/[id]/visit", "acknowledged": 9, "applied": 9, "in_doubt": 0}
            | {"holds": True}
        ],
    }
    return v | overrides


def test_a_broken_gate_and_a_broken_rule_are_failed_cases_with_their_figures(
    tmp_path: Path,
) -> None:
    lost = {"request": "POST /orders", "acknowledged": 10, "applied": 9, "in_doubt": 0}
    variants = {
        "a": _variant(),
        "b": _variant(
            integrity=[lost | {"holds": False}],
            requests=999,
            latency_ms={"p50": 20.0, "p95": 60.0, "p99": 80.0},
        ),
    }
    summary = {"variants": variants, "slo": slo.check("p99<100ms,errors<1%", variants)}
    cases = junit.run_cases(summary)
    failing = [f for n, v in variants.items() for f in writer.run_failures(n, v)]
    failing += slo.failures(summary["slo"])
    assert sum(c.failed for c in cases) == len(failing) == 3
    _, parsed = _parsed(junit.write(tmp_path / "j.xml", "run", cases, {}))
    assert parsed["a: p99<100ms"] == "measured 120.00 ms, 20.00 ms past the limit"
    assert parsed["a: errors<1%"] is None and parsed["b: p99<100ms"] is None
    assert parsed["b: every acknowledged POST /orders applied"] == (
        "acknowledged 10, applied 9, in doubt 0"
    )
    assert "the exact recorder counted 999 requests, Locust 1,000" in (
        parsed["b: the figures stand"] or ""
    )
    assert parsed["a: the figures stand"] is None
    assert parsed["a: every acknowledged POST /users/[id]/visit applied"] is None


def _loadlab(*args: str) -> subprocess.CompletedProcess[str]:
    return loadlab(*args, timeout=120)


def test_compare_writes_each_tested_figure_and_fails_the_regression(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", {"flask_sync": _figures(700, 270, 540)})
    new = _run(tmp_path / "new", {"flask_sync": _figures(690, 280, 650)})  # p99 +20%
    out = tmp_path / "compare.xml"
    result = _loadlab("compare", str(old), str(new), "--junit", str(out))
    assert result.returncode == 1, result.stderr
    root, parsed = _parsed(out)
    assert root.get("failures") == "1"
    assert "540 -> 650 ms (+20.4%), threshold 10%" in (parsed["flask_sync: p99 latency"] or "")
    assert parsed["flask_sync: p50 latency"] is None


@pytest.mark.parametrize("command", ["run", "loadtest", "sweep", "compare"])
def test_junit_into_a_folder_that_does_not_exist_is_one_line_and_exit_2(
    command: str, tmp_path: Path
) -> None:
    args = ["a", "b"] if command == "compare" else ["--state-dir", str(tmp_path / "state")]
    result = _loadlab(command, *args, "--junit", str(tmp_path / "nowhere" / "j.xml"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--junit" in result.stderr, result.stderr
    assert not (tmp_path / "state").exists()  # nothing started
