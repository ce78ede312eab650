"""Did the database apply what the load generator saw acknowledged?

For each write endpoint: acknowledged (2xx, warm-up included) <= applied (the change in the
database over the whole run) <= acknowledged + in doubt (no answer, a 5xx, or cut off by the
end of the run). Anything else means lost or phantom writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from loadlab.stack.postgres import fetch_one

# request name as Locust reports it -> SQL measuring its effect on the database
WRITES = {
    "POST /users/[id]/visit": "SELECT coalesce(sum(visits), 0) FROM users",
    "POST /orders": "SELECT count(*) FROM orders",
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
