"""In what order does the async pool hand a freed connection to the tasks waiting for it?

SQLAlchemy's async pool waits on an asyncio queue. When a connection is given back, the
oldest waiter is woken, but the connection stays in the queue until that waiter runs; a task
that asks in between (the one that just gave it back, or any newcomer) takes it, and the
woken waiter finds the queue empty and queues again at the back (CPython issue 83055;
asyncpg issue 1247 describes the same in asyncpg's pool). Under load that is a long tail at a
modest mean: a few requests lose their turn again and again. asyncio's Semaphore, since
Python 3.11.1, keeps arrival order, so a semaphore sized to the pool in front of it
(the async stacks' `fair_admission` knob) restores it. These tests pin what happens on the
real driver and database, whatever it is, so a change in SQLAlchemy or CPython shows here.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


def test_a_fifo_semaphore_in_front_of_the_pool_keeps_arrival_order(stack: Stack) -> None:
    assert asyncio.run(_measure(stack, fair=True)) == [1, 2, 3, "again"]
