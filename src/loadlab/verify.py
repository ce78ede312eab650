"""`loadlab verify`: the same request sequence against both services must give the same
status codes, the same JSON and the same number of SQL statements per request.

The data is reset to the seed before each service, so both start from identical rows; only
timestamps taken from the clock (`last_seen`, `created_at`) may differ, and those are
compared as "both a valid timestamp".
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from loadlab.errors import GateFailed, UsageError
from loadlab.settings import StackSettings
from loadlab.stack import postgres, procs, seed, services
from services.common import instrument

CLOCK_FIELDS = {"last_seen", "created_at"}
ORDER: dict[str, Any] = {
    "customer_id": 3,
    "items": [{"product_id": 4, "quantity": 2}, {"product_id": 9, "quantity": 1}],
}


@dataclass(frozen=True)
class Step:
    """One request: sent with httpx, or as `raw` bytes on a socket when httpx would not send
    it (a malformed request, a lower-case method). `sql` is what the request must cost; a
    refusal before the app carries no statement header, which counts as 0."""

    method: str
    path: str
    body: bytes | None = None
    sql: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


CONTRACT_SEQUENCE: tuple[Step, ...] = (
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


def _raw(request_line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    return b"\r\n".join([request_line, b"Host: verify", *headers, b"Connection: close", b"", body])


def _malformed(name: str, data: bytes) -> Step:
    return Step("RAW", name, raw=data, sql=0)


# What users can send besides the contract's own requests (issue: "verify checks what users
# can send"); the answers are fixed in services/common/edge.py and docs/architecture.md's contract.
EDGE_SEQUENCE: tuple[Step, ...] = (
    *(Step("HEAD", path, sql=1) for path in ("/healthz", "/users/42", "/orders/1", "/orders")),
    Step("HEAD", "/nope", sql=0),
    Step("OPTIONS", "/orders", sql=0),
    Step("OPTIONS", "/users/1", sql=0),
    Step("PATCH", "/users/1", sql=0),
    Step("PUT", "/orders/1", sql=0),
    Step("TRACE", "/users/1", sql=0),
    Step("BREW", "/users/1", sql=0),
    Step("PROPFIND", "/orders", sql=0),
    _malformed("lower-case method", _raw(b"get /users/1 HTTP/1.1")),
    *(Step("GET", path, sql=0) for path in ("/docs", "/redoc", "/openapi.json")),
    *(Step("GET", path, sql=0) for path in ("//users/1", "/users//1", "/users/1%2F2")),
    Step("GET", "/users/%FF", sql=0),
    Step("GET", "/caf%C3%A9", sql=0),
    Step("GET", "/users/" + "1" * 10_000, sql=0),
    Step("GET", "/users/" + "1" * 5_000, sql=0),
    Step("GET", "/orders?limit=5&pad=" + "x" * 5_000, sql=0),
    Step("GET", "/users/1", headers=(("X-Big", "a" * 100_000),), sql=0),
    Step("GET", "/users/1", headers=(("X-Big", "a" * 9_000),), sql=0),
    Step("GET", "/users/1", headers=(("X-Big", "a" * 5_000),) * 2, sql=0),
    Step("GET", "/users/1", headers=tuple((f"X-H{i}", "v") for i in range(150)), sql=0),
    Step("GET", "/users/42", headers=(("X-Fine", "a" * 8_000),), sql=1),
    Step("GET", "/users/42", headers=(("Upgrade", "websocket"), ("Connection", "Upgrade")), sql=1),
    Step("GET", "/orders?status=%FF", sql=0),
    Step("GET", "/orders?status=%C3%A9", sql=0),
    Step("GET", "/orders?status=paid&limit=2&unknown=1", sql=1),
    _malformed("not HTTP", b"GARBAGE\r\n\r\n"),
    _malformed("HTTP/9.9", _raw(b"GET /users/1 HTTP/9.9")),
    _malformed("HTTP/0.9", b"GET /users/1\r\n\r\n"),
    _malformed("space in a header name", _raw(b"GET /users/1 HTTP/1.1", b"Bad Name: v")),
    _malformed("header without a colon", _raw(b"GET /users/1 HTTP/1.1", b"NoColon")),
    _malformed("NUL in the path", _raw(b"GET /users/\x001 HTTP/1.1")),
    _malformed("raw byte 0xFF in the query", _raw(b"GET /orders?status=\xff HTTP/1.1")),
    _malformed(
        "bad chunk size",
        _raw(
            b"POST /orders HTTP/1.1", b"Transfer-Encoding: chunked", body=b"ZZ\r\nabc\r\n0\r\n\r\n"
        ),
    ),
    _malformed(
        "Transfer-Encoding gzip", _raw(b"POST /orders HTTP/1.1", b"Transfer-Encoding: gzip")
    ),
    _malformed(
        "Content-Length and chunked",
        _raw(b"POST /orders HTTP/1.1", b"Content-Length: 3", b"Transfer-Encoding: chunked"),
    ),
    _malformed(
        "two Content-Lengths",
        _raw(b"POST /orders HTTP/1.1", b"Content-Length: 3", b"Content-Length: 4", body=b"abcd"),
    ),
    _malformed("Content-Length not a number", _raw(b"POST /orders HTTP/1.1", b"Content-Length: x")),
    _malformed("CONNECT", _raw(b"CONNECT 127.0.0.1:80 HTTP/1.1")),
    _malformed("OPTIONS *", _raw(b"OPTIONS * HTTP/1.1")),
)

SEQUENCE = CONTRACT_SEQUENCE + EDGE_SEQUENCE


@dataclass
class Answer:
    status: int
    body: Any
    sql: int | None
    held: int | None = None  # pooled connections still held when the response started
    content_type: str | None = "application/json"
    allow: str | None = None
    raw_length: int = 0  # bytes of body received (none for HEAD)


def _answer(status: int, headers: Mapping[str, str], content: bytes) -> Answer:
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = {"<not json>": content[:200].decode("latin-1")}
    sql, held = (headers.get(h) for h in (instrument.SQL_HEADER, instrument.HELD_HEADER))
    return Answer(
        status,
        body,
        int(sql) if sql is not None else None,
        int(held) if held is not None else None,
        headers.get("content-type"),
        headers.get("allow"),
        len(content),
    )


def _no_answer(exc: Exception) -> Answer:
    return Answer(0, {"<no answer>": f"{type(exc).__name__}: {exc}"}, None, content_type=None)


def send_raw(base: str, data: bytes) -> Answer:
    """Bytes on a socket, the answer read until the server closes (every raw step asks it to,
    and a server closes after a request it cannot parse)."""
    url = httpx.URL(base)
    try:
        with socket.create_connection((url.host, url.port or 80), timeout=10) as sock:
            sock.sendall(data)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    except OSError as exc:
        return _no_answer(exc)
    head, _, content = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return _no_answer(ValueError(f"not an HTTP response: {received[:80]!r}"))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    declared = headers.get("content-length", "")
    return _answer(status, headers, content[: int(declared)] if declared.isdigit() else content)


def _send(base: str, step: Step) -> Answer:
    if step.raw is not None:
        return send_raw(base, step.raw)
    # A fresh connection per request: a server may close one after refusing a body unread.
    try:
        response = httpx.request(
            step.method, base + step.path, content=step.body, headers=list(step.headers), timeout=30
        )
    except httpx.HTTPError as exc:
        return _no_answer(exc)
    return _answer(response.status_code, response.headers, response.content)


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


def _statements(answer: Answer) -> int | None:
    """Statements the request ran; a refusal before the app (no header on an error) ran none."""
    if answer.sql is None and answer.status >= 400:
        return 0
    return answer.sql


def _own_problems(name: str, step: Step, answer: Answer) -> list[str]:
    """Where one answer breaks the contract, whatever the other service said."""
    found = []
    if answer.status >= 500 and answer.status != 501 or answer.status == 0:
        found.append(f"{name} answered {answer.status or 'nothing'} (a 500 is a bug)")
    if answer.content_type != "application/json":
        found.append(f"{name} Content-Type is {answer.content_type!r}, not application/json")
    if step.method == "HEAD":
        if answer.raw_length:
            found.append(f"{name} sent a {answer.raw_length}-byte body to a HEAD request")
    elif answer.status >= 400 and (
        not isinstance(answer.body, dict) or set(answer.body) != {"error", "detail"}
    ):
        found.append(f"{name} error body is not {{error, detail}}")
    if answer.status == 405 and not answer.allow:
        found.append(f"{name} answered 405 without an Allow header")
    # The held count comes with the statement count, from every request the app saw.
    if answer.sql is not None and answer.held != 0:
        found.append(
            f"{name} still held {answer.held} database connection(s) when it answered "
            "(the contract: give it back before answering)"
        )
    return found


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
    if a.allow != b.allow:
        found.append(f"Allow {names[0]}={a.allow!r} {names[1]}={b.allow!r}")
    sql_a, sql_b = _statements(a), _statements(b)
    if sql_a != sql_b:
        found.append(f"SQL statements {names[0]}={sql_a} {names[1]}={sql_b}")
    elif step.sql is not None and sql_a != step.sql:
        found.append(f"SQL statements {sql_a}, the contract says {step.sql}")
    for name, answer in zip(names, (a, b), strict=True):
        found += _own_problems(name, step, answer)
    return found


def server_refusal(step: Step, reference: Answer, answer: Answer) -> bool:
    """Whether `answer` is a refusal by a server whose parser answers before any app hook
    (services.Variant.bare_refusals): the reference's status with no body and no app header;
    or, to a request framed both by Content-Length and as chunked, no answer while it waits
    for the chunked body (RFC 9112, 6.1 lets a server read it by Transfer-Encoding alone)."""
    if reference.status < 400 or answer.sql is not None:
        return False
    if answer.status == reference.status and answer.raw_length == 0:
        return True
    raw = step.raw or b""
    framed_twice = b"Content-Length:" in raw and b"Transfer-Encoding: chunked" in raw
    return answer.status == 0 and framed_twice


@dataclass(frozen=True)
class Checked:
    """One step against one service: the reference's answer and its own, where they differ,
    and whether the difference is its server's own refusal (reported, not failed)."""

    step: Step
    answer: Answer
    theirs: Answer
    problems: list[str]
    own_refusal: bool = False


