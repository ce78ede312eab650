"""The stacks under test, declared once as data: how each is started, with which settings,
and the wait until it is healthy. Adding a stack is one entry in VARIANTS (and, when it runs
code of its own, one folder under services/); `up`, `run`, `verify`, `ui`, `tune`, the
reports and the compose check all read this registry."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import httpx

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.settings import StackSettings
from loadlab.stack import procs
from loadlab.stack.procs import Component


@dataclass(frozen=True)
class Knob:
    """A setting that changes how a stack performs. Its server reads it from `env`
    (services/common/settings.py); `tune` tries `candidates`."""

    name: str
    env: str
    help: str
    low: int
    high: int
    candidates: tuple[int, ...]


KNOBS = {
    k.name: k
    for k in (
        Knob("web_workers", "WEB_WORKERS", "server worker processes", 1, 32, (1, 2, 3, 4)),
        Knob(
            "web_threads",
            "WEB_THREADS",
            "threads per worker process: gunicorn's, or Starlette's thread pool for def handlers",
            1,
            256,
            (8, 15, 30, 60),
        ),
        Knob(
            "web_connections",
            "WEB_CONNECTIONS",
            "connections (greenlets) per gevent worker",
            1,
            10000,
            (50, 200, 1000),
        ),
        Knob(
            "db_pool_size", "DB_POOL_SIZE", "pooled connections per worker", 1, 200, (5, 10, 25, 50)
        ),
        Knob(
            "db_max_overflow",
            "DB_MAX_OVERFLOW",
            "connections beyond the pool, per worker",
            0,
            200,
            (0, 5, 20),
        ),
        Knob(
            "fair_admission",
            "DB_FAIR_ADMISSION",
            "a FIFO semaphore sized to the pool in front of it: 1 on, 0 off",
            0,
            1,
            (0, 1),
        ),
        Knob(
            "nested_session",
            "DB_NESTED_SESSION",
            "the article's pool deadlock on purpose: a second session inside the visit's "
            "(1 on, 0 off); never tuned",
            0,
            1,
            (0,),
        ),
        Knob(
            "db_read_pool_size",
            "DB_READ_POOL_SIZE",
            "raw asyncpg connections for the read endpoints, per worker",
            1,
            200,
            (5, 10, 25, 50),
        ),
    )
}


@dataclass(frozen=True)
class Variant:
    """One stack: its name in reports, its label, its default port, its server's command
    line (after `python -m`, with {host}, {port}, {workers} and {root} filled in when it
    starts; the compose file runs the same, a test checks), the fixed environment that makes
    it this stack, and its knobs with their default values (its "default" profile)."""

    name: str
    label: str
    port: int
    server: tuple[str, ...]
    defaults: Mapping[str, int]
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Its PostgreSQL driver; asyncpg's prepared statements need settings behind PgBouncer.
    driver: str = "psycopg2"
    # Its HTTP server refuses what its parser cannot read before any app hook, with the
    # status and no body (Granian): `verify` shows those answers as the server's own.
    bare_refusals: bool = False

    def argv(
        self,
        port: int,
        workers: int,
        host: str = "127.0.0.1",
        python: str = sys.executable,
        root: Path = ROOT,
    ) -> list[str]:
        """The server's command line."""
        fill = {"host": host, "port": port, "workers": workers, "root": root}
        return [python, "-m", *(part.format(**fill) for part in self.server)]

    def env(self, knobs: Mapping[str, int]) -> dict[str, str]:
        """What the server reads: its fixed environment and its knob values."""
        return {**self.environment, **{KNOBS[k].env: str(v) for k, v in knobs.items()}}

    def knobs(self, *layers: Mapping[str, int]) -> dict[str, int]:
        """Its knob values: the defaults, overridden by each layer in turn (a profile, then
        the flags given); a layer's knobs this stack does not read are ignored."""
        values = dict(self.defaults)
        for layer in layers:
            values.update({k: v for k, v in layer.items() if k in values})
        for name, value in values.items():
            knob = KNOBS[name]
            if not knob.low <= value <= knob.high:
                raise UsageError(
                    f"{self.name}: {name} = {value} is outside {knob.low}..{knob.high}"
                )
        return values


