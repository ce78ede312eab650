"""The open model: requests start on a schedule that does not wait for replies.

One schedule per Locust process sends its share of the rate; the process's N users are a
pool, the most requests that may be in flight at once (k6's maxVUs). When a request falls due
a free user sends it. When all N are busy it waits, in order, for the first user to come free
and is sent late: nothing is skipped, as in wrk2, and its latency counts from the moment it
was due (its *intended* start), so the wait is in it: what a user arriving at that moment
would have felt (coordinated omission corrected, in HdrHistogram's words). The recorder keeps
the latency from the actual send beside it: the figure a closed-loop tool would report.

Why not k6's choice, which drops a request that finds every user busy? A dropped request
leaves the latency figures, so a stall that holds every user would vanish from them just as
it does in a closed loop. Why not wrk2's per-connection schedules? A shared schedule keeps
the offered rate exact whatever N is, and one stalled connection does not delay the rest.

Counted: `offered` (fell due while measuring), `sent`, `late` (sent more than 1 ms after its
intended start) and `not_sent` (still waiting for a free user when the run ended: N was too
small for the load, or the service fell behind; or fell due while the process could not hand
it out: stalled without a CPU, or Locust itself busy stopping the run).

`constant` arrivals are evenly spaced; `poisson` ones have exponential gaps of the same mean
(independent arrivals, as many users each clicking at random make).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable

import gevent
from gevent.queue import Queue

LATE_MS = 1.0  # a request sent later than this after its intended start is a late start
# gevent's loop (libev on epoll) wakes a timer on the next whole millisecond, 0 to 1 ms late:
# the schedule wakes half of that early, so each start lands within about 0.5 ms either side
# of its intended time instead of 0.7 ms late on average (measured here). A start that lands
# early counts as on time (lateness 0), so no latency is ever shortened.
WAKE_EARLY_S = 0.0005
KINDS = ("constant", "poisson")


class Arrivals:
    """The schedule of one Locust process: `run` in a greenlet, `take` in each user, `close`
    when the run ends."""

    def __init__(
        self,
        rate: float,
        kind: str,
        counts: Callable[[], Counter[str]],
        rng: random.Random | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"arrivals must be one of {', '.join(KINDS)}, not {kind!r}")
        self.rate = rate
        self.poisson = kind == "poisson"
        self.counts = counts  # the recorder's counter now (it is replaced on each export)
        self.rng = rng or random.Random()
        self._due: Queue[float | None] = Queue()  # intended starts not yet taken
        self._waiting = 0  # users blocked in take()
        self._next: float | None = None  # the next intended start not yet handed out
        self._closed = False

    def _gap(self) -> float:
        return self.rng.expovariate(self.rate) if self.poisson else 1.0 / self.rate

    def run(self) -> None:
        """Hand out intended start times (time.perf_counter seconds) until killed."""
        self._next = time.perf_counter() + self._gap()
        while not self._closed:
            # Behind schedule (a busy process) it still yields, so free users take what is due.
            gevent.sleep(max(self._next - time.perf_counter() - WAKE_EARLY_S, 0.0))
            if self._closed or self._next is None:  # closed while it slept: close counted it
                return
            self.counts()["offered"] += 1
            self._due.put(self._next)
            self._next += self._gap()

    def take(self) -> float | None:
        """Wait until a request is due; its intended start, or None once the run is over."""
        if self._closed:
            return None
        self._waiting += 1
        try:
            return self._due.get()
        finally:
            self._waiting -= 1

    def sending(self, intended: float) -> float:
        """Count a request about to be sent; how late it is, in ms."""
        late_ms = max(time.perf_counter() - intended, 0.0) * 1000
        counts = self.counts()
        counts["sent"] += 1
        if late_ms > LATE_MS:
            counts["late"] += 1
        return late_ms

    def close(self) -> None:
        """The run is over: what is still due was never sent; users waiting go home."""
        self._closed = True
        counts = self.counts()
        while not self._due.empty():
            if self._due.get_nowait() is not None:
                counts["not_sent"] += 1
        # Requests that fell due while this process was stalled (no CPU for it, or its loop
        # busy) and the schedule had not yet woken to hand them out: offered, never sent.
        now = time.perf_counter()
        while self._next is not None and self._next <= now:
            counts["offered"] += 1
            counts["not_sent"] += 1
            self._next += self._gap()
        self._next = None  # counted once, however often the run is told it is over
        for _ in range(self._waiting):
            self._due.put(None)


# Every wake-up costs CPU beyond the work it does, on the cores the stack needs: here (a
# virtual machine) ~80 µs for a bare time.sleep and ~180 µs for gevent's, measured. At 10 ms
# the watcher took 27 ms of CPU a second, 2.7% of a core, as much as ~50 µs a request at the
# headline's rate (`make bench`); at 50 ms, ~5 ms, and still 1,200 samples a minute.
GENERATOR_TICK_S = 0.05


def watch_generator(record: Callable[[float, float | None], None]) -> None:
    """Until killed: sleep a fixed 50 ms and record how much later it woke (ms), and how
    much of that the process's thread spent waiting for a CPU (the kernel's run-queue wait,
    /proc/thread-self/schedstat; None where the kernel keeps none). A process whose greenlets
    wait for the CPU or for each other wakes late, and every request it times is that much
    late too: this is the generator's own share of the latency; the CPU wait says which of
    the two it was (the rest is the event loop busy with other greenlets' work). It wakes as
    the schedule does (WAKE_EARLY_S), so libev's whole-millisecond timer is not counted as
    delay: responses wake the loop through their sockets, never through a timer."""
    waited = _cpu_wait_reader()
    while True:
        started, before = time.perf_counter(), waited()
        gevent.sleep(GENERATOR_TICK_S - WAKE_EARLY_S)
        late = max(time.perf_counter() - started - GENERATOR_TICK_S, 0.0) * 1000
        after = waited()
        cpu = None if before is None or after is None else min((after - before) / 1e6, late)
        record(late, cpu)


def _cpu_wait_reader() -> Callable[[], int | None]:
    """A reader of this thread's total run-queue wait in ns (a file kept open: a read every
    10 ms costs microseconds)."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: None

    def read() -> int | None:
        try:
            return int(os.pread(fd, 128, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return None

    return read