REFERENCE = "flask_sync"  # every other stack is checked against it


def _check(step: Step, a: Answer, b: Answer, names: tuple[str, str]) -> Checked:
    variant = services.VARIANTS.get(names[1])
    found = problems(step, a, b, names)
    if found and variant is not None and variant.bare_refusals and server_refusal(step, a, b):
        return Checked(step, a, b, found, own_refusal=True)
    return Checked(step, a, b, found)


def compare(urls: dict[str, str], database_url: str, scale: float) -> dict[str, list[Checked]]:
    """Run SEQUENCE against each service (data reset before each) and pair each one's
    answers with the first's (the reference); keyed by the other service's name."""
    answers: dict[str, list[Answer]] = {}
    for name, base in urls.items():
        seed.reset(database_url, seed.Scale.of(scale))
        answers[name] = [_send(base, step) for step in SEQUENCE]
    seed.reset(database_url, seed.Scale.of(scale))
    reference, *others = urls
    return {
        other: [
            _check(step, a, b, (reference, other))
            for step, a, b in zip(SEQUENCE, answers[reference], answers[other], strict=True)
        ]
        for other in others
    }


def running_services(
    settings: StackSettings, variants: list[str] | None
) -> tuple[procs.State, dict[str, str]]:
    """The services to check (default: every one of ours that is up), the reference first."""
    state = procs.load_state(settings.state_dir)
    if state is None:
        raise UsageError("nothing is running: start the stack with `python -m loadlab up`")
    names = variants or [c.name for c in state.components if c.name in services.VARIANTS]
    names.sort(key=lambda n: n != REFERENCE)
    if len(names) < 2:
        raise UsageError(
            "verify compares stacks: start at least two (`python -m loadlab up --variants all`)"
        )
    urls = {}
    for name in names:
        component = state.get(name)
        if component is None or not services.healthy(component.url):
            raise UsageError(f"{name} is not healthy: see `python -m loadlab status`")
        urls[name] = component.url
    return state, urls


