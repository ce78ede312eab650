"""One real stack for the whole test session: PostgreSQL, gunicorn (Flask) and uvicorn
(FastAPI), started once; tests that write reset the data to the seed first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadlab.settings import StackSettings
from loadlab.stack import lifecycle, seed
from loadlab.stack.procs import free_port
from loadlab.stack.services import DUEL, VARIANTS

TEST_SCALE = 0.2  # 2,000 users and orders: seeds in well under a second


@pytest.fixture
def own_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state folder for a test that runs `up` itself. Purged afterwards even when the test
    fails, since the cluster may live outside tmp_path (/tmp/loadlab-<hash>)."""
    state_dir = tmp_path / "state"
    yield state_dir
    lifecycle.down(StackSettings(state_dir=state_dir), purge=True)


@dataclass(frozen=True)
class Stack:
    settings: StackSettings
    urls: dict[str, str]  # variant name -> base URL
    database_url: str

    def reset(self) -> None:
        seed.reset(self.database_url, seed.Scale.of(TEST_SCALE))


def stack_settings(state_dir: Path, **overrides: object) -> StackSettings:
    values: dict[str, object] = {
        "state_dir": state_dir,
        "pg_port": free_port(),
        "pgbouncer_port": free_port(),
        "service_ports": {name: free_port() for name in VARIANTS},
        "variants": "all",
        "scale": TEST_SCALE,
        "web_workers": 1,
    }
    values.update(overrides)
    return StackSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = stack_settings(tmp_path_factory.mktemp("stack"))
    try:
        state, _ = lifecycle.up(settings)
        urls = {c.name: c.url for c in state.components if c.url.startswith("http")}
        yield Stack(settings, urls, state.direct_database_url)
    finally:
        lifecycle.down(settings, purge=True)


@pytest.fixture(scope="session")
def bouncer_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    """A second stack, behind PgBouncer, two web workers per service: for the fault runs (the
    duel's stacks, the two sync-code ones beside them and Granian's) and the PgBouncer
    side-by-side run."""
    settings = stack_settings(
        tmp_path_factory.mktemp("bouncer"),
        pgbouncer=True,
        web_workers=2,
        variants="flask_sync,fastapi_async,fastapi_sync,flask_gevent,fastapi_granian",
    )
    try:
        lifecycle.up(settings)
        yield settings
    finally:
        lifecycle.down(settings, purge=True)


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    """The shared stack with its data back at the seed."""
    stack.reset()
    return stack


@pytest.fixture(scope="session")
def report(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short real load (20 users, 2 s warm-up + 6 s, both services) and its report."""
    from loadlab import duel
    from loadlab.load.runner import LoadPlan

    plan = LoadPlan(
        scenario="select_update", users=20, spawn_rate=20, duration=6, warmup=2, scale=TEST_SCALE
    )
    out = tmp_path_factory.mktemp("reports") / "short-run"
    code, index = duel.run(stack.settings, plan, list(DUEL), None, out, live=False)
    assert code == 0
    assert index == out / "index.html"
    return out


@pytest.fixture(params=list(VARIANTS))
def service_url(request: pytest.FixtureRequest, stack: Stack) -> str:
    """Each test using this runs once against each stack of the registry."""
    return stack.urls[request.param]
