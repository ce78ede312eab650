"""reports/index.html: how each stack's figures moved over the reports of one scenario and
load, with a mark on the run that cannot be compared, and every report (findings too)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.report import history
from loadlab.report.writer import write_index
from tests.cli import loadlab

MARK = 'stroke="#c0392b"'  # svg.line_chart's marks


def _summary(run_id: str, created: str, rps: float, duration: float = 60.0) -> dict[str, Any]:
    def variant(rps: float, p99: float) -> dict[str, Any]:
        return {
            "throughput_rps": rps,
            "latency_ms": {"p50": p99 / 4, "p99": p99},
            "error_rate": 0.0,
            "setup": {"profile": "default", "knobs": {"web_workers": 2}},
        }

    return {
        "run_id": run_id,
        "created_at": created,
        "scenario": "select_update",
        "plan": {"users": 200, "arrival_rate": None, "duration": duration, "warmup": 15.0},
        "environment": {"cpu_count": 2, "pgbouncer": "not used"},
        "variants": {"flask_sync": variant(rps, 400.0), "fastapi_async": variant(rps + 50, 900.0)},
        "flags": [],
    }


def _reports(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    for run_id, created, rps, duration in (
        ("20261101-100000-select_update-200u", "2026-11-01T10:00:00+00:00", 700.0, 60.0),
        ("20261102-100000-select_update-200u", "2026-11-02T10:00:00+00:00", 720.0, 30.0),
        ("20261103-100000-select_update-200u", "2026-11-03T10:00:00+00:00", 740.0, 60.0),
    ):
        (reports / run_id).mkdir(parents=True)
        summary = _summary(run_id, created, rps, duration)
        (reports / run_id / "summary.json").write_text(json.dumps(summary))
    findings = reports / "20261104-100000-findings"
    findings.mkdir()
    claims = [{"verdict": "holds"}, {"verdict": "holds"}, {"verdict": "does not hold"}]
    (findings / "findings.json").write_text(json.dumps({"quick": False, "claims": claims}))
    return reports


def test_the_history_charts_each_figure_and_marks_the_run_with_other_settings(
    tmp_path: Path,
) -> None:
    reports = _reports(tmp_path)
    page = write_index(reports).read_text()
    assert "How the figures moved" in page
    assert "select_update: 200 users: 3 reports" in page
    # One chart per headline figure, a line per stack, the odd run marked on each.
    assert page.count("<svg") == len(history.RUN_METRICS)
    assert page.count(MARK) == len(history.RUN_METRICS)
    assert "not comparable</span>: other settings (duration)" in page
    assert page.count("same conditions") == 2
    # The figures in date order, as the reports hold them.
    cells = re.findall(r"<td>flask_sync ([\d,.]+)<br>fastapi_async ([\d,.]+)</td>", page)
    throughput = cells[:: len(history.RUN_METRICS)]  # each run's first figure
    assert throughput == [("700.0", "750.0"), ("720.0", "770.0"), ("740.0", "790.0")]
    # Every report is listed, findings too, each linked to its own page.
    assert 'href="20261104-100000-findings/findings.html"' in page
    assert "2 holds, 1 does not hold" in page
    assert page.index("20261103-100000") < page.index("20261101-100000", page.index("Every report"))
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert not list(reports.glob(".*.tmp"))


def test_another_machine_or_profile_is_named(tmp_path: Path) -> None:
    base = _summary("a", "2026-11-01T10:00:00+00:00", 700.0)
    other = json.loads(json.dumps(base))
    other["environment"]["cpu_count"] = 8
    other["variants"]["flask_sync"]["setup"]["profile"] = "tuned"
    newest = _summary("c", "2026-11-03T10:00:00+00:00", 740.0)
    (group,) = history.groups([("a", base), ("b", other), ("c", newest)])
    assert [r.differs for r in group.runs] == [
        [],
        ["another profile or knobs", "another machine (8 CPUs)"],
        [],
    ]
    # One report alone has no history: no group.
    assert history.groups([("a", base)]) == []


def test_report_without_folders_or_index_is_one_line_and_exit_2() -> None:
    done = loadlab("report", cwd=ROOT)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "--index" in line


def test_retired_reports_leave_their_summaries_and_the_trend_stays(tmp_path: Path) -> None:
    """evidence --retire: the folders the manifest does not name go, each run's summary
    stays in reports/history/, and the index's trend still has all three runs."""
    from loadlab import evidence

    reports = _reports(tmp_path)
    newest = "20261103-100000-select_update-200u"
    before = (reports / "20261101-100000-select_update-200u" / "summary.json").read_text()
    manifest = {"experiments": [{"name": "headline", "reports": [f"reports/{newest}/index.html"]}]}
    (reports / "evidence.json").write_text(json.dumps(manifest))
    gone = evidence.retire(reports)
    assert gone == [
        "20261101-100000-select_update-200u",
        "20261102-100000-select_update-200u",
        "20261104-100000-findings",
    ]
    assert sorted(p.name for p in reports.iterdir() if p.is_dir()) == [newest, "history"]
    kept = json.loads((reports / "history" / "20261101-100000-select_update-200u.json").read_text())
    assert kept == evidence.slim(json.loads(before))  # the figures, without the per-second detail
    page = (reports / "index.html").read_text()
    assert "select_update: 200 users: 3 reports" in page
    assert 'href="history/20261101-100000-select_update-200u.json"' in page
    assert f'href="{newest}/index.html"' in page
    assert "20261101-100000" not in page[page.index("Every report") :]  # listed no more


