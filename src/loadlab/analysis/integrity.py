"""Did the database apply what the load generator saw acknowledged?

For each write endpoint: acknowledged (2xx, warm-up included) <= applied (the change in the
database over the whole run) <= acknowledged + in doubt (no answer, a 5xx, or cut off by the
end of the run). Anything else means lost or phantom writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import psycopg2

from loadlab.stack.postgres import fetch_one

ORDERS = "POST /orders"
# request name as Locust reports it -> SQL measuring its effect on the database
WRITES = {
    "POST /users/[id]/visit": "SELECT coalesce(sum(visits), 0) FROM users",
    ORDERS: "SELECT count(*) FROM orders",
}


# What no write may leave behind, whatever failed: an order is written whole or not at all.
HALF_WRITTEN = {
    "orders without items": "SELECT count(*) FROM orders o "
    "WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)",
    "items without an order": "SELECT count(*) FROM order_items i "
    "WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i.order_id)",
    "totals that are not the sum of their items": "SELECT count(*) FROM orders o "
    "WHERE o.total_cents <> (SELECT coalesce(sum(i.quantity * i.unit_price_cents), 0) "
    "FROM order_items i WHERE i.order_id = o.id)",
}


def half_written(database_url: str) -> dict[str, int]:
    """How many of each thing no write may leave behind (all 0 when the data is whole)."""
    return {what: int(fetch_one(database_url, sql)[0]) for what, sql in HALF_WRITTEN.items()}


def snapshot(database_url: str) -> dict[str, int]:
    """The current value of each write's measure."""
    return {name: int(fetch_one(database_url, sql)[0]) for name, sql in WRITES.items()}


@dataclass(frozen=True)
class IntegrityCheck:
    request: str
    acknowledged: int
    applied: int
    in_doubt: int

    @property
    def holds(self) -> bool:
        return self.acknowledged <= self.applied <= self.acknowledged + self.in_doubt

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": self.holds}


def check(
    before: dict[str, int], after: dict[str, int], outcomes: list[list[Any]]
) -> list[IntegrityCheck]:
    """One check per write endpoint the run sent requests to. `outcomes` may repeat a
    (request, outcome) pair, as several runs' lists put together do: they add up."""
    counts: Counter[tuple[str, str]] = Counter()
    for n, k, c in outcomes:
        counts[(n, k)] += c
    checks = []
    for name in WRITES:
        sent = sum(c for (n, _), c in counts.items() if n == name)
        if sent == 0:
            continue
        checks.append(
            IntegrityCheck(
                request=name,
                acknowledged=counts.get((name, "ok"), 0),
                applied=after[name] - before[name],
                in_doubt=counts.get((name, "in_doubt"), 0),
            )
        )
    return checks


# An order as the generator saw it acknowledged (locustfiles/common.py) and as the database
# holds it: [id, customer id, total in cents, sorted [product id, quantity, unit price]...].
_ORDERS_AS_HELD = """
SELECT o.id, o.customer_id, o.total_cents,
       array_agg(ARRAY[i.product_id, i.quantity, i.unit_price_cents]
                 ORDER BY i.product_id) FILTER (WHERE i.id IS NOT NULL)
FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
WHERE o.id = ANY(%s) GROUP BY o.id
"""
EXAMPLES = 5  # differences named on the page; the rest are counted


def newest_order(database_url: str) -> int:
    """The highest order id now: orders above it after a run were created by the run."""
    return int(fetch_one(database_url, "SELECT coalesce(max(id), 0) FROM orders")[0])


def acknowledged_orders(
    database_url: str, acknowledged: list[list[Any]], newest_before: int, in_doubt: int
) -> dict[str, Any]:
    """Every order answered 201 exists with exactly its customer, items and total; and the
    run's other new orders are no more than its POST /orders in doubt (each could be one
    whose answer was lost). Two answers naming one id are two orders the client was told
    exist where at most one can: each extra answer counts as a duplicate and breaks it."""
    by_id = {int(a[0]): _canonical(a) for a in acknowledged}
    duplicates = len(acknowledged) - len(by_id)
    held: dict[int, list[Any]] = {}
    conn = psycopg2.connect(database_url, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            ids = sorted(by_id)
            for start in range(0, len(ids), 10_000):
                cur.execute(_ORDERS_AS_HELD, (ids[start : start + 10_000],))
                held.update({int(r[0]): _canonical(r) for r in cur.fetchall()})
            cur.execute("SELECT count(*) FROM orders WHERE id > %s", (newest_before,))
            created = int(cur.fetchone()[0])
    finally:
        conn.close()
    missing = [i for i in by_id if i not in held]
    different = [i for i in by_id if i in held and held[i] != by_id[i]]
    unacknowledged = created - len(by_id) + len(missing)
    return {
        "acknowledged": len(acknowledged),
        "duplicates": duplicates,
        "missing": len(missing),
        "different": len(different),
        "examples": [
            {"id": i, "acknowledged": by_id[i], "held": held.get(i)}
            for i in (missing + different)[:EXAMPLES]
        ],
        "unacknowledged": unacknowledged,
        "in_doubt": in_doubt,
        "holds": not duplicates
        and not missing
        and not different
        and 0 <= unacknowledged <= in_doubt,
    }


def _canonical(order: Any) -> list[Any]:
    order_id, customer, total, items = order
    return [
        int(order_id),
        int(customer),
        int(total),
        sorted([int(x) for x in i] for i in items or []),
    ]
