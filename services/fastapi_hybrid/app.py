"""FastAPI app factory: `uvicorn --factory services.fastapi_hybrid.app:create_app`.

The article's hybrid: the write endpoints through the async ORM (fastapi_async's own routes),
the read endpoints through raw asyncpg on a pool of their own (reads.py). Both are made in
the lifespan, per worker process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import APIRouter, FastAPI

from services.common.settings import ServiceSettings
from services.fastapi_async.app import database_error_response, make_app, orm_session
from services.fastapi_async.routes import writes
from services.fastapi_hybrid.reads import open_pool, reads


@asynccontextmanager
async def _orm_and_read_pool(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[None]:
    async with orm_session(app, settings):
        app.state.read_pool = await open_pool(settings)
        app.state.pool_timeout = settings.db_pool_timeout
        try:
            yield
        finally:
            await app.state.read_pool.close()


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    routes = APIRouter()
    routes.include_router(reads)
    routes.include_router(writes)
    app = make_app("loadlab fastapi_hybrid", routes, _orm_and_read_pool, settings)
    # asyncpg's own errors, which SQLAlchemy does not wrap here: 503 when the database is
    # unavailable, as the ORM path answers.
    app.add_exception_handler(asyncpg.PostgresError, database_error_response)
    app.add_exception_handler(asyncpg.InterfaceError, database_error_response)
    return app