# uvicorn with httptools and the contract's JSON for requests it cannot parse; no WebSocket
# (an Upgrade header is served as plain HTTP, as gunicorn does).
def _uvicorn(app: str) -> tuple[str, ...]:
    return (
        "uvicorn",
        "--factory",
        app,
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--workers",
        "{workers}",
        "--http",
        "services.fastapi_async.protocol:JsonErrorProtocol",
        "--ws",
        "none",
        "--no-access-log",
        "--log-level",
        "warning",
    )


_POOL = {"web_workers": 2, "db_pool_size": 10, "db_max_overflow": 5, "nested_session": 0}
# Fair admission first: `tune` tries knobs in this order, and it decides the tail.
_ASYNC = {"fair_admission": 0, **_POOL}

VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "flask_sync",
            "Flask + sync SQLAlchemy (psycopg2, gunicorn)",
            8001,
            # gunicorn_conf.py reads WEB_WORKERS and WEB_THREADS from the environment.
            (
                "gunicorn",
                "-c",
                "{root}/services/flask_sync/gunicorn_conf.py",
                "--bind",
                "{host}:{port}",
                "services.flask_sync.app:create_app()",
            ),
            # Threads before the pool: with 15 threads a worker never holds more than 15
            # connections, so the pool's size matters only up to the threads.
            {
                "web_workers": 2,
                "web_threads": 15,
                "db_pool_size": 10,
                "db_max_overflow": 5,
                "nested_session": 0,
            },
        ),
        Variant(
            "fastapi_async",
            "FastAPI + async SQLAlchemy (asyncpg, uvicorn)",
            8002,
            _uvicorn("services.fastapi_async.app:create_app"),
            _ASYNC,
            {"DB_ASYNC_DRIVER": "asyncpg"},
            driver="asyncpg",
        ),
        # The same code as fastapi_async on psycopg 3's async driver: a driver is a setting.
        Variant(
            "fastapi_psycopg",
            "FastAPI + async SQLAlchemy (psycopg 3, uvicorn)",
            8003,
            _uvicorn("services.fastapi_async.app:create_app"),
            _ASYNC,
            {"DB_ASYNC_DRIVER": "psycopg"},
            driver="psycopg",
        ),
        Variant(
            "fastapi_hybrid",
            "FastAPI: async ORM writes, raw asyncpg reads (uvicorn)",
            8004,
            _uvicorn("services.fastapi_hybrid.app:create_app"),
            {**_ASYNC, "db_read_pool_size": 10},
            driver="asyncpg",
        ),
    )
}
# The two choices teams weigh beside the duel: FastAPI without an async rewrite of the data
# layer, and Flask made concurrent by gevent instead.
VARIANTS = {
    **VARIANTS,
    **{
        v.name: v
        for v in (
            Variant(
                "fastapi_sync",
                "FastAPI, def handlers on sync SQLAlchemy (psycopg2, uvicorn, thread pool)",
                8005,
                _uvicorn("services.fastapi_sync.app:create_app"),
                # Threads as Flask's: each holds at most one connection, so 15 per worker
                # never wait for the pool (10 + 5).
                {**_POOL, "web_threads": 15},
            ),
            Variant(
                "flask_gevent",
                "Flask + sync SQLAlchemy on gevent (psycopg2 via psycogreen, gunicorn)",
                8006,
                (
                    "gunicorn",
                    "-c",
                    "{root}/services/flask_gevent/gunicorn_conf.py",
                    "--bind",
                    "{host}:{port}",
                    "services.flask_sync.app:create_app()",
                ),
                # gunicorn's default worker_connections: the pool, not the greenlets, limits
                # the queries in flight.
                {**_POOL, "web_connections": 1000},
            ),
        )
    },
}
# The server teams try next for throughput: fastapi_async's code under Granian (a Rust HTTP
# server) instead of uvicorn. A variant, not a knob: the server is the command line, and a
# variant runs beside uvicorn's in one report. HTTP/1 only and no WebSocket, as uvicorn runs
# here; a killed worker is respawned (uvicorn's and gunicorn's masters do it too). Granian's
# parser answers the requests it cannot parse itself, with an empty 400 (no app hook reaches
# it), and it has no hook where a request is read, so its Server-Timing has no `queue`.
VARIANTS["fastapi_granian"] = Variant(
    "fastapi_granian",
    "FastAPI + async SQLAlchemy (asyncpg, Granian)",
    8007,
    (
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "services.fastapi_async.app:create_app",
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--workers",
        "{workers}",
        "--http",
        "1",
        "--no-ws",
        "--respawn-failed-workers",
        "--respawn-interval",
        "0.5",
        "--log-level",
        "warning",
    ),
    _ASYNC,
    {"DB_ASYNC_DRIVER": "asyncpg"},
    driver="asyncpg",
    bare_refusals=True,
)
# What `up`, `run` and `loadtest` take when no --variants is given: the article's duel.
DUEL = ("flask_sync", "fastapi_async")


