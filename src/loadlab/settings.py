"""Typed settings of the harness: defaults, then LOADLAB_* environment, then CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_serializer, field_validator
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
    # A service's port when not its registry default (services.VARIANTS), by variant name.
    service_ports: dict[str, int] = Field(default_factory=dict)
    # An existing PostgreSQL to use instead of starting one (its loadlab tables are reset;
    # postgres.apply_schema refuses a database holding tables loadlab did not create).
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("LOADLAB_DATABASE_URL", "DATABASE_URL")
    )
    scale: float = Field(1.0, gt=0, le=100)
    # Which stacks `up` starts: comma-separated names or "all"; None: the duel's two.
    variants: str | None = None
    # The profile the services start with (profiles/<variant>.<name>.json; "default" is the
    # registry's values), then these knobs, when given, for every stack that reads them.
    profile: str | None = None
    profiles_dir: Path = ROOT / "profiles"
    web_workers: int | None = Field(None, ge=1, le=32)
    web_threads: int | None = Field(None, ge=1, le=256)
    db_pool_size: int | None = Field(None, ge=1, le=200)
    db_max_overflow: int | None = Field(None, ge=0, le=200)
    db_pool_timeout: float = Field(30.0, gt=0)
    ready_timeout: float = Field(60.0, gt=0)
    # Where the generator and the stack run (stack/placement.py): shared, split or
    # priority; `cpus` ("generator=LIST stack=LIST") sets a split's CPUs.
    isolate: str | None = None
    cpus: str | None = None

    @field_validator("service_ports")
    @classmethod
    def _ports_in_range(cls, ports: dict[str, int]) -> dict[str, int]:
        for name, port in ports.items():
            if not 1024 <= port <= 65535:
                raise ValueError(f"{name}: port {port} is outside 1024..65535")
        return ports

    @field_serializer("database_url")
    def _without_password(self, url: str | None) -> str | None:
        # Settings are written into every report: never with a password.
        from loadlab.stack.credentials import redact

        return None if url is None else redact(url)

    def knob_flags(self) -> dict[str, int]:
        """The knobs given as flags or LOADLAB_* variables (they beat any profile)."""
        given = {
            "web_workers": self.web_workers,
            "web_threads": self.web_threads,
            "db_pool_size": self.db_pool_size,
            "db_max_overflow": self.db_max_overflow,
        }
        return {k: v for k, v in given.items() if v is not None}

    def port_of(self, variant: str, default: int) -> int:
        return self.service_ports.get(variant, default)

    def service_env(self) -> dict[str, str]:
        """The environment every service reads the same way (services/common/settings.py);
        each stack adds its own knobs (services.Variant.env)."""
        return {
            "DB_POOL_TIMEOUT": f"{self.db_pool_timeout:g}",
            "DB_PGBOUNCER_SAFE": "1" if self.pgbouncer else "0",
        }
