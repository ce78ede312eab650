"""uvicorn's httptools protocol, answering the requests it cannot parse with the contract's
JSON (services/common/edge.py) instead of its plain-text 400, and stamping in the ASGI scope
when it read each request, so Server-Timing can show the wait for the event loop apart from the
kernel's queues. uvicorn takes it by import string:
`--http services.fastapi_async.protocol:JsonErrorProtocol`."""

from __future__ import annotations

import sys
import time

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.common import edge, instrument


class JsonErrorProtocol(HttpToolsProtocol):
    _received = b""

    def data_received(self, data: bytes) -> None:
        # Kept for send_400_response: llhttp stops at an unknown method, so whether the rest of
        # the request line was well formed must be read from the bytes. A request that fails
        # starts its own chunk but for pipelined ones, which then get a 400 or 501 by that chunk.
        self._received = data
        super().data_received(data)

    def on_message_begin(self) -> None:
        # Called while parsing the bytes just read: the request's task is made when its
        # headers are complete and then waits for the loop's turn (CostMiddleware reads this).
        super().on_message_begin()
        self.scope[instrument.READ_AT_KEY] = time.perf_counter()  # type: ignore[literal-required]

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from inside its `except httptools.HttpParserError`, so the parser's
        # own error says why.
        failure = sys.exc_info()[1]
        if isinstance(failure, httptools.HttpParserInvalidMethodError):
            error = edge.unknown_method(self._received)
        else:
            error = edge.bad_request()
        self.transport.write(edge.raw_response(error))
        self.transport.close()
