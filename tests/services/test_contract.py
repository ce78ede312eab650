"""The HTTP contract of DESIGN.md, on both real services."""

from __future__ import annotations

import httpx
import pytest

from loadlab import verify
from loadlab.stack.services import VARIANTS
from tests.conftest import Stack


def test_verify_finds_every_stack_identical_to_the_reference(fresh: Stack) -> None:
    urls = dict(sorted(fresh.urls.items(), key=lambda item: item[0] != verify.REFERENCE))
    results = verify.compare(urls, fresh.database_url, 0.2)
    assert sorted(results) == sorted(set(VARIANTS) - {verify.REFERENCE})
    for other, pairs in results.items():
        differing = [
            (c.step.method, c.step.path, c.problems)
            for c in pairs
            if c.problems and not c.own_refusal
        ]
        assert differing == [], other
        assert len(pairs) == len(verify.SEQUENCE)
        # Only a server declared to refuse bare has answers of its own, and then only refusals.
        own = [c for c in pairs if c.own_refusal]
        assert bool(own) == VARIANTS[other].bare_refusals, other
        assert all(c.answer.sql is None and c.step.method in ("RAW", "GET") for c in own), other


def test_verify_reports_a_difference() -> None:
    step = verify.Step("GET", "/users/1", sql=1)
    a = verify.Answer(200, {"id": 1, "visits": 3}, 1)
    b = verify.Answer(200, {"id": 1, "visits": 4}, 2)
    found = verify.problems(step, a, b, ("x", "y"))
    assert any("JSON differs" in p for p in found)
    assert any("SQL statements x=1 y=2" in p for p in found)


def test_clock_timestamps_compare_equal_but_other_fields_do_not() -> None:
    a = {"last_seen": "2026-01-01T00:00:00+00:00", "name": "a"}
    b = {"last_seen": "2026-01-02T10:00:00+00:00", "name": "a"}
    assert verify.normalise(a) == verify.normalise(b)
    assert verify.normalise({**a, "name": "b"}) != verify.normalise(b)
    assert verify.normalise({"last_seen": "yesterday"}) != verify.normalise(b)


def test_visit_adds_one_and_costs_a_select_and_an_update(fresh: Stack, service_url: str) -> None:
    before = httpx.get(f"{service_url}/users/7").json()
    response = httpx.post(f"{service_url}/users/7/visit")
    assert response.status_code == 200
    assert response.json()["visits"] == before["visits"] + 1
    assert response.json()["last_seen"] is not None
    assert response.headers["x-sql-statements"] == "2"


def test_order_has_three_relations_loaded_in_one_statement(stack: Stack, service_url: str) -> None:
    response = httpx.get(f"{service_url}/orders/11")
    order = response.json()
    assert response.status_code == 200
    assert response.headers["x-sql-statements"] == "1"
    assert order["customer"]["id"] >= 1
    assert 1 <= len(order["items"]) <= 5
    assert all(item["product"]["sku"].startswith("SKU-") for item in order["items"])
    total = sum(i["quantity"] * i["unit_price_cents"] for i in order["items"])
    assert order["total_cents"] == total


def test_order_pages_follow_the_keyset(fresh: Stack, service_url: str) -> None:
    """From the seed: an order created by an earlier test would lengthen the last page."""
    first = httpx.get(f"{service_url}/orders", params={"status": "paid", "limit": 7}).json()
    ids = [o["id"] for o in first["orders"]]
    assert len(ids) == 7 and ids == sorted(ids)
    assert all(o["status"] == "paid" for o in first["orders"])
    assert first["next_after_id"] == ids[-1]
    params = {"status": "paid", "limit": 7, "after_id": first["next_after_id"]}
    second = httpx.get(f"{service_url}/orders", params=params).json()
    assert min(o["id"] for o in second["orders"]) > ids[-1]
    last = httpx.get(f"{service_url}/orders", params={"after_id": 1995, "limit": 100}).json()
    assert last["next_after_id"] is None and len(last["orders"]) == 5


def test_created_order_is_priced_on_the_server(fresh: Stack, service_url: str) -> None:
    body = {"customer_id": 5, "items": [{"product_id": 2, "quantity": 3}]}
    created = httpx.post(f"{service_url}/orders", json=body)
    assert created.status_code == 201
    order = created.json()
    price = order["items"][0]["product"]["price_cents"]
    assert order["total_cents"] == 3 * price
    fetched = httpx.get(f"{service_url}/orders/{order['id']}").json()
    assert fetched == order


BAD_PATHS = [
    ("GET", "/users/0", 422, "invalid_id"),
    ("GET", "/users/-1", 422, "invalid_id"),
    ("GET", "/users/abc", 422, "invalid_id"),
    ("GET", "/users/99999999999999999999", 422, "invalid_id"),
    ("GET", "/users/9223372036854775808", 422, "invalid_id"),
    ("GET", "/users/9223372036854775807", 404, "not_found"),
    ("GET", "/users/123456", 404, "not_found"),
    ("POST", "/users/0/visit", 422, "invalid_id"),
    ("POST", "/users/123456/visit", 404, "not_found"),
    ("GET", "/orders/-1", 422, "invalid_id"),
    ("GET", "/orders/123456", 404, "not_found"),
    ("GET", "/orders?limit=0", 422, "invalid_query"),
    ("GET", "/orders?limit=abc", 422, "invalid_query"),
    ("GET", "/orders?after_id=99999999999999999999", 422, "invalid_query"),
    ("GET", "/users/", 404, "not_found"),
    ("GET", "/nothing-here", 404, "not_found"),
    ("PUT", "/orders", 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "status", "code"), BAD_PATHS)
def test_bad_paths_get_json_errors(
    stack: Stack, service_url: str, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(method, service_url + path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == code
    assert set(response.json()) == {"error", "detail"}


BAD_BODIES = [
    (b"", 422),
    (b"   ", 422),
    (b"{", 422),
    (b"[1, 2]", 422),
    (b'"order"', 422),
    (b'{"customer_id": "5", "items": [{"product_id": 1, "quantity": 1}]}', 422),
    (b'{"customer_id": 5.0, "items": [{"product_id": 1, "quantity": 1}]}', 422),
    (b'{"customer_id": 5, "items": [{"product_id": 1, "quantity": true}]}', 422),
    (b'{"customer_id": 5, "items": [{"product_id": 1, "quantity": -2}]}', 422),
    (b'{"customer_id": 5, "items": []}', 422),
    (b'{"customer_id": 5}', 422),
    (b'{"customer_id": 99999999, "items": [{"product_id": 1, "quantity": 1}]}', 422),
    (b'{"customer_id": 5, "items": [{"product_id": 99999999, "quantity": 1}]}', 422),
    (b'{"customer_id": 5, "items": [{"product_id": 1, "quantity": 1, "x": 1}]}', 422),
    (b"\xff\xfe not utf-8", 422),
    (b"x" * (65 * 1024), 413),
    (b"[" * 20000, 422),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
def test_bad_order_bodies_get_json_errors_and_write_nothing(
    stack: Stack, service_url: str, body: bytes, status: int
) -> None:
    before = httpx.get(f"{service_url}/orders", params={"after_id": 1999}).json()["orders"]
    response = httpx.post(f"{service_url}/orders", content=body)
    assert response.status_code == status
    assert set(response.json()) == {"error", "detail"}
    after = httpx.get(f"{service_url}/orders", params={"after_id": 1999}).json()["orders"]
    assert after == before
