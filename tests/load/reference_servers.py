"""Two small HTTP servers whose latency is known in advance, to check what loadlab reports
against the truth: `known` draws each request's service time from a known distribution and
records what each request took; `stalling` answers at once except during a stall of a known
length that comes at a known period. Both answer every path with a user's JSON, so any
scenario's requests pass their checks.

Each runs in a process of its own on 127.0.0.1 (`python tests/load/reference_servers.py`),
so neither the test process's threads nor its GIL sit between a request and its answer.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BODY = json.dumps(
    {
        "id": 1,
        "name": "User 1",
        "email": "user1@example.test",
        "visits": 1,
        "last_seen": None,
        "created_at": "2024-01-01T00:00:01+00:00",
    }
).encode()


def known_distribution(seed: int = 7) -> Callable[[], float]:
    """2 ms plus an exponential with a 6 ms mean, so p50 ~ 6 ms, p99 ~ 30 ms (seconds)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def draw() -> float:
        with lock:
            return 0.002 + rng.expovariate(1 / 0.006)

    return draw


def stalling(period: float, stall: float) -> Callable[[], float]:
    """No wait, except for a request arriving in the first `stall` seconds of each `period`:
    it waits until that stall ends, as every request would behind a frozen server."""
    started = time.monotonic()

    def wait() -> float:
        phase = (time.monotonic() - started) % period
        return stall - phase if phase < stall else 0.0

    return wait


def steady_arrivals_percentile(period: float, stall: float, percentile: float) -> float:
    """The latency (ms) at `percentile` for requests arriving evenly in time at a server that
    stalls: a share stall/period of them wait, uniformly from 0 to the whole stall."""
    stalled_share = stall / period
    above = 1 - percentile / 100  # the share of requests slower than the percentile
    if above >= stalled_share:
        return 0.0
    return stall * (1 - above / stalled_share) * 1000


def _handler(
    delay: Callable[[], float], record: list[tuple[float, float]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the services
        # Headers and body go out in two writes: with Nagle's algorithm the second waits for
        # the client's delayed ACK, 40 ms a request.
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            arrived, started = time.time(), time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            pause = delay()
            if pause > 0:
                time.sleep(pause)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
            self.wfile.flush()
            record.append((arrived, (time.perf_counter() - started) * 1000))

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would be the test's noise

    return Handler


STALL_TICK_S = 0.01
STALL_MS = 5.0  # a wake-up later than this is a stall worth keeping


def _watch_stalls(stalls: list[tuple[float, float]]) -> None:
    """Sleep a fixed 10 ms, over and over, and keep each wake-up more than STALL_MS late
    (epoch s, ms late): the time this process waited for a CPU or for the GIL, which the
    per-request record cannot see (a request that arrives during it waits unrecorded)."""
    while True:
        started = time.perf_counter()
        time.sleep(STALL_TICK_S)
        late = (time.perf_counter() - started - STALL_TICK_S) * 1000
        if late > STALL_MS:
            stalls.append((time.time(), late))


Timed = list[tuple[float, float]]  # (epoch s, ms) pairs


@contextmanager
def serve(kind: str, **params: float) -> Iterator[tuple[str, Callable[[], tuple[Timed, Timed]]]]:
    """Start a reference server in its own process: (its URL, a function that stops it and
    returns, for each request, when it arrived (epoch s) and the ms it took on the server, and
    the server process's own stalls, as _watch_stalls keeps them)."""
    record = Path(f"/tmp/loadlab-reference-{time.time_ns()}.json")
    proc = subprocess.Popen(
        [sys.executable, __file__, kind, json.dumps(params), str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())

        def stop_and_read() -> tuple[Timed, Timed]:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            kept = json.loads(record.read_text())
            return [tuple(r) for r in kept["requests"]], [tuple(r) for r in kept["stalls"]]

        yield f"http://127.0.0.1:{port}", stop_and_read
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        record.unlink(missing_ok=True)


def _main(kind: str, params: str, record_path: str) -> None:
    import os

    if os.environ.get("REF_CPU"):
        os.sched_setaffinity(0, {int(os.environ["REF_CPU"])})
    delay = {"known": known_distribution, "stalling": stalling}[kind](**json.loads(params))
    record: list[tuple[float, float]] = []
    stalls: list[tuple[float, float]] = []
    threading.Thread(target=_watch_stalls, args=(stalls,), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(delay, record))
    server.daemon_threads = True

    def finish(*_: object) -> None:
        Path(record_path).write_text(json.dumps({"requests": record, "stalls": stalls}))
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    _main(*sys.argv[1:4])
