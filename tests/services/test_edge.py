"""What users can send besides the contract's requests (services/common/edge.py): the limits
at their exact boundaries, HEAD, 405's Allow, and the servers' own refusals as JSON, on each
real service (gunicorn and uvicorn, not a test client)."""

from __future__ import annotations

import httpx
import pytest
from gunicorn.http import errors as gunicorn_errors

from loadlab import verify
from loadlab.stack.services import VARIANTS
from services.common import edge
from services.flask_sync.gunicorn_worker import client_error
from tests.conftest import Stack


def request(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    """A raw request with Host and Connection: close, so two header lines besides `headers`."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: t", *headers, b"Connection: close"]
    return b"\r\n".join([*lines, b"", b""])


def user_target(length: int) -> bytes:
    """/users/0001... of exactly `length` bytes: a valid id once the guard lets it through."""
    prefix = b"/users/"
    return prefix + b"1".rjust(length - len(prefix), b"0")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (request(user_target(edge.MAX_TARGET_BYTES)), 422, "invalid_id"),  # the id is too long
        (request(user_target(edge.MAX_TARGET_BYTES + 1)), 414, "uri_too_long"),
        (request(b"/users/1", b"X-A: " + b"a" * edge.MAX_HEADER_BYTES), 200, None),
        (request(b"/users/1", b"X-A: " + b"a" * (edge.MAX_HEADER_BYTES + 1)), 431, None),
        # repeated fields count joined, as WSGI shows them: 2 x 4096 + ","
        (request(b"/users/1", *[b"X-A: " + b"a" * 4096] * 2), 431, None),
        (request(b"/users/1", *[b"X-%d: v" % i for i in range(edge.MAX_HEADERS - 2)]), 200, None),
        (request(b"/users/1", *[b"X-%d: v" % i for i in range(edge.MAX_HEADERS - 1)]), 431, None),
        (request(b"/users/1", method=b"BREW"), 501, "not_implemented"),
        (request(b"/users/1", method=b"get"), 501, "not_implemented"),
        (b"BREW\r\n\r\n", 400, "bad_request"),
        (b"GET /users/1\r\n\r\n", 400, "bad_request"),
    ],
)
def test_limits_hold_at_their_boundary_in_both_servers(
    stack: Stack, service_url: str, data: bytes, status: int, code: str | None
) -> None:
    answer = verify.send_raw(service_url, data)
    assert answer.status == status
    name = next(n for n, url in stack.urls.items() if url == service_url)
    if VARIANTS[name].bare_refusals and answer.raw_length == 0 and status >= 400:
        # Granian's parser refused it before the app (over 100 headers, not HTTP/1.1): the
        # status, no body; verify marks these as the server's own.
        assert answer.sql is None and answer.content_type is None
        return
    assert answer.content_type == "application/json"
    if status >= 400:
        assert answer.body["error"] == (code or "request_header_fields_too_large")
        assert set(answer.body) == {"error", "detail"}


def test_head_answers_like_get_without_a_body(stack: Stack, service_url: str) -> None:
    got = httpx.get(f"{service_url}/orders/3")
    head = httpx.head(f"{service_url}/orders/3")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"] != "0"
    assert head.headers["x-sql-statements"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/orders", "GET, HEAD, POST"),
        ("DELETE", "/orders", "GET, HEAD, POST"),
        ("PUT", "/users/1", "GET, HEAD"),
        ("GET", "/users/1/visit", "POST"),
    ],
)
def test_405_names_every_method_the_path_takes(
    stack: Stack, service_url: str, method: str, path: str, allow: str
) -> None:
    response = httpx.request(method, service_url + path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"] == "method_not_allowed"


def test_no_framework_pages(stack: Stack, service_url: str) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/static/x"):
        response = httpx.get(service_url + path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


def test_gunicorns_refusals_map_to_the_contract() -> None:
    assert client_error(gunicorn_errors.LimitRequestLine(9000, 8190)).status == 414
    assert client_error(gunicorn_errors.LimitRequestHeaders("too many")).status == 431
    assert client_error(gunicorn_errors.InvalidRequestMethod("get")).status == 501
    assert client_error(gunicorn_errors.InvalidHTTPVersion("9.9")).status == 400
    assert client_error(gunicorn_errors.InvalidHeaderName("a b")).status == 400
    # the app's own fault stays gunicorn's 500, and so does anything not a parse error
    assert client_error(gunicorn_errors.InvalidResponseHeaderName("a b")) is None
    assert client_error(ValueError("bug")) is None


def test_an_unknown_method_is_501_only_in_a_well_formed_request_line() -> None:
    assert edge.unknown_method(b"BREW /users/1 HTTP/1.1\r\nHost: t\r\n\r\n").status == 501
    assert edge.unknown_method(b"GARBAGE\r\n\r\n").status == 400
    assert edge.unknown_method(b"BREW /users/1 HTTP/9.9\r\n\r\n").status == 400
    assert edge.unknown_method(b"BR EW /users/1 HTTP/1.1\r\n\r\n").status == 400


def test_verify_flags_what_the_status_alone_would_miss() -> None:
    error = {"error": "bad_request", "detail": "x"}
    json_400 = verify.Answer(400, error, None)
    html_400 = verify.Answer(400, error, None, content_type="text/html")
    found = verify.problems(verify.Step("RAW", "x", sql=0), json_400, html_400, ("a", "b"))
    assert found == ["b Content-Type is 'text/html', not application/json"]

    head = verify.Step("HEAD", "/users/1", sql=1)
    empty = verify.Answer(200, None, 1, held=0)
    with_body = verify.Answer(200, None, 1, held=0, raw_length=120)
    assert verify.problems(head, empty, with_body, ("a", "b")) == [
        "b sent a 120-byte body to a HEAD request"
    ]

    options = verify.Step("OPTIONS", "/orders", sql=0)
    allow_all = verify.Answer(405, error, 0, held=0, allow="GET, HEAD, POST")
    allow_one = verify.Answer(405, error, 0, held=0, allow="GET, HEAD")
    no_allow = verify.Answer(405, error, 0, held=0)
    assert verify.problems(options, allow_all, allow_one, ("a", "b")) == [
        "Allow a='GET, HEAD, POST' b='GET, HEAD'"
    ]
    assert "b answered 405 without an Allow header" in verify.problems(
        options, allow_all, no_allow, ("a", "b")
    )


def test_a_bare_refusal_is_the_servers_own_only_where_the_reference_refused() -> None:
    """verify.server_refusal: Granian's empty answer of the reference's status counts as its
    server's own refusal; anything the app could have answered, or another status, does not;
    no answer at all only to a request framed twice (it waits for the chunked body)."""
    error = {"error": "bad_request", "detail": "x"}
    refused = verify.Answer(400, error, None)
    bare = verify.Answer(400, None, None, content_type=None)
    garbage = verify.Step("RAW", "not HTTP", raw=b"GARBAGE\r\n\r\n", sql=0)
    assert verify.server_refusal(garbage, refused, bare)
    assert not verify.server_refusal(garbage, refused, verify.Answer(431, None, None))
    assert not verify.server_refusal(garbage, verify.Answer(200, {}, 1), bare)
    # An app answer (it carries the statement header) is never the server's own.
    assert not verify.server_refusal(garbage, refused, verify.Answer(400, None, 0))
    silent = verify.Answer(0, {"<no answer>": "timed out"}, None, content_type=None)
    assert not verify.server_refusal(garbage, refused, silent)
    twice = next(s for s in verify.SEQUENCE if s.path == "Content-Length and chunked")
    assert verify.server_refusal(twice, refused, silent)
