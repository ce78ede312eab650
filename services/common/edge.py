"""What a request may be before any route sees it: the same limits, statuses and JSON in both
services, whichever layer refuses it.

Two layers refuse requests. The HTTP server (gunicorn, uvicorn) refuses what it cannot parse;
each service swaps the server's HTML or text page for our JSON (flask_sync/gunicorn_worker.py,
fastapi_async/protocol.py). Then a guard that wraps each app (WSGI or ASGI middleware, outside
the cost headers, like the server) applies the limits below, which gunicorn alone would apply
and uvicorn would not. gunicorn's own limits are set above ours, so our guard decides in the
range where both servers could; beyond it gunicorn refuses with the same JSON.

The contract, also in docs/architecture.md:
- a request that is not valid HTTP/1.0 or 1.1 (HTTP/0.9 included), a CONNECT (a tunnel,
  which uvicorn's parser refuses before any app) or an `OPTIONS *` (a question about the
  server, which no route answers): 400 `bad_request`;
- a well-formed request line whose method is outside RFC 9110 (and PATCH): 501
  `not_implemented`; a known method a route does not take: 405 with `Allow`;
- a request target over MAX_TARGET_BYTES: 414 `uri_too_long`;
- a header value over MAX_HEADER_BYTES (repeated fields joined with ","), or more than
  MAX_HEADERS header fields: 431 `request_header_fields_too_large`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus

from services.common.errors import ApiError

MAX_TARGET_BYTES = 4096
MAX_HEADER_BYTES = 8192
MAX_HEADERS = 100
# RFC 9110 section 9 plus PATCH (RFC 5789): methods HTTP knows; anything else is 501.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
HTTP_VERSIONS = ("1.0", "1.1")
# method SP target SP version: what gunicorn parses before it looks at the method's name.
WELL_FORMED_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \x00-\x1f]+ HTTP/1\.[01]")


def bad_request() -> ApiError:
    return ApiError(400, "bad_request", "the request is not valid HTTP/1.1")


def not_implemented() -> ApiError:
    return ApiError(501, "not_implemented", "the method is not one HTTP defines")


def target_too_long() -> ApiError:
    return ApiError(414, "uri_too_long", f"the request target is over {MAX_TARGET_BYTES} bytes")


def headers_too_large() -> ApiError:
    return ApiError(
        431,
        "request_header_fields_too_large",
        f"a header is over {MAX_HEADER_BYTES} bytes, or there are over {MAX_HEADERS} headers",
    )


def unknown_method(received: bytes) -> ApiError:
    """The answer to a request whose method the server's parser does not know: 501 if its
    request line is otherwise well formed, else 400 (gunicorn reads the line before the name)."""
    first_line = received.split(b"\r\n", 1)[0]
    if WELL_FORMED_REQUEST_LINE.fullmatch(first_line):
        return not_implemented()
    return bad_request()


def refusal(
    method: str,
    http_version: str,
    target: bytes,
    headers: Iterable[tuple[str, str]],
    header_count: int | None,
) -> ApiError | None:
    """Why the guard refuses a request, or None. `headers` has one entry per name, repeated
    fields joined (as WSGI gives them); `header_count` is the number of header lines where the
    server shows them (ASGI), None where the server itself counts them (gunicorn)."""
    if http_version not in HTTP_VERSIONS or method == "CONNECT" or target == b"*":
        return bad_request()
    if method not in KNOWN_METHODS:
        return not_implemented()
    if len(target) > MAX_TARGET_BYTES:
        return target_too_long()
    if header_count is not None and header_count > MAX_HEADERS:
        return headers_too_large()
    if any(len(value) > MAX_HEADER_BYTES for _, value in headers):
        return headers_too_large()
    return None


def joined_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI's header list as WSGI shows it: one value per name, repeats joined with ","."""
    joined: dict[bytes, list[bytes]] = {}
    for name, value in raw:
        joined.setdefault(name.lower(), []).append(value)
    return [(n.decode("latin-1"), b",".join(v).decode("latin-1")) for n, v in joined.items()]


def raw_response(error: ApiError) -> bytes:
    """A whole HTTP/1.1 response for a server that refuses a request before any app runs;
    the connection is closed after it, as both servers do for a request they cannot parse."""
    body = error.body()
    head = (
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
