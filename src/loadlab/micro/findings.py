"""Every claim of the article and the two guides beside our figure, with a plain verdict.

A claim is a number of the article's (or a behaviour it describes) and the way to read ours
from a micro run or from the committed 200-user duel reports. Our figures keep their spread
(the median, min and max of the repeats; for a repeated duel the rounds' 95% interval, and
for a ratio between two stacks its interval at 95% over all the run's tests at once). A
single duel run gives figures, not a verdict.

The verdict, on this machine:
- a ratio ("async is 2.3x slower"): *holds* when ours points the same way with the whole
  spread and is within a factor of 2 of theirs; *partly* when it points the same way but
  is off by more, or its spread reaches the other side; *does not hold* when it points the
  other way;
- a time or a count: *holds* within a factor of 2, *partly* within a factor of 5;
- a behaviour (a crash, a deadlock, errors): *holds* when the naive setting fails and the
  fixed one does not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab.analysis import repeats, significance
from loadlab.load.monitor import SOAK_SECONDS
from loadlab.report import history

ARTICLE = "000_caf037058c97b154.txt"
CHAPTER = "002_647cb61a1653791e.txt"
TUTORIAL = "003_1008cdc32d776a55.txt"

Spread = tuple[float, float, float]  # median, min, max
Results = dict[str, dict[str, Any]]  # experiment name -> harness.measure()'s result


@dataclass(frozen=True)
class Claim:
    key: str
    source: str
    section: str  # "serial table", "200 users", "overhead table", "guides"
    claim: str
    theirs: float | None  # None: a behaviour, not a number
    unit: str  # "x" (a ratio), "ms", "errors", ...
    ours: Callable[[Results], Spread | str | None]  # str: an observed behaviour's verdict


def _times(x: Spread, k: float) -> Spread:
    return (x[0] * k, x[1] * k, x[2] * k)


def _minus(a: Spread, b: Spread) -> Spread:
    """a - b, medians apart; the range from the worst pairing to the best."""
    return (a[0] - b[0], a[1] - b[2], a[2] - b[1])


def _divide(a: Spread, b: Spread) -> Spread:
    """a / b, medians over medians; the range from the worst pairing to the best."""
    return (a[0] / b[0], a[1] / b[2], a[2] / b[1])


def _variant(results: Results, experiment: str, variant: str) -> dict[str, Any] | None:
    return (results.get(experiment) or {}).get("variants", {}).get(variant)


def per_op(experiment: str, variant: str) -> Callable[[Results], Spread | None]:
    """ms per operation of one variant."""

    def read(results: Results) -> Spread | None:
        v = _variant(results, experiment, variant)
        m = v and v["ms_per_op"]
        return (m["median"], m["min"], m["max"]) if m else None

    return read


def total_ms(experiment: str, variant: str) -> Callable[[Results], Spread | None]:
    def read(results: Results) -> Spread | None:
        v = _variant(results, experiment, variant)
        s = v and v["seconds"]
        return _times((s["median"], s["min"], s["max"]), 1000) if s else None

    return read


def ratio(
    top: Callable[[Results], Spread | None], bottom: Callable[[Results], Spread | None]
) -> Callable[[Results], Spread | None]:
    """top / bottom, medians over medians; the range from the worst pairing to the best."""

    def read(results: Results) -> Spread | None:
        a, b = top(results), bottom(results)
        if not a or not b or min(b) <= 0:
            return None
        return _divide(a, b)

    return read


def figure(
    experiment: str, variant: str, name: str, counted: bool = False
) -> Callable[[Results], Spread | None]:
    def read(results: Results) -> Spread | None:
        v = _variant(results, experiment, variant)
        if not v:
            return None
        if counted:
            value = v["counted"].get(name)
            return None if value is None else (value, value, value)
        f = v["figures"].get(name)
        return (f["median"], f["min"], f["max"]) if f else None

    return read


def outside_driver_ms(variant: str) -> Callable[[Results], Spread | None]:
    """greenlet_bridge: ms per call outside the driver's execute (total - driver time)."""

    def read(results: Results) -> Spread | None:
        v = _variant(results, "greenlet_bridge", variant)
        if not v or not v["seconds"] or "driver_seconds" not in v["figures"]:
            return None
        n = results["greenlet_bridge"]["operations"]
        total, driver = v["seconds"], v["figures"]["driver_seconds"]
        outside = _minus(
            (total["median"], total["min"], total["max"]),
            (driver["median"], driver["min"], driver["max"]),
        )
        return _times(outside, 1000 / n)

    return read


