"""FastAPI app factory: `uvicorn --factory services.fastapi_async.app:create_app`.

The engine is made in the lifespan, per worker process, never at import time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import edge, instrument
from services.common.errors import ApiError, database_error, http_error
from services.common.settings import ServiceSettings
from services.fastapi_async.db import ProfiledSession, make_engine
from services.fastapi_async.routes import router


class CostMiddleware:
    """Adds the statement count and Server-Timing to every response (services/common/
    instrument.py; pure ASGI: no extra task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = instrument.start(scope.get(instrument.READ_AT_KEY))

        async def send_with_cost(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in instrument.headers()]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_cost)
        finally:
            instrument.stop(token)


class RequestGuard:
    """Applies services/common/edge.py's limits before any route (and outside the cost
    headers, as gunicorn does): uvicorn itself limits neither targets nor headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            target = scope.get("raw_path", b"") + (b"?" + query if query else b"")
            raw_headers = scope["headers"]
            error = edge.refusal(
                scope["method"],
                scope["http_version"],
                target,
                edge.joined_headers(raw_headers),
                len(raw_headers),
            )
            if error is not None:
                await _error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error.body(), status_code=error.status, headers=headers, media_type="application/json"
    )


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every endpoint, also inside included routers (FastAPI keeps those as one wrapper
    route each, holding the router; none of ours has a prefix)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def _allowed_methods(app: FastAPI, path: str) -> str:
    """Every method some route takes at this path. Starlette's own 405 names only the first
    route that matched the path (GET /orders and POST /orders are two routes)."""
    methods: set[str] = set()
    for route in _api_routes(app.router.routes):
        if route.path_regex.match(path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


# Database classes, not Exception: Starlette routes an Exception handler to its outermost
# middleware, which logs a traceback for every 503 even when the handler answered.
async def database_error_response(request: Request, exc: Exception) -> Response:
    error = database_error(exc)
    if error is None:
        raise exc  # a bug: let Starlette log it and answer 500
    return _error_response(error)


Resources = Callable[[FastAPI, ServiceSettings], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def orm_session(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    """The async engine and its sessions (routes.SessionDep), for the lifespan."""
    engine = make_engine(settings)
    app.state.make_session = async_sessionmaker(
        engine, class_=ProfiledSession, expire_on_commit=settings.expire_on_commit
    )
    app.state.admission = (
        asyncio.Semaphore(settings.db_pool_size + settings.db_max_overflow)
        if settings.fair_admission
        else None
    )
    app.state.nested_session = settings.nested_session
    yield
    await engine.dispose()


def make_app(
    title: str,
    routes: APIRouter,
    resources: Resources,
    settings: ServiceSettings | None = None,
) -> FastAPI:
    """A FastAPI app serving `routes`, with the contract's guard, cost headers and errors;
    `resources` opens what the routes use (engines, pools) per worker, in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with resources(app, settings or ServiceSettings()):  # type: ignore[call-arg]
            yield

    # redirect_slashes=False: Flask answers /orders/ with 404, so must we (not a 307). No
    # /docs, /redoc or /openapi.json: the contract's routes only, the same as Flask's.
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(routes)
    app.add_middleware(CostMiddleware)
    app.add_middleware(RequestGuard)  # added last, so outermost

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        error = http_error(exc.status_code, request.method, request.url.path)
        if exc.status_code == 405:
            return _error_response(error, {"Allow": _allowed_methods(app, request.url.path)})
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error_response(ApiError(422, "invalid_request", str(exc.errors()[0]["msg"])))

    app.add_exception_handler(SQLAlchemyError, database_error_response)
    app.add_exception_handler(OSError, database_error_response)
    return app


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """fastapi_async (and fastapi_psycopg: DB_ASYNC_DRIVER=psycopg): every endpoint through
    the async ORM."""
    return make_app("loadlab fastapi_async", router, orm_session, settings)
