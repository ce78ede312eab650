"""Plain Locust users (a team's own file, nothing of loadlab's imported) in the open model,
without rewriting them: each task waits for the next intended start from loadlab's schedule.

A LoadlabUser takes its start per request (`call`); a plain user's requests are its own, so
the wrapper takes one start per task, before it runs: the user's `on_start` waits for the
first, its `wait_time` for each next one (its own think time is not used in the open model,
where the schedule is the think time). Each request the task sends counts from that start: a
task of one request (Locust's usual shape) is corrected exactly for coordinated omission; in a
task of several, each is corrected by how late the task itself started. The lateness rides in
each request's `context`, as a LoadlabUser's does: the user's client passes it on.

In the closed model nothing changes: the user's own `wait_time` and `on_start` run as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gevent
from locust.exception import StopUser

from loadlab.load.arrivals import Arrivals

LATE_ATTRIBUTE = "loadlab_late_ms"  # on the user's greenlet: how late its task started


def late_ms() -> float:
    """How late the current task started against its schedule (0 in the closed model)."""
    return getattr(gevent.getcurrent(), LATE_ATTRIBUTE, 0.0)


def _carry_lateness(user: Any) -> None:
    """The user's client adds the task's lateness to each request's context (Locust hands the
    context to the request event, where loadlab's recorder reads it). HttpSession's and
    FastHttpSession's get, post and the rest all go through `request`."""
    client = getattr(user, "client", None)
    if client is None or getattr(client, "_loadlab_late", False):
        return
    send = client.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["context"] = {**(kwargs.get("context") or {}), "late_ms": late_ms()}
        return send(method, url, *args, **kwargs)

    client.request = request
    client._loadlab_late = True


def _take(schedule: Arrivals) -> None:
    intended = schedule.take()
    if intended is None:  # the run is over
        raise StopUser()
    setattr(gevent.getcurrent(), LATE_ATTRIBUTE, schedule.sending(intended))


def wrap(
    user_classes: Iterable[Any], arrivals: Callable[[], Arrivals | None], own: type
) -> list[str]:
    """Make each user class that is not a subclass of `own` (LoadlabUser) take its starts
    from `arrivals()` whenever that is a schedule; the names of the classes wrapped."""
    wrapped = []
    for cls in user_classes:
        if issubclass(cls, own) or getattr(cls, "_loadlab_scheduled", False):
            continue
        own_wait: Any = cls.wait_time
        own_start: Any = cls.on_start

        def wait_time(user: Any, own_wait: Any = own_wait) -> float:
            schedule = arrivals()
            if schedule is None:
                return float(own_wait(user))
            _take(schedule)
            return 0.0

        def on_start(user: Any, own_start: Any = own_start) -> None:
            schedule = arrivals()
            if schedule is not None:
                _carry_lateness(user)
                _take(schedule)
            own_start(user)

        cls.wait_time = wait_time  # type: ignore[attr-defined]
        cls.on_start = on_start  # type: ignore[attr-defined]
        cls._loadlab_scheduled = True  # type: ignore[attr-defined]
        wrapped.append(cls.__name__)
    return wrapped
