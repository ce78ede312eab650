"""Per-variant figures from the recorder's exact histograms and the monitor's samples."""

from __future__ import annotations

import statistics
from typing import Any

from hdrh.histogram import HdrHistogram

from loadlab.load import hdr
from loadlab.load.recorder import Recorder, latency_ms, percentile_curve


def variant_summary(result: dict[str, Any]) -> dict[str, Any]:
    """requests, failures, error rate, errors by kind, throughput, exact latency, timeline."""
    recorder = Recorder()
    recorder.merge(result["recorder"])
    requests = recorder.total.get_total_count()
    failures = sum(recorder.errors.values())
    start = result["measure_start"] or result["measure_end"]
    # The window: from the warm-up's end to the moment the run began to stop. Every request
    # counted is in the figures; the rate counts those that started inside the window (all
    # of them finish, in the stop timeout if need be), so the ones in flight at its edges
    # neither inflate nor dilute it.
    seconds = max(result["measure_end"] - start, 1e-9)
    started_inside = requests - recorder.started_before
    # The timeline runs on to the last answer, so every counted request is in it.
    end = int(result["measure_end"])
    timeline = _timeline(recorder, int(start), max(end, recorder.last_second() or end))
    rates = [row["rps"] for row in timeline[1:-1]] or [0.0]  # first/last seconds are partial
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else 0.0,
        "errors": dict(recorder.errors.most_common()),
        "throughput_rps": round(started_inside / seconds, 2),
        "throughput_rps_per_second_sd": round(statistics.pstdev(rates), 2),
        "measured_seconds": round(seconds, 2),
        "latency_ms": latency_ms(recorder.total),
        "locust_requests": result["locust_requests"],
        "locust_failures": result["locust_failures"],
        # Locust's own per request and per failure (reports before them have neither).
        "locust_by_request": result.get("locust_by_request"),
        "locust_errors": result.get("locust_errors"),
        "percentile_curve": percentile_curve(recorder.total),
        # The services' Server-Timing parts (None: the target sends no such header).
        "server_ms": {
            part: {**latency_ms(h), "count": h.get_total_count()}
            for part, h in sorted(recorder.server.items())
        }
        or None,
        "timeline": timeline,
        # Generator delay: how late each Locust process woke from a fixed 10 ms sleep, and
        # the share of that lateness spent waiting for a CPU (the rest: its own loop's work).
        "generator_delay_ms": _delay(recorder.generator_delay, recorder.generator_cpu_wait),
        **_open_model(recorder, started_inside, seconds),
    }


def _delay(histogram: HdrHistogram, cpu_wait: HdrHistogram) -> dict[str, float | None] | None:
    if histogram.get_total_count() == 0:
        return None
    figures = latency_ms(histogram)
    late = hdr.mean(histogram) * histogram.get_total_count()
    waited = hdr.mean(cpu_wait) * cpu_wait.get_total_count()
    return {
        "p50": figures["p50"],
        "p99": figures["p99"],
        "max": figures["max"],
        # Of all the time the generator woke late, the share it waited for a CPU: near 1,
        # the machine is short of cores for it; near 0, its own event loop was busy.
        "cpu_wait_share": round(waited / late, 3) if late and cpu_wait.get_total_count() else None,
    }


def _open_model(recorder: Recorder, requests: int, seconds: float) -> dict[str, Any]:
    """An open-model run's schedule, and its latency from the actual send beside the
    corrected one; nothing for a closed-model run."""
    counts = recorder.arrivals
    if not counts:
        return {}
    return {
        "offered_rps": round(counts["offered"] / seconds, 2),
        "achieved_rps": round(requests / seconds, 2),
        "arrivals": {k: counts[k] for k in ("offered", "sent", "late", "not_sent")},
        "latency_uncorrected_ms": latency_ms(recorder.uncorrected),
    }


def _timeline(recorder: Recorder, start: int, end: int) -> list[dict[str, Any]]:
    rows = []
    for second in range(start, end + 1):
        count, p50, p99 = recorder.timeline_second(second)
        rows.append(
            {
                "t": second - start,
                "rps": count,
                "failures": recorder.failures_per_second.get(second, 0),
                "p50_ms": p50,
                "p99_ms": p99,
            }
        )
    return rows
