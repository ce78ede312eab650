"""`loadlab verify`: the same request sequence against both services must give the same
status codes, the same JSON and the same number of SQL statements per request.

The data is reset to the seed before each service, so both start from identical rows; only
timestamps taken from the clock (`last_seen`, `created_at`) may differ, and those are
compared as "both a valid timestamp".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from loadlab.errors import GateFailed, UsageError
from loadlab.settings import StackSettings
from loadlab.stack import procs, seed, services
from services.common import instrument

CLOCK_FIELDS = {"last_seen", "created_at"}
ORDER: dict[str, Any] = {
    "customer_id": 3,
    "items": [{"product_id": 4, "quantity": 2}, {"product_id": 9, "quantity": 1}],
}


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: bytes | None = None
    sql: int | None = None  # statements this request must cost, where the contract fixes it


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


SEQUENCE: tuple[Step, ...] = (
    Step("GET", "/healthz", sql=1),
    Step("GET", "/users/1", sql=1),
    Step("GET", "/users/42", sql=1),
    Step("POST", "/users/1/visit", sql=2),
    Step("POST", "/users/1/visit", sql=2),
    Step("GET", "/users/1", sql=1),
    Step("GET", "/users/999999999", sql=1),
    Step("POST", "/users/999999999/visit", sql=1),
    *(
        Step("GET", f"/users/{bad}", sql=0)
        for bad in ("0", "-1", "abc", "1.5", "99999999999999999999", "%20")
    ),
    Step("POST", "/users/abc/visit", sql=0),
    Step("GET", "/orders/1", sql=1),
    Step("GET", "/orders/5000", sql=1),
    Step("GET", "/orders/999999999", sql=1),
    Step("GET", "/orders/abc", sql=0),
    Step("GET", "/orders", sql=1),
    Step("GET", "/orders?limit=5", sql=1),
    Step("GET", "/orders?status=paid&limit=3", sql=1),
    Step("GET", "/orders?after_id=9998&limit=5", sql=1),
    *(
        Step("GET", f"/orders?{bad}", sql=0)
        for bad in (
            "limit=0",
            "limit=101",
            "limit=x",
            "after_id=-1",
            "status=lost",
            "limit=1&limit=2",
        )
    ),
    Step("POST", "/orders", _body(ORDER), sql=4),
    Step("GET", "/orders/10001", sql=1),
    Step("POST", "/orders", _body({**ORDER, "customer_id": 999999999}), sql=2),
    Step(
        "POST", "/orders", _body({**ORDER, "items": [{"product_id": 999999, "quantity": 1}]}), sql=2
    ),
    *(
        Step("POST", "/orders", bad, sql=0)
        for bad in (
            b"",
            b"{",
            b"[]",
            b"null",
            _body({"customer_id": "3", "items": ORDER["items"]}),
            _body({"customer_id": 3, "items": []}),
            _body({"customer_id": 3, "items": [{"product_id": 4, "quantity": 0}]}),
            _body({"customer_id": 3, "items": [{"product_id": 4, "quantity": True}]}),
            _body({**ORDER, "items": ORDER["items"] * 2}),
            _body({**ORDER, "extra": 1}),
            _body({**ORDER, "status": "lost"}),
            b"x" * (70 * 1024),
        )
    ),
    Step("GET", "/nope", sql=0),
    Step("GET", "/orders/", sql=0),
    Step("DELETE", "/users/1", sql=0),
)


@dataclass
class Answer:
    status: int
    body: Any
    sql: int | None
    held: int | None = None  # pooled connections still held when the response started


def _send(base: str, step: Step) -> Answer:
    # A fresh connection per request: a server may close one after refusing a body unread.
    try:
        response = httpx.request(step.method, base + step.path, content=step.body, timeout=30)
    except httpx.HTTPError as exc:
        return Answer(0, {"<no answer>": f"{type(exc).__name__}: {exc}"}, None)
    try:
        body = response.json()
    except ValueError:
        body = {"<not json>": response.text[:200]}
    sql, held = (response.headers.get(h) for h in (instrument.SQL_HEADER, instrument.HELD_HEADER))
    return Answer(
        response.status_code,
        body,
        int(sql) if sql is not None else None,
        int(held) if held is not None else None,
    )


def _is_timestamp(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def normalise(value: Any) -> Any:
    """Replace clock-taken timestamps by a marker, so two runs at different times compare."""
    if isinstance(value, dict):
        return {
            k: ("<timestamp>" if k in CLOCK_FIELDS and _is_timestamp(v) else normalise(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def problems(step: Step, a: Answer, b: Answer, names: tuple[str, str]) -> list[str]:
    """Every way the two answers differ from each other or from the contract."""
    found = []
    if a.status != b.status:
        found.append(f"status {names[0]}={a.status} {names[1]}={b.status}")
    if normalise(a.body) != normalise(b.body):
        found.append(
            f"JSON differs:\n      {names[0]}: {json.dumps(a.body)[:300]}"
            f"\n      {names[1]}: {json.dumps(b.body)[:300]}"
        )
    if a.sql != b.sql:
        found.append(f"SQL statements {names[0]}={a.sql} {names[1]}={b.sql}")
    elif step.sql is not None and a.sql != step.sql:
        found.append(f"SQL statements {a.sql}, the contract says {step.sql}")
    for name, answer in zip(names, (a, b), strict=True):
        if answer.held != 0:
            found.append(
                f"{name} still held {answer.held} database connection(s) when it answered "
                "(the contract: give it back before answering)"
            )
        if answer.status >= 500 or answer.status == 0:
            found.append(f"{name} answered {answer.status or 'nothing'} (a 500 is a bug)")
        if answer.status >= 400 and set(answer.body) != {"error", "detail"}:
            found.append(f"{name} error body is not {{error, detail}}")
    return found


def compare(
    urls: dict[str, str], database_url: str, scale: float
) -> list[tuple[Step, Answer, list[str]]]:
    """Run SEQUENCE against each service (data reset before each) and pair the answers."""
    answers: dict[str, list[Answer]] = {}
    for name, base in urls.items():
        seed.reset(database_url, seed.Scale.of(scale))
        answers[name] = [_send(base, step) for step in SEQUENCE]
    seed.reset(database_url, seed.Scale.of(scale))
    names = tuple(urls)
    assert len(names) == 2
    return [
        (step, a, problems(step, a, b, (names[0], names[1])))
        for step, a, b in zip(SEQUENCE, answers[names[0]], answers[names[1]], strict=True)
    ]


def run(settings: StackSettings, quiet: bool = False) -> int:
    """The `verify` command: print one line per request (only the differing ones when quiet),
    exit 1 with a diff on any mismatch."""
    state = procs.load_state(settings.state_dir)
    if state is None:
        raise UsageError("nothing is running: start the stack with `python -m loadlab up`")
    urls = {}
    for name in services.VARIANTS:
        component = state.get(name)
        if component is None or not services.healthy(component.url):
            raise UsageError(f"{name} is not healthy: see `python -m loadlab status`")
        urls[name] = component.url
    results = compare(urls, state.direct_database_url, state.scale)
    failed = 0
    for step, answer, found in results:
        mark = "FAIL" if found else "ok"
        failed += bool(found)
        if quiet and not found:
            continue
        what = step.path + (f" {step.body[:24]!r}" if step.body is not None else "")
        print(f"{mark:<4} {step.method:<6} {what[:60]:<60} {answer.status}  sql={answer.sql}")
        for problem in found:
            print(f"     {problem}")
    print(f"verify: {len(results) - failed} of {len(results)} requests identical in both services")
    if failed:
        raise GateFailed(f"{failed} requests differ between the services (see above)")
    return 0
