"""The two services under test: how each is started, and the wait until it is healthy."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.settings import StackSettings
from loadlab.stack import procs
from loadlab.stack.procs import Component


@dataclass(frozen=True)
class Variant:
    """One stack, declared once as data: its name in reports, its label, the setting that
    holds its port, and its server's command line (after `python -m`), with {host}, {port},
    {workers} and {root} filled in when it starts. The compose file runs the same command (a
    test checks). Every service reads the same environment (services/common/settings.py)."""

    name: str
    label: str
    port_setting: str
    server: tuple[str, ...]

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


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "flask_sync",
            "Flask + sync SQLAlchemy (psycopg2, gunicorn)",
            "flask_port",
            # gunicorn_conf.py reads WEB_WORKERS and WEB_THREADS from the environment.
            (
                "gunicorn",
                "-c",
                "{root}/services/flask_sync/gunicorn_conf.py",
                "--bind",
                "{host}:{port}",
                "services.flask_sync.app:create_app()",
            ),
        ),
        Variant(
            "fastapi_async",
            "FastAPI + async SQLAlchemy (asyncpg, uvicorn)",
            "fastapi_port",
            (
                "uvicorn",
                "--factory",
                "services.fastapi_async.app:create_app",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--workers",
                "{workers}",
                # httptools with the contract's JSON for requests it cannot parse; no
                # WebSocket (an Upgrade header is served as plain HTTP, as gunicorn does).
                "--http",
                "services.fastapi_async.protocol:JsonErrorProtocol",
                "--ws",
                "none",
                "--no-access-log",
                "--log-level",
                "warning",
            ),
        ),
    )
}


def start(variant: Variant, settings: StackSettings, database_url: str) -> Component:
    port = getattr(settings, variant.port_setting)
    env = {
        **settings.service_env(),
        "DATABASE_URL": database_url,
        "SERVICE_NAME": variant.name,
        "PYTHONPATH": str(ROOT),
    }
    return procs.start(
        variant.name,
        variant.argv(port, settings.web_workers),
        url=f"http://127.0.0.1:{port}",
        log=settings.state_dir / "logs" / f"{variant.name}.log",
        env=env,
        cwd=ROOT,
    )


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
