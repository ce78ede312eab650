"""Typed settings of the harness: defaults, then LOADLAB_* environment, then CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_serializer
from pydantic_settings import BaseSettings, SettingsConfigDict

from loadlab import ROOT


class StackSettings(BaseSettings):
    """What `loadlab up` starts, and where."""

    model_config = SettingsConfigDict(env_prefix="LOADLAB_", extra="ignore", populate_by_name=True)

    state_dir: Path = ROOT / ".loadlab"
    pg_bin: Path | None = None  # None: the newest /usr/lib/postgresql/*/bin, then PATH
    # Default ports sit below Linux's ephemeral range (32768-60999), where an outgoing
    # connection could hold the port for a moment and make the server's bind fail.
    pg_port: int = Field(15432, ge=1024, le=65535)
    pgbouncer: bool = False
    pgbouncer_port: int = Field(16432, ge=1024, le=65535)
    flask_port: int = Field(8001, ge=1024, le=65535)
    fastapi_port: int = Field(8002, ge=1024, le=65535)
    # An existing PostgreSQL to use instead of starting one (its loadlab tables are reset;
    # postgres.apply_schema refuses a database holding tables loadlab did not create).
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("LOADLAB_DATABASE_URL", "DATABASE_URL")
    )
    scale: float = Field(1.0, gt=0, le=100)
    web_workers: int = Field(2, ge=1, le=32)
    web_threads: int = Field(15, ge=1, le=256)
    db_pool_size: int = Field(10, ge=1, le=200)
    db_max_overflow: int = Field(5, ge=0, le=200)
    db_pool_timeout: float = Field(30.0, gt=0)
    ready_timeout: float = Field(60.0, gt=0)

    @field_serializer("database_url")
    def _without_password(self, url: str | None) -> str | None:
        # Settings are written into every report: never with a password.
        from loadlab.stack.credentials import redact

        return None if url is None else redact(url)

    def service_env(self) -> dict[str, str]:
        """The environment names both services read (services/common/settings.py)."""
        return {
            "WEB_WORKERS": str(self.web_workers),
            "WEB_THREADS": str(self.web_threads),
            "DB_POOL_SIZE": str(self.db_pool_size),
            "DB_MAX_OVERFLOW": str(self.db_max_overflow),
            "DB_POOL_TIMEOUT": f"{self.db_pool_timeout:g}",
            "DB_PGBOUNCER_SAFE": "1" if self.pgbouncer else "0",
        }
