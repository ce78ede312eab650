"""gunicorn's gevent worker, made cooperative for psycopg2 and answering the requests it cannot
parse with the contract's JSON, as flask_sync's threaded worker does. Set as `worker_class` in
gunicorn_conf.

gunicorn patches the standard library (sockets, threads, locks: SQLAlchemy's pool waits on a
patched lock) when the worker starts; psycopg2 is C and blocks in libpq unless psycogreen
sets its wait callback, which is done here, in each worker, after gevent's patch. Each
connection is a greenlet, with no thread pool to wait for: its wait for the hub's turn comes
before it reads the request, where no hook of the worker sees it, so Server-Timing has no
`queue` part here and the page shows that wait unsplit (`before` the app).
"""

from __future__ import annotations

import contextlib
from typing import Any

from gunicorn.workers.ggevent import GeventWorker
from psycogreen.gevent import patch_psycopg

from services.common import edge
from services.flask_sync.gunicorn_worker import client_error


class CooperativeJsonWorker(GeventWorker):
    def patch(self) -> None:
        super().patch()
        patch_psycopg()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        error = client_error(exc)
        if error is None:
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("refused a request (%s %s): %s", error.status, error.code, exc)
        with contextlib.suppress(OSError):  # the client is gone; nothing is owed to it
            client.sendall(edge.raw_response(error))
