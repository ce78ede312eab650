"""Two variants from one run: figures, never a verdict.

Per-second values are autocorrelated (a slow second is followed by slow seconds), so their
spread is no test: it once called 780 against 742 req/s "beyond the spread" where five
rounds a side said noise. One run says which figure is higher and how the seconds spread;
whether the difference is real takes rounds (`--repeat`, analysis/repeats.py)."""

from __future__ import annotations

import statistics
from typing import Any

# (per-second key, whole-run figure, label, unit, higher is better)
METRICS = (
    ("p50_ms", ("latency_ms", "p50"), "p50 latency", "ms", False),
    ("p99_ms", ("latency_ms", "p99"), "p99 latency", "ms", False),
    ("rps", ("throughput_rps", None), "throughput", "req/s", True),
)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0] if values else 0.0
        return v, v, v
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def per_second(figures: dict[str, Any], key: str) -> list[float]:
    """The metric for each full measured second (the first and last are partial)."""
    rows = figures["timeline"][1:-1]
    return [float(r[key]) for r in rows if r[key] is not None]


def _whole_run(figures: dict[str, Any], path: tuple[str, str | None]) -> float:
    value = figures[path[0]]
    return float(value[path[1]] if path[1] else value)


ONE_RUN = (
    "One run gives figures, not a verdict: per-second values follow each other, so their "
    "spread is no test. Run the variants in alternating rounds (--repeat 5 or more, or "
    "--repeat auto after `loadlab calibrate`) to tell a difference from noise."
)


def verdicts(variants: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per metric for the first two variants: which was higher in a typical
    second, the quartiles of their seconds, and whether the whole-run figure (which a few
    bad seconds can dominate) ranks them the same way; then that this is no verdict."""
    if len(variants) != 2:
        return []
    (name_a, a), (name_b, b) = variants.items()
    sentences = []
    # In an open-model run the schedule sets the throughput: nothing to rank there.
    opened = "offered_rps" in a and "offered_rps" in b
    for key, whole, label, unit, higher_is_better in METRICS:
        if opened and key == "rps":
            continue
        qa, qb = quartiles(per_second(a, key)), quartiles(per_second(b, key))
        if qa[1] == qb[1]:
            continue
        a_better = (qa[1] > qb[1]) == higher_is_better
        better, worse = (name_a, name_b) if a_better else (name_b, name_a)
        (lo_b, mid_b, hi_b), (lo_w, mid_w, hi_w) = (qa, qb) if a_better else (qb, qa)
        sentence = (
            f"{label} in a typical second: {better} {mid_b:,.1f} {unit} vs {worse} "
            f"{mid_w:,.1f} {unit} (median of seconds; quartiles {lo_b:,.1f}-{hi_b:,.1f} vs "
            f"{lo_w:,.1f}-{hi_w:,.1f})."
        )
        whole_a, whole_b = _whole_run(a, whole), _whole_run(b, whole)
        if whole_a != whole_b and ((whole_a > whole_b) == higher_is_better) != a_better:
            sentence += (
                f" Over the whole run the ranking is reversed ({name_a} {whole_a:,.1f} vs "
                f"{name_b} {whole_b:,.1f} {unit}): a few bad seconds decide it."
            )
        sentences.append(sentence)
    return [*sentences, ONE_RUN] if sentences else sentences
