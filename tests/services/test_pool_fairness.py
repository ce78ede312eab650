"""In what order does the async pool hand a freed connection to the tasks waiting for it?

SQLAlchemy's async pool waits on an asyncio queue. When a connection is given back, the
oldest waiter is woken, but the connection stays in the queue until that waiter runs; a task
that asks in between (the one that just gave it back, or any newcomer) takes it, and the
woken waiter finds the queue empty and queues again at the back (CPython issue 83055;
asyncpg issue 1247 describes the same in asyncpg's pool). Under load that is a long tail at a
modest mean: a few requests lose their turn again and again. asyncio's Semaphore, since
Python 3.11.1, keeps arrival order, so a semaphore sized to the pool in front of it
(the async stacks' `fair_admission` knob) restores it. These tests pin what happens on the
real driver and database, whatever it is, so a change in SQLAlchemy or CPython shows here;
the fair ones go through the service's own code (the lifespan's semaphore and the routes'
db.admitted_session).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.settings import ServiceSettings
from services.fastapi_async.app import orm_session
from services.fastapi_async.db import admitted_session
from tests.conftest import Stack


def _engine(stack: Stack) -> AsyncEngine:
    url = stack.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=10)


async def _order(engine: AsyncEngine, fair: bool) -> list[object]:
    """Three tasks queue for the one connection, in order 1, 2, 3; the task holding it gives
    it back and asks again at once. With `fair`, every task first passes a FIFO semaphore
    sized to the pool. Returns who got the connection, in order."""
    order: list[object] = []
    admission = asyncio.Semaphore(1) if fair else contextlib.nullcontext()

    async def turn(who: object) -> None:
        async with admission, engine.connect() as conn:
            order.append(who)
            await conn.execute(text("SELECT 1"))

    async with admission:
        holder = await engine.connect()
        await holder.execute(text("SELECT 1"))
        waiters = []
        for who in (1, 2, 3):
            waiters.append(asyncio.create_task(turn(who)))
            await asyncio.sleep(0.02)  # each is waiting before the next one comes
        await holder.close()
    await turn("again")  # no await in between: it asks the moment it gave the connection back
    await asyncio.gather(*waiters)
    return order


async def _measure(stack: Stack, fair: bool) -> list[object]:
    engine = _engine(stack)
    try:
        return await _order(engine, fair)
    finally:
        await engine.dispose()


def test_the_async_pool_lets_a_newcomer_barge_and_the_oldest_waiter_goes_last(
    stack: Stack,
) -> None:
    # Found on SQLAlchemy 2.1 / asyncpg 0.32 / CPython 3.11: the task that gave the
    # connection back gets it again, and waiter 1, woken but robbed, waits behind 2 and 3.
    assert asyncio.run(_measure(stack, fair=False)) == ["again", 2, 3, 1]


async def _service_order(state: object) -> list[object]:
    """Three requests queue for the one connection, in order 1, 2, 3; the request holding it
    gives it back and asks again at once. Each takes its session the way the service's
    routes do (db.admitted_session, behind `fair_admission` when it is on). Returns who got
    the connection, in order."""
    order: list[object] = []

    async def turn(who: object) -> None:
        async with admitted_session(state) as session:
            await session.execute(text("SELECT 1"))  # holds the pool's one connection
            order.append(who)

    async with admitted_session(state) as holder:
        await holder.execute(text("SELECT 1"))
        waiters = []
        for who in (1, 2, 3):
            waiters.append(asyncio.create_task(turn(who)))
            await asyncio.sleep(0.02)  # each is waiting before the next one comes
    await turn("again")  # no await in between: it asks the moment it gave the connection back
    await asyncio.gather(*waiters)
    return order


async def _through_the_service(stack: Stack, fair: bool, pool: int = 1) -> list[object]:
    """The service's own lifespan resources (engine, sessionmaker, admission) on a pool of
    one connection, as `DB_FAIR_ADMISSION` sets them."""
    settings = ServiceSettings(  # type: ignore[call-arg]
        DATABASE_URL=stack.database_url,
        DB_POOL_SIZE=pool,
        DB_MAX_OVERFLOW=0,
        DB_POOL_TIMEOUT=10,
        DB_FAIR_ADMISSION=fair,
    )
    app = FastAPI()
    async with orm_session(app, settings):
        return await _service_order(app.state)


def test_fair_admission_serves_requests_in_arrival_order(stack: Stack) -> None:
    """The service's own `fair_admission` path (the lifespan's semaphore, the routes'
    admitted_session): a freed connection goes to the request that waited longest."""
    assert asyncio.run(_through_the_service(stack, fair=True)) == [1, 2, 3, "again"]


def test_fair_admission_is_sized_to_the_pool(stack: Stack) -> None:
    """Pool 2 + overflow 0: two sessions at once pass, the third waits at the semaphore
    (before the pool), and goes once one is done; without fair admission there is none."""

    async def measure(fair: bool) -> tuple[bool, bool]:
        settings = ServiceSettings(  # type: ignore[call-arg]
            DATABASE_URL=stack.database_url, DB_POOL_SIZE=2, DB_MAX_OVERFLOW=0,
            DB_FAIR_ADMISSION=fair,
        )  # fmt: skip
        app = FastAPI()
        async with orm_session(app, settings):
            if app.state.admission is None:
                return False, False
            async with admitted_session(app.state) as one, admitted_session(app.state) as two:
                await one.execute(text("SELECT 1"))
                await two.execute(text("SELECT 1"))
                third = asyncio.create_task(_one_query(app.state))
                await asyncio.sleep(0.05)
                waited = not third.done() and app.state.admission.locked()
            await asyncio.wait_for(third, 10)
            return waited, third.done()

    assert asyncio.run(measure(fair=True)) == (True, True)
    assert asyncio.run(measure(fair=False)) == (False, False)


async def _one_query(state: object) -> None:
    async with admitted_session(state) as session:
        await session.execute(text("SELECT 1"))
