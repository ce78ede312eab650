"""A plain verdict on two variants from one run: is a difference bigger than the
second-to-second spread? (Repeated runs with confidence intervals give a firmer answer.)"""

from __future__ import annotations

import statistics
from typing import Any

METRICS = (
    ("p50_ms", "p50 latency", "ms", False),
    ("p99_ms", "p99 latency", "ms", False),
    ("rps", "throughput", "req/s", True),
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


def verdicts(variants: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per metric for the first two variants."""
    if len(variants) != 2:
        return []
    (name_a, a), (name_b, b) = variants.items()
    sentences = []
    for key, label, unit, higher_is_better in METRICS:
        qa, qb = quartiles(per_second(a, key)), quartiles(per_second(b, key))
        if qa[1] == qb[1]:
            continue
        better, worse = (
            (name_a, name_b) if (qa[1] > qb[1]) == higher_is_better else (name_b, name_a)
        )
        (lo_b, mid_b, hi_b), (lo_w, mid_w, hi_w) = (qa, qb) if better == name_a else (qb, qa)
        overlap = lo_b <= hi_w and lo_w <= hi_b
        strength = (
            "within the second-to-second spread: could be noise"
            if overlap
            else "the middle halves of the per-second values do not overlap"
        )
        sentences.append(
            f"{label}: {better} {mid_b:,.1f} {unit} vs {worse} {mid_w:,.1f} {unit} "
            f"(median of seconds; quartiles {lo_b:,.1f}-{hi_b:,.1f} vs "
            f"{lo_w:,.1f}-{hi_w:,.1f}): {strength}."
        )
    return sentences
