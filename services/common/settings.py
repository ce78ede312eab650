"""Settings both services read from the same environment names."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """One service's settings. `DATABASE_URL` is a plain postgresql:// URL; each service
    swaps in its own driver, so both always point at the same database."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(alias="DATABASE_URL")
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE", ge=1)
    db_max_overflow: int = Field(5, alias="DB_MAX_OVERFLOW", ge=0)
    db_pool_timeout: float = Field(30.0, alias="DB_POOL_TIMEOUT", gt=0)
    web_workers: int = Field(2, alias="WEB_WORKERS", ge=1)
    web_threads: int = Field(15, alias="WEB_THREADS", ge=1)
    # flask_gevent's greenlets per worker (its gunicorn_conf reads it, as flask_sync's reads
    # WEB_THREADS); declared here so that every service setting has one home.
    web_connections: int = Field(1000, alias="WEB_CONNECTIONS", ge=1)
    # The async stacks' SQLAlchemy driver: asyncpg (fastapi_async) or psycopg (psycopg 3,
    # fastapi_psycopg); the same code runs on either.
    db_async_driver: Literal["asyncpg", "psycopg"] = Field("asyncpg", alias="DB_ASYNC_DRIVER")
    # The async stacks: a FIFO semaphore sized to the pool (pool size + overflow) in front of
    # it, so a freed connection goes to the request that waited longest; the asyncio queue
    # inside SQLAlchemy's async pool lets a newcomer take it first
    # (tests/services/test_pool_fairness.py).
    fair_admission: bool = Field(False, alias="DB_FAIR_ADMISSION")
    # fastapi_hybrid's raw asyncpg pool for its read endpoints, per worker.
    db_read_pool_size: int = Field(10, alias="DB_READ_POOL_SIZE", ge=1)
    # Behind PgBouncer in transaction mode (1.18 has no prepared-statement support there),
    # asyncpg must not cache named prepared statements across transactions.
    pgbouncer_safe: bool = Field(False, alias="DB_PGBOUNCER_SAFE")
    expire_on_commit: bool = Field(False, alias="DB_EXPIRE_ON_COMMIT")
    # The article's pool deadlock, on purpose: POST /users/{id}/visit, while its session holds
    # a connection (and the row lock), opens a second session for one more query, as a helper
    # with a session of its own would. With every connection held by such a request, each
    # waits for a second one until the pool's timeout. Off (0) in every shipped profile but
    # profiles/*.nested-session.json.
    nested_session: bool = Field(False, alias="DB_NESTED_SESSION")
    # The application_name of its connections, so PostgreSQL (and loadlab's connection
    # count) can tell one service's connections from the other's.
    service_name: str = Field("loadlab", alias="SERVICE_NAME")

    @field_validator("database_url")
    @classmethod
    def _plain_postgres(cls, url: str) -> str:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must be a plain postgresql:// URL")
        return url

    def url_for(self, driver: str) -> str:
        """The database URL with the given SQLAlchemy driver, e.g. 'psycopg2'."""
        rest = self.database_url.split("://", 1)[1]
        return f"postgresql+{driver}://{rest}"

    def engine_kwargs(self) -> dict[str, object]:
        """Pool arguments, identical for the sync and the async engine."""
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
            "pool_pre_ping": False,
        }
