"""The article's five sources of async overhead, each a measured figure: the greenlet bridge,
pre-buffered results, expire_on_commit, pool starvation and asyncpg's statement cache (and
PgBouncer's answer to it). The failures the article warns of (MissingGreenlet, the nested
session deadlock, "prepared statement does not exist") are reproduced on purpose and reported
as each variant's outcome.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import uuid4

import greenlet
from sqlalchemy import event, select, text
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, lazyload, selectinload

from loadlab.micro.harness import (
    Context,
    Trial,
    Variants,
    experiment,
    profiled,
    timed,
    timed_async,
)
from loadlab.micro.serial import _engines, seeded_ids
from services.common.models import Order, User


class DriverClock:
    """Seconds spent inside the driver's execute calls of one engine (SQLAlchemy's cursor
    events: the article's recipe for what pg_stat_statements cannot see)."""

    def __init__(self, sync_engine: Any) -> None:
        self.seconds = 0.0
        self._started = 0.0
        event.listen(sync_engine, "before_cursor_execute", self._before)
        event.listen(sync_engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, *_: Any) -> None:
        self.seconds += time.perf_counter() - self._started

    def lap(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class StatementCount:
    """Statements one engine sent to its driver since the last lap."""

    def __init__(self, sync_engine: Any) -> None:
        self.statements = 0
        event.listen(sync_engine, "before_cursor_execute", self._sent)

    def _sent(self, *_: Any) -> None:
        self.statements += 1

    def lap(self) -> float:
        statements, self.statements = self.statements, 0
        return float(statements)


@profiled(group="overheads", axis="sync or async", full=10_000, quick=200)
def greenlet_bridge(ctx: Context, count: int, stack: ExitStack, counting: bool) -> Variants:
    """The greenlet bridge: 10,000 session.execute(text("SELECT 1")), time outside the driver"""
    engines = _engines(ctx, stack)
    sync_clock, async_clock = DriverClock(engines.sync), DriverClock(engines.asyncpg.sync_engine)
    one = text("SELECT 1")

    def sync_run(count: int) -> Trial:
        with Session(engines.sync) as session:

            def work() -> None:
                for _ in range(count):
                    session.execute(one)

            if counting:
                return Trial(0.0, {"greenlet_switches_per_call": _switches(work) / count})
            sync_clock.lap()
            trial = timed(work)
            trial.figures = {"driver_seconds": sync_clock.lap()}
            return trial

    def async_run(count: int) -> Trial:
        async def work() -> Trial:
            async with AsyncSession(engines.asyncpg) as session:

                async def each() -> None:
                    for _ in range(count):
                        await session.execute(one)

                async_clock.lap()
                if counting:
                    seen = Counter[str]()
                    previous = greenlet.settrace(lambda event, _args: seen.update([event]))
                    try:
                        await each()
                    finally:
                        greenlet.settrace(previous)
                    return Trial(0.0, {"greenlet_switches_per_call": seen.total() / count})
                trial = await timed_async(each)
                trial.figures = {"driver_seconds": async_clock.lap()}
                return trial

        return ctx.run_async(work())

    return {"sync ORM (psycopg2)": sync_run, "async ORM (asyncpg)": async_run}


def _switches(work: Any) -> int:
    """Greenlet switches while `work` runs (greenlet.settrace: a profiling pass only)."""
    seen = Counter[str]()
    previous = greenlet.settrace(lambda event, _args: seen.update([event]))
    try:
        work()
    finally:
        greenlet.settrace(previous)
    return seen.total()


def _generated_users(count: int) -> Any:
    """`count` users made by PostgreSQL (generate_series), mapped to ORM objects: a large
    result without a large table."""
    return select(User).from_statement(
        text(
            "SELECT g AS id, 'user ' || g AS name, 'u' || g || '@example.com' AS email, "
            "0 AS visits, NULL::timestamptz AS last_seen, now() AS created_at "
            f"FROM generate_series(1, {int(count)}) AS g"
        )
    )


@profiled(group="overheads", axis="how the rows are fetched", full=50_000, quick=5_000)
def prebuffered_results(ctx: Context, count: int, stack: ExitStack, tracing: bool) -> Variants:
    """Pre-buffered results: 50,000 ORM rows, time to the first row and peak memory"""
    engines = _engines(ctx, stack)

    def sync_cursor(count: int) -> Trial:
        statement = _generated_users(count).execution_options(yield_per=500)

        def work() -> dict[str, float]:
            start = time.perf_counter()
            first = None
            with Session(engines.sync) as session:
                for _user in session.execute(statement).scalars():
                    first = first or time.perf_counter() - start
            return {"first_row_seconds": first or 0.0}

        return _memory(lambda: timed(work), tracing)

    def async_execute(count: int) -> Trial:
        async def work() -> dict[str, float]:
            start = time.perf_counter()
            first = None
            async with AsyncSession(engines.asyncpg) as session:
                for _user in (await session.execute(_generated_users(count))).scalars():
                    first = first or time.perf_counter() - start
            return {"first_row_seconds": first or 0.0}

        return _memory(lambda: ctx.run_async(timed_async(work)), tracing)

    def async_stream(count: int) -> Trial:
        async def work() -> dict[str, float]:
            start = time.perf_counter()
            first = None
            async with AsyncSession(engines.asyncpg) as session:
                result = await session.stream(
                    _generated_users(count).execution_options(yield_per=500)
                )
                async for _user in result.scalars():
                    first = first or time.perf_counter() - start
            return {"first_row_seconds": first or 0.0}

        return _memory(lambda: ctx.run_async(timed_async(work)), tracing)

    return {
        "async execute (buffered)": async_execute,
        "async stream (server-side cursor)": async_stream,
        "sync server-side cursor (psycopg2)": sync_cursor,
    }


def _memory(run: Any, tracing: bool) -> Trial:
    if not tracing:
        return run()
    tracemalloc.start()
    try:
        trial = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Trial(0.0, {"peak_mb": peak / 1e6}, trial.outcome)


@experiment(
    group="overheads", axis="expire_on_commit, and how relations load", full=1_000, quick=50
)
def expire_on_commit(ctx: Context, count: int) -> Iterator[Variants]:
    """expire_on_commit: reading objects after commit (queries it costs, or MissingGreenlet)"""
    ids = seeded_ids(ctx, "users", count)
    order_ids = seeded_ids(ctx, "orders", count)

    with ExitStack() as stack:
        engines = _engines(ctx, stack)
        sync_clock = StatementCount(engines.sync)
        async_clock = StatementCount(engines.asyncpg.sync_engine)

        def sync_read(expire: bool) -> Any:
            def run(count: int) -> Trial:
                with Session(engines.sync, expire_on_commit=expire) as session:
                    users = session.scalars(select(User).where(User.id.in_(ids[:count]))).all()
                    session.commit()
                    sync_clock.lap()

                    def read() -> None:
                        for user in users:
                            _ = user.name

                    trial = timed(read)
                    trial.figures = {"queries_after_commit": sync_clock.lap()}
                    return trial

            return run

        def async_read(expire: bool) -> Any:
            def run(count: int) -> Trial:
                async def work() -> Trial:
                    async with AsyncSession(engines.asyncpg, expire_on_commit=expire) as session:
                        found = await session.scalars(select(User).where(User.id.in_(ids[:count])))
                        users = found.all()
                        await session.commit()
                        async_clock.lap()
                        return _guarded(lambda: [u.name for u in users], async_clock)

                return ctx.run_async(work())

            return run

        def async_relation(loader: Any) -> Any:
            def run(count: int) -> Trial:
                async def work() -> Trial:
                    async with AsyncSession(engines.asyncpg, expire_on_commit=False) as session:
                        found = await session.scalars(
                            select(Order)
                            .options(loader(Order.customer))
                            .where(Order.id.in_(order_ids[:count]))
                        )
                        orders = found.all()
                        async_clock.lap()
                        return _guarded(lambda: [o.customer.name for o in orders], async_clock)

                return ctx.run_async(work())

            return run

        yield {
            "sync, expire_on_commit=True": sync_read(True),
            "sync, expire_on_commit=False": sync_read(False),
            "async, expire_on_commit=True": async_read(True),
            "async, expire_on_commit=False": async_read(False),
            "async, relation loaded lazily": async_relation(lazyload),
            "async, relation eager (selectinload)": async_relation(selectinload),
        }


def _guarded(read: Any, clock: StatementCount) -> Trial:
    """Read attributes outside any await: in async code a lazy load there is MissingGreenlet."""
    start = time.perf_counter()
    try:
        read()
    except MissingGreenlet as exc:
        return Trial(
            time.perf_counter() - start,
            {"missing_greenlet": 1.0, "queries_after_commit": clock.lap()},
            f"MissingGreenlet: {str(exc).split(' (Background')[0][:120]}",
        )
    return Trial(
        time.perf_counter() - start, {"missing_greenlet": 0.0, "queries_after_commit": clock.lap()}
    )


POOL_TIMEOUT = 2.0  # seconds; SQLAlchemy's default is 30: the deadlock is the same, shorter


@experiment(group="overheads", axis="how the tasks take connections", full=100, quick=30)
def pool_starvation(ctx: Context, count: int) -> Iterator[Variants]:
    """Pool starvation: 100 users fetched by tasks that hold a session and open a nested one"""
    pool = 20 if count >= 100 else 5
    ids = seeded_ids(ctx, "users", count)
    engine = create_async_engine(
        ctx.url("asyncpg"), pool_size=pool, max_overflow=0, pool_timeout=POOL_TIMEOUT
    )

    async def nested(user_id: int) -> None:
        async with AsyncSession(engine) as outer:
            await outer.execute(text("SELECT 1"))  # holds connection 1 from here
            async with AsyncSession(engine) as inner:  # needs connection 2
                (await inner.execute(select(User).where(User.id == user_id))).scalar_one()

    async def gathered(work: Any) -> Trial:
        start = time.perf_counter()
        results = await asyncio.gather(*work, return_exceptions=True)
        failed = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
        seconds = time.perf_counter() - start
        outcome = None
        if failed:
            kinds = ", ".join(f"{n} {kind}" for kind, n in failed.items())
            outcome = (
                f"{kinds} of {len(results)} tasks after {seconds:.1f} s "
                f"(pool_timeout {POOL_TIMEOUT:g} s)"
            )
        return Trial(seconds, {"failed_tasks": float(sum(failed.values()))}, outcome)

    def naive(count: int) -> Trial:
        return ctx.run_async(gathered([nested(i) for i in ids[:count]]))

    def batched(count: int) -> Trial:
        async def one_query() -> None:
            async with AsyncSession(engine) as session:
                (await session.scalars(select(User).where(User.id.in_(ids[:count])))).all()

        return ctx.run_async(gathered([one_query()]))

    def bounded(count: int) -> Trial:
        # Each task needs two connections at once: half the pool's tasks fit.
        limit = asyncio.Semaphore(pool // 2)

        async def one(user_id: int) -> None:
            async with limit:
                await nested(user_id)

        return ctx.run_async(gathered([one(i) for i in ids[:count]]))

    try:
        yield {
            f"gather, nested sessions, pool {pool}+0": naive,
            "one batched IN query": batched,
            f"gather bounded by a semaphore of {pool // 2}": bounded,
        }
    finally:
        ctx.run_async(engine.dispose())


# SQLAlchemy's cache of asyncpg statements is an LRU that grows to 1.5 times its size before
# it prunes back: 200 shapes are more than a cache of 100 ever holds.
SHAPES = 200


def _shapes() -> list[Any]:
    """More distinct statements than a cache of 100 holds, visited in turn (an LRU's worst
    case: each is evicted before it comes round again)."""
    return [text(f"SELECT id, {k} AS shape FROM users WHERE id = :id") for k in range(SHAPES)]


def _cache_engine(ctx: Context, size: int, log_statements: bool) -> Any:
    connect_args: dict[str, Any] = {
        "statement_cache_size": size,
        "prepared_statement_cache_size": size,
    }
    if log_statements:  # each parse, bind and execute logged: PostgreSQL counts the parses
        connect_args["server_settings"] = {"log_min_duration_statement": "0"}
    return create_async_engine(ctx.url("asyncpg"), pool_size=1, connect_args=connect_args)


@profiled(group="overheads", axis="asyncpg's statement cache size", full=1_000, quick=400)
def statement_cache(ctx: Context, count: int, stack: ExitStack, counting: bool) -> Variants:
    """asyncpg's statement cache: 1,000 queries of 200 shapes, cache 0, 100 and 500"""

    def variant(size: int) -> Any:
        engine = _cache_engine(ctx, size, counting)
        stack.callback(lambda: ctx.run_async(engine.dispose()))

        def run(count: int) -> Trial:
            shapes = _shapes()

            async def each() -> None:
                async with AsyncSession(engine) as session:
                    for i in range(count):
                        await session.execute(shapes[i % len(shapes)], {"id": 1})

            if not counting:
                return ctx.run_async(timed_async(each))
            log = ctx.postgres_log
            if log is None:
                return Trial(0.0, outcome="parses not counted: PostgreSQL's log is not loadlab's")
            before = log.stat().st_size
            try:
                ctx.run_async(each())
            except Exception as exc:  # not a superuser: the setting is refused
                return Trial(0.0, outcome=f"parses not counted: {type(exc).__name__}")
            return Trial(0.0, {"server_parses": float(_parses(log, before))})

        return run

    return {f"statement cache {size}": variant(size) for size in (0, 100, 500)}


def _parses(log: Path, offset: int) -> int:
    time.sleep(0.2)  # the server writes its log lines a moment after answering
    with log.open("rb") as handle:
        handle.seek(offset)
        return sum(1 for line in handle if b"  parse " in line and b"duration:" in line)


@experiment(group="overheads", axis="asyncpg's statement settings", full=2_000, quick=200)
def pgbouncer_statements(ctx: Context, count: int) -> Iterator[Variants]:
    """asyncpg through PgBouncer (transaction mode): its defaults, and the documented settings"""
    tasks = 40 if count >= 1_000 else 10
    documented = {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__",
    }

    def variant(connect_args: dict[str, Any]) -> Any:
        def run(count: int) -> Trial:
            if ctx.pgbouncer_url is None:
                return Trial(float("nan"), outcome="not measured: no PgBouncer")
            engine = create_async_engine(
                ctx.url("asyncpg", through_pgbouncer=True),
                pool_size=tasks,
                max_overflow=0,
                connect_args=connect_args,
            )
            errors: Counter[str] = Counter()

            async def client(share: int) -> None:
                for i in range(share):
                    try:
                        async with AsyncSession(engine) as session:
                            await session.execute(
                                text(f"SELECT id, {i % 5} AS shape FROM users WHERE id = :id"),
                                {"id": 1 + i % 100},
                            )
                            await session.commit()
                    except Exception as exc:  # each error is counted by kind
                        errors[_kind(exc)] += 1

            async def work() -> Trial:
                start = time.perf_counter()
                try:
                    await asyncio.gather(*[client(count // tasks) for _ in range(tasks)])
                finally:
                    await engine.dispose()
                seconds = time.perf_counter() - start
                total = sum(errors.values())
                outcome = ", ".join(f"{n} {kind}" for kind, n in errors.most_common()) or None
                figures = {"errors": float(total), "transactions": float(count // tasks * tasks)}
                figures |= {f"errors: {kind}": float(n) for kind, n in errors.items()}
                return Trial(seconds, figures, outcome)

            return ctx.run_async(work())

        return run

    yield {
        "asyncpg defaults": variant({}),
        "documented settings (no statement cache, unique names)": variant(documented),
    }


def _kind(exc: BaseException) -> str:
    """The driver's own error class, under SQLAlchemy's wrapper."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    return type(cause).__name__