def scaled(
    read: Callable[[Results], Spread | None], factor: float
) -> Callable[[Results], Spread | None]:
    def scale(results: Results) -> Spread | None:
        x = read(results)
        return None if x is None else _times(x, factor)

    return scale


def per_operation(
    read: Callable[[Results], Spread | None], experiment: str
) -> Callable[[Results], Spread | None]:
    """A whole pass's figure per operation of the experiment."""

    def each(results: Results) -> Spread | None:
        x = read(results)
        return None if x is None else _times(x, 1 / results[experiment]["operations"])

    return each


def first_row_ms(variant: str) -> Callable[[Results], Spread | None]:
    return scaled(figure("prebuffered_results", variant, "first_row_seconds"), 1000)


def difference(
    a: Callable[[Results], Spread | None], b: Callable[[Results], Spread | None]
) -> Callable[[Results], Spread | None]:
    def read(results: Results) -> Spread | None:
        x, y = a(results), b(results)
        return _minus(x, y) if x and y else None

    return read


def per_miss(results: Results) -> Spread | None:
    """ms a cache miss costs: the time cache 100 loses to cache 500, per extra parse."""
    slow = total_ms("statement_cache", "statement cache 100")(results)
    fast = total_ms("statement_cache", "statement cache 500")(results)
    misses = figure("statement_cache", "statement cache 100", "server_parses", True)(results)
    hits = figure("statement_cache", "statement cache 500", "server_parses", True)(results)
    if not (slow and fast and misses and hits) or misses[0] <= hits[0]:
        return None
    return _times(_minus(slow, fast), 1 / (misses[0] - hits[0]))


def fails_then_fixed(
    experiment: str, naive: str, fixed: list[str], word: str
) -> Callable[[Results], str | None]:
    """'holds' when the naive variant's outcome names `word` and no fixed one fails; variants
    are named by the start of their names."""

    def read(results: Results) -> str | None:
        variants = (results.get(experiment) or {}).get("variants", {})
        bad = next((v for k, v in variants.items() if k.startswith(naive)), None)
        if bad is None or (bad.get("outcome") or "").startswith("not measured"):
            return None
        failed = word.lower() in (bad.get("outcome") or "").lower()
        clean = all(
            not v.get("outcome") for k, v in variants.items() if any(k.startswith(f) for f in fixed)
        )
        word_ = "holds" if failed and clean else "partly" if failed or clean else "does not hold"
        return f"{word_}: {bad.get('outcome') or 'no failure'}"

    return read


SERIAL, OVERHEADS = "serial table", "overhead table"
PEAK_BUFFERED_OVER_STREAMED = ratio(
    figure("prebuffered_results", "async execute (buffered)", "peak_mb", True),
    figure("prebuffered_results", "async stream (server-side cursor)", "peak_mb", True),
)
SYNC, ASYNC, PSYCOPG = "sync ORM (psycopg2)", "async ORM (asyncpg)", "async ORM (psycopg 3)"

