"""200 concurrent visits on one user must add exactly 200: no lost updates."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Stack

CONCURRENT = 200


async def _visit_all(url: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.post(url) for _ in range(CONCURRENT)))


def test_concurrent_visits_on_one_user_are_all_applied(fresh: Stack, service_url: str) -> None:
    before = httpx.get(f"{service_url}/users/3").json()["visits"]
    responses = asyncio.run(_visit_all(f"{service_url}/users/3/visit"))
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    seen = sorted(r.json()["visits"] for r in responses)
    # Each request saw its own increment: exactly before+1 .. before+200, no repeats.
    assert seen == list(range(before + 1, before + CONCURRENT + 1))
    assert httpx.get(f"{service_url}/users/3").json()["visits"] == before + CONCURRENT
