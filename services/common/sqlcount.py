"""Counts the SQL statements each request runs, on the server side.

Both services send the count back in the `X-SQL-Statements` header, so `loadlab verify` can
check that an endpoint costs the same number of statements in each. A context variable holds
the counter: it follows a request through gunicorn's threads and through SQLAlchemy's
greenlet bridge (which shares the caller's context).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import Engine, event

HEADER = "X-SQL-Statements"


class _Counter:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


_current: ContextVar[_Counter | None] = ContextVar("loadlab_sql_counter", default=None)


def _count(*_args: Any) -> None:
    counter = _current.get()
    if counter is not None:
        counter.n += 1


def install(engine: Engine) -> None:
    """Count every statement this (sync, or an async engine's sync_engine) engine sends."""
    event.listen(engine, "before_cursor_execute", _count)


def start() -> Token[_Counter | None]:
    """Begin counting for the current request."""
    return _current.set(_Counter())


def count() -> int:
    counter = _current.get()
    return counter.n if counter is not None else 0


def stop(token: Token[_Counter | None]) -> int:
    """End counting; the number of statements since `start`."""
    n = count()
    _current.reset(token)
    return n
