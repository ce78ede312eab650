"""Service-level objectives as gates: `--slo "p99<200ms,errors<1%,rps>400"`.

Metrics: latency percentiles p50, p90, p95, p99, p99.9, max and mean (ms, or s with the unit
written), errors (percent of measured requests) and rps (requests answered per second). A run
that breaks one, in any variant and any round, fails (exit 1), and the page says by how much.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loadlab.errors import UsageError

LATENCY = {"p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "p99.9": "p99_9"}
LATENCY |= {"max": "max", "mean": "mean"}
UNITS = {**{m: ("ms", "s") for m in LATENCY}, "errors": ("%",), "rps": ("", "rps")}
_OBJECTIVE = re.compile(r"\s*([a-z0-9.]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*([a-z%]*)\s*")


@dataclass(frozen=True)
class Objective:
    metric: str
    op: str
    limit: float  # ms for latencies, percent for errors, req/s for rps
    text: str

    def holds(self, value: float) -> bool:
        return {
            "<": value < self.limit,
            "<=": value <= self.limit,
            ">": value > self.limit,
            ">=": value >= self.limit,
        }[self.op]

    @property
    def unit(self) -> str:
        return "ms" if self.metric in LATENCY else ("%" if self.metric == "errors" else "req/s")


def parse(text: str) -> list[Objective]:
    """The objectives of an --slo value; UsageError naming the part that is wrong."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError('--slo is empty: give objectives like "p99<500ms,errors<1%"')
    objectives = []
    for part in parts:
        match = _OBJECTIVE.fullmatch(part.lower())
        if match is None:
            raise UsageError(f'--slo: cannot read {part.strip()!r} (write it like "p99<500ms")')
        metric, op, number, unit = match.groups()
        if metric not in UNITS:
            raise UsageError(f"--slo: unknown metric {metric!r} (one of {', '.join(UNITS)})")
        if unit not in UNITS[metric]:
            allowed = " or ".join(u or "no unit" for u in UNITS[metric])
            raise UsageError(f"--slo: {metric} takes {allowed}, not {unit or 'no unit'!r}")
        limit = float(number) * (1000 if unit == "s" else 1)
        objectives.append(Objective(metric, op, limit, part.strip()))
    return objectives


def value(objective: Objective, variant: dict[str, Any]) -> float:
    """The measured figure an objective is about, in the objective's unit."""
    if objective.metric in LATENCY:
        return float(variant["latency_ms"][LATENCY[objective.metric]])
    if objective.metric == "errors":
        return 100.0 * variant["error_rate"]
    return float(variant.get("achieved_rps", variant["throughput_rps"]))


def check(text: str, variants: dict[str, Any]) -> list[dict[str, Any]]:
    """Each objective against each variant's every round."""
    results = []
    for objective in parse(text):
        for name, v in variants.items():
            rounds = v.get("rounds") or [v]
            for number, r in enumerate(rounds, 1):
                measured = value(objective, r)
                results.append(
                    {
                        "variant": name,
                        "round": number if len(rounds) > 1 else None,
                        "objective": objective.text,
                        "value": round(measured, 3),
                        "unit": objective.unit,
                        "holds": objective.holds(measured),
                        "by": round(abs(measured - objective.limit), 3),
                    }
                )
    return results


def failures(results: list[dict[str, Any]]) -> list[str]:
    """One FAIL line per broken objective, with the measured figure and the margin."""
    found = []
    for r in results:
        if r["holds"]:
            continue
        which = r["variant"] if r["round"] is None else f"{r['variant']} round {r['round']}"
        found.append(
            f"FAIL {which}: {r['objective']} broken: measured {r['value']:,.2f} {r['unit']}, "
            f"{r['by']:,.2f} {r['unit']} past the limit"
        )
    return found
