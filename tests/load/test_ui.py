"""`loadlab ui`: Locust's own web UI on loopback, driving one real service, ended by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import Stack, free_port


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


@pytest.mark.parametrize(
    "bad", [["--variant", "django"], ["--scenario", "nope"], ["--run-time", "0"], ["--web-port"]]
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
