"""Deterministic seed data, loaded with COPY.

The same scale always gives the same rows (fixed random seed, fixed timestamps), so two runs,
or two services, start from identical data. `reset` puts the database back to that state.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg2

SEED = 20240611
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
STATUSES = ("pending", "paid", "shipped", "cancelled")
TABLES = ("order_items", "orders", "products", "customers", "users")


@dataclass(frozen=True)
class Scale:
    """Row counts; scale 1.0 is the default of 10,000 users and orders."""

    users: int
    customers: int
    products: int
    orders: int

    @classmethod
    def of(cls, factor: float) -> Scale:
        return cls(
            users=max(1, round(10_000 * factor)),
            customers=max(1, round(1_000 * factor)),
            products=max(5, round(500 * factor)),
            orders=max(1, round(10_000 * factor)),
        )


def _copy(cur: psycopg2.extensions.cursor, table: str, columns: str, rows: list[tuple]) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buf)


def rows(scale: Scale) -> dict[str, list[tuple]]:
    """Every seed row, by table, from the fixed random seed."""
    rng = random.Random(SEED)
    users = [
        (
            i,
            f"User {i}",
            f"user{i}@example.test",
            rng.randint(0, 50),
            (EPOCH + timedelta(minutes=i)).isoformat() if i % 3 else None,
            (EPOCH + timedelta(seconds=i)).isoformat(),
        )
        for i in range(1, scale.users + 1)
    ]
    customers = [
        (i, f"Customer {i}", f"customer{i}@example.test", (EPOCH + timedelta(hours=i)).isoformat())
        for i in range(1, scale.customers + 1)
    ]
    products = [
        (i, f"SKU-{i:06d}", f"Product {i}", rng.randint(100, 50_000))
        for i in range(1, scale.products + 1)
    ]
    prices = {p[0]: p[3] for p in products}
    orders: list[tuple] = []
    items: list[tuple] = []
    for order_id in range(1, scale.orders + 1):
        total = 0
        for product_id in rng.sample(range(1, scale.products + 1), rng.randint(1, 5)):
            quantity = rng.randint(1, 4)
            items.append((len(items) + 1, order_id, product_id, quantity, prices[product_id]))
            total += quantity * prices[product_id]
        orders.append(
            (
                order_id,
                rng.randint(1, scale.customers),
                rng.choice(STATUSES),
                total,
                (EPOCH + timedelta(minutes=order_id)).isoformat(),
            )
        )
    return {
        "users": users,
        "customers": customers,
        "products": products,
        "orders": orders,
        "order_items": items,
    }


COLUMNS = {
    "users": "id, name, email, visits, last_seen, created_at",
    "customers": "id, name, email, created_at",
    "products": "id, sku, name, price_cents",
    "orders": "id, customer_id, status, total_cents, created_at",
    "order_items": "id, order_id, product_id, quantity, unit_price_cents",
}


def reset(database_url: str, scale: Scale) -> None:
    """Empty loadlab's five tables and load the seed; sequences continue after the seed."""
    data = rows(scale)
    conn = psycopg2.connect(database_url)
    with conn, conn.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
        for table in reversed(TABLES):  # parents before children
            _copy(cur, table, COLUMNS[table], data[table])
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
                (max(len(data[table]), 1),),
            )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"ANALYZE {', '.join(TABLES)}")
    conn.close()