def given_services(settings: StackSettings, targets: list[str]) -> tuple[str, dict[str, str]]:
    """`--target NAME=URL`s (the compose stack's published ports, say) and the database
    behind them, which verify resets before each one."""
    from loadlab.load.experiment import external_target

    if not settings.database_url:
        raise UsageError("verify --target resets the data behind them: give --database-url")
    found = [external_target(t) for t in targets]
    found.sort(key=lambda t: t.name != REFERENCE)
    if len(found) < 2:
        raise UsageError("verify compares stacks: give at least two --target NAME=URL")
    database = postgres.given_database(settings.database_url, settings.ready_timeout)
    return database, {t.name: t.url for t in found}


def run(
    settings: StackSettings,
    quiet: bool = False,
    variants: list[str] | None = None,
    targets: list[str] | None = None,
) -> int:
    """The `verify` command: every request of SEQUENCE against each stack, compared with the
    reference's answer; one line per request (only the differing ones when quiet), exit 1
    with a diff on any mismatch."""
    if targets:
        database_url, urls = given_services(settings, targets)
        scale = settings.scale
    else:
        state, urls = running_services(settings, variants)
        database_url, scale = state.direct_database_url, state.scale
    results = compare(urls, database_url, scale)
    reference = next(iter(urls))
    failed_total = 0
    for other, pairs in results.items():
        if not quiet or len(results) > 1:
            print(f"{other} against {reference}:")
        failed = own = 0
        for checked in pairs:
            step, answer, found = checked.step, checked.answer, checked.problems
            mark = "own" if checked.own_refusal else "FAIL" if found else "ok"
            failed += bool(found) and not checked.own_refusal
            own += checked.own_refusal
            if quiet and (not found or checked.own_refusal):  # the count below says them
                continue
            what = step.path + (f" {step.body[:24]!r}" if step.body is not None else "")
            what += f" +{len(step.headers)} headers" if step.headers else ""
            sql = "-" if answer.sql is None else answer.sql
            status = checked.theirs.status if checked.own_refusal else answer.status
            print(f"{mark:<4} {step.method:<8} {what[:60]:<60} {status or '-'}  sql={sql}")
            for problem in () if checked.own_refusal else found:
                print(f"     {problem}")
        print(
            f"verify: {len(pairs) - failed - own} of {len(pairs)} requests identical in "
            f"{other} and {reference}"
        )
        if own:
            print(
                f"verify: {own} refused by {other}'s HTTP server itself before the app, with "
                "its status and no JSON body, or no answer while it waits for a chunked body "
                "(marked own: its parser has no hook for the contract's error body)"
            )
        failed_total += failed
    if failed_total:
        raise GateFailed(f"{failed_total} requests differ between the services (see above)")
    return 0
