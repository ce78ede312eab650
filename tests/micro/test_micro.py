"""`loadlab micro` on the real database: every experiment runs and reports its figures, the
failures the article describes happen in the naive setting and not in the fixed one, and the
findings list every claim of the article's tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from loadlab import ROOT
from loadlab.micro import findings, harness
from loadlab.micro import run as micro
from tests.cli import loadlab
from tests.conftest import Stack


@pytest.fixture(scope="module")
def found(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of every experiment (one timed pass each), findings written."""
    out = tmp_path_factory.mktemp("micro") / "findings"
    page = micro.run(stack.settings, None, 1, True, out, reports=ROOT / "reports")
    assert page == out / "findings.html"
    return json.loads((out / "findings.json").read_text())


def variants(found: dict[str, Any], experiment: str) -> dict[str, Any]:
    return found["experiments"][experiment]["variants"]


def test_every_experiment_runs_on_the_database_and_reports_its_figures(
    found: dict[str, Any],
) -> None:
    assert list(found["experiments"]) == list(harness.REGISTRY)
    deliberate = {"gather, nested sessions", "async, expire_on_commit=True", "async, relation"}
    for name, result in found["experiments"].items():
        assert result["operations"] == harness.REGISTRY[name].quick
        for variant, v in result["variants"].items():
            if any(variant.startswith(d) for d in deliberate) or name == "pgbouncer_statements":
                continue
            assert v["outcome"] is None, (name, variant, v["outcome"])
            assert v["ms_per_op"]["min"] <= v["ms_per_op"]["median"] <= v["ms_per_op"]["max"]
            assert v["ms_per_op"]["min"] > 0, (name, variant)


def test_the_nested_session_deadlock_times_out_and_the_fixes_finish(
    found: dict[str, Any],
) -> None:
    v = variants(found, "pool_starvation")
    naive = next(x for k, x in v.items() if k.startswith("gather, nested"))
    # Every task waited out pool_timeout: the deadlock, reported with its time.
    assert "TimeoutError" in naive["outcome"]
    assert naive["figures"]["failed_tasks"]["median"] > 0
    assert naive["seconds"]["median"] >= 0.9 * harness_timeout()
    for name, fixed in v.items():
        if not name.startswith("gather, nested"):
            assert fixed["outcome"] is None, name
            assert fixed["figures"]["failed_tasks"]["median"] == 0
            assert fixed["seconds"]["median"] < harness_timeout()


def harness_timeout() -> float:
    from loadlab.micro.overheads import POOL_TIMEOUT

    return POOL_TIMEOUT


def test_missing_greenlet_occurs_in_the_naive_setting_and_not_in_the_fixed_ones(
    found: dict[str, Any],
) -> None:
    v = variants(found, "expire_on_commit")
    for naive, fixed in (
        ("async, expire_on_commit=True", "async, expire_on_commit=False"),
        ("async, relation loaded lazily", "async, relation eager (selectinload)"),
    ):
        assert v[naive]["outcome"].startswith("MissingGreenlet"), naive
        assert v[naive]["figures"]["missing_greenlet"]["median"] == 1
        assert (
            v[fixed]["outcome"] is None and v[fixed]["figures"]["missing_greenlet"]["median"] == 0
        )
    # In sync code the expired objects reload, one query each; without expiry, none.
    count = found["experiments"]["expire_on_commit"]["operations"]
    assert v["sync, expire_on_commit=True"]["figures"]["queries_after_commit"]["median"] == count
    assert v["sync, expire_on_commit=False"]["figures"]["queries_after_commit"]["median"] == 0


def test_pgbouncer_breaks_asyncpgs_defaults_and_not_the_documented_settings(
    found: dict[str, Any],
) -> None:
    v = variants(found, "pgbouncer_statements")
    defaults = v["asyncpg defaults"]
    assert defaults["figures"]["errors"]["median"] > 0
    # The error the article names: a prepared statement missing on the server connection.
    assert "InvalidSQLStatementNameError" in defaults["outcome"]
    documented = v["documented settings (no statement cache, unique names)"]
    assert documented["outcome"] is None and documented["figures"]["errors"]["median"] == 0


def test_the_profiling_pass_counts_switches_memory_and_parses(found: dict[str, Any]) -> None:
    g = variants(found, "greenlet_bridge")
    assert g["sync ORM (psycopg2)"]["counted"]["greenlet_switches_per_call"] == 0
    assert g["async ORM (asyncpg)"]["counted"]["greenlet_switches_per_call"] >= 2
    # The driver's own time is part of the whole, never more.
    for v in g.values():
        assert 0 < v["figures"]["driver_seconds"]["median"] < v["seconds"]["median"]
    buffered = variants(found, "prebuffered_results")
    assert all(v["counted"]["peak_mb"] > 0 for v in buffered.values())
    cache = variants(found, "statement_cache")
    count = found["experiments"]["statement_cache"]["operations"]
    from loadlab.micro.overheads import SHAPES

    # 200 shapes in turn: a cache of 100 misses every time, one of 500 once per shape.
    assert cache["statement cache 100"]["counted"]["server_parses"] >= count
    assert SHAPES <= cache["statement cache 500"]["counted"]["server_parses"] < count


