"""A short real load (Locust, both real services, the real database) and its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from scipy import stats

from tests.cli import loadlab
from tests.conftest import Stack


def _summary(report: Path) -> dict[str, Any]:
    return json.loads((report / "summary.json").read_text())


def test_report_files_exist(report: Path) -> None:
    assert (report / "index.html").stat().st_size > 0
    for variant in ("flask_sync", "fastapi_async"):
        for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"):
            assert (report / variant / name).stat().st_size > 0, name
        # Locust's own HTML (about 1 MB of template) only with --locust-html, and no link to it.
        assert not (report / variant / "locust.html").exists()
    assert 'href="flask_sync/locust.html"' not in (report / "index.html").read_text()
    # A light folder: loadlab's page, JSON and Locust's CSVs (the bound: 300 KB).
    size = sum(f.stat().st_size for f in report.rglob("*") if f.is_file())
    assert size < 300_000, size
    assert not list(report.parent.glob(".tmp-*"))


def test_summary_figures_are_present_and_consistent(report: Path) -> None:
    for name, v in _summary(report)["variants"].items():
        assert v["requests"] > 0, name
        lat = v["latency_ms"]
        assert (
            0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
        )
        assert v["error_rate"] == v["failures"] / v["requests"]
        assert sum(v["errors"].values()) == v["failures"]
        assert v["throughput_rps"] > 0
        assert {"mean"} <= set(lat)
        # One process: every counted request finished inside the measured seconds.
        assert sum(row["rps"] for row in v["timeline"]) == v["requests"]
        # Every visit answered with its Server-Timing; the app's part fits inside what the
        # client saw, the SQL part inside the app's.
        server = v["server_ms"]
        assert v["failures"] == 0, v["errors"]
        assert {p: server[p]["count"] for p in server} == dict.fromkeys(
            ("queue", "app", "conn", "sql", "orm", "bridge", "before", "kernel", "rest"),
            v["requests"],
        )
        assert server["sql"]["mean"] <= server["app"]["mean"] <= lat["mean"]
        # The session's execute calls hold the driver's (select_update commits no flush) and
        # fit in the app; the bridge is their part outside the driver.
        assert server["bridge"]["mean"] <= server["orm"]["mean"] <= server["app"]["mean"]
        assert server["sql"]["mean"] <= server["orm"]["mean"] * 1.01 + 0.01


def test_the_order_the_variants_ran_in_is_said(report: Path) -> None:
    summary = _summary(report)
    assert summary["run_order"] == [["flask_sync", 1], ["fastapi_async", 1]]
    assert (
        "Order: flask_sync then fastapi_async, one run each." in (report / "index.html").read_text()
    )


def test_exact_count_equals_locusts_count(report: Path) -> None:
    for v in _summary(report)["variants"].values():
        assert v["requests"] == v["locust_requests"]
        assert v["failures"] == v["locust_failures"]


def test_integrity_rule_holds_for_the_visits(report: Path) -> None:
    for v in _summary(report)["variants"].values():
        (visits,) = v["integrity"]
        assert visits["request"] == "POST /users/[id]/visit"
        assert visits["holds"] and visits["acknowledged"] >= v["requests"]


def test_resources_of_each_component_were_sampled(report: Path) -> None:
    for name, v in _summary(report)["variants"].items():
        assert {name, "postgres", "locust"} <= set(v["resources"])
        assert v["resources"][name]["cpu_mean"] > 0
        assert (
            0 < v["resources"]["locust"]["memory_max_mb"] <= v["resources"]["locust"]["rss_max_mb"]
        )
        # Sampled once a second over the 6 measured seconds only, not the 2 s warm-up.
        assert v["resources_window"] == "measured"
        assert 3 <= len(v["cpu_timeline"][name]) <= 7


def test_database_time_and_background_work_are_counted(report: Path) -> None:
    for v in _summary(report)["variants"].values():
        db = v["database_time"]
        assert db["statements"] >= 2 * db["requests_whole_run"]  # SELECT + UPDATE at least
        assert 0 < db["exec_ms_per_request"] < v["latency_ms"]["mean"]
        assert set(v["database_events"]) == {"checkpoints", "autovacuums", "autoanalyzes"}
        assert all(n >= 0 for n in v["database_events"].values())


def test_environment_names_what_ran(report: Path) -> None:
    env = _summary(report)["environment"]
    assert env["postgresql"].startswith("15") or env["postgresql"][0].isdigit()
    assert env["packages"]["sqlalchemy"][0].isdigit() and env["cpu_count"] >= 1
    assert env["git_commit"]


def _loadlab(*args: str) -> subprocess.CompletedProcess[str]:
    return loadlab(*args, timeout=120)


@pytest.mark.parametrize(
    "bad",
    [
        ["--scenario", "nope"],
        ["--users", "0"],
        ["--users", "-3"],
        ["--duration", "0"],
        ["--duration", "soon"],
        ["--spawn-rate", "0"],
        ["--repeat", "0"],
        ["--variants", "django"],
        ["--variants", ""],
        ["--variants", ","],
        ["--variants", "flask_sync,flask_sync"],
        ["--spawn-rate", "nan"],
        ["--spawn-rate", "inf"],
        ["--target", "http://127.0.0.1:9"],
        ["--target", "x y=http://127.0.0.1:9"],
        ["--target", "127.0.0.1:9"],
        ["--target", "http://127.0.0.1:9", "--variants", "flask_sync"],
        ["--tags", "read"],  # select_update has no tagged task
        ["--scenario", "mixed", "--tags", "nope"],
    ],
)
def test_bad_run_input_is_one_line_exit_2_and_writes_nothing(
    stack: Stack, tmp_path: Path, bad: list[str]
) -> None:
    out = tmp_path / "never"
    result = _loadlab("run", "--state-dir", str(stack.settings.state_dir), "--out", str(out), *bad)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("parent", ["a-file", "read-only"])
def test_an_unwritable_report_folder_is_one_line_exit_2(
    stack: Stack, tmp_path: Path, parent: str
) -> None:
    """Said before any load is sent: a parent that is a file, or (as on a read-only mount)
    one where nothing can be created: /proc refuses even root."""
    if parent == "a-file":
        (tmp_path / "a-file").write_text("not a folder")
        out = tmp_path / "a-file" / "report"
    else:
        out = Path("/proc/loadlab-report")
    result = _loadlab("run", "--state-dir", str(stack.settings.state_dir), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"loadlab: cannot write the report to {out}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_existing_report_folder_is_refused(stack: Stack, report: Path) -> None:
    before = (report / "summary.json").read_text()
    result = _loadlab("run", "--state-dir", str(stack.settings.state_dir), "--out", str(report))
    assert result.returncode == 2 and "exists already" in result.stderr
    assert (report / "summary.json").read_text() == before


def test_workers_merge_to_locusts_exact_count(stack: Stack, tmp_path: Path) -> None:
    from loadlab import duel
    from loadlab.load.runner import LoadPlan
    from tests.conftest import TEST_SCALE

    plan = LoadPlan(
        scenario="mixed", users=10, spawn_rate=10, duration=4, warmup=1, workers=2, scale=TEST_SCALE
    )
    code, _ = duel.run(stack.settings, plan, ["fastapi_async"], None, tmp_path / "r", live=False)
    assert code == 0
    (v,) = _summary(tmp_path / "r")["variants"].values()
    assert v["requests"] > 0 and v["requests"] == v["locust_requests"]
    # The warm-up boundary holds on the workers too: (almost) every counted request was
    # made after measuring began, i.e. falls in the timeline's seconds. Workers report every
    # 3 s, so without the boundary message up to 3 s of warm-up would be counted.
    in_timeline = sum(row["rps"] for row in v["timeline"])
    assert v["requests"] - in_timeline <= 0.01 * v["requests"], (v["requests"], in_timeline)
    assert {c["request"] for c in v["integrity"]} == {"POST /users/[id]/visit", "POST /orders"}
    assert all(c["holds"] for c in v["integrity"])
    assert v["resources"]["locust"]["cpu_mean"] > 0


def test_open_model_with_workers_shares_the_rate_and_counts_everything(
    stack: Stack, tmp_path: Path
) -> None:
    """60 req/s over two Locust workers (30 each), the mixed scenario, on a real service."""
    from loadlab import duel
    from loadlab.load.runner import LoadPlan
    from tests.conftest import TEST_SCALE

    plan = LoadPlan(
        scenario="mixed", users=20, spawn_rate=20, duration=6, warmup=1, workers=2,
        scale=TEST_SCALE, arrival_rate=60, arrivals="poisson",
    )  # fmt: skip
    code, _ = duel.run(stack.settings, plan, ["flask_sync"], None, tmp_path / "r", live=False)
    assert code == 0
    (v,) = _summary(tmp_path / "r")["variants"].values()
    assert v["offered_rps"] == pytest.approx(60, rel=0.25)  # Poisson: 360 arrivals, sd ~19
    assert v["achieved_rps"] == pytest.approx(v["offered_rps"], rel=0.05)
    # Counted, never lost: those due when each worker's schedule closed, and those that fell
    # due while Locust prepared to stop (it reads its caller's frames first, 20-40 ms here,
    # about one request a worker at 30 req/s): a few, not the share a slow service leaves.
    assert v["arrivals"]["not_sent"] <= 0.02 * v["arrivals"]["offered"], v["arrivals"]
    assert v["requests"] == v["locust_requests"] and v["failures"] == 0
    assert v["latency_uncorrected_ms"]["p50"] <= v["latency_ms"]["p50"]
    assert v["generator_delay_ms"]["max"] >= v["generator_delay_ms"]["p50"] >= 0
    assert all(c["holds"] for c in v["integrity"])
    # Its own connections only (application_name): one web worker's pool of at most 15.
    assert 1 <= v["database_connections"]["open_max"] <= 15
    assert v["cpu_ms_per_request"]["flask_sync"] > 0


def test_repeated_rounds_alternate_and_are_summarised(stack: Stack, tmp_path: Path) -> None:
    """Two rounds each, through the CLI: every round kept, the order alternates (A B, B A),
    means and intervals agree with the rounds, and the page shows them."""
    out = tmp_path / "r"
    result = _loadlab(
        "run", "--state-dir", str(stack.settings.state_dir), "--out", str(out),
        "--users", "10", "--spawn-rate", "10", "--duration", "3s", "--warmup", "1s",
        "--repeat", "2", "--locust-html",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "round 2 of 2" in result.stdout
    assert 'href="flask_sync/locust.html"' in (out / "index.html").read_text()
    summary = _summary(out)
    assert summary["plan"]["repeat"] == 2
    for name, v in summary["variants"].items():
        assert len(v["rounds"]) == 2, name
        assert v["rounds"][0]["latency_ms"] == v["latency_ms"]  # round 1 is the detail
        for r in v["rounds"]:
            assert r["requests"] > 0 and r["requests"] == r["locust_requests"]
            assert all(c["holds"] for c in r["integrity"])
        p99 = v["across_rounds"]["p99"]
        values = [r["latency_ms"]["p99"] for r in v["rounds"]]
        assert p99["n"] == 2 and p99["mean"] == pytest.approx(sum(values) / 2)
        # Two rounds: sd = |a - b| / sqrt(2), so the half-width is t(0.975, 1) * |a - b| / 2
        # (the exact quantile: a rounded one misses when the low end falls near 0 ms).
        half = stats.t.ppf(0.975, 1) * abs(values[0] - values[1]) / 2
        expected = [p99["mean"] - half, p99["mean"] + half]
        assert p99["ci95"] == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert (out / name / "round-2" / "locust.html").stat().st_size > 0
    # Round 1 ran flask then fastapi, round 2 the other way round.
    finished = {
        (name, n): (out / name / ("" if n == 1 else "round-2") / "recorder.json").stat().st_mtime
        for name in ("flask_sync", "fastapi_async")
        for n in (1, 2)
    }
    order = sorted(finished, key=finished.__getitem__)
    assert order == [
        ("flask_sync", 1), ("fastapi_async", 1), ("fastapi_async", 2), ("flask_sync", 2)
    ]  # fmt: skip
    assert summary["run_order"] == [
        ["flask_sync", 1], ["fastapi_async", 1], ["fastapi_async", 2], ["flask_sync", 2]
    ]  # fmt: skip
    assert summary["verdicts"] and all("Welch's t-test p" in s for s in summary["verdicts"])
    assert "Across rounds" in (out / "index.html").read_text()


@pytest.mark.parametrize("arrival_rate", [None, 40.0], ids=["closed", "open"])
@pytest.mark.parametrize("scenario", ["eager_read", "write_orders"])
def test_every_scenario_runs_clean_against_a_real_service(
    stack: Stack, tmp_path: Path, scenario: str, arrival_rate: float | None
) -> None:
    from loadlab import duel
    from loadlab.load.runner import LoadPlan
    from tests.conftest import TEST_SCALE

    plan = LoadPlan(
        scenario=scenario, users=5, spawn_rate=5, duration=3, warmup=1, scale=TEST_SCALE,
        arrival_rate=arrival_rate,
    )  # fmt: skip
    code, _ = duel.run(stack.settings, plan, ["flask_sync"], None, tmp_path / "r", live=False)
    assert code == 0
    (v,) = _summary(tmp_path / "r")["variants"].values()
    assert v["requests"] > 0 and v["failures"] == 0, v["errors"]
    assert v["requests"] == v["locust_requests"]
    if arrival_rate is not None:
        assert v["offered_rps"] == pytest.approx(arrival_rate, rel=0.1)
    # Every order the run wrote (and the seed's) whole: items, and a total that adds up.
    assert v["half_written"] == dict.fromkeys(
        (
            "orders without items",
            "items without an order",
            "totals that are not the sum of their items",
        ),
        0,
    )
    if scenario == "write_orders":  # each order answered 201 is held as answered
        ok = ("POST /orders", "ok")
        answered = sum(n for name, kind, n in v["outcomes"] if (name, kind) == ok)
        assert v["orders"]["holds"] and v["orders"]["acknowledged"] == answered > 0, v["orders"]


def test_a_half_written_order_fails_the_run(fresh: Stack) -> None:
    """An order the database holds without its items, or with a total its items do not make,
    is found after the run and is a FAIL line (exit 1)."""
    import psycopg2

    from loadlab.analysis import integrity
    from loadlab.report.writer import run_failures

    assert not any(integrity.half_written(fresh.database_url).values())
    with psycopg2.connect(fresh.database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO orders (id, customer_id, status, total_cents, created_at) "
            "VALUES (9000001, 1, 'pending', 500, now())"
        )
        cur.execute("UPDATE orders SET total_cents = total_cents + 1 WHERE id = 1")
    conn.close()
    found = integrity.half_written(fresh.database_url)
    assert found["orders without items"] == 1
    assert found["totals that are not the sum of their items"] == 2  # the empty one too
    fails = run_failures(
        "flask_sync",
        {
            "requests": 0,
            "locust_requests": 0,
            "failures": 0,
            "error_rate": 0.0,
            "half_written": found,
        },
    )
    assert "FAIL flask_sync: the data is not whole after the run: 1 orders without items" in fails
    fresh.reset()


def test_an_order_not_held_as_answered_fails_the_run(fresh: Stack) -> None:
    """Each order answered 201 must be in the database with its customer, items, prices and
    total; a new order no one was answered for must be one of the requests in doubt."""
    import httpx
    import psycopg2

    from loadlab.analysis import integrity
    from loadlab.load.recorder import order_as_acknowledged
    from loadlab.report.writer import run_failures

    newest = integrity.newest_order(fresh.database_url)
    answered = []
    for customer in (1, 2, 3):
        body = {"customer_id": customer, "items": [{"product_id": 1, "quantity": 2}]}
        response = httpx.post(f"{fresh.urls['flask_sync']}/orders", json=body, timeout=10)
        assert response.status_code == 201
        answered.append(order_as_acknowledged(response.json()))
    found = integrity.acknowledged_orders(fresh.database_url, answered, newest, in_doubt=0)
    assert found["holds"] and found["acknowledged"] == 3 and found["unacknowledged"] == 0
    changed, lost = answered[0][0], answered[1][0]
    with psycopg2.connect(fresh.database_url) as conn, conn.cursor() as cur:
        cur.execute("UPDATE order_items SET quantity = 3 WHERE order_id = %s", (changed,))
        cur.execute("DELETE FROM orders WHERE id = %s", (lost,))
        cur.execute(
            "INSERT INTO orders (customer_id, status, total_cents) VALUES (1, 'pending', 0)"
        )
    conn.close()
    found = integrity.acknowledged_orders(fresh.database_url, answered, newest, in_doubt=0)
    assert (found["missing"], found["different"], found["unacknowledged"]) == (1, 1, 1)
    assert not found["holds"]
    assert {e["id"] for e in found["examples"]} == {changed, lost}
    # One unanswered order is allowed when one request was in doubt; the lost one is not.
    forgiven = integrity.acknowledged_orders(fresh.database_url, answered[2:], newest, 2)
    assert forgiven["holds"] and forgiven["unacknowledged"] == 2
    figures = {"requests": 3, "locust_requests": 3, "failures": 0, "error_rate": 0.0}
    [fail] = run_failures("flask_sync", {**figures, "orders": found})
    assert fail.startswith("FAIL flask_sync: of 3 orders answered 201, 1 are missing and 1 differ")
    fresh.reset()


def test_two_answers_with_one_order_id_are_not_one(fresh: Stack) -> None:
    """Keyed by id, a second 201 naming the same order collapsed into the first and went
    unseen: two orders the client was told exist, one in the database."""
    import httpx

    from loadlab.analysis import integrity
    from loadlab.load.recorder import order_as_acknowledged
    from loadlab.report.writer import run_failures

    newest = integrity.newest_order(fresh.database_url)
    body = {"customer_id": 1, "items": [{"product_id": 1, "quantity": 2}]}
    response = httpx.post(f"{fresh.urls['fastapi_async']}/orders", json=body, timeout=10)
    assert response.status_code == 201
    answer = order_as_acknowledged(response.json())
    assert integrity.acknowledged_orders(fresh.database_url, [answer], newest, 0)["holds"]
    found = integrity.acknowledged_orders(fresh.database_url, [answer, answer], newest, 0)
    assert (found["acknowledged"], found["duplicates"], found["holds"]) == (2, 1, False)
    figures = {"requests": 2, "locust_requests": 2, "failures": 0, "error_rate": 0.0}
    [fail] = run_failures("fastapi_async", {**figures, "orders": found})
    assert "1 answers named an order id another answer had" in fail
    fresh.reset()


def test_interrupted_run_leaves_no_report_and_no_locust(stack: Stack, tmp_path: Path) -> None:
    import signal
    import time

    import psutil

    out = tmp_path / "r"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadlab",
            "run",
            "--state-dir",
            str(stack.settings.state_dir),
            "--users",
            "5",
            "--duration",
            "60s",
            "--warmup",
            "1s",
            "--variants",
            "flask_sync",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status = tmp_path / ".tmp-r" / "flask_sync" / "status.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not status.exists():
        time.sleep(0.2)
    assert status.exists(), "Locust never started"
    locusts = psutil.Process(proc.pid).children(recursive=True)
    assert locusts
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT), err  # see test_cli's interrupt test
    assert "everything started was stopped" in err
    assert not out.exists() and not (tmp_path / ".tmp-r").exists()
    assert not [p for p in locusts if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_other_stacks_serve_a_short_real_load_cleanly(stack: Stack, tmp_path: Path) -> None:
    """fastapi_psycopg, fastapi_hybrid, fastapi_sync, flask_gevent and fastapi_granian
    (registry entries beside the duel), the mixed scenario (reads and both writes), 20 users
    for 3 s each: no error, the integrity rule holds, and the page and summary say which
    profile and knobs each ran with."""
    from loadlab import duel
    from loadlab.load.runner import LoadPlan
    from tests.conftest import TEST_SCALE

    plan = LoadPlan(
        scenario="mixed", users=20, spawn_rate=20, duration=3, warmup=1, scale=TEST_SCALE
    )
    names = ["fastapi_psycopg", "fastapi_hybrid", "fastapi_sync", "flask_gevent", "fastapi_granian"]
    code, index = duel.run(stack.settings, plan, names, None, tmp_path / "r", live=False)
    assert code == 0
    variants = _summary(tmp_path / "r")["variants"]
    assert list(variants) == names
    for name, v in variants.items():
        assert v["requests"] > 100 and v["failures"] == 0, name
        assert all(c["holds"] for c in v["integrity"]), name
        assert v["setup"]["profile"] == "default"
        assert v["setup"]["knobs"]["web_workers"] == 1  # the test stack's flag beat the default
        # uvicorn with one worker has no master; gunicorn and Granian have one beside it.
        processes = 2 if name in ("flask_gevent", "fastapi_granian") else 1
        assert v["resources"][name]["processes_max"] == processes, name
    assert variants["fastapi_hybrid"]["setup"]["knobs"]["db_read_pool_size"] == 10
    assert variants["fastapi_sync"]["setup"]["knobs"]["web_threads"] == 15
    assert variants["flask_gevent"]["setup"]["knobs"]["web_connections"] == 1000
    page = index.read_text()
    assert "db_read_pool_size" in page and "profile default" in page


def test_the_queue_table_shows_where_each_request_waited(report: Path) -> None:
    """Per request: not yet taken up by the server (the client from its send minus the
    server's parts), the server's own queue (its Server-Timing), the pool wait, the SQL calls
    and the rest of the app, each with p50/p99/max; the page names the part with the largest
    p99."""
    summary = _summary(report)
    page = (report / "index.html").read_text()
    assert "Where the tail comes from" in page
    for name, v in summary["variants"].items():
        server = v["server_ms"]
        assert {"app", "conn", "sql", "before", "kernel", "queue", "rest"} <= set(server), name
        # Every answered request has each part; `before` and `rest` are never negative.
        assert server["before"]["count"] == server["app"]["count"] > 0
        assert 0 <= server["before"]["p50"] <= server["before"]["max"]
        assert server["rest"]["p99"] <= server["app"]["max"]
        # Before the app = not yet taken up (kernel) + the server's own queue, per request
        # (kernel is clamped at 0 when the clocks' rounding makes it negative).
        parts = server["kernel"]["mean"] + server["queue"]["mean"]
        assert server["before"]["mean"] <= parts + 0.05, name
        assert parts <= server["before"]["mean"] * 1.05 + 0.5, name
        # The client's latency from the send holds the app's and what came before it.
        assert server["app"]["p50"] < v["latency_ms"]["p50"]
        # The kernel's accept queue, sampled each second: keep-alive connections leave it
        # (nearly) empty once the users are connected.
        assert 0 <= v["accept_queue"]["mean"] <= v["accept_queue"]["max"]
        tail = max(("kernel", "queue", "conn", "sql", "rest"), key=lambda k: server[k]["p99"])
        assert f"(p99 {server[tail]['p99']:,.1f} ms)" in page
    assert "server queue (thread / event loop)" in page
    assert "before the app (not split)" not in page  # split everywhere: not shown twice


def test_the_queue_table_of_a_report_made_before_the_split_shows_before_whole() -> None:
    """Reports committed before the services sent `queue` keep `before` as one column."""
    from loadlab.report.pages import _queue_columns, tail_parts

    def part(p99: float) -> dict[str, float]:
        return {"p50": p99 / 2, "p99": p99, "max": p99 * 2, "mean": p99 / 3, "count": 10}

    old = {"server_ms": {k: part(5.0) for k in ("app", "conn", "sql", "rest")}}
    old["server_ms"]["before"] = part(40.0)
    old["latency_ms"] = {"p99": 60.0}
    new = {"server_ms": {**old["server_ms"], "kernel": part(1.0), "queue": part(39.0)}}
    new["latency_ms"] = {"p99": 60.0}
    assert [k for k, _ in _queue_columns({"old": old})] == ["before", "conn", "sql", "rest"]
    assert [k for k, _ in _queue_columns({"new": new})] == [
        "kernel",
        "queue",
        "conn",
        "sql",
        "rest",
    ]
    [row] = tail_parts({"old": old})
    assert row["tail"].startswith("before the app") and row["tail_p99"] == 40.0
    [row] = tail_parts({"new": new})
    assert row["tail"].startswith("server queue") and row["tail_p99"] == 39.0
    # Mixed (an old variant beside a new one): both ways shown, each row in its own columns.
    rows = tail_parts({"old": old, "new": new})
    assert len(rows[0]["cells"]) == len(rows[1]["cells"]) == 6


def test_the_ceiling_runs_pgbench_at_the_connections_each_stack_used(
    stack: Stack, tmp_path: Path
) -> None:
    """`run --ceiling`: pgbench runs select_update's transaction at the connections the
    service held at most; the page puts the stack beside it, and the data is the seed after."""
    from loadlab import duel
    from loadlab.load.runner import LoadPlan
    from tests.conftest import TEST_SCALE

    plan = LoadPlan(
        scenario="select_update", users=10, spawn_rate=10, duration=3, warmup=1,
        scale=TEST_SCALE, ceiling=True,
    )  # fmt: skip
    code, index = duel.run(stack.settings, plan, ["flask_sync"], None, tmp_path / "r", live=False)
    assert code == 0
    summary = _summary(tmp_path / "r")
    (c,) = summary["ceilings"]
    v = summary["variants"]["flask_sync"]
    assert c["connections"] == v["database_connections"]["open_max"] == v["ceiling"]["connections"]
    assert c["tps"] > 0 and c["failed"] == 0 and c["transactions"] > 0
    assert v["ceiling"]["share"] == pytest.approx(v["throughput_rps"] / c["tps"])
    assert "Beside the database's own ceiling" in index.read_text()
    with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE last_seen > now() - interval '1 minute'")
        assert cur.fetchone() == (0,)  # the visits pgbench made were reset to the seed


def test_a_ceiling_for_a_scenario_without_a_script_is_one_line_exit_2(
    stack: Stack, tmp_path: Path
) -> None:
    result = _loadlab(
        "run", "--state-dir", str(stack.settings.state_dir), "--scenario", "mixed",
        "--ceiling", "--duration", "2s", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "no pgbench script for scenario 'mixed'" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_users_own_locustfile_and_several_targets_in_one_report(
    stack: Stack, tmp_path: Path
) -> None:
    """`--locustfile` (plain Locust users) at two `--target` services named by the user: one
    report, loadlab's exact figures for each, Locust's own count agreeing."""
    own = Path(__file__).parent / "own_locustfile.py"
    out = tmp_path / "r"
    result = _loadlab(
        "run", "--locustfile", str(own), "--users", "5", "--spawn-rate", "5",
        "--duration", "3s", "--warmup", "1s", "--out", str(out),
        "--target", f"ours={stack.urls['flask_sync']}",
        "--target", f"theirs={stack.urls['fastapi_async']}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = _summary(out)
    assert summary["plan"]["locustfile"] == str(own) and summary["scenario"] == "own_locustfile"
    assert list(summary["variants"]) == ["ours", "theirs"]
    for v in summary["variants"].values():
        assert v["requests"] > 0 and v["failures"] == 0
        assert v["requests"] == v["locust_requests"]
        assert v["integrity"] is None  # an external service: no database to check


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--locustfile", "nowhere.py"], "--locustfile nowhere.py: cannot read it"),
        (["--locustfile", "NO_USERS"], "no user class in it"),
        (
            ["--target", "http://127.0.0.1:9", "--target", "b=http://127.0.0.1:9"],
            "give each a name",
        ),
    ],
)
def test_bad_locustfile_or_targets_are_one_line_exit_2(
    stack: Stack, tmp_path: Path, args: list[str], said: str
) -> None:
    own = Path(__file__).parent / "own_locustfile.py"
    flags = args if args[0] == "--locustfile" else ["--locustfile", str(own), *args]
    if "NO_USERS" in flags:  # a Locust file with tasks but no user class to run them
        empty = tmp_path / "no_users.py"
        empty.write_text("from locust import task\n\n\n@task\ndef alone(user):\n    pass\n")
        flags = ["--locustfile", str(empty)]
    result = _loadlab("run", "--state-dir", str(stack.settings.state_dir), *flags,
                      "--out", str(tmp_path / "r"))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
