"""gunicorn settings from the shared environment names (WEB_WORKERS, WEB_THREADS)."""

import os

from services.common import edge

# gthread: each worker process serves WEB_THREADS requests at once, each thread holding at
# most one pooled connection, the classic sync deployment the article measures. Ours is
# gunicorn's gthread worker with the contract's JSON for requests it cannot parse.
worker_class = "services.flask_sync.gunicorn_worker.JsonErrorWorker"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "15"))
# Each worker imports the app itself, so each has its own engine and pool: a pool created
# before the fork would share sockets between processes.
preload_app = False
bind = os.environ.get("BIND", "127.0.0.1:8001")
# Room for the 200-user burst to queue in the kernel instead of being refused.
backlog = 2048
keepalive = 5
timeout = 60
graceful_timeout = 10
accesslog = None
# gunicorn >= 24 opens a control socket under ~/.gunicorn by default; two loadlab stacks
# would share it. Older versions ignore the name.
control_socket_disable = True
# Above the contract's limits (services/common/edge.py), so the app's guard decides where it
# can, as uvicorn's does; beyond these gunicorn refuses, with the same JSON. 8190 is the most
# gunicorn allows for a request line.
limit_request_line = 8190
limit_request_field_size = 2 * edge.MAX_HEADER_BYTES
# gunicorn counts header lines itself (WSGI joins repeated ones): this is the contract's limit.
limit_request_fields = edge.MAX_HEADERS
