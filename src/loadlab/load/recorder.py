"""Exact latencies: every request into an HdrHistogram, mergeable across Locust workers.

Locust rounds response times to two significant digits in its percentiles; this keeps three
(HdrHistogram, values in microseconds up to 2 minutes). A worker ships its histograms to the
master in each report and starts afresh, exactly as Locust ships its own stats, so both count
the same requests. Besides the measured histograms (cleared when the warm-up ends) it keeps
outcome counts for the whole run, warm-up included, for the integrity check.

In an open-model run (src/loadlab/load/arrivals.py) `total` holds each request's latency from
its *intended* start, as users arriving on schedule feel it (coordinated omission corrected),
and `uncorrected` from its actual send; in a closed-model run the two are the same.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from loadlab.load import hdr, server_timing

HIGHEST_US = 120_000_000
DIGITS = 3
# The seconds a master keeps whole (the last ones, which workers may still report to);
# older ones keep only their timeline figures (Recorder.compact).
KEEP_WHOLE_S = 30
# Histograms kept for reuse (see Recorder._fresh): a few more than the seconds kept whole,
# plus the Server-Timing parts.
SPARE_MAX = 64
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99_9": 99.9}
# Requests held in lists before they enter the histograms in one numpy pass (`_flush`):
# a few thousand, so a process that is never read (a worker between its 3 s reports, a
# local run between its status lines) holds a few hundred KB at most.
FLUSH_AT = 4096


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, DIGITS)


def outcome(status: int) -> str:
    """What the client knows of a request's effect: `ok` (2xx, applied), `rejected` (4xx,
    not applied) or `in_doubt` (no answer, or a 5xx: it may or may not have been applied)."""
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500:
        return "rejected"
    return "in_doubt"


@dataclass
class Recorder:
    """Histograms of one process (a worker, or the master after merging).

    `total`, `uncorrected`, `per_second` and `server` are read through properties: a
    request's values wait in lists and enter the histograms in one numpy pass when any of
    them is read, when the recorder exports, or every FLUSH_AT requests (load/hdr.py says
    why)."""

    _total: HdrHistogram = field(default_factory=new_histogram)
    _uncorrected: HdrHistogram = field(default_factory=new_histogram)
    _per_second: dict[int, HdrHistogram] = field(default_factory=dict)
    # Seconds long past, as [requests, p50 µs, p99 µs]: a histogram per second (~150 KB)
    # would grow a long run's generator by half a GB an hour (`compact`).
    seconds_done: dict[int, list[int]] = field(default_factory=dict)
    failures_per_second: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # The services' own Server-Timing parts (app, conn, sql), measured like `total`.
    _server: dict[str, HdrHistogram] = field(default_factory=dict)
    # (request name, outcome) -> count, for the whole run: never cleared by the warm-up.
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Every order answered 201, as answered (order_as_acknowledged), warm-up included: the
    # integrity check finds each in the database (analysis/integrity.py).
    orders: list[list[Any]] = field(default_factory=list)
    # The open model's schedule: offered, sent, late (> 1 ms after the intended time) and
    # not_sent (every allowed request already in flight), while measuring.
    arrivals: Counter[str] = field(default_factory=Counter)
    # How late the generator's own scheduler wakes (µs past a fixed short sleep), and how
    # much of each wake-up's lateness its thread waited for a CPU (arrivals.watch_generator).
    generator_delay: HdrHistogram = field(default_factory=new_histogram)
    generator_cpu_wait: HdrHistogram = field(default_factory=new_histogram)
    measure_start: float | None = None
    # Measured requests that started before measuring began (in the warm-up; in the open
    # model, fell due before it): the rates count requests *started* in the window, so the
    # requests in flight at either edge neither inflate nor dilute them (docs/open-model.md).
    started_before: int = 0
    # Seconds to add to this process's clock to read the master's: per-second figures from
    # workers on other machines must land in the master's seconds (see `align_clock`).
    clock_offset: float = 0.0
    # Histograms no longer in use, reset and reused instead of freed: each is a ~150 KB
    # array (and a reference cycle with its encoder, so only the cycle collector frees it);
    # two allocated and dropped a second left glibc's heap holding ~70 MB of free memory
    # after a simulated 30-minute run, ~6 MB with reuse.
    _spare: list[HdrHistogram] = field(default_factory=list, repr=False)
    _window: HdrHistogram = field(default_factory=new_histogram, repr=False)
    # Not yet in the histograms (`_flush`): each request's latency from its intended start
    # and from its send (ms), the time it finished (the master's clock), and the
    # Server-Timing parts (ms) by name.
    _latencies: list[float] = field(default_factory=list, repr=False)
    _sent_latencies: list[float] = field(default_factory=list, repr=False)
    _finished_at: list[float] = field(default_factory=list, repr=False)
    _parts: dict[str, list[float]] = field(default_factory=dict, repr=False)
    # Server-Timing headers as they came, and the client's time of each (NaN: not known).
    _timing_headers: list[str] = field(default_factory=list, repr=False)
    _timing_client_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def total(self) -> HdrHistogram:
        self._flush()
        return self._total

    @property
    def uncorrected(self) -> HdrHistogram:
        self._flush()
        return self._uncorrected

    @property
    def per_second(self) -> dict[int, HdrHistogram]:
        self._flush()
        return self._per_second

    @property
    def server(self) -> dict[str, HdrHistogram]:
        self._flush()
        return self._server

    def now(self) -> float:
        """The time on the master's clock."""
        return time.time() + self.clock_offset

    def align_clock(self, master_time: float) -> None:
        """Take the master's clock, as read when it sent `master_time` (a message on the
        local network takes well under a second, the resolution of the timeline)."""
        self.clock_offset = master_time - time.time()

    def record(
        self,
        name: str,
        status: int,
        latency_ms: float,
        error: str | None,
        uncorrected_ms: float | None = None,
    ) -> None:
        """One finished request; `error` is its failure kind, None if it passed. In an open
        run `latency_ms` counts from the intended start, `uncorrected_ms` from the send."""
        now = self.now()
        if self.measure_start is not None and now - latency_ms / 1000 < self.measure_start:
            self.started_before += 1
        self._latencies.append(latency_ms)
        self._sent_latencies.append(latency_ms if uncorrected_ms is None else uncorrected_ms)
        self._finished_at.append(now)
        if error is not None:
            self.errors[error] += 1
            self.failures_per_second[int(now)] += 1
        self.outcomes[(name, outcome(status))] += 1
        if len(self._latencies) >= FLUSH_AT:
            self._flush()

    def record_server(self, timing: dict[str, float], client_ms: float | None = None) -> None:
        """The parts of one response's Server-Timing header (ms), with those derived from
        them (server_timing.derived)."""
        for part, ms in server_timing.derived(timing, client_ms).items():
            self._parts.setdefault(part, []).append(ms)

    def record_server_header(self, header: str, client_ms: float | None) -> None:
        """A response's Server-Timing header as it came, read with a few thousand others
        when the recorder flushes (server_timing.parts): what `record_server` keeps, at a
        fraction of the generator's time per request."""
        self._timing_headers.append(header)
        self._timing_client_ms.append(math.nan if client_ms is None else client_ms)

    def _flush(self) -> None:
        """Put the values waiting in lists into the histograms."""
        if self._latencies:
            latencies = hdr.micros(self._latencies, HIGHEST_US)
            hdr.add_values(self._total, latencies)
            hdr.add_values(self._uncorrected, hdr.micros(self._sent_latencies, HIGHEST_US))
            seconds = hdr.whole_seconds(self._finished_at)
            for second in hdr.distinct(seconds):
                if second not in self._per_second:
                    self._per_second[second] = self._fresh()
                hdr.add_values(self._per_second[second], latencies[seconds == second])
            self._latencies, self._sent_latencies, self._finished_at = [], [], []
        parts = {part: [np.asarray(values)] for part, values in self._parts.items()}
        if self._timing_headers:
            read = server_timing.parts(self._timing_headers, self._timing_client_ms)
            for part, arrays in read.items():
                parts.setdefault(part, []).extend(arrays)
        for part, arrays in parts.items():
            if part not in self._server:
                self._server[part] = self._fresh()
            hdr.add_values(self._server[part], hdr.micros(np.concatenate(arrays), HIGHEST_US))
        self._parts, self._timing_headers, self._timing_client_ms = {}, [], []

    def record_generator_delay(self, ms: float, cpu_wait_ms: float | None = None) -> None:
        self.generator_delay.record_value(_micros(ms))
        if cpu_wait_ms is not None:
            self.generator_cpu_wait.record_value(_micros(cpu_wait_ms))

    def acknowledged_order(self, body: dict[str, Any]) -> None:
        self.orders.append(order_as_acknowledged(body))

    def interrupted(self, name: str) -> None:
        """A request cut off by the end of the run: sent, never answered."""
        self.outcomes[(name, "in_doubt")] += 1

    def compact(self, before: int) -> None:
        """Keep only the timeline's figures of the seconds before `before` (the master does
        this for seconds every worker has long reported); the whole-run histograms stay."""
        self._flush()
        for second in [s for s in self._per_second if s < before]:
            histogram = self._per_second.pop(second)
            self._add_done(second, _timeline_figures(histogram))
            self._retire(histogram)

    def recent(self, seconds: int) -> HdrHistogram:
        """The latencies of the last `seconds` whole seconds, merged into a histogram this
        recorder reuses: read it before the next call."""
        self._flush()
        hdr.reset(self._window)
        now = int(self.now())
        for second in range(now - seconds, now):
            if second in self._per_second:
                self._window.add(self._per_second[second])
        return self._window

    def _fresh(self) -> HdrHistogram:
        if self._spare:
            histogram = self._spare.pop()
            hdr.reset(histogram)
            return histogram
        return new_histogram()

    def _retire(self, histogram: HdrHistogram) -> None:
        if len(self._spare) < SPARE_MAX:
            self._spare.append(histogram)

    def _clear_measured(self) -> None:
        """Empty the measured histograms in place and retire the per-second and per-part ones."""
        for histogram in (
            self._total,
            self._uncorrected,
            self.generator_delay,
            self.generator_cpu_wait,
        ):
            hdr.reset(histogram)
        for histogram in [*self._per_second.values(), *self._server.values()]:
            self._retire(histogram)
        self._per_second.clear()
        self._server.clear()
        self.seconds_done.clear()
        self.failures_per_second.clear()
        self.errors.clear()
        self.arrivals.clear()
        self.started_before = 0
        self._latencies, self._sent_latencies, self._finished_at = [], [], []
        self._parts, self._timing_headers, self._timing_client_ms = {}, [], []

    def _add_done(self, second: int, row: list[int]) -> None:
        """A second's [requests, p50, p99]; a second already summarised (a report later than
        any worker sends one) keeps its percentiles and adds the requests."""
        if second in self.seconds_done:
            self.seconds_done[second][0] += row[0]
        else:
            self.seconds_done[second] = list(row)

    def timeline_second(self, second: int) -> tuple[int, float | None, float | None]:
        """(requests, p50 ms, p99 ms) of one second, from its histogram or its summary."""
        self._flush()
        histogram = self._per_second.get(second)
        if histogram is not None:
            count, p50, p99 = _timeline_figures(histogram)
            if second in self.seconds_done:
                count += self.seconds_done[second][0]
        elif second in self.seconds_done:
            count, p50, p99 = self.seconds_done[second]
        else:
            return 0, None, None
        return count, (p50 / 1000 if count else None), (p99 / 1000 if count else None)

    def last_second(self) -> int | None:
        """The last second in which a request finished (None: none did)."""
        self._flush()
        return max([*self._per_second, *self.seconds_done], default=None)

    def start_measuring(self) -> None:
        """The warm-up is over: clear the measured histograms (outcomes stay)."""
        self._clear_measured()
        self.measure_start = self.now()

    def export(self) -> dict[str, Any]:
        """Everything recorded since the last export, as JSON-safe data; then start afresh."""
        self._flush()
        data = {
            "total": _encode(self._total),
            "uncorrected": _encode(self._uncorrected),
            "generator_delay": _encode(self.generator_delay),
            "generator_cpu_wait": _encode(self.generator_cpu_wait),
            "arrivals": dict(self.arrivals),
            "started_before": self.started_before,
            "per_second": {str(s): _encode(h) for s, h in self._per_second.items()},
            "seconds_done": {str(s): row for s, row in self.seconds_done.items()},
            "failures_per_second": {str(s): n for s, n in self.failures_per_second.items()},
            "errors": dict(self.errors),
            "server": {part: _encode(h) for part, h in self._server.items()},
            "outcomes": [[name, kind, n] for (name, kind), n in self.outcomes.items()],
            "orders": self.orders,
        }
        self._clear_measured()
        self.outcomes.clear()
        self.orders = []  # a new list: `data` holds the old one
        return data

    def merge(self, data: dict[str, Any]) -> None:
        """Add what another process exported."""
        # .get: results written before these fields existed still merge.
        for mine, field_name in (
            (self._total, "total"),
            (self._uncorrected, "uncorrected"),
            (self.generator_delay, "generator_delay"),
            (self.generator_cpu_wait, "generator_cpu_wait"),
        ):
            if data.get(field_name):
                _decode_add(mine, data[field_name])
        self.arrivals.update(data.get("arrivals", {}))
        self.started_before += data.get("started_before", 0)
        for second, encoded in data["per_second"].items():
            key = int(second)
            if key not in self._per_second:
                self._per_second[key] = self._fresh()
            _decode_add(self._per_second[key], encoded)
        for second, row in data.get("seconds_done", {}).items():
            self._add_done(int(second), row)
        for second, n in data["failures_per_second"].items():
            self.failures_per_second[int(second)] += n
        self.errors.update(data["errors"])
        for part, encoded in data.get("server", {}).items():
            if part not in self._server:
                self._server[part] = self._fresh()
            if encoded:
                _decode_add(self._server[part], encoded)
        for name, kind, n in data["outcomes"]:
            self.outcomes[(name, kind)] += n
        self.orders.extend(data.get("orders", []))