CLAIMS = [
    Claim(
        "select_sync_ms",
        ARTICLE,
        SERIAL,
        "10,000 SELECT by key, sync (psycopg2), ms per query",
        0.18,
        "ms",
        per_op("select_by_pk", SYNC),
    ),
    Claim(
        "select_async_ms",
        ARTICLE,
        SERIAL,
        "10,000 SELECT by key, async (asyncpg), ms per query",
        0.42,
        "ms",
        per_op("select_by_pk", ASYNC),
    ),
    Claim(
        "select_ratio",
        ARTICLE,
        SERIAL,
        "SELECT by key: async is 2.3x slower than sync",
        2.3,
        "x",
        ratio(per_op("select_by_pk", ASYNC), per_op("select_by_pk", SYNC)),
    ),
    Claim(
        "eager_sync_ms",
        ARTICLE,
        SERIAL,
        "joinedload on 3 relations, sync, ms per query",
        0.39,
        "ms",
        per_op("eager_joinedload", SYNC),
    ),
    Claim(
        "eager_async_ms",
        ARTICLE,
        SERIAL,
        "joinedload on 3 relations, async, ms per query",
        2.14,
        "ms",
        per_op("eager_joinedload", ASYNC),
    ),
    Claim(
        "eager_ratio",
        ARTICLE,
        SERIAL,
        "joinedload on 3 relations: async is 5.5x slower",
        5.5,
        "x",
        ratio(per_op("eager_joinedload", ASYNC), per_op("eager_joinedload", SYNC)),
    ),
    Claim(
        "selectin_ratio",
        ARTICLE,
        SERIAL,
        "eager loading widens the gap (selectinload: async/sync)",
        5.5,
        "x",
        ratio(per_op("eager_selectinload", ASYNC), per_op("eager_selectinload", SYNC)),
    ),
    Claim(
        "bulk_sync_ms",
        ARTICLE,
        SERIAL,
        "ORM add_all of 50,000 rows, sync, ms",
        8_200,
        "ms",
        total_ms("bulk_insert_orm", SYNC),
    ),
    Claim(
        "bulk_async_ms",
        ARTICLE,
        SERIAL,
        "ORM add_all of 50,000 rows, async, ms",
        114_800,
        "ms",
        total_ms("bulk_insert_orm", ASYNC),
    ),
    Claim(
        "bulk_ratio",
        ARTICLE,
        SERIAL,
        "ORM bulk insert: async is 14x slower",
        14.0,
        "x",
        ratio(total_ms("bulk_insert_orm", ASYNC), total_ms("bulk_insert_orm", SYNC)),
    ),
    Claim(
        "join_async_orm_ms",
        ARTICLE,
        SERIAL,
        "the join: async ORM, ms per query",
        2.14,
        "ms",
        per_op("join_query", ASYNC),
    ),
    Claim(
        "join_raw_ms",
        ARTICLE,
        SERIAL,
        "the join: raw asyncpg, ms per query",
        0.31,
        "ms",
        per_op("join_query", "raw asyncpg"),
    ),
    Claim(
        "join_sync_orm_ms",
        ARTICLE,
        SERIAL,
        "the join: sync ORM, ms per query",
        0.39,
        "ms",
        per_op("join_query", SYNC),
    ),
    Claim(
        "join_raw_ratio",
        ARTICLE,
        SERIAL,
        "raw asyncpg is 7x faster than the async ORM",
        2.14 / 0.31,
        "x",
        ratio(per_op("join_query", ASYNC), per_op("join_query", "raw asyncpg")),
    ),
    Claim(
        "join_raw_vs_sync",
        ARTICLE,
        SERIAL,
        "raw asyncpg is faster than the sync ORM too",
        0.39 / 0.31,
        "x",
        ratio(per_op("join_query", SYNC), per_op("join_query", "raw asyncpg")),
    ),
    Claim(
        "raw_binary",
        ARTICLE,
        SERIAL,
        "asyncpg's binary protocol beats psycopg2 (raw, by key)",
        None,
        "x",
        ratio(per_op("select_by_pk", "raw psycopg2"), per_op("select_by_pk", "raw asyncpg")),
    ),
    Claim(
        "greenlet_ms",
        ARTICLE,
        OVERHEADS,
        "greenlet bridge: ~0.08 ms per query, outside the driver",
        0.08,
        "ms",
        difference(outside_driver_ms(ASYNC), outside_driver_ms(SYNC)),
    ),
    Claim(
        "greenlet_switches",
        ARTICLE,
        OVERHEADS,
        "at least 4 greenlet switches per execute",
        4.0,
        "switches",
        figure("greenlet_bridge", ASYNC, "greenlet_switches_per_call", True),
    ),
    Claim(
        "prebuffer_memory",
        ARTICLE,
        OVERHEADS,
        "pre-buffering: a 50,000-row result spikes memory; streaming does not (peak, x)",
        None,
        "x",
        PEAK_BUFFERED_OVER_STREAMED,
    ),
    Claim(
        "prebuffer_first_row",
        ARTICLE,
        OVERHEADS,
        "pre-buffering: time to the first row is the time to the last (share of the total)",
        1.0,
        "x",
        ratio(
            first_row_ms("async execute (buffered)"),
            total_ms("prebuffered_results", "async execute (buffered)"),
        ),
    ),
    Claim(
        "expire_refetch_ms",
        ARTICLE,
        OVERHEADS,
        "expire_on_commit re-fetch: ~0.4 ms per object",
        0.4,
        "ms",
        per_op("expire_on_commit", "sync, expire_on_commit=True"),
    ),
    Claim(
        "expire_queries",
        CHAPTER,
        "guides",
        "expire_on_commit=True: a wasted query per object read after commit (queries per object)",
        1.0,
        "queries",
        per_operation(
            figure("expire_on_commit", "sync, expire_on_commit=True", "queries_after_commit"),
            "expire_on_commit",
        ),
    ),
    Claim(
        "missing_greenlet_commit",
        ARTICLE,
        OVERHEADS,
        "attribute access after commit in async: MissingGreenlet; gone with expire_on_commit=False",
        None,
        "",
        fails_then_fixed(
            "expire_on_commit",
            "async, expire_on_commit=True",
            ["async, expire_on_commit=False"],
            "MissingGreenlet",
        ),
    ),
    Claim(
        "missing_greenlet_lazy",
        ARTICLE,
        OVERHEADS,
        "a lazy relation in async: MissingGreenlet; gone with eager loading",
        None,
        "",
        fails_then_fixed(
            "expire_on_commit",
            "async, relation loaded lazily",
            ["async, relation eager (selectinload)"],
            "MissingGreenlet",
        ),
    ),
    Claim(
        "gather_deadlock",
        ARTICLE,
        OVERHEADS,
        "gather() with nested sessions deadlocks until "
        "pool_timeout; batching or a semaphore finishes",
        None,
        "",
        fails_then_fixed(
            "pool_starvation",
            "gather, nested sessions",
            ["one batched IN query", "gather bounded by a semaphore"],
            "Timeout",
        ),
    ),
    Claim(
        "cache_miss_ms",
        ARTICLE,
        OVERHEADS,
        "asyncpg statement cache miss: ~0.3 ms",
        0.3,
        "ms",
        per_miss,
    ),
    Claim(
        "cache_parses",
        ARTICLE,
        OVERHEADS,
        "200 shapes, cache 100: every query is a parse (parses per query)",
        1.0,
        "parses",
        per_operation(
            figure("statement_cache", "statement cache 100", "server_parses", True),
            "statement_cache",
        ),
    ),
    Claim(
        "pgbouncer_errors",
        ARTICLE,
        OVERHEADS,
        "behind PgBouncer (transaction mode) asyncpg's "
        "defaults fail; statement_cache_size=0 runs clean",
        None,
        "",
        fails_then_fixed(
            "pgbouncer_statements",
            "asyncpg defaults",
            ["documented settings (no statement cache, unique names)"],
            "Error",
        ),
    ),
    Claim(
        "stream_bounded",
        CHAPTER,
        "guides",
        "stream(): rows fetched in chunks, memory bounded (peak of execute / peak of stream)",
        None,
        "x",
        PEAK_BUFFERED_OVER_STREAMED,
    ),
    Claim(
        "psycopg_vs_asyncpg",
        CHAPTER,
        "guides",
        "asyncpg is faster than psycopg 3 (async ORM by key, psycopg 3 / asyncpg)",
        None,
        "x",
        ratio(per_op("select_by_pk", PSYCOPG), per_op("select_by_pk", ASYNC)),
    ),
]


