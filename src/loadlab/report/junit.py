"""`--junit FILE`: a run's, a sweep's or a comparison's checks as JUnit XML, the format every
CI system reads, so that a broken gate shows up as a failed test with its figure.

One test case per check that can fail: each gate (objective) of each stack and round; each
integrity rule (acknowledged writes applied, orders as answered, no half-written rows); each
round's "figures stand" (requests counted by both recorders, not mostly errors); each figure
`compare` tested. A case fails exactly when its check makes the command exit 1, and its
message says the measured value and the margin. Written whole, then moved into place.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab.errors import UsageError
from loadlab.report import writer


@dataclass(frozen=True)
class Case:
    suite: str  # gates, integrity, figures, regressions
    name: str
    detail: str  # the measured value and the margin, passed or failed
    failed: bool = False


def check_target(path: Path) -> None:
    """Said before anything starts: the file must be writable where it is asked for."""
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(f"--junit {path}: its folder does not exist (or it is a folder)")


def _which(name: str, number: int, rounds: int) -> str:
    return name if rounds == 1 else f"{name} round {number}"


def _gates(summary: dict[str, Any]) -> list[Case]:
    cases = []
    for r in summary.get("slo") or []:
        which = r["variant"] if r["round"] is None else f"{r['variant']} round {r['round']}"
        side = "within" if r["holds"] else "past"
        cases.append(
            Case(
                "gates",
                f"{which}: {r['objective']}",
                f"measured {r['value']:,.2f} {r['unit']}, {r['by']:,.2f} {r['unit']} {side} "
                "the limit",
                not r["holds"],
            )
        )
    return cases


def _integrity(which: str, v: dict[str, Any], over: str = "") -> list[Case]:
    cases = [
        Case(
            "integrity",
            f"{which}: every acknowledged {c['request']} applied{over}",
            f"acknowledged {c['acknowledged']:,}, applied {c['applied']:,}, in doubt "
            f"{c['in_doubt']:,}",
            not c["holds"],
        )
        for c in v.get("integrity") or []
    ]
    cases += [
        Case("integrity", f"{which}: no half-written {what}", f"{n:,} found", bool(n))
        for what, n in (v.get("half_written") or {}).items()
    ]
    orders = v.get("orders")
    if orders:
        cases.append(
            Case(
                "integrity",
                f"{which}: every order answered 201 exists as answered",
                f"acknowledged {orders['acknowledged']:,}, missing {orders['missing']:,}, "
                f"different {orders['different']:,}, unacknowledged "
                f"{orders['unacknowledged']:,}, in doubt {orders['in_doubt']:,}",
                not orders["holds"],
            )
        )
    return cases


def _figures_stand(which: str, v: dict[str, Any], expected: str | None) -> Case:
    """The run's other FAIL lines (writer.figure_failures): every request counted by both
    recorders, and not so many errors that the figures describe failures."""
    broken = [f for f in writer.figure_failures(which, v, expected) if f.startswith("FAIL")]
    counted = f"{v['requests']:,} requests ({v['locust_requests']:,} by Locust's count)"
    detail = "; ".join(broken) or f"{counted}, {v['error_rate']:.2%} failed"
    return Case("figures", f"{which}: the figures stand", detail, bool(broken))


def run_cases(summary: dict[str, Any]) -> list[Case]:
    cases = _gates(summary)
    for name, variant in summary["variants"].items():
        rounds = variant.get("rounds") or [variant]
        expected = writer.expected_failure(variant)
        for number, v in enumerate(rounds, 1):
            which = _which(name, number, len(rounds))
            cases.append(_figures_stand(which, v, expected))
            cases += _integrity(which, v)
    return cases


def sweep_cases(summary: dict[str, Any]) -> list[Case]:
    """A sweep's steps past capacity are its finding, not failures: its checks are integrity
    over the sweep (as its exit code); each capacity is a property of the suite."""
    variants = summary["variants"].items()
    return [c for name, v in variants for c in _integrity(name, v, " over the sweep")]


def compare_cases(result: dict[str, Any]) -> list[Case]:
    cases = []
    for c in result["changes"]:
        old = "-" if c["old"] is None else f"{c['old']:,.4g}"
        new = "-" if c["new"] is None else f"{c['new']:,.4g}"
        rel = "" if c["relative"] is None else f" ({c['relative']:+.1%})"
        p = "" if c["p"] is None else f", p = {c['p']:.4f}"
        detail = f"{old} -> {new} {c['unit']}{rel}, threshold {result['threshold']:.0%}{p}" + (
            " (worse, within noise)" if c["worse"] and not c["regression"] else ""
        )
        cases.append(Case("regressions", f"{c['variant']}: {c['figure']}", detail, c["regression"]))
    return cases


def for_report(folder: Path) -> tuple[list[Case], dict[str, str]]:
    """The cases of a run's or a sweep's report folder, and the suite's properties."""
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("kind") == "sweep":
        variants = summary["variants"].items()
        capacities = {f"{name} capacity_rps": str(v["capacity_rps"]) for name, v in variants}
        return sweep_cases(summary), {"report": str(folder), **capacities}
    return run_cases(summary), {"report": str(folder)}


def write(path: Path, title: str, cases: list[Case], properties: dict[str, str]) -> Path:
    root = ET.Element("testsuites", name=title, tests=str(len(cases)))
    root.set("failures", str(sum(c.failed for c in cases)))
    for suite_name in dict.fromkeys(c.suite for c in cases):
        members = [c for c in cases if c.suite == suite_name]
        suite = ET.SubElement(root, "testsuite", name=f"{title}.{suite_name}")
        suite.set("tests", str(len(members)))
        suite.set("failures", str(sum(c.failed for c in members)))
        if properties:
            held = ET.SubElement(suite, "properties")
            for key, value in properties.items():
                ET.SubElement(held, "property", name=key, value=value)
        for c in members:
            case = ET.SubElement(suite, "testcase", classname=f"loadlab.{suite_name}", name=c.name)
            if c.failed:
                ET.SubElement(case, "failure", message=c.detail, type=suite_name).text = c.detail
            else:
                ET.SubElement(case, "system-out").text = c.detail
    tmp = path.with_name(f".tmp-{path.name}")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