def names(spec: str | None) -> list[str]:
    """--variants as a list: comma-separated names, "all", or (None) the duel; each known,
    none twice."""
    if spec is None:
        return list(DUEL)
    if spec.strip() == "all":
        return list(VARIANTS)
    chosen = [n.strip() for n in spec.split(",")]
    if not [n for n in chosen if n]:
        raise UsageError(f"--variants names no variant: choose from {', '.join(VARIANTS)}, all")
    unknown = [n for n in chosen if n not in VARIANTS]
    if unknown:
        raise UsageError(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}, all")
    twice = sorted({n for n in chosen if chosen.count(n) > 1})
    if twice:
        raise UsageError(f"--variants names {twice[0]} twice: each variant runs once per round")
    return chosen


@dataclass(frozen=True)
class Setup:
    """What a service runs with: the profile's name and the knob values after flags."""

    profile: str
    knobs: Mapping[str, int]

    def as_dict(self) -> dict[str, object]:
        return {"profile": self.profile, "knobs": dict(self.knobs)}


def start(
    variant: Variant,
    settings: StackSettings,
    database_url: str,
    setup: Setup,
    copy: tuple[str, int, Mapping[str, str]] | None = None,
) -> Component:
    """Start the stack's service; or, with `copy` (name, port, environment), another copy of
    it under that name, e.g. through PgBouncer beside the direct one (side_by_side)."""
    name, port, extra = copy or (variant.name, settings.port_of(variant.name, variant.port), {})
    env = {
        **settings.service_env(),
        **variant.env(setup.knobs),
        "DATABASE_URL": database_url,
        "SERVICE_NAME": name,
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    component = procs.start(
        name,
        variant.argv(port, setup.knobs["web_workers"]),
        url=f"http://127.0.0.1:{port}",
        log=settings.state_dir / "logs" / f"{name}.log",
        env=env,
        cwd=ROOT,
    )
    component.setup = setup.as_dict()
    return component


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def becomes_healthy(url: str, timeout: float) -> bool:
    """Whether GET /healthz answers 200 within `timeout` seconds."""
    return procs.wait_until(lambda: healthy(url, timeout=1.0), timeout, poll=0.2)


def wait_healthy(component: Component, timeout: float) -> None:
    """Until GET /healthz answers 200, or the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tail := procs.exited_early(component):
            raise UsageError(f"{component.name} exited while starting: {tail}")
        if healthy(component.url, timeout=1.0):
            return
        time.sleep(0.2)
    raise UsageError(
        f"{component.name} did not answer /healthz within {timeout:.0f}s: see {component.log}"
    )
