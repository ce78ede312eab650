"""The async engine (made in the lifespan) and the per-request session dependency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from services.common import instrument
from services.common.settings import ServiceSettings


class FlushProfiledSession(Session):
    """The sync session inside the async one: its flush (the commit's writes, run in the
    greenlet, awaiting the driver through it) is timed; its execute is timed outside."""

    def flush(self, *args: Any, **kwargs: Any) -> None:
        with instrument.orm_call():
            super().flush(*args, **kwargs)


class ProfiledSession(AsyncSession):
    """The article's profiling recipe: each execute (and scalars, which calls it) timed
    whole, from the await, beside the driver time the cursor events see
    (instrument.orm_call)."""

    sync_session_class = FlushProfiledSession

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        with instrument.orm_call():
            return await super().execute(*args, **kwargs)


def make_engine(settings: ServiceSettings) -> AsyncEngine:
    """The async engine on the chosen driver, with the same pool settings as the sync
    service."""
    name = settings.service_name
    connect_args: dict[str, Any]
    if settings.db_async_driver == "psycopg":
        connect_args = {"application_name": name}
        if settings.pgbouncer_safe:
            # psycopg 3 prepares a statement after its 5th run on a connection; PgBouncer
            # 1.18 in transaction mode may run the next one on another server connection.
            connect_args["prepare_threshold"] = None
    else:
        connect_args = {"server_settings": {"application_name": name}}
        if settings.pgbouncer_safe:
            # PgBouncer 1.18 in transaction mode hands each transaction to any server
            # connection: no statement cache, and unique names for the statements asyncpg
            # still prepares (SQLAlchemy's documented recipe for asyncpg behind PgBouncer).
            connect_args |= {
                "statement_cache_size": 0,
                "prepared_statement_cache_size": 0,
                "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__",
            }
    engine = create_async_engine(
        settings.url_for(settings.db_async_driver),
        connect_args=connect_args,
        **settings.engine_kwargs(),
    )
    instrument.install(engine.sync_engine)
    return engine


@asynccontextmanager
async def admitted_session(state: Any) -> AsyncIterator[AsyncSession]:
    """A session from the app's sessionmaker (`state` is app.state, set by the lifespan),
    behind the FIFO admission semaphore when `fair_admission` is on: then no more sessions
    at once than the pool has connections, in arrival order."""
    make_session: async_sessionmaker[AsyncSession] = state.make_session
    admission: asyncio.Semaphore | None = state.admission
    if admission is None:
        async with make_session() as session:
            yield session
        return
    async with admission, make_session() as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed as soon as the handler returns."""
    async with admitted_session(request.app.state) as session:
        yield session


# scope="function": close the session (ROLLBACK, connection back to the pool) when the
# handler returns, before the response is sent, as Flask's `with make_session()` does. The
# default ("request") closes it after the response, holding the connection meanwhile.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
