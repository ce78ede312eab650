"""hdrh's loops done by numpy (load/hdr.py) give hdrh's own answers: the buckets a value goes
into, percentiles, the mean."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loadlab.load import hdr
from loadlab.load.recorder import FLUSH_AT, HIGHEST_US, Recorder, _micros, new_histogram


def _same(a: object, b: object) -> None:
    assert list(a.counts) == list(b.counts)  # type: ignore[attr-defined]
    for attribute in ("total_count", "min_value", "max_value"):
        assert getattr(a, attribute) == getattr(b, attribute), attribute


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=HIGHEST_US), min_size=1, max_size=300))
def test_add_values_fills_the_buckets_record_value_fills(values: list[int]) -> None:
    one_by_one, at_once = new_histogram(), new_histogram()
    for value in values:
        one_by_one.record_value(value)
    hdr.add_values(at_once, np.array(values, dtype=np.int64))
    _same(one_by_one, at_once)
    for p in (0.0, 50.0, 99.0, 100.0):
        assert at_once.get_value_at_percentile(p) == one_by_one.get_value_at_percentile(p)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(min_value=-5, max_value=2 * HIGHEST_US / 1000, allow_nan=False),
            st.sampled_from([0.0, 0.0009, 0.001, 1.9999, HIGHEST_US / 1000]),
        ),
        max_size=100,
    )
)
def test_micros_rounds_as_the_one_value_path_does(ms: list[float]) -> None:
    assert hdr.micros(ms, HIGHEST_US).tolist() == [_micros(v) for v in ms]


def test_a_value_that_is_not_a_number_is_kept_as_the_highest() -> None:
    assert hdr.micros([float("nan"), float("inf"), float("-inf")], HIGHEST_US).tolist() == [
        HIGHEST_US,
        HIGHEST_US,
        1,
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=HIGHEST_US), max_size=200),
    st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=8),
)
def test_percentiles_are_hdrhs(values: list[int], percentiles: list[float]) -> None:
    histogram = new_histogram()
    for value in values:
        histogram.record_value(value)
    wanted = [*percentiles, 0.0, 50.0, 99.0, 99.99, 100.0]
    assert hdr.values_at(histogram, wanted) == [
        histogram.get_value_at_percentile(p) for p in wanted
    ]


def test_bucket_middles_are_hdrhs_for_every_bucket() -> None:
    h = new_histogram()
    middles = hdr.bucket_middles(h.counts_len, h.unit_magnitude, h.sub_bucket_half_count_magnitude)
    assert middles.tolist() == [
        float(h._hdr_median_equiv_value(h.get_value_from_index(i))) for i in range(h.counts_len)
    ]


def test_reset_empties_a_histogram_as_hdrh_does() -> None:
    used, pristine = new_histogram(), new_histogram()
    for value in (1, 999, 5_000_000):
        used.record_value(value)
    hdr.reset(used)
    _same(used, pristine)
    assert used.get_min_value() == pristine.get_min_value()


def test_the_recorder_holds_nothing_back_whenever_it_is_read() -> None:
    """Across the automatic flush (FLUSH_AT requests) and reads in between, the recorder's
    histograms hold exactly what one record_value per value would hold."""
    rng = random.Random(7)
    recorder = Recorder()
    total, per_part = new_histogram(), {"app": new_histogram(), "before": new_histogram()}
    for i in range(FLUSH_AT + 123):
        ms = rng.uniform(0.1, 3000.0)
        recorder.record("GET /x", 200, ms, None)
        recorder.record_server({"app": ms / 2}, ms)
        total.record_value(_micros(ms))
        per_part["app"].record_value(_micros(ms / 2))
        per_part["before"].record_value(_micros(ms - ms / 2))
        if i == 17:  # a read in between (the live status line) takes what is waiting
            assert recorder.total.get_total_count() == 18
    _same(recorder.total, total)
    _same(recorder.uncorrected, total)
    for part, histogram in per_part.items():
        _same(recorder.server[part], histogram)
    assert sum(h.get_total_count() for h in recorder.per_second.values()) == FLUSH_AT + 123


def test_values_waiting_at_the_warmups_end_are_dropped_with_it() -> None:
    recorder = Recorder()
    recorder.record("GET /x", 200, 5.0, None)
    recorder.record_server({"app": 1.0})
    recorder.start_measuring()
    recorder.record("GET /x", 200, 7.0, None)
    assert recorder.total.get_total_count() == 1
    assert recorder.total.get_max_value() == new_histogram().get_highest_equivalent_value(7000)
    assert recorder.server == {}
    assert recorder.outcomes[("GET /x", "ok")] == 2  # outcomes count the whole run
