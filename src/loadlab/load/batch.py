"""Many values into an HdrHistogram at once, as numpy arrays.

hdrh's `record_value` is Python: ~0.8 µs a value, and the generator records a dozen values
per request (the latency twice, its second, the services' Server-Timing parts), ~13 µs of
the generator's CPU per request on cores it shares with the stack it measures. The recorder
keeps the values in lists instead and adds them here in one pass when it is read or every
few thousand requests (src/loadlab/load/recorder.py). The counts land in the same buckets as
`record_value` puts them (tests/load/test_batch.py compares the two on random values).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from hdrh.histogram import HdrHistogram


def micros(ms: Sequence[float] | np.ndarray, highest_us: int) -> np.ndarray:
    """Milliseconds as whole microseconds in [1, highest_us], truncated as int() does (a
    value that is not a number counts as the highest, so nothing recorded goes missing)."""
    values = np.asarray(ms, dtype=np.float64) * 1000.0
    values = np.nan_to_num(values, nan=highest_us, posinf=highest_us, neginf=1.0)
    return np.clip(values, 1, highest_us).astype(np.int64)


def counts_indexes(histogram: HdrHistogram, values: np.ndarray) -> np.ndarray:
    """hdrh's _counts_index_for, on an array of positive integers."""
    # The bit length of (value | sub_bucket_mask): frexp's exponent, exact below 2**53.
    bits = np.frexp((values | histogram.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bits - histogram.unit_magnitude - (histogram.sub_bucket_half_count_magnitude + 1)
    sub_bucket = values >> (bucket + histogram.unit_magnitude)
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
    """hdrh's reset without its Python loop over the 18,432 counts (~1 ms)."""
    np.ctypeslib.as_array(histogram.counts)[:] = 0
    histogram.total_count = 0
    histogram.min_value = sys.maxsize  # hdrh's "none yet"
    histogram.max_value = 0
    histogram.start_time_stamp_msec = sys.maxsize
    histogram.end_time_stamp_msec = 0


def whole_seconds(times: Sequence[float]) -> np.ndarray:
    """int() of each time (seconds since the epoch, so positive: the floor)."""
    return np.asarray(times, dtype=np.float64).astype(np.int64)


def distinct(values: np.ndarray) -> list[int]:
    """The distinct values, as Python ints, in order (a set, not np.unique: its first call
    imports a numpy module, ~50 ms in the generator's event loop)."""
    return sorted(set(values.tolist()))
