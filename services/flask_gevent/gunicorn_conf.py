"""gunicorn settings for flask_gevent: flask_sync's, with the gevent worker instead of threads.
WEB_CONNECTIONS greenlets per worker (gunicorn's worker_connections) stand where flask_sync
has WEB_THREADS threads; the pool (DB_POOL_SIZE + DB_MAX_OVERFLOW per worker) is what limits
the queries in flight."""

import os

from services.flask_sync.gunicorn_conf import *  # noqa: F403 (the same limits, bind, timeouts)

worker_class = "services.flask_gevent.worker.CooperativeJsonWorker"
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
threads = 1  # a gevent worker serves connections as greenlets, not threads
