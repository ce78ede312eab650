"""What every scenario shares: the base user with response validation, and the hooks that
feed loadlab's exact latency recorder (see src/loadlab/load/recorder.py).

The runner sets these environment variables; a bare `locust -f locustfiles/X.py --host URL`
works without them (no warm-up, results not written):
  LOADLAB_WARMUP   seconds before measuring starts (stats are reset then)
  LOADLAB_RESULT   where the master writes the recorder's results when it quits
  LOADLAB_STATUS   where the master writes a live status line once a second
  LOADLAB_SCALE    seed scale of the database, so ids stay inside the seeded range
  LOADLAB_ARRIVAL_RATE, LOADLAB_ARRIVALS   the open model (src/loadlab/load/arrivals.py):
                   this process's requests per second, and constant or poisson
  LOADLAB_UI       set by `loadlab ui`: the web UI gains loadlab's tab and form fields
                   (src/loadlab/load/webui.py); the open model is then chosen in the form
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import FastHttpUser, constant, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsError

from loadlab.load import hdr, plain_users
from loadlab.load.arrivals import KINDS, Arrivals, watch_generator
from loadlab.load.recorder import KEEP_WHOLE_S, Recorder
from loadlab.load.ui_config import CONFIG_ENV
from loadlab.stack.seed import Scale

RECORDER = Recorder()
# The open model's schedule in this process, or None for the closed model (in the web UI,
# chosen again for each test: _schedule).
ARRIVALS = (
    Arrivals(
        float(os.environ["LOADLAB_ARRIVAL_RATE"]),
        os.environ.get("LOADLAB_ARRIVALS", "constant"),
        lambda: RECORDER.arrivals,
    )
    if os.environ.get("LOADLAB_ARRIVAL_RATE")
    else None
)
# Set by `loadlab ui` (src/loadlab/load/webui.py, imported only then: a headless generator
# does not load Flask routes or the report writer; ui_config.py imports nothing heavy).
IN_WEB_UI = CONFIG_ENV in os.environ
MEASURE_MESSAGE = "loadlab_measure"  # master -> workers: the warm-up is over
SCALE = Scale.of(float(os.environ.get("LOADLAB_SCALE", "1")))

USER_KEYS = ("id", "name", "email", "visits", "last_seen", "created_at")
ORDER_KEYS = ("id", "status", "total_cents", "created_at", "customer", "items")
PAGE_KEYS = ("orders", "next_after_id")


def new_order() -> dict[str, Any]:
    """A valid POST /orders body: a seeded customer, 1 to 5 distinct seeded products."""
    products = random.sample(range(1, SCALE.products + 1), random.randint(1, 5))
    return {
        "customer_id": random.randint(1, SCALE.customers),
        "items": [{"product_id": p, "quantity": random.randint(1, 4)} for p in products],
    }


def problem(response: Any, expect: int, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """The failure kind of a response (None when status and JSON shape are right) and its
    parsed body, read once. A request that got no answer (a dropped connection, a timeout)
    is "no answer: <why>"."""
    if not response.status_code:
        return f"no answer: {type(response.error).__name__}", None
    try:
        # The bytes as they came: JSON is UTF-8 (RFC 8259), so the charset sniffing of
        # response.json() is not needed; orjson reads them in a fifth of json's time, and
        # refuses what is not UTF-8 (body not JSON).
        body = orjson.loads(response.content)
    except (ValueError, TypeError):
        return f"HTTP {response.status_code}, body not JSON", None
    if response.status_code != expect:
        code = body.get("error", "?") if isinstance(body, dict) else "?"
        return f"HTTP {response.status_code} {code}", body
    missing = [k for k in keys if not isinstance(body, dict) or k not in body]
    return (f"wrong JSON shape: no {missing[0]}" if missing else None), body


class LoadlabUser(FastHttpUser):
    """A closed-loop user with no think time: each finishes a request, then sends the next,
    so N users keep N requests in flight (the article's "200 concurrent requests"). In the
    open model each request waits for its intended start instead, and N is the most that may
    be in flight at once."""

    abstract = True
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        expect: int,
        keys: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        """Send one request and count it, whatever happens: passed, failed by kind (no
        answer included, which is also in doubt: it may have been applied), or cut off by the
        end of the run (in doubt). Nothing in the block may raise: Locust would then file the
        request under exceptions and count it nowhere."""
        context = {}
        if ARRIVALS is not None:
            intended = ARRIVALS.take()
            if intended is None:  # the run is over
                return
            context["late_ms"] = ARRIVALS.sending(intended)
        reported = False
        try:
            with self.client.request(
                method, path, name=name, catch_response=True, context=context, **kwargs
            ) as response:
                reported = True
                try:
                    kind, body = problem(response, expect, keys)
                    # No answer: no headers either (reading them raised before this fix).
                    headers = response.headers if response.status_code else None
                    timing = headers.get("Server-Timing") if headers is not None else None
                    if timing:  # read with a few thousand others (load/server_timing.py)
                        sent_ms = response.request_meta.get("response_time")
                        RECORDER.record_server_header(timing, sent_ms)
                    if kind is None and method == "POST" and expect == 201:
                        RECORDER.acknowledged_order(body)  # checked after the run
                except Exception as exc:  # a response too odd to read is a failure too
                    kind = f"unreadable response: {type(exc).__name__}"
                if kind is None:
                    response.success()
                else:
                    response.failure(kind)
        finally:
            if not reported:
                RECORDER.interrupted(f"{method} {name}")

    # The requests of the contract, on random seeded rows; scenarios pick and weigh them.
    # Names group the parameterised URLs in Locust's statistics.
    def visit_user(self) -> None:
        user_id = random.randint(1, SCALE.users)
        self.call(
            "POST", f"/users/{user_id}/visit", name="/users/[id]/visit", expect=200, keys=USER_KEYS
        )

    def read_user(self) -> None:
        user_id = random.randint(1, SCALE.users)
        self.call("GET", f"/users/{user_id}", name="/users/[id]", expect=200, keys=USER_KEYS)

    def read_order(self) -> None:
        order_id = random.randint(1, SCALE.orders)
        self.call("GET", f"/orders/{order_id}", name="/orders/[id]", expect=200, keys=ORDER_KEYS)

    def read_order_page(self) -> None:
        status = random.choice(["pending", "paid", "shipped", "cancelled"])
        self.call(
            "GET",
            f"/orders?status={status}&limit=20",
            name="/orders?status=[s]",
            expect=200,
            keys=PAGE_KEYS,
        )

    def create_order(self) -> None:
        self.call("POST", "/orders", name="/orders", expect=201, keys=ORDER_KEYS, json=new_order())


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    error = None if exception is None else (str(exception) or type(exception).__name__)
    # From the intended start in the open model: the wait before the send counts too.
    late_ms = (context or {}).get("late_ms", 0.0)
    RECORDER.record(f"{request_type} {name}", status, response_time + late_ms, error, response_time)


@events.report_to_master.add_listener
def _ship(client_id: str, data: dict[str, Any]) -> None:
    data["loadlab"] = RECORDER.export()


@events.worker_report.add_listener
def _merge(client_id: str, data: dict[str, Any]) -> None:
    if "loadlab" in data:
        RECORDER.merge(data["loadlab"])


@events.reset_stats.add_listener
def _reset() -> None:
    RECORDER.start_measuring()


BACKGROUND: list[gevent.Greenlet] = []
# When the run began to stop, on the master's clock: the end of the measured window, as in
# the web UI (load/webui.py). No request starts after it; those still in flight are answered
# in the stop timeout and counted. Not the moment the process quits: on a busy machine the
# shutdown takes a varying fraction of a second, which would dilute every rate.
STOPPED_AT: list[float] = []


@events.init_command_line_parser.add_listener
def _ui_fields(parser: Any) -> None:
    if not IN_WEB_UI:
        return
    from loadlab.load.ui_config import UiConfig

    stacks = list(UiConfig.from_environment().stacks)
    parser.add_argument("--stack", choices=stacks, default=stacks[0], help="the stack to drive")
    parser.add_argument(
        "--arrival-rate",
        type=float,
        default=0.0,
        help="the open model: requests per second over all Locust processes (0: closed model)",
    )
    parser.add_argument("--arrivals", choices=list(KINDS), default="constant", help="open model")
    parser.add_argument("--generators", type=int, default=1, include_in_web_ui=False)


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    RECORDER.export()  # a test in the web UI starts afresh: the last one's figures are gone
    STOPPED_AT.clear()
    if isinstance(environment.runner, MasterRunner) and IN_WEB_UI:
        # Sent to the workers with the users: each takes its share of the arrival rate.
        environment.parsed_options.generators = max(environment.runner.worker_count, 1)
    if not isinstance(environment.runner, MasterRunner):  # this process sends requests
        BACKGROUND.append(gevent.spawn(watch_generator, RECORDER.record_generator_delay))
        _schedule(environment)
        if ARRIVALS is not None:
            BACKGROUND.append(gevent.spawn(ARRIVALS.run))
    if isinstance(environment.runner, WorkerRunner):
        return
    started = time.time()
    gevent.spawn(_end_warmup, environment, float(os.environ.get("LOADLAB_WARMUP", "0")))
    if os.environ.get("LOADLAB_STATUS"):
        gevent.spawn(_write_status, environment, Path(os.environ["LOADLAB_STATUS"]), started)


@events.test_stopping.add_listener
def _stop_schedule(**_: Any) -> None:
    if not STOPPED_AT:
        STOPPED_AT.append(RECORDER.now())
    # No request falls due once the run is over; those still waiting were not sent.
    gevent.killall(BACKGROUND, block=False)
    BACKGROUND.clear()
    if ARRIVALS is not None:
        ARRIVALS.close()


def _schedule(environment: Environment) -> None:
    """In the web UI, the open model of the form's arrival rate, or the closed model."""
    global ARRIVALS
    options = environment.parsed_options
    if not IN_WEB_UI or options is None:
        return
    rate = float(getattr(options, "arrival_rate", 0) or 0)
    share = rate / max(int(getattr(options, "generators", 1) or 1), 1)
    kind = getattr(options, "arrivals", "constant")
    ARRIVALS = Arrivals(share, kind, lambda: RECORDER.arrivals) if rate > 0 else None


def _end_warmup(environment: Environment, seconds: float) -> None:
    gevent.sleep(seconds)
    if isinstance(environment.runner, MasterRunner):
        # Workers ship their figures every 3 s; told now, they drop what they hold from the
        # warm-up instead of shipping it into the measured figures.
        # With it, the master's clock: a worker on another machine keys its per-second
        # figures by the master's seconds, so the timeline adds up the same seconds.
        environment.runner.send_message(MEASURE_MESSAGE, {"master_time": time.time()})
    _start_measuring(environment)


def _start_measuring(environment: Environment, msg: Any = None, **_: Any) -> None:
    if msg is not None and isinstance(msg.data, dict) and "master_time" in msg.data:
        RECORDER.align_clock(float(msg.data["master_time"]))
    environment.events.reset_stats.fire()
    if environment.runner is not None:
        environment.runner.stats.reset_all()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    # A team's own plain Locust users take the open model's starts without a rewrite.
    plain_users.wrap(environment.user_classes, lambda: ARRIVALS, LoadlabUser)
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(MEASURE_MESSAGE, _start_measuring)
    if environment.web_ui is not None and IN_WEB_UI:
        from loadlab.load import webui

        session = webui.install(environment, RECORDER)
        environment.events.test_start.add_listener(lambda **_: session.start())
        environment.events.test_stopping.add_listener(lambda **_: session.stopping())
        environment.events.test_stop.add_listener(lambda **_: session.stop())


def _recent_p99(seconds: int = 5) -> float:
    """The live line's p99. One percentile only: this runs on the generator's event loop, and
    the mean (which latency_ms also computes) is a dot product over every bucket."""
    recent = RECORDER.recent(seconds)
    return hdr.values_at(recent, [99.0])[0] / 1000 if recent.get_total_count() else 0.0


def _write_status(environment: Environment, path: Path, started: float) -> None:
    runner = environment.runner
    while runner is not None and runner.state not in ("stopped", "quitting"):
        total = runner.stats.total
        status = {
            "elapsed": round(time.time() - started, 1),
            "measuring": RECORDER.measure_start is not None,
            "users": runner.user_count,
            "rps": round(total.current_rps, 1),
            "p99_ms": _recent_p99(),
            "requests": total.num_requests,
            "failures": total.num_failures,
        }
        path.write_text(json.dumps(status))
        # Seconds every worker reported long ago (they report every 3 s): their timeline
        # figures only, so a soak's generator does not grow by a histogram a second.
        RECORDER.compact(int(RECORDER.now()) - KEEP_WHOLE_S)
        gevent.sleep(1)


@events.quitting.add_listener
def _write_result(environment: Environment, **_: Any) -> None:
    out = os.environ.get("LOADLAB_RESULT")
    if not out or isinstance(environment.runner, WorkerRunner) or environment.runner is None:
        return
    stats = environment.runner.stats
    result = {
        "measure_start": RECORDER.measure_start,
        "measure_end": STOPPED_AT[0] if STOPPED_AT else RECORDER.now(),
        "locust_requests": stats.total.num_requests,
        "locust_failures": stats.total.num_failures,
        # Locust's own statistics of the measured window, per request and per failure, taken
        # as it quits: its CSV files are rewritten once a second and may miss the last one.
        "locust_by_request": {
            f"{e.method} {e.name}": [e.num_requests, e.num_failures] for e in stats.entries.values()
        },
        "locust_errors": [
            [e.method, e.name, StatsError.parse_error(e.error), e.occurrences]
            for e in stats.errors.values()
        ],
        "recorder": RECORDER.export(),
    }
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)
