"""gunicorn's threaded worker, answering the requests it cannot parse with the contract's JSON
(services/common/edge.py) instead of its HTML page, and telling the app when each request was
handed to the thread pool, so Server-Timing can show the wait for a thread apart from the
kernel's queues. Set as `worker_class` in gunicorn_conf."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from services.common import edge, instrument
from services.common.errors import ApiError

# The application's own faults (a response header it may not send) and gunicorn's own
# configuration stay gunicorn's 500: they are bugs, not bad requests.
_NOT_THE_CLIENTS = (
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
    http_errors.ConfigurationProblem,
)


def client_error(exc: BaseException) -> ApiError | None:
    """The contract's answer to a request gunicorn refused, or None for a server fault."""
    if not isinstance(exc, http_errors.ParseException) or isinstance(exc, _NOT_THE_CLIENTS):
        return None
    if isinstance(exc, http_errors.LimitRequestLine):
        return edge.target_too_long()
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return edge.headers_too_large()
    if isinstance(exc, http_errors.InvalidRequestMethod):
        return edge.not_implemented()
    return edge.bad_request()


class JsonErrorWorker(ThreadWorker):
    def enqueue_req(self, conn: Any) -> None:
        # The main thread's poller saw the request (or accepted its connection): from here it
        # waits for one of the worker's threads.
        conn.loadlab_enqueued_at = time.perf_counter()
        super().enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        instrument.request_read(getattr(conn, "loadlab_enqueued_at", time.perf_counter()))
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        error = client_error(exc)
        if error is None:
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("refused a request (%s %s): %s", error.status, error.code, exc)
        with contextlib.suppress(OSError):  # the client is gone; nothing is owed to it
            client.sendall(edge.raw_response(error))
