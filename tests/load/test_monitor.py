"""The resource monitor: a tree added while it samples is never lost."""

from __future__ import annotations

import os
from typing import Any

from loadlab.load.monitor import Monitor


def test_a_tree_has_its_samples_before_the_sampler_can_see_it() -> None:
    """`add` used to register the tree first and its samples second: a sample taken in
    between raised a KeyError in the thread, which died silently (no resources table, no
    saturation flag). The sampler reads `roots`; `samples` must be ready when it does."""
    monitor = Monitor({})

    class Roots(dict[str, list[int]]):
        def setdefault(self, key: str, default: Any = None) -> Any:
            assert key in monitor.samples, "the tree became visible before its samples"
            return super().setdefault(key, default)

    monitor.roots = Roots()
    with monitor:
        monitor.add("locust", os.getpid())
        monitor.add("locust", os.getpid())  # a second process of the same component
    assert monitor.roots == {"locust": [os.getpid(), os.getpid()]}
    assert monitor._thread.is_alive() is False  # the with-block stopped it
