"""The contract as an OpenAPI 3.1 description, built from the same models the services
serialise with (schemas.py) and the statuses they answer (errors.py, validation.py).

The services do not serve it (the contract has no /openapi.json); the fuzzing tests feed it
to schemathesis (tests/services/test_fuzz.py), and `python -m services.common.openapi` prints
it for any other tool.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from services.common.schemas import (
    MAX_ID,
    ErrorOut,
    HealthOut,
    OrderCreateIn,
    OrderOut,
    OrderPageOut,
    UserOut,
)
from services.common.validation import ORDER_STATUSES, PAGE_LIMIT_MAX

_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "not valid HTTP/1.1",
    404: "no such row, or no such route",
    413: "a body over 64 KiB",
    414: "a request target over 4,096 bytes",
    422: "a malformed id, query or body, or an order naming no such customer or product",
    431: "a header over 8,192 bytes, or over 100 headers",
    503: "the database cannot be reached, or the pool has no free connection",
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def _answers(ok: int, model: type[BaseModel], *errors: int) -> dict[str, Any]:
    found: dict[str, Any] = {str(ok): {"description": "done", "content": _body(model)}}
    for status in sorted({400, 414, 431, 503, *errors}):  # the edge and the database: anywhere
        found[str(status)] = {"description": _ERRORS[status], "content": _body(ErrorOut)}
    return found


def _id(name: str) -> dict[str, Any]:
    # A string, so fuzzing sends what is not an id too: the contract answers it with 422.
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _integer(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document() -> dict[str, Any]:
    """The OpenAPI document of the contract."""
    schemas: dict[str, Any] = {}
    for model in (UserOut, OrderOut, OrderPageOut, HealthOut, ErrorOut, OrderCreateIn):
        # What the services send, and what POST /orders takes.
        found = model.model_json_schema(
            ref_template=_REF, mode="validation" if model is OrderCreateIn else "serialization"
        )
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    user = [_id("user_id")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "loadlab's service contract", "version": "1"},
        "paths": {
            "/healthz": {"get": {"responses": _answers(200, HealthOut)}},
            "/users/{user_id}": {
                "get": {"parameters": user, "responses": _answers(200, UserOut, 404, 422)}
            },
            "/users/{user_id}/visit": {
                "post": {"parameters": user, "responses": _answers(200, UserOut, 404, 422)}
            },
            "/orders/{order_id}": {
                "get": {
                    "parameters": [_id("order_id")],
                    "responses": _answers(200, OrderOut, 404, 422),
                }
            },
            "/orders": {
                "get": {
                    "parameters": [
                        _query("status", {"type": "string", "enum": list(ORDER_STATUSES)}),
                        _query("limit", _integer(1, PAGE_LIMIT_MAX)),
                        _query("after_id", _integer(0, MAX_ID)),
                    ],
                    "responses": _answers(200, OrderPageOut, 422),
                },
                "post": {
                    "requestBody": {"required": True, "content": _body(OrderCreateIn)},
                    "responses": _answers(201, OrderOut, 413, 422),
                },
            },
        },
        "components": {"schemas": schemas},
    }


if __name__ == "__main__":
    print(json.dumps(document(), indent=2))
