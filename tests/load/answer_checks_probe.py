"""Run by tests/load/test_answer_checks.py in a process of its own (Locust monkey-patches
the process it is imported into): real FastHttpSession requests to a small server whose
answers are odd on purpose, each read by the scenarios' `problem`; prints the kinds as JSON."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from locust import FastHttpUser
from locust.env import Environment

sys.path.insert(0, sys.argv[1])  # locustfiles/
from common import USER_KEYS, problem  # noqa: E402

USER = {"id": 1, "name": "Zoë Ørsted", "email": "z@example.test", "visits": 1,
        "last_seen": None, "created_at": "2024-01-01T00:00:01+00:00"}  # fmt: skip
ANSWERS = {
    "/ok": (200, json.dumps(USER, ensure_ascii=False).encode()),
    "/not-json": (200, b"<html>oops</html>"),
    "/shape": (200, json.dumps({"id": 1}).encode()),
    "/conflict": (409, json.dumps({"error": "insufficient_stock"}).encode()),
    "/latin1": (200, json.dumps(USER, ensure_ascii=False).encode("latin-1")),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()


class Probe(FastHttpUser):
    host = f"http://127.0.0.1:{server.server_address[1]}"


client = Probe(Environment(user_classes=[Probe])).client
kinds = {}
for path in ANSWERS:
    with client.get(path, catch_response=True) as response:
        kind, body = problem(response, 200, USER_KEYS)
        kinds[path] = [kind, body["name"] if kind is None else None]
        response.success()
print(json.dumps(kinds))
server.shutdown()
