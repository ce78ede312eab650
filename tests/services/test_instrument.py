"""Each service reports what a request cost it: statements and Server-Timing parts."""

from __future__ import annotations

import contextvars
import time

import httpx
import pytest

from loadlab.load.recorder import Recorder
from loadlab.load.server_timing import parse as parse_server_timing
from tests.conftest import Stack


def _parts(stack: Stack, service_url: str, *parts: str) -> set[str]:
    """The Server-Timing parts a stack reports. flask_gevent's greenlet waits for the hub's
    turn before it reads the request, where no server hook sees it, and Granian reads it in
    Rust, with no hook where it does: neither reports `queue`, and the page shows their wait
    unsplit (`before`: the kernel's queue and the server's own)."""
    unsplit = {stack.urls.get(name) for name in ("flask_gevent", "fastapi_granian")}
    queue = () if service_url in unsplit else ("queue",)
    return {*parts, *queue}


def test_a_database_request_reports_app_connection_and_sql_time(
    fresh: Stack, service_url: str
) -> None:
    response = httpx.post(f"{service_url}/users/3/visit")
    assert response.status_code == 200
    assert response.headers["X-SQL-Statements"] == "2"
    timing = parse_server_timing(response.headers["Server-Timing"])
    assert set(timing) == _parts(fresh, service_url, "app", "conn", "sql", "orm", "bridge")
    assert 0 < timing["sql"] <= timing["app"] and 0 <= timing["conn"] <= timing["app"]
    # The session's calls: the SELECT ... FOR UPDATE (execute) and the UPDATE (the commit's
    # flush) both go through them, so they hold all of the driver's time, and the bridge is
    # what is left of them once the driver and the pool wait are taken out.
    assert timing["sql"] <= timing["orm"] + 0.01 and timing["orm"] <= timing["app"] + 0.01
    assert 0 <= timing["bridge"] <= timing["orm"] - timing["sql"] + 0.01
    # One request alone: taken up by the server and handed to the app at once.
    assert 0 <= timing.get("queue", 0) < 1000


def test_a_request_refused_before_the_database_reports_only_app_time(
    stack: Stack, service_url: str
) -> None:
    response = httpx.get(f"{service_url}/users/abc")
    assert response.status_code == 422
    assert response.headers["X-SQL-Statements"] == "0"
    timing = parse_server_timing(response.headers["Server-Timing"])
    assert set(timing) == _parts(stack, service_url, "app")


def test_the_server_queue_part_is_the_wait_from_read_to_the_app() -> None:
    """What the servers' hooks tell the instrument (when the request was taken up) becomes
    the `queue` part: the time until the app started measuring it."""
    from services.common import instrument

    token = instrument.start(read_at=time.perf_counter() - 0.05)
    try:
        timing = parse_server_timing(dict(instrument.headers())["Server-Timing"])
    finally:
        instrument.stop(token)
    assert 50 <= timing["queue"] < 5000
    # gunicorn's thread says it through request_read instead of an argument.
    context = contextvars.Context()
    context.run(instrument.request_read, time.perf_counter() - 0.02)
    token = context.run(instrument.start)
    timing = parse_server_timing(dict(context.run(instrument.headers))["Server-Timing"])
    assert 20 <= timing["queue"] < 5000
    # No hook (a test client, another server): no queue part rather than a made-up one.
    token = instrument.start()
    try:
        assert "queue" not in dict(instrument.headers())["Server-Timing"]
    finally:
        instrument.stop(token)


def test_the_recorder_splits_before_the_app_into_kernel_and_server_queue() -> None:
    recorder = Recorder()
    recorder.record_server({"queue": 3.0, "app": 10.0, "conn": 1.0, "sql": 4.0}, 20.0)
    parts = {k: h.get_max_value() / 1000 for k, h in recorder.server.items()}
    assert parts["before"] == pytest.approx(10.0, rel=1e-2)
    assert parts["kernel"] == pytest.approx(7.0, rel=1e-2)
    assert parts["rest"] == pytest.approx(5.0, rel=1e-2)
    # A service that sends no queue part: `before` stays whole, nothing is split.
    recorder = Recorder()
    recorder.record_server({"app": 10.0}, 20.0)
    assert set(recorder.server) == {"app", "before"}


def test_server_timing_parsing() -> None:
    assert parse_server_timing("app;dur=1.5, conn;dur=0.25,sql;desc=x;dur=3") == {
        "app": 1.5,
        "conn": 0.25,
        "sql": 3.0,
    }
    assert parse_server_timing("cache;desc=hit, app;dur=oops, db;dur=2") == {"db": 2.0}
    assert parse_server_timing("") == {}


def test_server_timing_histograms_travel_from_worker_to_master() -> None:
    worker, master = Recorder(), Recorder()
    for ms in (1.0, 2.0, 3.0):
        worker.record_server({"app": ms, "sql": ms / 2})
    master.merge(worker.export())
    assert master.server["app"].get_total_count() == 3
    assert master.server["sql"].get_max_value() // 1000 == 1  # 1.5 ms, in microseconds
    assert worker.server == {}  # shipped, so the worker starts afresh
    master.start_measuring()
    assert master.server == {}