def _decode_add(histogram: HdrHistogram, encoded: str) -> None:
    """hdrh's decode_and_add, but the decoded copy is freed at once: a histogram and its
    encoder refer to each other, so otherwise only the cycle collector frees it, and a
    master merging a few a second from its workers grew glibc's heap by tens of MB."""
    other = HdrHistogram.decode(encoded.encode())
    histogram.add(other)
    other.encoder = None


def _timeline_figures(histogram: HdrHistogram) -> list[int]:
    """[requests, p50 µs, p99 µs] of one second."""
    count = histogram.get_total_count()
    if not count:
        return [0, 0, 0]
    return [count, *hdr.values_at(histogram, (50.0, 99.0))]


def order_as_acknowledged(body: dict[str, Any]) -> list[Any]:
    """A 201's order as the integrity check compares it: [id, customer id, total in cents,
    [[product id, quantity, unit price in cents], ...] by product id]."""
    items = sorted(
        [i["product"]["id"], i["quantity"], i["unit_price_cents"]] for i in body["items"]
    )
    return [body["id"], body["customer"]["id"], body["total_cents"], items]


def _micros(ms: float) -> int:
    return min(max(int(ms * 1000), 1), HIGHEST_US)


def _encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode() if histogram.get_total_count() else ""


def latency_ms(histogram: HdrHistogram, mean: bool = True) -> dict[str, float]:
    """p50 .. p99.9, max and mean of a histogram, in milliseconds."""
    if histogram.get_total_count() == 0:
        return {key: 0.0 for key in [*PERCENTILES, "max", *(["mean"] if mean else [])]}
    at = hdr.values_at(histogram, PERCENTILES.values())
    values = {key: us / 1000 for key, us in zip(PERCENTILES, at, strict=True)}
    values["max"] = histogram.get_max_value() / 1000
    if mean:
        values["mean"] = round(hdr.mean(histogram) / 1000, 3)
    return values


def percentile_curve(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, latency ms) points from p0 to p99.99, spaced for a log-scale chart."""
    if histogram.get_total_count() == 0:
        return []
    # 1 - 10^(-nines/10): 0%, 20.6%, ..., 99.99%
    percentiles = [100 * (1 - 10 ** (-nines / 10)) for nines in range(0, 41)]
    at = hdr.values_at(histogram, percentiles)
    return [(round(p, 4), us / 1000) for p, us in zip(percentiles, at, strict=True)]
