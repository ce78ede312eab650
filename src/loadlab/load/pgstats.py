"""Time spent inside PostgreSQL, from pg_stat_statements: the part of a request's latency
that database monitoring sees (the rest is Python, the network and queueing)."""

from __future__ import annotations

import contextlib

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
