"""Run by test_plain_users.py in a process of its own (Locust monkey-patches the standard
library as it is imported, which the test process must not be): a plain user class wrapped
by load/plain_users.py, in the open model and in the closed; prints what it saw as JSON."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import User, constant  # noqa: E402
from locust.exception import StopUser  # noqa: E402

from loadlab.load import plain_users  # noqa: E402
from loadlab.load.arrivals import Arrivals  # noqa: E402


class Client:
    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def request(self, method: str, url: str, context: dict[str, Any] | None = None) -> None:
        self.contexts.append(context or {})

    def get(self, url: str, **kwargs: Any) -> None:  # as Locust's clients do: via request
        self.request("GET", url, **kwargs)


class Own(User):  # stands for LoadlabUser: left alone
    abstract = True


def plain_class(started: list[str]) -> Any:
    class Plain(User):
        wait_time = constant(7)

        def on_start(self) -> None:
            started.append("own on_start")

    return Plain


def open_model() -> dict[str, Any]:
    counts: Counter[str] = Counter()
    schedule = Arrivals(10, "constant", lambda: counts)
    started: list[str] = []
    cls = plain_class(started)
    wrapped = plain_users.wrap([cls, Own], lambda: schedule, Own)
    user = object.__new__(cls)  # no environment needed: only the wrapped methods run
    user.client = Client()
    schedule._due.put(time.perf_counter() - 0.05)  # a start due 50 ms ago
    # As in Locust, its start and its first task run in the user's own greenlet.
    gevent.spawn(lambda: (cls.on_start(user), user.client.get("/first"))).join(timeout=5)
    waiting = gevent.spawn(lambda: (cls.wait_time(user), user.client.get("/second")))
    schedule._due.put(time.perf_counter() + 0.02)  # the next one, due in 20 ms
    waiting.join(timeout=5)
    schedule.close()
    try:
        cls.wait_time(user)
        stopped = False
    except StopUser:
        stopped = True
    return {
        "wrapped": wrapped,
        "started": started,
        "counts": dict(counts),
        "waited": waiting.value[0],
        "late_ms": [c.get("late_ms") for c in user.client.contexts],
        "stopped": stopped,
    }


def closed_model() -> dict[str, Any]:
    started: list[str] = []
    cls = plain_class(started)
    plain_users.wrap([cls], lambda: None, Own)
    user = object.__new__(cls)
    user.client = Client()
    cls.on_start(user)
    user.client.get("/x")
    return {
        "started": started,
        "wait": cls.wait_time(user),
        "contexts": user.client.contexts,
        "again": plain_users.wrap([cls], lambda: None, Own),
    }


print(json.dumps({"open": open_model(), "closed": closed_model()}))
