"""Each service reports what a request cost it: statements and Server-Timing parts."""

from __future__ import annotations

import httpx

from loadlab.load.recorder import Recorder, parse_server_timing
from tests.conftest import Stack


def test_a_database_request_reports_app_connection_and_sql_time(
    fresh: Stack, service_url: str
) -> None:
    response = httpx.post(f"{service_url}/users/3/visit")
    assert response.status_code == 200
    assert response.headers["X-SQL-Statements"] == "2"
    timing = parse_server_timing(response.headers["Server-Timing"])
    assert set(timing) == {"app", "conn", "sql"}
    assert 0 < timing["sql"] <= timing["app"] and 0 <= timing["conn"] <= timing["app"]


def test_a_request_refused_before_the_database_reports_only_app_time(service_url: str) -> None:
    response = httpx.get(f"{service_url}/users/abc")
    assert response.status_code == 422
    assert response.headers["X-SQL-Statements"] == "0"
    assert set(parse_server_timing(response.headers["Server-Timing"])) == {"app"}


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
