"""Response and request bodies, one definition for both services.

Both services serialise through these models with `to_json`, so the bytes on the wire come
from the same code and a difference in a response is a difference in behaviour, not in a
JSON library's formatting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# psycopg2 returns timestamps in the session's time zone, asyncpg always in UTC: serialise
# every timestamp in UTC so the two services agree on any server.
UtcDatetime = Annotated[
    datetime, PlainSerializer(lambda d: d.astimezone(UTC).isoformat(), return_type=str)
]

MAX_ID = 2**63 - 1  # PostgreSQL bigint
OrderStatus = Literal["pending", "paid", "shipped", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(_Out):
    id: int
    name: str
    email: str
    visits: int
    last_seen: UtcDatetime | None
    created_at: UtcDatetime


class CustomerOut(_Out):
    id: int
    name: str
    email: str


class ProductOut(_Out):
    id: int
    sku: str
    name: str
    price_cents: int


class OrderItemOut(_Out):
    id: int
    quantity: int
    unit_price_cents: int
    product: ProductOut


class OrderSummaryOut(_Out):
    id: int
    status: str
    total_cents: int
    created_at: UtcDatetime
    customer: CustomerOut


class OrderOut(OrderSummaryOut):
    items: list[OrderItemOut]


class OrderPageOut(BaseModel):
    orders: list[OrderSummaryOut]
    next_after_id: int | None


class HealthOut(BaseModel):
    status: Literal["ok"]


class ErrorOut(BaseModel):
    error: str
    detail: str


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: int = Field(ge=1, le=MAX_ID)
    quantity: int = Field(ge=1, le=100)


class OrderCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: int = Field(ge=1, le=MAX_ID)
    status: OrderStatus = "pending"
    items: list[OrderItemIn] = Field(min_length=1, max_length=50)


def to_json(model: BaseModel) -> bytes:
    """The response body for a model: compact JSON, the same bytes in both services."""
    return model.model_dump_json().encode()
