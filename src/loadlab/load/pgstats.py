"""Time spent inside PostgreSQL, from pg_stat_statements: the part of a request's latency
that database monitoring sees (the rest is Python, the network and queueing)."""

from __future__ import annotations

import psycopg2

_TOTALS = """
SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0)
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def _query(database_url: str, sql: str) -> tuple[float, float] | None:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
            return (float(row[0]), float(row[1])) if row and len(row) == 2 else None
    except psycopg2.Error:
        return None  # no pg_stat_statements on this server: the report says "not measured"
    finally:
        conn.close()


_EVENTS = """
SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
       (SELECT coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables),
       (SELECT coalesce(sum(autoanalyze_count), 0) FROM pg_stat_user_tables)
"""
EVENT_NAMES = ("checkpoints", "autovacuums", "autoanalyzes")


def events(database_url: str) -> dict[str, int]:
    """Counters of background work that can stall requests: checkpoints and autovacuum."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(_EVENTS)
            row = cur.fetchone() or (0, 0, 0)
            return {name: int(value) for name, value in zip(EVENT_NAMES, row, strict=True)}
    finally:
        conn.close()


def reset(database_url: str) -> None:
    _query(database_url, "SELECT pg_stat_statements_reset()")


def totals(database_url: str) -> dict[str, float] | None:
    """Statements executed and their total execution time (ms) since the last reset."""
    row = _query(database_url, _TOTALS)
    return None if row is None else {"statements": row[0], "exec_ms": round(row[1], 1)}
