"""FastAPI app factory: `uvicorn --factory services.fastapi_async.app:create_app`.

The engine is made in the lifespan, per worker process, never at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import edge, instrument
from services.common.errors import ApiError, database_error, http_error
from services.common.settings import ServiceSettings
from services.fastapi_async.db import make_engine
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
        token = instrument.start()

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


def _allowed_methods(path: str) -> str:
    """Every method some route takes at this path. Starlette's own 405 names only the first
    route that matched the path (GET /orders and POST /orders are two routes)."""
    methods: set[str] = set()
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """A FastAPI app whose engine lives as long as its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or ServiceSettings()  # type: ignore[call-arg]
        engine = make_engine(resolved)
        app.state.make_session = async_sessionmaker(
            engine, expire_on_commit=resolved.expire_on_commit
        )
        yield
        await engine.dispose()

    # redirect_slashes=False: Flask answers /orders/ with 404, so must we (not a 307). No
    # /docs, /redoc or /openapi.json: the contract's routes only, the same as Flask's.
    app = FastAPI(
        title="loadlab fastapi_async",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(router)
    app.add_middleware(CostMiddleware)
    app.add_middleware(RequestGuard)  # added last, so outermost

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        error = http_error(exc.status_code, request.method, request.url.path)
        if exc.status_code == 405:
            return _error_response(error, {"Allow": _allowed_methods(request.url.path)})
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error_response(ApiError(422, "invalid_request", str(exc.errors()[0]["msg"])))

    # Database classes, not Exception: Starlette routes an Exception handler to its outermost
    # middleware, which logs a traceback for every 503 even when the handler answered.
    async def _database_error(request: Request, exc: Exception) -> Response:
        error = database_error(exc)
        if error is None:
            raise exc  # a bug: let Starlette log it and answer 500
        return _error_response(error)

    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)

    return app
