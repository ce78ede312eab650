"""Time spent inside PostgreSQL, from pg_stat_statements: the part of a request's latency
that database monitoring sees (the rest is Python, the network and queueing)."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg2

from loadlab.stack.postgres import fetch_one

_TOTALS = """
SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0)
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


_EVENTS = """
SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
       (SELECT coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables),
       (SELECT coalesce(sum(autoanalyze_count), 0) FROM pg_stat_user_tables)
"""
EVENT_NAMES = ("checkpoints", "autovacuums", "autoanalyzes")


def events(database_url: str) -> dict[str, int]:
    """Counters of background work that can stall requests: checkpoints and autovacuum."""
    row = fetch_one(database_url, _EVENTS)
    return {name: int(value) for name, value in zip(EVENT_NAMES, row, strict=True)}


def reset(database_url: str) -> None:
    # No pg_stat_statements on this server: totals() then says "not measured".
    with contextlib.suppress(psycopg2.Error):
        fetch_one(database_url, "SELECT pg_stat_statements_reset()")


def totals(database_url: str) -> dict[str, float] | None:
    """Statements executed and their total execution time (ms) since the last reset, or
    None where the server has no pg_stat_statements."""
    try:
        calls, exec_ms = fetch_one(database_url, _TOTALS)
    except psycopg2.Error:
        return None
    return {"statements": float(calls), "exec_ms": round(float(exec_ms), 1)}


_CONNECTIONS = """
SELECT count(*), count(*) FILTER (WHERE state = 'active')
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND datname = current_database()
  AND pid <> pg_backend_pid() AND application_name = %s
"""


class Connections:
    """One service's connections to the database (by their application_name, the service's
    name), open and running a statement, sampled once a second in a thread while a run
    lasts. Through PgBouncer these are PgBouncer's server connections, which carry the
    client's application_name while they serve it."""

    def __init__(self, database_url: str, application_name: str, interval: float = 1.0) -> None:
        self.database_url = database_url
        self.application_name = application_name
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (epoch s, open, active)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loadlab-pg-conns", daemon=True)

    def __enter__(self) -> Connections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            conn = psycopg2.connect(self.database_url)
        except psycopg2.Error:
            return  # no figures rather than a failed run: the page says "not measured"
        conn.autocommit = True
        with contextlib.closing(conn), conn.cursor() as cur:
            while not self._stop.wait(self.interval):
                try:
                    cur.execute(_CONNECTIONS, (self.application_name,))
                    opened, active = cur.fetchone()
                except psycopg2.Error:
                    continue  # a restart during a fault run: the next second may answer
                self.samples.append((time.time(), int(opened), int(active)))

    def summary(self, start: float, end: float) -> dict[str, float] | None:
        inside = [(o, a) for t, o, a in self.samples if start <= t <= end]
        if not inside:
            return None
        opened, active = [o for o, _ in inside], [a for _, a in inside]
        return {
            "open_mean": round(sum(opened) / len(opened), 1),
            "open_max": max(opened),
            "active_mean": round(sum(active) / len(active), 1),
            "active_max": max(active),
        }
