"""load/plain_users.py: a plain Locust user class in the open model waits for each start and
passes how late it was in each request's context; in the closed model it runs as written.
(In a process of its own: plain_users_probe.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    probe = Path(__file__).parent / "plain_users_probe.py"
    done = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_open_model_waits_for_each_start_and_carries_its_lateness(
    seen: dict[str, Any],
) -> None:
    found = seen["open"]
    assert found["wrapped"] == ["Plain"]  # not the LoadlabUser stand-in
    assert found["started"] == ["own on_start"]  # its own on_start still runs, after the wait
    assert found["counts"]["sent"] == 2 and found["counts"]["late"] == 1
    assert found["waited"] == 0.0  # the schedule was the wait, not the class's 7 s
    first, second = found["late_ms"]
    assert 40 <= first <= 1000  # its start was due 50 ms before it was taken
    assert second < 5  # taken when due: barely late
    assert found["stopped"]  # the run is over: the user goes home


def test_the_closed_model_keeps_the_users_own_wait_start_and_requests(
    seen: dict[str, Any],
) -> None:
    found = seen["closed"]
    assert found["started"] == ["own on_start"] and found["wait"] == 7
    assert found["contexts"] == [{}]  # no lateness added to its requests
    assert found["again"] == []  # wrapped once only
