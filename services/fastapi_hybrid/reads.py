"""The read endpoints through raw asyncpg on their own pool: the article's "raw driver
alternative" for hot reads. One statement each, as the ORM's joined loads are, and the same
JSON: rows go through the same response models as the ORM objects do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response

from services.common import instrument, queries
from services.common.schemas import (
    HealthOut,
    OrderOut,
    OrderPageOut,
    OrderSummaryOut,
    UserOut,
    to_json,
)
from services.common.settings import ServiceSettings
from services.common.validation import parse_id, parse_order_page, query_pairs
from services.fastapi_async.routes import READ  # GET routes take HEAD too, as Flask's do

reads = APIRouter()

USER = "SELECT id, name, email, visits, last_seen, created_at FROM users WHERE id = $1"
# As the ORM's joinedload does: the order, its customer, its items (by id) and their products.
ORDER = """
SELECT o.id, o.status, o.total_cents, o.created_at,
       c.id AS customer_id, c.name AS customer_name, c.email AS customer_email,
       i.id AS item_id, i.quantity, i.unit_price_cents,
       p.id AS product_id, p.sku, p.name AS product_name, p.price_cents
FROM orders o
LEFT JOIN customers c ON c.id = o.customer_id
LEFT JOIN order_items i ON i.order_id = o.id
LEFT JOIN products p ON p.id = i.product_id
WHERE o.id = $1
ORDER BY i.id
"""
PAGE = """
SELECT o.id, o.status, o.total_cents, o.created_at,
       c.id AS customer_id, c.name AS customer_name, c.email AS customer_email
FROM orders o
LEFT JOIN customers c ON c.id = o.customer_id
WHERE o.id > $1 AND ($2::text IS NULL OR o.status = $2)
ORDER BY o.id
LIMIT $3
"""


async def open_pool(settings: ServiceSettings) -> asyncpg.Pool:
    kwargs: dict[str, Any] = {}
    if settings.pgbouncer_safe:
        kwargs["statement_cache_size"] = 0  # PgBouncer in transaction mode: no named statements
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=settings.db_read_pool_size,
        server_settings={"application_name": settings.service_name},
        **kwargs,
    )


@asynccontextmanager
async def _connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, counted in the cost headers as the ORM's checkouts are; given
    back before the response starts. The wait is bounded as the ORM pool's is."""
    pool: asyncpg.Pool = request.app.state.read_pool
    async with pool.acquire(timeout=request.app.state.pool_timeout) as conn:
        instrument.checked_out()
        try:
            yield conn
        finally:
            instrument.checked_in()


async def _fetch(request: Request, sql: str, *args: object) -> list[asyncpg.Record]:
    async with _connection(request) as conn:
        instrument.statement_started()
        try:
            return await conn.fetch(sql, *args)
        finally:
            instrument.statement_finished()


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _customer(row: asyncpg.Record) -> dict[str, object]:
    return {"id": row["customer_id"], "name": row["customer_name"], "email": row["customer_email"]}


def _summary(row: asyncpg.Record) -> dict[str, object]:
    return {
        "id": row["id"],
        "status": row["status"],
        "total_cents": row["total_cents"],
        "created_at": row["created_at"],
        "customer": _customer(row),
    }


@reads.api_route("/healthz", methods=READ)
async def healthz(request: Request) -> Response:
    await _fetch(request, "SELECT 1")
    return _json(to_json(HealthOut(status="ok")))


@reads.api_route("/users/{user_id}", methods=READ)
async def get_user(user_id: str, request: Request) -> Response:
    uid = parse_id(user_id, "user id")
    rows = await _fetch(request, USER, uid)
    if not rows:
        raise queries.missing_user(uid)
    return _json(to_json(UserOut.model_validate(dict(rows[0]))))


@reads.api_route("/orders/{order_id}", methods=READ)
async def get_order(order_id: str, request: Request) -> Response:
    oid = parse_id(order_id, "order id")
    rows = await _fetch(request, ORDER, oid)
    if not rows:
        raise queries.missing_order(oid)
    items = [
        {
            "id": row["item_id"],
            "quantity": row["quantity"],
            "unit_price_cents": row["unit_price_cents"],
            "product": {
                "id": row["product_id"],
                "sku": row["sku"],
                "name": row["product_name"],
                "price_cents": row["price_cents"],
            },
        }
        for row in rows
        if row["item_id"] is not None
    ]
    return _json(to_json(OrderOut.model_validate({**_summary(rows[0]), "items": items})))


@reads.api_route("/orders", methods=READ)
async def list_orders(request: Request) -> Response:
    page = parse_order_page(query_pairs(request.scope["query_string"]))
    rows = await _fetch(request, PAGE, page.after_id, page.status, page.limit)
    body = OrderPageOut(
        orders=[OrderSummaryOut.model_validate(_summary(row)) for row in rows],
        next_after_id=rows[-1]["id"] if len(rows) == page.limit else None,
    )
    return _json(to_json(body))
