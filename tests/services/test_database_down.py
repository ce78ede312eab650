"""With the database unreachable, both real servers answer 503 JSON, never 500."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from loadlab import ROOT
from loadlab.stack.services import VARIANTS
from tests.conftest import free_port


# One server per stack for the module, not per test: every request after the first also
# shows that a failed connection leaves the service answering (42 starts took 66 s).
@pytest.fixture(scope="module", params=sorted(VARIANTS))
def orphan_service(request: pytest.FixtureRequest) -> Iterator[str]:
    """A real gunicorn or uvicorn whose DATABASE_URL points at a port nobody listens on."""
    port = free_port()
    variant = VARIANTS[request.param]
    env = {
        **os.environ,
        **variant.env(variant.knobs({"web_workers": 1})),
        "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        variant.argv(port, 1),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/nothing", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/users/1"),
        ("POST", "/users/1/visit"),
        ("GET", "/orders/1"),
        ("GET", "/orders"),
    ],
)
def test_unreachable_database_gives_503(orphan_service: str, method: str, path: str) -> None:
    response = httpx.request(method, orphan_service + path, timeout=30)
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"


def test_bad_input_is_still_422_without_a_database(orphan_service: str) -> None:
    assert httpx.get(f"{orphan_service}/users/abc").status_code == 422