HEADLINE = [
    ("flask_sync", "p50", 45.0),
    ("flask_sync", "p95", 312.0),
    ("flask_sync", "p99", 1_840.0),
    ("fastapi_async", "p50", 52.0),
    ("fastapi_async", "p95", 89.0),
    ("fastapi_async", "p99", 142.0),
]


def duel_rows(reports: Path, profile: str) -> list[dict[str, Any]]:
    """The 200-user headline claims, from the committed select_update duel at 200 closed-loop
    users where both stacks ran `profile` (see `pick_duel`). A ratio between the stacks
    comes with the interval of the ratio of the rounds' means (family_level); one run gives
    figures only, and its rows say so instead of a verdict."""
    found = pick_duel(reports, profile)
    if found is None:
        return []
    folder, summary = found
    flask, fastapi = summary["variants"]["flask_sync"], summary["variants"]["fastapi_async"]
    repeated = bool(flask.get("rounds")) and bool(fastapi.get("rounds"))
    level, tests = family_level(summary)
    rows: list[dict[str, Any]] = []

    def add(
        key: str, claim: str, theirs: float | None, unit: str, ours: Spread, source: str = ARTICLE
    ) -> None:
        rows.append(
            _measured_row(f"duel_{profile}_{key}", source, claim, theirs, unit, ours, folder,
                          repeated, tests=tests)
        )  # fmt: skip

    for variant, key, theirs in HEADLINE:
        claim = f"200 users, SELECT + UPDATE: {variant} {key} ({profile} profile)"
        add(
            f"{variant}_{key}", claim, theirs, "ms", _duel_figure(summary["variants"][variant], key)
        )
    claim = (
        f"under concurrency async wins on tail latency (Flask p99 / FastAPI p99, {profile} profile)"
    )
    add("tail", claim, 1_840 / 142, "x", _duel_ratio(flask, fastapi, "p99", level))
    for variant, theirs in (("flask_sync", 12.0), ("fastapi_async", 0.0)):
        v = summary["variants"][variant]
        failures = sum(r["failures"] for r in v.get("rounds") or [v])  # every round's
        claim = f"200 users: {variant} errors ({profile} profile)"
        add(f"{variant}_errors", claim, theirs, "errors", (failures, failures, failures))
    claim = (
        "async handlers increase throughput at high concurrency (the tutorial: "
        f"'dramatically'; FastAPI req/s / Flask req/s, {profile} profile)"
    )
    ours = _duel_ratio(fastapi, flask, "throughput_rps", level)
    add("throughput", claim, None, "x", ours, TUTORIAL)
    return rows


