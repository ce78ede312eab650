"""Writing a run's folder: built in a temporary folder, moved into place only when complete."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from loadlab.analysis import repeats
from loadlab.analysis.compare import verdicts
from loadlab.errors import UsageError
from loadlab.load.monitor import SATURATED_CPU, SATURATED_SECONDS
from loadlab.report.html import render

REPORTS = "reports"


def run_id(scenario: str, users: int, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{scenario}-{users}u"


def flags(variants: dict[str, Any]) -> list[str]:
    """Warnings for the top of the report; those starting with FAIL fail the run. With
    several rounds every round is checked: a failure is named by its round, a warning is
    said once per variant with the rounds it concerns."""
    found = []
    for name, variant in variants.items():
        rounds = variant.get("rounds") or [variant]
        for number, v in enumerate(rounds, 1):
            found.extend(_failures(name if len(rounds) == 1 else f"{name} round {number}", v))
        saturated = [n for n, v in enumerate(rounds, 1) if v["generator_saturated"]]
        if saturated:
            found.append(
                f"{name}{_which(saturated, len(rounds))}: the load generator was saturated (a "
                f"Locust process at >= {SATURATED_CPU:.0f}% of a core for {SATURATED_SECONDS} s "
                "or more); these figures are generator-bound, not the service's. Add Locust "
                "workers (--workers) or a second machine."
            )
        busy = [
            (n, v["machine_cpu_mean"])
            for n, v in enumerate(rounds, 1)
            if v["machine_cpu_mean"] >= 90
        ]
        if busy:
            low, high = round(min(c for _, c in busy)), round(max(c for _, c in busy))
            share = f"{low}%" if low == high else f"{low}-{high}%"
            found.append(
                f"{name}{_which([n for n, _ in busy], len(rounds))}: the whole machine was "
                f"{share} busy on average: generator, service and database competed for the "
                "same cores."
            )
    return found


def _which(numbers: list[int], rounds: int) -> str:
    if rounds == 1:
        return ""
    return f" (in {len(numbers)} of {rounds} rounds: {', '.join(map(str, numbers))})"


MAX_ERROR_RATE = 0.5  # above it a run measures failures, not the service


def _failures(name: str, v: dict[str, Any]) -> list[str]:
    found = []
    if v["requests"] == v["failures"]:
        found.append(
            f"FAIL {name}: no request succeeded ({v['requests']:,} measured): these figures "
            "describe failures, not the service"
        )
    elif v["error_rate"] > MAX_ERROR_RATE:
        found.append(
            f"FAIL {name}: {v['error_rate']:.1%} of requests failed (more than "
            f"{MAX_ERROR_RATE:.0%}): these figures describe failures more than the service"
        )
    if v["requests"] != v["locust_requests"]:
        found.append(
            f"FAIL {name}: the exact recorder counted {v['requests']:,} requests, "
            f"Locust {v['locust_requests']:,}"
        )
    for c in v.get("integrity") or []:
        if not c["holds"]:
            found.append(
                f"FAIL {name}: integrity broken for {c['request']}: acknowledged "
                f"{c['acknowledged']:,}, applied {c['applied']:,}, in doubt "
                f"{c['in_doubt']:,}"
            )
    return found


def derive(summary: dict[str, Any]) -> dict[str, Any]:
    """Set the flags and verdicts that follow from the measured figures: from the rounds
    when each variant ran more than once, else from one run's per-second spread."""
    variants = summary["variants"]
    summary["flags"] = flags(variants)
    judge = repeats.verdicts if repeats.is_repeated(variants) else verdicts
    summary["verdicts"] = judge(variants)
    return summary


def build_summary(
    rid: str, plan: dict[str, Any], environment: dict[str, Any], variants: dict[str, Any]
) -> dict[str, Any]:
    return derive(
        {
            "run_id": rid,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scenario": plan["scenario"],
            "plan": plan,
            "environment": environment,
            "variants": variants,
        }
    )


def failed(summary: dict[str, Any]) -> list[str]:
    return [f for f in summary["flags"] if f.startswith("FAIL")]


def publish(summary: dict[str, Any], tmp: Path, final: Path) -> Path:
    """Write summary.json and index.html into `tmp`, then move it to `final`; a run in
    reports/ is added to reports/index.html."""
    (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
    (tmp / "index.html").write_text(render(summary))
    tmp.rename(final)
    if final.parent.name == REPORTS:
        write_index(final.parent)
    return final / "index.html"


def rerender(run: Path) -> Path:
    """Render a run's page again from its summary.json after a change to the page or to the
    analysis: the measured figures stay the run's own, flags and verdicts are derived anew."""
    summary_path = run / "summary.json"
    if not summary_path.exists():
        raise UsageError(f"{run} holds no summary.json: is it a loadlab report folder?")
    summary = derive(json.loads(summary_path.read_text()))
    summary_path.write_text(json.dumps(summary, indent=1))
    (run / "index.html").write_text(render(summary))
    if run.resolve().parent.name == REPORTS:
        write_index(run.resolve().parent)
    return run / "index.html"


def _index_cell(name: str, v: dict[str, Any]) -> str:
    across = v.get("across_rounds")
    if across:
        return (
            f"{escape(name)}: p99 {across['p99']['mean']:,.1f} ms, "
            f"{across['throughput_rps']['mean']:,.0f} req/s, {across['error_rate']['mean']:.2%} "
            f"errors (means of {across['p99']['n']} rounds)"
        )
    return (
        f"{escape(name)}: p99 {v['latency_ms']['p99']:,.1f} ms, {v['throughput_rps']:,.0f} "
        f"req/s, {v['error_rate']:.2%} errors"
    )


def write_index(reports: Path) -> Path:
    """reports/index.html: every run, newest first."""
    rows = []
    for summary_path in sorted(reports.glob("*/summary.json"), reverse=True):
        s = json.loads(summary_path.read_text())
        cells = " · ".join(_index_cell(n, v) for n, v in s["variants"].items())
        mark = " ⚠" if s["flags"] else ""
        rows.append(
            f'<tr><td><a href="{escape(summary_path.parent.name)}/index.html">'
            f"{escape(s['run_id'])}</a>{mark}</td><td>{escape(s['scenario'])}</td>"
            f"<td>{s['plan']['users']}</td><td>{cells}</td></tr>"
        )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>loadlab runs</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:24px}td,th{padding:4px 10px;"
        "border-bottom:1px solid #eee;text-align:left}</style></head><body>"
        "<h1>loadlab runs, newest first</h1><table><tr><th>run</th><th>scenario</th>"
        f"<th>users</th><th>figures</th></tr>{''.join(rows)}</table>"
        "<p>⚠ = the report carries a warning at its top.</p></body></html>"
    )
    (reports / "index.html").write_text(page)
    return reports / "index.html"


def discard(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
