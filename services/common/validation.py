"""Parsing of ids, query strings and bodies: one function each, called by both services, so
a malformed request gets the same 422 from either."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from pydantic import ValidationError

from services.common.errors import MAX_BODY_BYTES, ApiError, body_too_large
from services.common.schemas import MAX_ID, OrderCreateIn

PAGE_LIMIT_DEFAULT = 20
PAGE_LIMIT_MAX = 100
ORDER_STATUSES = ("pending", "paid", "shipped", "cancelled")


def parse_id(raw: str, name: str = "id") -> int:
    """A path id: decimal digits only, 1 .. 2**63-1 (PostgreSQL bigint)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise ApiError(422, "invalid_id", f"{name} must be a positive integer, got {raw[:40]!r}")
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise ApiError(422, "invalid_id", f"{name} must be between 1 and {MAX_ID}, got {value}")
    return value


@dataclass(frozen=True)
class OrderPageQuery:
    status: str | None
    limit: int
    after_id: int


def _int_param(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise ApiError(
            422,
            "invalid_query",
            f"{name} must be an integer from {low} to {high}, got {raw[:40]!r}",
        )
    return int(raw)


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """The query string's name=value pairs from its raw bytes, which must be UTF-8 once
    percent-decoded (each framework would otherwise put its own replacement in, or not)."""
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid_query", "the query string is not valid UTF-8") from None


def parse_order_page(params: Iterable[tuple[str, str]]) -> OrderPageQuery:
    """`status`, `limit` (1..100) and `after_id` (>= 0) of GET /orders; unknown names are
    ignored, a repeated name is an error (frameworks disagree on which copy wins)."""
    seen: dict[str, str] = {}
    for key, value in params:
        if key in seen:
            raise ApiError(422, "invalid_query", f"{key} is given more than once")
        seen[key] = value
    status = seen.get("status")
    if status is not None and status not in ORDER_STATUSES:
        raise ApiError(
            422,
            "invalid_query",
            f"status must be one of {', '.join(ORDER_STATUSES)}, got {status[:40]!r}",
        )
    limit = _int_param("limit", seen.get("limit", str(PAGE_LIMIT_DEFAULT)), 1, PAGE_LIMIT_MAX)
    after_id = _int_param("after_id", seen.get("after_id", "0"), 0, MAX_ID)
    return OrderPageQuery(status=status, limit=limit, after_id=after_id)


def parse_order_create(body: bytes) -> OrderCreateIn:
    """The JSON body of POST /orders, strictly typed (no "5" for 5, no true for 1)."""
    if len(body) > MAX_BODY_BYTES:
        raise body_too_large()
    if not body.strip():
        raise ApiError(422, "invalid_body", "the body is empty; expected a JSON object")
    try:
        order = OrderCreateIn.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(422, "invalid_body", f"{where}: {first['msg']}") from None
    product_ids = [item.product_id for item in order.items]
    if len(set(product_ids)) != len(product_ids):
        raise ApiError(422, "invalid_body", "items: each product_id may appear only once")
    return order