ONE_RUN = "one run: figures, no verdict"


def family_level(summary: dict[str, Any]) -> tuple[float, int]:
    """(confidence level, tests): a ratio read from a repeated run gets the interval the
    run's own family allows, 95% over all its tests at once (Bonferroni over every pair and
    figure), so that a row cannot call "holds" what the run itself calls noise."""
    tests = len(repeats.family(summary["variants"]))
    return 1 - 0.05 / tests, tests


def _interval_said(tests: int) -> str:
    return "95% interval" if tests == 1 else f"95% interval over the run's {tests} tests"


# The tutorial's thread pool against its event loop: FastAPI on both, the same routes.
EVENT_LOOP, THREAD_POOL = "fastapi_async", "fastapi_sync"


def _measured_row(
    key: str,
    source: str,
    claim: str,
    theirs: float | None,
    unit: str,
    ours: Spread,
    folder: str,
    repeated: bool,
    section: str = "200 users",
    tests: int = 1,
) -> dict[str, Any]:
    """A row read from a committed load report: a verdict only from repeated rounds, its
    interval at the run's familywise level (`tests`: see family_level)."""
    row = _row(key, source, section, claim, theirs, unit, ours, link=f"../{folder}/index.html")
    row["spread"] = _interval_said(tests) if repeated else "one run"
    if not repeated:
        row["verdict"] = ONE_RUN
    return row


