"""The endpoints of the contract, as async handlers on the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from services.common import edge, queries
from services.common.errors import MAX_BODY_BYTES, body_too_large
from services.common.schemas import (
    HealthOut,
    OrderOut,
    OrderPageOut,
    OrderSummaryOut,
    UserOut,
    to_json,
)
from services.common.validation import (
    parse_id,
    parse_order_create,
    parse_order_page,
    query_pairs,
)
from services.fastapi_async.db import SessionDep

# The read endpoints and the write endpoints, so a stack can reuse one half
# (fastapi_hybrid serves its reads with raw asyncpg, its writes with these).
reads = APIRouter()
writes = APIRouter()
# HTTP servers must answer HEAD wherever they answer GET (RFC 9110 9.3.2); Flask does so for
# every GET route and FastAPI for none, so each read route takes both (uvicorn sends no body).
READ = ["GET", "HEAD"]


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes the limit (never buffered whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise body_too_large()
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise body_too_large()
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left, or uvicorn refused the rest of the body (a bad chunk) and has
        # already answered 400: as Flask does for a body gunicorn cannot read.
        raise edge.bad_request() from None
    return b"".join(chunks)


@reads.api_route("/healthz", methods=READ)
async def healthz(session: SessionDep) -> Response:
    await session.execute(queries.PING)
    return _json(to_json(HealthOut(status="ok")))


@reads.api_route("/users/{user_id}", methods=READ)
async def get_user(user_id: str, session: SessionDep) -> Response:
    uid = parse_id(user_id, "user id")
    user = (await session.scalars(queries.user_by_id(uid))).one_or_none()
    if user is None:
        raise queries.missing_user(uid)
    return _json(to_json(UserOut.model_validate(user)))


@writes.post("/users/{user_id}/visit")
async def visit_user(user_id: str, request: Request, session: SessionDep) -> Response:
    uid = parse_id(user_id, "user id")
    async with session.begin():
        user = (await session.scalars(queries.user_for_visit(uid))).one_or_none()
        if user is None:
            raise queries.missing_user(uid)
        if request.app.state.nested_session:  # the deadlock pattern (ServiceSettings)
            async with request.app.state.make_session() as nested:
                await nested.execute(queries.PING)
        queries.visit(user)
    return _json(to_json(UserOut.model_validate(user)))


@reads.api_route("/orders/{order_id}", methods=READ)
async def get_order(order_id: str, session: SessionDep) -> Response:
    oid = parse_id(order_id, "order id")
    order = (await session.scalars(queries.order_with_relations(oid))).unique().one_or_none()
    if order is None:
        raise queries.missing_order(oid)
    return _json(to_json(OrderOut.model_validate(order)))


@reads.api_route("/orders", methods=READ)
async def list_orders(request: Request, session: SessionDep) -> Response:
    page = parse_order_page(query_pairs(request.scope["query_string"]))
    orders = (await session.scalars(queries.order_page(page))).all()
    body = OrderPageOut(
        orders=[OrderSummaryOut.model_validate(o) for o in orders],
        next_after_id=queries.next_after_id(orders, page.limit),
    )
    return _json(to_json(body))


@writes.post("/orders")
async def create_order(request: Request, session: SessionDep) -> Response:
    data = parse_order_create(await _read_body(request))
    async with session.begin():
        customer = (await session.scalars(queries.customer_by_id(data.customer_id))).one_or_none()
        products = (
            await session.scalars(queries.products_by_ids([i.product_id for i in data.items]))
        ).all()
        order = queries.build_order(data, customer, products)
        session.add(order)
    return _json(to_json(OrderOut.model_validate(order)), 201)


router = APIRouter()
router.include_router(reads)
router.include_router(writes)
