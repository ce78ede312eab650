"""hdrh's Python loops, done by numpy: recording many values at once, and reading
percentiles and the mean.

hdrh's `record_value` is Python: ~0.8 µs a value, and the generator records a dozen values
per request (the latency twice, its second, the services' Server-Timing parts), ~13 µs of
the generator's CPU per request on cores it shares with the stack it measures. The recorder
keeps the values in lists instead and adds them here in one pass when it is read or every
few thousand requests (src/loadlab/load/recorder.py). Reading walks the 18,432 buckets of a
loadlab histogram in Python too, a few ms a percentile: the live status line's p99 every
second, two a second of the timeline, 41 for a percentile curve.

Every function gives what hdrh's own would, bucket for bucket (tests/load/test_hdr.py
compares them on random values).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.histogram import HdrHistogram


def micros(ms: Sequence[float] | np.ndarray, highest_us: int) -> np.ndarray:
    """Milliseconds as whole microseconds in [1, highest_us], truncated as int() does (a
    value that is not a number counts as the highest, so nothing recorded goes missing)."""
    values = np.asarray(ms, dtype=np.float64) * 1000.0
    values = np.nan_to_num(values, nan=highest_us, posinf=highest_us, neginf=1.0)
    return np.clip(values, 1, highest_us).astype(np.int64)


def _buckets(
    values: np.ndarray, unit_magnitude: int, half_count_magnitude: int
) -> tuple[np.ndarray, np.ndarray]:
    """hdrh's (_get_bucket_index, _get_sub_bucket_index) of an array of positive integers."""
    sub_bucket_mask = ((1 << (half_count_magnitude + 1)) - 1) << unit_magnitude
    # The bit length of (value | sub_bucket_mask): frexp's exponent, exact below 2**53.
    bits = np.frexp((values | sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bits - unit_magnitude - (half_count_magnitude + 1)
    return bucket, values >> (bucket + unit_magnitude)


def counts_indexes(histogram: HdrHistogram, values: np.ndarray) -> np.ndarray:
    """hdrh's _counts_index_for, on an array of positive integers."""
    bucket, sub_bucket = _buckets(
        values, histogram.unit_magnitude, histogram.sub_bucket_half_count_magnitude
    )
    base = (bucket + 1) << histogram.sub_bucket_half_count_magnitude
    return base + sub_bucket - histogram.sub_bucket_half_count


def add_values(histogram: HdrHistogram, values: np.ndarray) -> None:
    """Record every value (whole units, within the histogram's range) once."""
    if not len(values):
        return
    indexes = counts_indexes(histogram, values)
    counts = np.ctypeslib.as_array(histogram.counts)
    counts += np.bincount(indexes, minlength=histogram.counts_len).astype(counts.dtype)
    histogram.total_count += len(values)
    histogram.min_value = min(histogram.min_value, int(values.min()))
    histogram.max_value = max(histogram.max_value, int(values.max()))


def reset(histogram: HdrHistogram) -> None:
    """hdrh's reset without its Python loop over the counts (~1 ms)."""
    np.ctypeslib.as_array(histogram.counts)[:] = 0
    histogram.total_count = 0
    histogram.min_value = sys.maxsize  # hdrh's "none yet"
    histogram.max_value = 0
    histogram.start_time_stamp_msec = sys.maxsize
    histogram.end_time_stamp_msec = 0


def values_at(histogram: HdrHistogram, percentiles: Iterable[float]) -> list[int]:
    """hdrh's get_value_at_percentile for each percentile, from one cumulative sum."""
    cumulative = np.cumsum(np.ctypeslib.as_array(histogram.counts))
    values = []
    for percentile in percentiles:
        target = histogram.get_target_count_at_percentile(percentile)
        index = int(np.searchsorted(cumulative, target, side="left"))
        if index >= histogram.counts_len:  # an empty histogram
            values.append(0)
            continue
        value = histogram.get_value_from_index(index)
        values.append(
            histogram.get_highest_equivalent_value(value)
            if percentile
            else histogram.get_lowest_equivalent_value(value)
        )
    return values


def mean(histogram: HdrHistogram) -> float:
    """hdrh's get_mean_value (each bucket counted at the middle of its values), as one dot
    product instead of a walk over every bucket (20-80 ms a histogram)."""
    total = histogram.get_total_count()
    if not total:
        return 0.0
    counts = np.ctypeslib.as_array(histogram.counts)
    return float(np.dot(counts, bucket_middles(*_layout(histogram))) / total)


def _layout(histogram: HdrHistogram) -> tuple[int, int, int]:
    return (
        histogram.counts_len,
        histogram.unit_magnitude,
        histogram.sub_bucket_half_count_magnitude,
    )


@functools.cache
def bucket_middles(counts_len: int, unit_magnitude: int, half_count_magnitude: int) -> np.ndarray:
    """hdrh's _hdr_median_equiv_value of the lowest value of every bucket, for histograms
    of this layout (computed once a process)."""
    half_count = 1 << half_count_magnitude
    index = np.arange(counts_len, dtype=np.int64)
    # get_value_from_index
    bucket = (index >> half_count_magnitude) - 1
    sub_bucket = (index & (half_count - 1)) + half_count
    first = bucket < 0
    sub_bucket[first] -= half_count
    bucket[first] = 0
    lowest = sub_bucket << (bucket + unit_magnitude)
    # _hdr_size_of_equiv_value_range of that value
    value_bucket, value_sub_bucket = _buckets(lowest, unit_magnitude, half_count_magnitude)
    value_bucket[value_sub_bucket >= 2 * half_count] += 1
    return (lowest + ((1 << (unit_magnitude + value_bucket)) >> 1)).astype(np.float64)


def whole_seconds(times: Sequence[float]) -> np.ndarray:
    """int() of each time (seconds since the epoch, so positive: the floor)."""
    return np.asarray(times, dtype=np.float64).astype(np.int64)


def distinct(values: np.ndarray) -> list[int]:
    """The distinct values, as Python ints, in order (a set, not np.unique: its first call
    imports a numpy module, ~50 ms in the generator's event loop)."""
    return sorted(set(values.tolist()))