def guide_rows(reports: Path) -> list[dict[str, Any]]:
    """The tutorial's claim that async handlers on the event loop raise throughput over plain
    `def` handlers in the thread pool (the thread blocked during every query): fastapi_async
    against fastapi_sync at 200 users (the newest plain select_update run that drove both,
    repeated if one was) and at capacity (the newest sweep of both at one objective; one
    sweep is one measurement, so figures, no verdict)."""
    pair = frozenset((EVENT_LOOP, THREAD_POOL))
    rows: list[dict[str, Any]] = []
    found = pick_duel(reports, "default", among=pair)
    if found is not None:
        folder, summary = found
        loop, pool = summary["variants"][EVENT_LOOP], summary["variants"][THREAD_POOL]
        repeated = bool(loop.get("rounds")) and bool(pool.get("rounds"))
        claim = (
            "the event loop is free during database I/O, which can dramatically increase "
            f"throughput ({EVENT_LOOP} req/s / {THREAD_POOL} req/s, 200 users)"
        )
        level, tests = family_level(summary)
        ours = _duel_ratio(loop, pool, "throughput_rps", level)
        rows.append(_measured_row("guide_200u_throughput", TUTORIAL, claim, None, "x", ours,
                                  folder, repeated, tests=tests))  # fmt: skip
    swept = newest_sweep(reports, pair)
    if swept is not None:
        folder, summary = swept
        capacity = [summary["variants"][n]["capacity_rps"] for n in (EVENT_LOOP, THREAD_POOL)]
        ratio = capacity[0] / capacity[1]
        claim = (
            f"...and so capacity ({EVENT_LOOP} / {THREAD_POOL}, the highest rate each held "
            f"within {summary['sweep']['slo']})"
        )
        rows.append(_measured_row("guide_capacity", TUTORIAL, claim, None, "x",
                                  (ratio, ratio, ratio), folder, False, "capacity"))  # fmt: skip
    return rows


def newest_sweep(reports: Path, among: frozenset[str]) -> tuple[str, dict[str, Any]] | None:
    """The newest select_update sweep in which each of `among` ran its default profile and
    held some rate."""
    for folder, s in history.newest_first(reports):
        variants = s.get("variants") or {}
        if (
            s.get("kind") == "sweep"
            and s["sweep"].get("scenario") == "select_update"
            and among <= set(variants)
            and all(
                variants[n]["setup"].get("profile") == "default" and variants[n]["capacity_rps"]
                for n in among
            )
        ):
            return folder, s
    return None


