"""The article's serial benchmark table (`../shared/seeds/000_caf037058c97b154.txt`), one query
after another on one connection: primary-key SELECTs, eager loading of three relations, ORM
bulk inserts and the join of "the raw driver alternative", sync against async.

Every variant reads the same seeded rows (loadlab's seed, `loadlab up`) in the same order.
Inserts go to ids above the seed's and are deleted after each pass, outside its time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import asyncpg
import psycopg
import psycopg2
from sqlalchemy import create_engine, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from loadlab.micro.harness import Context, Trial, Variants, experiment, timed, timed_async
from services.common.models import Order, OrderItem, User

INSERTED_FROM = 10_000_000  # ids of inserted rows start here, far above any seed's


def plain(url: str) -> str:
    """The libpq / asyncpg form of a SQLAlchemy URL (no `+driver`)."""
    return "postgresql://" + url.split("://", 1)[1]


def seeded_ids(ctx: Context, table: str, count: int) -> list[int]:
    """`count` ids of `table`, spread over the whole table, the same for every variant."""
    with psycopg2.connect(ctx.database_url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {table} ORDER BY id")  # noqa: S608 - a fixed name
        ids = [row[0] for row in cur.fetchall()]
    conn.close()
    # A prime stride visits every id once before any twice, in an order no cache predicts.
    return [ids[(i * 7919) % len(ids)] for i in range(count)]


class Engines:
    """A sync engine (psycopg2) and async ones (asyncpg, psycopg 3), each with one pooled
    connection, disposed of when the experiment ends."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sync = create_engine(ctx.url("psycopg2"), pool_size=1)
        self.asyncpg = create_async_engine(ctx.url("asyncpg"), pool_size=1)
        self.psycopg = create_async_engine(ctx.url("psycopg"), pool_size=1)

    def close(self) -> None:
        self.sync.dispose()
        self.ctx.run_async(self.asyncpg.dispose())
        self.ctx.run_async(self.psycopg.dispose())


def _engines(ctx: Context, stack: ExitStack) -> Engines:
    engines = Engines(ctx)
    stack.callback(engines.close)
    return engines


def sync_orm(engines: Engines, query: Any) -> Any:
    """A variant running `query(session, i)` for the first `count` ids in one session."""

    def run(ids: list[int]) -> Trial:
        with Session(engines.sync) as session:

            def each() -> None:
                for i in ids:
                    query(session, i)

            return timed(each)

    return run


def async_orm(ctx: Context, engine: Any, query: Any) -> Any:
    def run(ids: list[int]) -> Trial:
        async def work() -> Trial:
            async with AsyncSession(engine) as session:

                async def each() -> None:
                    for i in ids:
                        await query(session, i)

                return await timed_async(each)

        return ctx.run_async(work())

    return run


def _by_count(run: Any, ids: list[int]) -> Any:
    return lambda count: run(ids[:count])


@experiment(group="serial", axis="driver, and ORM or raw", full=10_000, quick=200)
def select_by_pk(ctx: Context, count: int) -> Iterator[Variants]:
    """10,000 SELECT of a user by primary key"""
    ids = seeded_ids(ctx, "users", count)
    raw_sql = "SELECT * FROM users WHERE id = %s"

    def orm(session: Session, i: int) -> Any:
        return session.execute(select(User).where(User.id == i)).scalar_one()

    async def aorm(session: AsyncSession, i: int) -> Any:
        return (await session.execute(select(User).where(User.id == i))).scalar_one()

    with ExitStack() as stack:
        engines = _engines(ctx, stack)
        raw2 = psycopg2.connect(ctx.database_url)
        stack.callback(raw2.close)
        rawpg = ctx.run_async(asyncpg.connect(ctx.database_url))
        stack.callback(lambda: ctx.run_async(rawpg.close()))
        raw3 = ctx.run_async(psycopg.AsyncConnection.connect(ctx.database_url))
        stack.callback(lambda: ctx.run_async(raw3.close()))

        def raw_psycopg2(ids: list[int]) -> Trial:
            with raw2.cursor() as cur:

                def each() -> None:
                    for i in ids:
                        cur.execute(raw_sql, (i,))
                        cur.fetchone()

                return timed(each)

        def raw_asyncpg(ids: list[int]) -> Trial:
            async def each() -> None:
                for i in ids:
                    await rawpg.fetchrow("SELECT * FROM users WHERE id = $1", i)

            return ctx.run_async(timed_async(each))

        def raw_psycopg3(ids: list[int]) -> Trial:
            async def each() -> None:
                async with raw3.cursor() as cur:
                    for i in ids:
                        await cur.execute(raw_sql, (i,))
                        await cur.fetchone()

            return ctx.run_async(timed_async(each))

        yield {
            name: _by_count(run, ids)
            for name, run in {
                "sync ORM (psycopg2)": sync_orm(engines, orm),
                "async ORM (asyncpg)": async_orm(ctx, engines.asyncpg, aorm),
                "async ORM (psycopg 3)": async_orm(ctx, engines.psycopg, aorm),
                "raw psycopg2": raw_psycopg2,
                "raw asyncpg": raw_asyncpg,
                "raw psycopg 3 (async)": raw_psycopg3,
            }.items()
        }


def _eager(loader: Any) -> Any:
    return select(Order).options(
        loader(Order.customer), loader(Order.items).options(loader(OrderItem.product))
    )


