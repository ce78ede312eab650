"""`loadlab ui`: Locust's own web UI on loopback, driving one real service, ended by Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loadlab.load.recorder import Recorder, latency_ms
from tests.conftest import Stack, free_port
from tests.report.test_html import CHROMIUM, screenshot


def _loadlab_ui(stack: Stack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loadlab", "ui", "--state-dir", str(stack.settings.state_dir),
         *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, to send Ctrl-C to as a terminal would
    )  # fmt: skip


def _aggregated(base: str) -> dict[str, Any]:
    stats = httpx.get(f"{base}/stats/requests", timeout=5).json()["stats"]
    return next(row for row in stats if row["name"] == "Aggregated")


def test_ui_serves_on_loopback_and_drives_the_chosen_service(stack: Stack) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _loadlab_ui(stack, "--variant", "fastapi_async", "--web-port", str(port))
    try:
        deadline = time.monotonic() + 60
        page = None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(base, timeout=2).text
            except httpx.HTTPError:
                time.sleep(0.2)
        assert page is not None, "the web UI never answered"
        assert stack.urls["fastapi_async"] in page  # the form is set to the chosen service
        listening = {
            c.laddr.ip
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
        locusts = psutil.Process(proc.pid).children(recursive=True)

        # What a user does in the page: start 5 users, watch the counts, stop.
        started = httpx.post(f"{base}/swarm", data={"user_count": 5, "spawn_rate": 5}).json()
        assert started["success"], started
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _aggregated(base)["num_requests"] < 50:
            time.sleep(0.5)
        totals = _aggregated(base)
        assert totals["num_requests"] >= 50 and totals["num_failures"] == 0, totals
        assert httpx.post(f"{base}/stop").status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    time.sleep(0.5)
    assert not [p for p in locusts if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_ui_killed_with_minus_9_leaves_no_locust_behind(stack: Stack) -> None:
    """`loadlab ui` stops its Locust on Ctrl-C; killed outright it cannot, so the Locust web
    UI watches it and stops itself (an orphan would serve the page on its port for ever)."""
    port = free_port()
    proc = _loadlab_ui(stack, "--variant", "flask_sync", "--web-port", str(port))
    try:
        _wait_for(lambda: _answers(f"http://127.0.0.1:{port}"), 60, "the web UI")
        locusts = psutil.Process(proc.pid).children(recursive=True)
        assert locusts
        proc.kill()  # SIGKILL to loadlab ui alone, not its group
        proc.wait(timeout=10)
        gone, alive = psutil.wait_procs(locusts, timeout=15)
        assert not alive, f"Locust outlived loadlab ui: {[p.pid for p in alive]}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _answers(base: str) -> bool:
    try:
        return httpx.get(base, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(
    "bad",
    [
        ["--variant", "django"],
        ["--scenario", "nope"],
        ["--run-time", "0"],
        ["--web-port"],
        ["--workers", "-1"],
        ["--reports", "/proc/loadlab-reports"],
    ],
)
def test_bad_ui_input_is_one_line_exit_2(stack: Stack, bad: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if bad == ["--web-port"]:
            bad = ["--web-port", str(taken.getsockname()[1])]
        proc = _loadlab_ui(stack, *bad)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _data(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/loadlab/data", timeout=10).json()


def _swarm(base: str, form: dict[str, Any]) -> dict[str, Any]:
    """Start a test as the form does; after a stop the workers finish their requests first
    (the UI says so), so this asks again for up to 30 s."""
    deadline = time.monotonic() + 30
    while True:
        answer: dict[str, Any] = httpx.post(f"{base}/swarm", data=form, timeout=60).json()
        if answer["success"] or "worker is ready" not in answer["message"]:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)


def _one_test(base: str, form: dict[str, Any], requests: int) -> dict[str, Any]:
    """Start a test from the form, let it send `requests`, stop it; its settled figures."""
    started = _swarm(base, form)
    assert started["success"], started
    _wait_for(
        lambda: (
            (d := _data(base))["stack"] == form["stack"]
            and d["report"] is None  # this test's, not the last one's
            and d["whole"]["count"] >= requests
        ),
        60,
        f"{requests} requests",
    )
    early = httpx.post(f"{base}/loadlab/report", timeout=10)
    assert early.status_code == 409 and "still running" in early.json()["error"]
    assert httpx.post(f"{base}/stop", timeout=30).status_code == 200
    return _wait_for(lambda: (d := _data(base))["integrity"] is not None and d, 60, "integrity")


def test_the_loadlab_tab_gives_the_recorders_exact_figures_and_writes_the_run_report(
    stack: Stack, tmp_path: Path
) -> None:
    """Through Locust's HTTP API, as the page does: the tab's figures come from the same
    recorder a headless run writes (its percentiles equal those of the report it writes, and
    it counts every request Locust counted); stacks switch per test; the report is a `run`
    report folder; Chromium draws the tab without a console error."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    reports = tmp_path / "reports"
    proc = _loadlab_ui(stack, "--web-port", str(port), "--workers", "1", "--reports", str(reports))
    try:
        page = _wait_for(lambda: _get_page(base), 60, "the web UI")
        assert '"loadlab"' in page  # the tab, in the page's template arguments
        # A stack the UI does not know is refused in the form's answer, nothing started.
        refused = httpx.post(
            f"{base}/swarm", data={"user_count": 2, "spawn_rate": 2, "stack": "nope"}
        )
        assert not refused.json()["success"] and "nope" in refused.json()["message"]
        assert httpx.post(f"{base}/loadlab/report").status_code == 409  # no test yet

        form = {"user_count": 10, "spawn_rate": 10, "stack": "fastapi_async", "arrival_rate": 0}
        data = _one_test(base, form, 300)
        assert data["stack"] == "fastapi_async" and data["url"] == stack.urls["fastapi_async"]
        locust = _aggregated(base)
        assert data["whole"]["count"] == locust["num_requests"]  # every request, both counts
        assert {"p50", "p95", "p99", "p99_9"} <= data["whole"].keys()
        assert {"app", "sql"} <= data["server_p50_ms"].keys()  # the split, from Server-Timing
        assert {"fastapi_async", "postgres", "locust"} <= data["cpu"].keys()
        assert data["integrity"]["checks"][0]["holds"] is True
        rows = httpx.get(f"{base}/stats/requests").json()["extended_stats"][0]
        assert rows["key"] == "loadlab"
        figures = {row["figure"]: row for row in rows["data"]}
        assert figures["p99 ms (exact)"]["whole"] == f"{data['whole']['p99']:,.1f}"
        assert figures["integrity"]["whole"].startswith("POST /users/[id]/visit: holds")
        assert figures["load"]["whole"] == "closed model: 10 users"

        written = httpx.post(f"{base}/loadlab/report", timeout=60)
        assert written.status_code == 200, written.text
        folder = reports / written.json()["report"]
        summary = json.loads((folder / "summary.json").read_text())
        figures_of = summary["variants"]["fastapi_async"]
        assert summary["plan"]["interactive"] is True and summary["plan"]["workers"] == 1
        for key in ("p50", "p95", "p99", "p99_9"):
            assert figures_of["latency_ms"][key] == data["whole"][key], key
        assert figures_of["requests"] == data["whole"]["count"]
        assert figures_of["integrity"][0]["holds"] and not any(figures_of["half_written"].values())
        kept = Recorder()
        kept.merge(json.loads((folder / "fastapi_async" / "recorder.json").read_text())["recorder"])
        assert latency_ms(kept.total)["p99_9"] == data["whole"]["p99_9"]
        assert not [f for f in summary["flags"] if f.startswith("FAIL")]
        again = httpx.get(f"{base}/loadlab/report", follow_redirects=True, timeout=30)
        assert again.status_code == 200 and "fastapi_async" in again.text  # the same page
        assert sorted(p.name for p in reports.iterdir() if p.is_dir()) == [folder.name]

        if CHROMIUM is not None:
            image, console = screenshot(f"{base}/?tab=loadlab", tmp_path, wait_ms=6000)
            assert [line for line in console if "error" in line.lower()] == []
            assert len(image.getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank

        # The next test on the other stack; the last two reports give a compare command.
        # The open model, chosen in the form: 100 requests a second over both processes.
        data = _one_test(base, {**form, "stack": "flask_sync", "arrival_rate": 100}, 300)
        assert data["stack"] == "flask_sync"
        second = httpx.post(f"{base}/loadlab/report", timeout=60).json()
        assert second["report"] != folder.name
        opened = json.loads((reports / second["report"] / "summary.json").read_text())
        assert opened["plan"]["arrival_rate"] == 100
        offered = opened["variants"]["flask_sync"]["offered_rps"]
        assert 80 < offered < 120, offered  # the schedule's rate, shared by master's workers
        compare = second["compare"].split()
        assert compare[-2:] == [str(folder), str(reports / second["report"])]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadlab",
                "compare",
                str(folder),
                str(reports / second["report"]),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode in (0, 1), result.stderr  # 1: a regression found, still a page
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not list(reports.glob(".tmp-*"))  # nothing half-written


def _get_page(base: str) -> str | None:
    try:
        return httpx.get(base, timeout=2).text
    except httpx.HTTPError:
        return None