def _read(key: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: float(r[key] if key == "throughput_rps" else r["latency_ms"][key])


def _duel_figure(v: dict[str, Any], key: str) -> Spread:
    """A duel's p50/p95/p99 or throughput_rps: the rounds' mean and 95% interval in a
    repeated run, else the one run's value."""
    across = v.get("across_rounds")
    if across:
        low, high = across[key]["ci95"]
        return (across[key]["mean"], low, high)
    value = _read(key)(v)
    return (value, value, value)


def _duel_ratio(
    top: dict[str, Any], bottom: dict[str, Any], key: str, level: float = 0.95
) -> Spread:
    """mean(top) / mean(bottom) over the rounds, with the `level` interval of that ratio
    (not the intervals' ends divided crosswise); one run: the ratio alone."""
    a = [_read(key)(r) for r in top.get("rounds") or [top]]
    b = [_read(key)(r) for r in bottom.get("rounds") or [bottom]]
    value = statistics.fmean(a) / statistics.fmean(b)
    found = significance.ratio_interval(a, b, level)
    return (value, *found) if found else (value, value, value)


DUEL = frozenset(("flask_sync", "fastapi_async"))


def is_duel(summary: dict[str, Any], among: frozenset[str] | None = None) -> bool:
    """The headline duel and nothing else: select_update at 200 closed-loop users, the two
    stacks straight to PostgreSQL with the stock Locust file, no faults, no profile legs,
    no PgBouncer legs, and not a soak. With `among`: the same load, over stacks that
    include `among` (an all-stacks run, say)."""
    plan, variants = summary.get("plan") or {}, summary.get("variants") or {}
    return (
        summary.get("kind") in (None, "run")
        and plan.get("scenario") == "select_update"
        and plan.get("users") == 200
        and not plan.get("arrival_rate")
        and not plan.get("faults")
        and not plan.get("profiles")
        and not plan.get("compare_pgbouncer")
        and not plan.get("locustfile")
        and not plan.get("tags")
        and float(plan.get("duration") or 0) < SOAK_SECONDS
        and (set(variants) == DUEL if among is None else among <= set(variants))
    )


def pick_duel(
    reports: Path, profile: str, among: frozenset[str] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The duel the headline rows quote for `profile`: the newest repeated one (a verdict
    needs rounds), else the newest single run (`among`: see is_duel)."""
    duels = []
    for folder, s in history.newest_first(reports):
        if is_duel(s, among) and all(
            (v.get("setup") or {}).get("profile") == profile for v in s["variants"].values()
        ):
            duels.append((folder, s))
    repeated = [d for d in duels if (d[1]["plan"].get("repeat") or 1) > 1]
    chosen = repeated or duels
    return chosen[0] if chosen else None


def verdict(theirs: float | None, unit: str, ours: Spread | None) -> str:
    if ours is None:
        return "not measured"
    median, low, high = ours
    if any(math.isnan(x) for x in ours):
        return "not measured"
    if unit == "x":
        if theirs is None:  # a direction only: "A is faster than B" means a ratio over 1
            return "holds" if low > 1 else "partly" if median > 1 else "does not hold"
        if low > 1 and theirs > 1 or high < 1 and theirs < 1:
            return "holds" if theirs / 2 <= median <= theirs * 2 else "partly"
        if theirs == 1.0:
            return "holds" if 0.5 <= median <= 2 else "partly"
        # The spread reaches the other side of 1: partly if the median is on theirs.
        same_side = median > 1 if theirs > 1 else median < 1
        return "partly" if low <= 1 <= high and same_side else "does not hold"
    if theirs is None:
        return "not measured"
    if theirs == 0:
        return "holds" if high == 0 else "does not hold"
    factor = max(median / theirs, theirs / median) if median > 0 else math.inf
    return "holds" if factor <= 2 else "partly" if factor <= 5 else "does not hold"


def _row(
    key: str,
    source: str,
    section: str,
    claim: str,
    theirs: float | None,
    unit: str,
    ours: Spread | str | None,
    link: str | None = None,
) -> dict[str, Any]:
    row = {
        "key": key,
        "source": source,
        "section": section,
        "claim": claim,
        "theirs": theirs,
        "unit": unit,
        "link": link,
    }
    if isinstance(ours, str):  # a behaviour: the word comes with what was seen
        word, _, seen = ours.partition(": ")
        return {**row, "ours": None, "seen": seen, "ratio": None, "verdict": word}
    return {
        **row,
        "ours": None if ours is None else {"median": ours[0], "min": ours[1], "max": ours[2]},
        "seen": None,
        "ratio": None if ours is None or not theirs else ours[0] / theirs,
        "verdict": verdict(theirs, unit, ours),
    }


def build(results: Results, reports: Path) -> list[dict[str, Any]]:
    """One row per claim: the micro run's, then the headline's from the committed duels."""
    rows = [
        _row(c.key, c.source, c.section, c.claim, c.theirs, c.unit, c.ours(results)) for c in CLAIMS
    ]
    duels = duel_rows(reports, "default") + duel_rows(reports, "tuned")
    return rows + duels + guide_rows(reports)