def _eager_experiment(ctx: Context, count: int, loader: Any) -> Iterator[Variants]:
    ids = seeded_ids(ctx, "orders", count)
    statement = _eager(loader)

    def orm(session: Session, i: int) -> Any:
        order = session.execute(statement.where(Order.id == i)).unique().scalar_one()
        session.expunge_all()  # each order is loaded afresh, as a new request would
        return order

    async def aorm(session: AsyncSession, i: int) -> Any:
        order = (await session.execute(statement.where(Order.id == i))).unique().scalar_one()
        session.expunge_all()
        return order

    with ExitStack() as stack:
        engines = _engines(ctx, stack)
        yield {
            "sync ORM (psycopg2)": _by_count(sync_orm(engines, orm), ids),
            "async ORM (asyncpg)": _by_count(async_orm(ctx, engines.asyncpg, aorm), ids),
        }


@experiment(group="serial", axis="sync or async", full=10_000, quick=100)
def eager_joinedload(ctx: Context, count: int) -> Iterator[Variants]:
    """10,000 orders with their customer, items and products, joinedload (one query each)"""
    yield from _eager_experiment(ctx, count, joinedload)


@experiment(group="serial", axis="sync or async", full=10_000, quick=100)
def eager_selectinload(ctx: Context, count: int) -> Iterator[Variants]:
    """10,000 orders with their customer, items and products, selectinload (four queries each)"""
    yield from _eager_experiment(ctx, count, selectinload)


def _new_users(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"bulk {i}", "email": f"bulk{i}@example.com", "visits": 0}
        for i in range(first, first + count)
    ]


def _bulk_experiment(ctx: Context, add: Any, add_async: Any) -> Iterator[Variants]:
    """Variants inserting `count` users (ORM objects or Core rows) in one commit; the rows
    are deleted after the pass, outside its time."""
    gone = delete(User).where(User.id >= INSERTED_FROM)

    with ExitStack() as stack:
        engines = _engines(ctx, stack)

        def sync_insert(count: int) -> Trial:
            rows = _new_users(INSERTED_FROM, count)
            with Session(engines.sync) as session:

                def insert_all() -> None:
                    add(session, rows)
                    session.commit()

                trial = timed(insert_all)
                session.execute(gone)
                session.commit()
            return trial

        def async_insert(count: int) -> Trial:
            rows = _new_users(INSERTED_FROM, count)

            async def work() -> Trial:
                async with AsyncSession(engines.asyncpg) as session:

                    async def insert_all() -> None:
                        await add_async(session, rows)
                        await session.commit()

                    trial = await timed_async(insert_all)
                    await session.execute(gone)
                    await session.commit()
                    return trial

            return ctx.run_async(work())

        yield {"sync ORM (psycopg2)": sync_insert, "async ORM (asyncpg)": async_insert}


@experiment(group="serial", axis="sync or async", full=50_000, quick=500)
def bulk_insert_orm(ctx: Context, count: int) -> Iterator[Variants]:
    """ORM bulk insert of 50,000 users with session.add_all() and one commit"""

    def add(session: Session, rows: list[dict[str, Any]]) -> None:
        session.add_all([User(**row) for row in rows])

    async def add_async(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        session.add_all([User(**row) for row in rows])

    yield from _bulk_experiment(ctx, add, add_async)


@experiment(group="serial", axis="sync or async", full=50_000, quick=500)
def bulk_insert_core(ctx: Context, count: int) -> Iterator[Variants]:
    """Bulk insert of 50,000 users with insert() and a list of rows (SQLAlchemy 2's way)"""

    def add(session: Session, rows: list[dict[str, Any]]) -> None:
        session.execute(insert(User), rows)

    async def add_async(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        await session.execute(insert(User), rows)

    yield from _bulk_experiment(ctx, add, add_async)


JOIN_SQL = """
    SELECT o.id, o.status, o.total_cents, c.name AS customer_name, c.email AS customer_email
    FROM orders o JOIN customers c ON c.id = o.customer_id
    WHERE o.status = 'pending' LIMIT 100
"""


@experiment(group="serial", axis="async ORM, raw asyncpg or sync ORM", full=1_000, quick=20)
def join_query(ctx: Context, count: int) -> Iterator[Variants]:
    """The raw driver alternative: 100 pending orders joined to their customers"""
    statement = (
        select(Order)
        .join(Order.customer)
        .options(contains_eager(Order.customer))
        .where(Order.status == "pending")
        .limit(100)
    )

    def orm(session: Session, _: int) -> Any:
        orders = session.execute(statement).scalars().all()
        session.expunge_all()
        return orders

    async def aorm(session: AsyncSession, _: int) -> Any:
        orders = (await session.execute(statement)).scalars().all()
        session.expunge_all()
        return orders

    ids = list(range(count))
    with ExitStack() as stack:
        engines = _engines(ctx, stack)
        raw = ctx.run_async(asyncpg.connect(ctx.database_url))
        stack.callback(lambda: ctx.run_async(raw.close()))

        def raw_asyncpg(ids: list[int]) -> Trial:
            async def each() -> None:
                for _ in ids:
                    await raw.fetch(JOIN_SQL)

            return ctx.run_async(timed_async(each))

        yield {
            "async ORM (asyncpg)": _by_count(async_orm(ctx, engines.asyncpg, aorm), ids),
            "raw asyncpg": _by_count(raw_asyncpg, ids),
            "sync ORM (psycopg2)": _by_count(sync_orm(engines, orm), ids),
        }
