"""What each request cost on the server: SQL statements, and where its time went.

Both services send back three headers:
- `X-SQL-Statements`: how many statements the request ran, so `loadlab verify` can check that
  an endpoint costs the same number in each;
- `X-DB-Connections-Held`: pooled connections the request still held when its response
  started. The contract says 0: both services give the connection back before answering, so
  neither keeps a connection (and its ROLLBACK) out of the pool while the client reads;
- `Server-Timing` (the W3C header): `queue` (ms from the server reading the request off its
  socket, or gunicorn accepting its connection, until the app got it: waiting for a worker
  thread or for the event loop's turn), `app` (ms from the app receiving the request to its
  response headers), `conn` (ms from then until the first pooled connection was handed over:
  waiting for the pool), `sql` (ms inside the driver's execute calls, network included),
  `orm` (ms inside the session's execute and flush calls) and `bridge` (the part of them
  outside the driver and the pool wait: the article's "invisible overhead", measured its
  way, a session that times its own calls beside the cursor events; in an async stack it
  holds the greenlet bridge, the ORM's own work and the event loop running other requests
  before this one resumes).
  The load generator records them, so a report can split a client's latency into time not yet
  read by the server (the kernel's queues), queued in the server, waiting for a connection,
  and in the database.

A context variable holds the request's figures: it follows a request through gunicorn's
threads and through SQLAlchemy's greenlet bridge (which shares the caller's context).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import Engine, event

SQL_HEADER = "X-SQL-Statements"
HELD_HEADER = "X-DB-Connections-Held"
TIMING_HEADER = "Server-Timing"


class _Cost:
    __slots__ = (
        "statements",
        "held",
        "read_at",
        "started",
        "connected",
        "sql_seconds",
        "sql_started",
        "orm_seconds",
        "bridge_seconds",
        "orm_depth",
    )

    def __init__(self, read_at: float | None) -> None:
        self.statements = 0
        self.held = 0
        self.read_at = read_at
        self.started = time.perf_counter()
        self.connected: float | None = None
        self.sql_seconds = 0.0
        self.sql_started = 0.0
        self.orm_seconds = 0.0
        self.bridge_seconds = 0.0
        self.orm_depth = 0


_current: ContextVar[_Cost | None] = ContextVar("loadlab_request_cost", default=None)
# When the server took up the request the current thread is about to run (time.perf_counter):
# gunicorn's handler thread sets it (flask_sync/gunicorn_worker.py); uvicorn passes it in the
# ASGI scope instead, as it runs each request in a fresh context (fastapi_async/protocol.py).
_read_at: ContextVar[float | None] = ContextVar("loadlab_request_read_at", default=None)
READ_AT_KEY = "loadlab.read_at"


def request_read(at: float) -> None:
    """The server took up the request this thread runs next at `at` (perf_counter)."""
    _read_at.set(at)


def statement_started(*_args: Any) -> None:
    """A statement goes to the driver (SQLAlchemy's event, or a raw driver call's wrapper)."""
    cost = _current.get()
    if cost is not None:
        cost.statements += 1
        cost.sql_started = time.perf_counter()


def statement_finished(*_args: Any) -> None:
    cost = _current.get()
    if cost is not None:
        cost.sql_seconds += time.perf_counter() - cost.sql_started


def checked_out(*_args: Any) -> None:
    """A pooled connection was handed to the request."""
    cost = _current.get()
    if cost is not None:
        cost.held += 1
        if cost.connected is None:
            cost.connected = time.perf_counter()


def checked_in(*_args: Any) -> None:
    cost = _current.get()
    if cost is not None:
        cost.held -= 1


@contextmanager
def orm_call() -> Iterator[None]:
    """Around one session execute or flush (ProfiledSession in each service): its whole
    time, and the part of it not spent in the driver's execute calls. A flush inside an
    execute (autoflush) is the outer call's."""
    cost = _current.get()
    if cost is None or cost.orm_depth:
        yield
        return
    start, sql_before, connected_before = time.perf_counter(), cost.sql_seconds, cost.connected
    cost.orm_depth += 1
    try:
        yield
    finally:
        cost.orm_depth -= 1
        elapsed = time.perf_counter() - start
        # The pool wait is a part of its own (`conn`): not the bridge's, if it fell in here.
        pool_wait = 0.0
        if connected_before is None and cost.connected is not None:
            pool_wait = max(cost.connected - start, 0.0)
        cost.orm_seconds += elapsed
        outside = elapsed - (cost.sql_seconds - sql_before) - pool_wait
        cost.bridge_seconds += max(outside, 0.0)


def install(engine: Engine) -> None:
    """Watch every statement and pool checkout of this (sync, or an async engine's
    sync_engine) engine."""
    event.listen(engine, "before_cursor_execute", statement_started)
    event.listen(engine, "after_cursor_execute", statement_finished)
    event.listen(engine.pool, "checkout", checked_out)
    event.listen(engine.pool, "checkin", checked_in)


def start(read_at: float | None = None) -> Token[_Cost | None]:
    """Begin measuring the current request; `read_at` is when the server took it up, if known
    (else what `request_read` said in this thread)."""
    return _current.set(_Cost(_read_at.get() if read_at is None else read_at))


def headers() -> list[tuple[str, str]]:
    """The headers for the current request, as measured so far."""
    cost = _current.get()
    if cost is None:
        return [(SQL_HEADER, "0"), (HELD_HEADER, "0")]
    timing = [f"app;dur={(time.perf_counter() - cost.started) * 1000:.3f}"]
    if cost.read_at is not None:
        timing.append(f"queue;dur={max(cost.started - cost.read_at, 0.0) * 1000:.3f}")
    if cost.connected is not None:
        timing.append(f"conn;dur={(cost.connected - cost.started) * 1000:.3f}")
        timing.append(f"sql;dur={cost.sql_seconds * 1000:.3f}")
    if cost.orm_seconds:
        timing.append(f"orm;dur={cost.orm_seconds * 1000:.3f}")
        timing.append(f"bridge;dur={cost.bridge_seconds * 1000:.3f}")
    return [
        (SQL_HEADER, str(cost.statements)),
        (HELD_HEADER, str(cost.held)),
        (TIMING_HEADER, ", ".join(timing)),
    ]


def stop(token: Token[_Cost | None]) -> None:
    """End measuring the current request."""
    _current.reset(token)
