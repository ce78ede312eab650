"""The exact recorder: counts add up across workers, the warm-up clears only what it should."""

from __future__ import annotations

import time

import pytest

from loadlab.load.recorder import Recorder, latency_ms, new_histogram, outcome


def test_exports_merge_to_the_same_counts_as_one_process() -> None:
    single, worker_a, worker_b, master = Recorder(), Recorder(), Recorder(), Recorder()
    for i in range(1, 1001):
        target = worker_a if i % 2 else worker_b
        for r in (single, target):
            r.record(
                "POST /x",
                200 if i % 10 else 503,
                latency_ms=i / 10,
                error=None if i % 10 else "HTTP 503",
            )
    master.merge(worker_a.export())
    master.merge(worker_b.export())
    assert master.total.get_total_count() == single.total.get_total_count() == 1000
    assert latency_ms(master.total) == latency_ms(single.total)
    assert master.errors == single.errors == {"HTTP 503": 100}
    assert master.outcomes[("POST /x", "in_doubt")] == 100
    assert worker_a.total.get_total_count() == 0  # export starts afresh


def _order(order_id: int) -> dict[str, object]:
    items = [
        {"id": 9, "quantity": 2, "unit_price_cents": 150, "product": {"id": 7}},
        {"id": 8, "quantity": 1, "unit_price_cents": 99, "product": {"id": 3}},
    ]
    return {"id": order_id, "customer": {"id": 4}, "total_cents": 399, "items": items}


def test_acknowledged_orders_survive_the_warmup_and_merge_from_every_worker() -> None:
    worker_a, worker_b, master = Recorder(), Recorder(), Recorder()
    worker_a.acknowledged_order(_order(1))
    worker_a.start_measuring()  # an order answered in the warm-up is checked too
    worker_b.acknowledged_order(_order(2))
    master.merge(worker_a.export())
    master.merge(worker_b.export())
    # As the check compares them: items by product id, the prices they were sold at.
    assert master.orders == [
        [1, 4, 399, [[3, 1, 99], [7, 2, 150]]],
        [2, 4, 399, [[3, 1, 99], [7, 2, 150]]],
    ]
    assert worker_a.orders == []  # exported once


def test_percentiles_keep_three_significant_digits() -> None:
    r = Recorder()
    for ms in (1.234, 12.34, 123.4, 1234.0):
        r.record("GET /y", 200, ms, None)
    figures = latency_ms(r.total)
    assert figures["max"] == pytest.approx(1234.0, rel=1e-3)
    assert figures["p50"] == pytest.approx(12.34, rel=1e-3)


def test_warmup_clears_histograms_but_keeps_outcomes() -> None:
    r = Recorder()
    r.record("POST /users/[id]/visit", 200, 5.0, None)
    r.interrupted("POST /users/[id]/visit")
    r.start_measuring()
    assert r.total.get_total_count() == 0 and not r.errors and not r.per_second
    assert r.outcomes[("POST /users/[id]/visit", "ok")] == 1
    assert r.outcomes[("POST /users/[id]/visit", "in_doubt")] == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "ok"),
        (201, "ok"),
        (404, "rejected"),
        (422, "rejected"),
        (503, "in_doubt"),
        (0, "in_doubt"),
    ],
)
def test_outcome_of_a_status(status: int, kind: str) -> None:
    assert outcome(status) == kind


def test_a_worker_on_another_clock_lands_in_the_masters_seconds() -> None:
    """A remote worker's clock an hour ahead: after taking the master's time its seconds are
    the master's, so the merged timeline adds up the same seconds."""
    master, worker = Recorder(), Recorder()
    worker.clock_offset = 3600.0  # as if its own clock were an hour behind the master's
    worker.align_clock(time.time())  # the master's time arrives with the warm-up message
    assert abs(worker.clock_offset) < 1.0
    master.record("GET /x", 200, 1.0, None)
    worker.record("GET /x", 200, 1.0, None)
    master.merge(worker.export())
    assert sum(h.get_total_count() for h in master.per_second.values()) == 2
    assert max(master.per_second) - min(master.per_second) <= 1


def test_clock_offset_moves_the_seconds() -> None:
    r = Recorder()
    r.align_clock(time.time() - 7200.0)  # the master is two hours behind this process
    r.record("GET /x", 200, 1.0, None)
    (second,) = r.per_second
    assert abs(second - (time.time() - 7200.0)) < 2