def test_the_findings_list_every_claim_of_the_articles_tables(found: dict[str, Any]) -> None:
    keys = {row["key"] for row in found["claims"]}
    tables = {c.key for c in findings.CLAIMS}
    assert tables <= keys
    # The serial table, the overhead table and the 200-user headline (default and tuned).
    for needed in (
        "select_ratio",
        "eager_ratio",
        "bulk_ratio",
        "join_raw_ratio",
        "greenlet_ms",
        "prebuffer_memory",
        "expire_refetch_ms",
        "missing_greenlet_commit",
        "gather_deadlock",
        "cache_miss_ms",
        "pgbouncer_errors",
    ):
        assert needed in keys
    for profile in ("default", "tuned"):
        for variant in ("flask_sync", "fastapi_async"):
            for figure in ("p50", "p95", "p99", "errors"):
                assert f"duel_{profile}_{variant}_{figure}" in keys
    for row in found["claims"]:
        words = {"holds", "partly", "does not hold", "not measured", findings.ONE_RUN}
        assert row["verdict"] in words, row
        if row["link"]:  # the committed duel it took its figures from
            assert (ROOT / "reports" / row["link"].split("/")[1] / "index.html").exists()
    # The guides have their rows too.
    sources = {row["source"] for row in found["claims"]}
    assert {findings.ARTICLE, findings.CHAPTER, findings.TUTORIAL} <= sources
    behaviours = {r["key"]: r for r in found["claims"] if r["theirs"] is None and r["seen"]}
    assert behaviours["gather_deadlock"]["verdict"] == "holds"
    assert behaviours["pgbouncer_errors"]["verdict"] == "holds"


def test_the_findings_page_is_rendered_again_from_its_measurements(
    found: dict[str, Any], tmp_path: Path
) -> None:
    """`loadlab report FOLDER` on a findings folder: the claims come again from the kept
    experiments (no measuring), the page is rewritten."""
    folder = tmp_path / "findings"
    folder.mkdir()
    document = {**found, "claims": []}
    (folder / "findings.json").write_text(json.dumps(document))
    done = loadlab("report", str(folder), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    again = json.loads((folder / "findings.json").read_text())
    assert [r["key"] for r in again["claims"]] == [r["key"] for r in found["claims"]]
    assert again["experiments"] == found["experiments"]
    assert "claims, re-measured</h1>" in (folder / "findings.html").read_text()


def test_the_verdict_rules() -> None:
    assert findings.verdict(2.3, "x", (2.0, 1.8, 2.2)) == "holds"
    assert findings.verdict(14.0, "x", (1.2, 1.1, 1.3)) == "partly"  # same way, far off
    assert findings.verdict(5.5, "x", (0.7, 0.6, 0.8)) == "does not hold"
    assert findings.verdict(2.3, "x", (1.1, 0.9, 1.3)) == "partly"  # spread reaches 1
    assert findings.verdict(14.0, "x", (0.97, 0.86, 1.08)) == "does not hold"  # median below
    assert findings.verdict(None, "x", (0.99, 0.93, 1.05)) == "does not hold"
    assert findings.verdict(0.18, "ms", (0.3, 0.25, 0.35)) == "holds"
    assert findings.verdict(8200.0, "ms", (20.0, 19.0, 21.0)) == "does not hold"
    assert findings.verdict(None, "x", (1.4, 1.2, 1.6)) == "holds"  # "A beats B"
    assert findings.verdict(0.3, "ms", None) == "not measured"


def test_bad_input_is_one_line_and_exit_2(stack: Stack, tmp_path: Path) -> None:
    base = ["micro", "--state-dir", str(stack.settings.state_dir)]
    for args, said in (
        (["--only", "no_such_thing"], "unknown experiment no_such_thing"),
        (["--repeat", "0"], "--repeat 0: at least 1"),
    ):
        out = tmp_path / "findings"
        done = loadlab(*base, *args, "--out", str(out), cwd=ROOT)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"loadlab: {said}"), line
        assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_an_interrupted_micro_run_leaves_no_findings_and_no_process(
    stack: Stack, tmp_path: Path
) -> None:
    out = tmp_path / "findings"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadlab",
            "micro",
            "--state-dir",
            str(stack.settings.state_dir),
            "--quick",
            "--repeat",
            "1",
            "--only",
            "pool_starvation",  # seconds long (pool_timeout): the signal lands mid-run
            "pgbouncer_statements",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first experiment has begun, PgBouncer started
    assert line.startswith("pool_starvation"), line
    time.sleep(0.5)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
