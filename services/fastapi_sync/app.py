"""FastAPI with plain `def` endpoints on sync SQLAlchemy (psycopg2): what a team keeps when it
moves to FastAPI without rewriting its data layer. FastAPI runs each `def` handler in
Starlette's thread pool (anyio's, WEB_THREADS threads per worker process); the thread is
blocked during every query, as a gunicorn thread is, while the event loop parses and writes
HTTP. `uvicorn --factory services.fastapi_sync.app:create_app`.

The contract's guard, cost headers and errors are fastapi_async's (make_app); the session
is Flask's (services/flask_sync/app.py: ProfiledSession, each call timed as in the others).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

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
from services.common.validation import parse_id, parse_order_create, parse_order_page, query_pairs
from services.fastapi_async.app import make_app
from services.fastapi_async.routes import READ, _read_body
from services.flask_sync.app import ProfiledSession

router = APIRouter()


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _sessions(request: Request) -> Any:
    return request.app.state.make_session


@router.api_route("/healthz", methods=READ)
def healthz(request: Request) -> Response:
    with request.app.state.engine.connect() as conn:
        conn.execute(queries.PING)
    return _json(to_json(HealthOut(status="ok")))


@router.api_route("/users/{user_id}", methods=READ)
def get_user(user_id: str, request: Request) -> Response:
    uid = parse_id(user_id, "user id")
    with _sessions(request)() as session:
        user = session.scalars(queries.user_by_id(uid)).one_or_none()
        if user is None:
            raise queries.missing_user(uid)
        return _json(to_json(UserOut.model_validate(user)))


@router.post("/users/{user_id}/visit")
def visit_user(user_id: str, request: Request) -> Response:
    uid = parse_id(user_id, "user id")
    make_session = _sessions(request)
    with make_session() as session:
        with session.begin():
            user = session.scalars(queries.user_for_visit(uid)).one_or_none()
            if user is None:
                raise queries.missing_user(uid)
            if request.app.state.nested_session:  # the deadlock pattern (ServiceSettings)
                with make_session() as nested:
                    nested.execute(queries.PING)
            queries.visit(user)
        return _json(to_json(UserOut.model_validate(user)))


@router.api_route("/orders/{order_id}", methods=READ)
def get_order(order_id: str, request: Request) -> Response:
    oid = parse_id(order_id, "order id")
    with _sessions(request)() as session:
        order = session.scalars(queries.order_with_relations(oid)).unique().one_or_none()
        if order is None:
            raise queries.missing_order(oid)
        return _json(to_json(OrderOut.model_validate(order)))


@router.api_route("/orders", methods=READ)
def list_orders(request: Request) -> Response:
    page = parse_order_page(query_pairs(request.scope["query_string"]))
    with _sessions(request)() as session:
        orders = session.scalars(queries.order_page(page)).all()
        body = OrderPageOut(
            orders=[OrderSummaryOut.model_validate(o) for o in orders],
            next_after_id=queries.next_after_id(orders, page.limit),
        )
        return _json(to_json(body))


def _create_order(make_session: Any, raw: bytes) -> Response:
    data = parse_order_create(raw)
    with make_session() as session:
        with session.begin():
            customer = session.scalars(queries.customer_by_id(data.customer_id)).one_or_none()
            products = session.scalars(
                queries.products_by_ids([item.product_id for item in data.items])
            ).all()
            order = queries.build_order(data, customer, products)
            session.add(order)
        return _json(to_json(OrderOut.model_validate(order)), 201)


@router.post("/orders")
async def create_order(request: Request) -> Response:
    # The body is read on the loop (its size limit refuses it chunk by chunk, which a `def`
    # handler cannot do); everything else runs in the thread pool, as the other handlers.
    raw = await _read_body(request)
    return await run_in_threadpool(_create_order, _sessions(request), raw)


@asynccontextmanager
async def sync_orm(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """A sync engine and its sessions, and the thread pool's size, per worker process."""
    # Starlette runs `def` handlers through anyio's default limiter: 40 threads unless set.
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
    engine = create_engine(
        settings.url_for("psycopg2"),
        connect_args={"application_name": settings.service_name},
        **settings.engine_kwargs(),
    )
    instrument.install(engine)
    app.state.engine = engine
    app.state.make_session = sessionmaker(
        engine, class_=ProfiledSession, expire_on_commit=settings.expire_on_commit
    )
    app.state.nested_session = settings.nested_session
    yield
    engine.dispose()


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return make_app("loadlab fastapi_sync", router, sync_orm, settings)