def test_compacted_seconds_keep_their_timeline_figures_and_free_their_histograms() -> None:
    """A soak's master keeps a histogram only for recent seconds: the older ones become
    [requests, p50, p99], which the timeline reads as before, also after export and merge."""
    r = Recorder()
    base = int(r.now()) - 100
    for second in range(base, base + 5):
        for ms in range(1, 101):
            r.per_second.setdefault(second, new_histogram()).record_value(ms * 1000)
    before = [r.timeline_second(s) for s in range(base, base + 5)]
    r.compact(base + 3)
    assert sorted(r.per_second) == [base + 3, base + 4]  # recent ones kept whole
    assert sorted(r.seconds_done) == [base, base + 1, base + 2]
    assert [r.timeline_second(s) for s in range(base, base + 5)] == before
    assert before[0][0] == 100 and before[0][1] == pytest.approx(50.0, rel=1e-3)
    master = Recorder()
    master.merge(r.export())
    assert [master.timeline_second(s) for s in range(base, base + 5)] == before
    assert master.timeline_second(base - 1) == (0, None, None)


def test_a_long_run_reuses_its_histograms_and_a_reused_one_starts_empty(monkeypatch) -> None:
    """A soak's generator must not allocate a histogram a second (glibc kept the freed ones'
    memory): compacted seconds and exports hand theirs back for reuse, and a reused one
    holds only its own second's requests."""
    from loadlab.load import recorder

    made = []
    monkeypatch.setattr(recorder, "new_histogram", lambda: made.append(1) or new_histogram())
    clock = [1_700_000_000.0]
    monkeypatch.setattr(recorder.time, "time", lambda: clock[0])
    worker, master = Recorder(), Recorder()
    for second in range(300):
        for ms in range(1, 101):  # 100 requests a second: 1..100 ms, then 1001..1100 ms
            latency = ms + (1000 if second >= 150 else 0)
            clock[0] = 1_700_000_000 + second + ms / 1000
            worker.record("GET /x", 200, latency, None)
            worker.record_server({"app": 1.0, "conn": 0.1, "sql": 0.5}, latency)
        if second % 3 == 2:  # a worker reports every 3 s
            master.merge(worker.export())
            if second > 5:  # the window: the 5 whole seconds before this one
                assert master.recent(5).get_total_count() == 500
        master.compact(int(master.now()) - 30)
    assert len(made) < 60  # not one per second (300), nor one per merged part
    count, p50, p99 = master.timeline_second(1_700_000_000 + 299)
    assert count == 100
    assert (p50, p99) == (pytest.approx(1050.0, rel=1e-3), pytest.approx(1099.0, rel=1e-3))
    whole = latency_ms(master.total)
    assert master.total.get_total_count() == 300 * 100
    assert whole["p50"] == pytest.approx(100.0, rel=1e-3)  # half of them 1..100 ms


def test_an_export_leaves_the_recorder_empty_and_keeps_what_it_exported() -> None:
    r = Recorder()
    r.record("POST /orders", 201, 12.0, None)
    r.record_server({"app": 5.0}, 12.0)
    r.acknowledged_order(_order(1))
    data = r.export()
    assert data["orders"] and data["outcomes"] == [["POST /orders", "ok", 1]]
    again = r.export()
    assert again["orders"] == [] and again["outcomes"] == [] and again["server"] == {}
    assert Recorder().total.get_total_count() == 0 and r.total.get_total_count() == 0
    master = Recorder()
    master.merge(data)
    assert master.total.get_total_count() == 1 and master.server["app"].get_total_count() == 1


def test_the_fast_mean_is_hdrhs_mean() -> None:
    """hdr.mean replaces hdrh's bucket walk (tens of ms a histogram) by a dot
    product: the same value, to the last digit, for few and many values, near and far."""
    import random

    from loadlab.load.hdr import mean as mean_us
    from loadlab.load.recorder import new_histogram

    rng = random.Random(5)
    for n, scale in ((1, 5.0), (10, 20_000.0), (5_000, 20_000.0), (2_000, 3e7)):
        h = new_histogram()
        for _ in range(n):
            h.record_value(min(int(rng.expovariate(1 / scale)) + 1, 10**8))
        assert mean_us(h) == pytest.approx(h.get_mean_value(), rel=1e-12)
    assert mean_us(new_histogram()) == 0.0


def test_a_request_in_flight_when_measuring_began_is_counted_but_not_in_the_rate() -> None:
    """The rate counts requests started inside the window: one that began in the warm-up
    and finished after it is in the figures (requests, latency) but not in req/s, as one
    still in flight when the run stops is in both (it started inside)."""
    from loadlab.analysis.summary import variant_summary

    recorder = Recorder()
    recorder.measure_start = recorder.now() - 1.0
    recorder.record("GET /x", 200, 1500.0, None)  # sent 1.5 s ago, before measuring began
    recorder.record("GET /x", 200, 10.0, None)
    assert recorder.started_before == 1
    start = recorder.measure_start
    merged = Recorder()
    merged.merge(recorder.export())
    assert merged.started_before == 1
    result = {
        "measure_start": start,
        "measure_end": start + 2.0,
        "recorder": merged.export(),
        "locust_requests": 2,
        "locust_failures": 0,
    }
    v = variant_summary(result)
    assert v["requests"] == 2 and v["throughput_rps"] == 0.5