def test_a_retired_summary_keeps_its_figures_and_drops_the_per_second_detail() -> None:
    from loadlab import evidence

    summary = {
        "variants": {
            "a": {
                "latency_ms": {"p99": 9.0},
                "timeline": [{"t": 0}],
                "rounds": [{"throughput_rps": 5.0, "cpu_timeline": {"a": [1.0]}}],
            }
        }
    }
    assert evidence.slim(summary) == {
        "variants": {"a": {"latency_ms": {"p99": 9.0}, "rounds": [{"throughput_rps": 5.0}]}}
    }


def test_a_report_the_docs_quote_but_evidence_does_not_make_is_kept(tmp_path: Path) -> None:
    from loadlab import evidence

    reports = _reports(tmp_path)
    compose = reports / "20261104-151505-select_update-200u"
    shutil.copytree(reports / "20261101-100000-select_update-200u", compose)
    (reports / "evidence.json").write_text(json.dumps({"experiments": []}))
    gone = evidence.retire(reports, keep={compose.name: "made by hand, quoted by the docs"})
    assert compose.is_dir() and compose.name not in gone


def test_a_kept_reports_large_raw_recorder_data_is_gzipped_losslessly(tmp_path: Path) -> None:
    import gzip

    from loadlab import evidence

    reports = _reports(tmp_path)
    newest = reports / "20261103-100000-select_update-200u"
    big = json.dumps({"recorder": list(range(evidence.RAW_KEPT_PLAIN))}).encode()
    (newest / "a" / "round-2").mkdir(parents=True)
    (newest / "a" / "round-2" / "recorder.json").write_bytes(big)
    (newest / "a" / "recorder.json").write_bytes(b'{"recorder": []}')
    manifest = {"experiments": [{"name": "headline", "reports": [f"{newest}/index.html"]}]}
    (reports / "evidence.json").write_text(json.dumps(manifest))
    evidence.retire(reports)
    assert not (newest / "a" / "round-2" / "recorder.json").exists()
    assert gzip.decompress((newest / "a" / "round-2" / "recorder.json.gz").read_bytes()) == big
    assert (newest / "a" / "recorder.json").read_bytes() == b'{"recorder": []}'  # small: plain


def test_a_kept_reports_large_locust_history_is_gzipped_and_its_summary_untouched(
    tmp_path: Path,
) -> None:
    import gzip

    from loadlab import evidence

    reports = _reports(tmp_path)
    newest = reports / "20261103-100000-select_update-200u"
    (newest / "a").mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{t},200,{t * 3.5}\n" for t in range(evidence.RAW_KEPT_PLAIN // 8))
    big = ("Timestamp,User Count,Requests/s\n" + rows).encode()
    (newest / "a" / "locust_stats_history.csv").write_bytes(big)
    (newest / "a" / "locust_stats.csv").write_bytes(big)  # not raw: the page's own figures
    summary = (newest / "summary.json").read_bytes()
    manifest = {"experiments": [{"name": "headline", "reports": [f"{newest}/index.html"]}]}
    (reports / "evidence.json").write_text(json.dumps(manifest))
    evidence.retire(reports)
    assert not (newest / "a" / "locust_stats_history.csv").exists()
    packed = newest / "a" / "locust_stats_history.csv.gz"
    assert gzip.decompress(packed.read_bytes()) == big
    assert (newest / "a" / "locust_stats.csv").read_bytes() == big
    assert (newest / "summary.json").read_bytes() == summary
