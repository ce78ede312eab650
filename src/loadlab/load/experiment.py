"""One experiment: the same load at each variant in turn, with the data reset to the seed
before each, resources sampled, the integrity rule checked, and figures summarised."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadlab.analysis import integrity
from loadlab.analysis.summary import variant_summary
from loadlab.load import pgstats
from loadlab.load.monitor import Monitor
from loadlab.load.runner import LoadPlan, drive
from loadlab.stack import seed


@dataclass(frozen=True)
class Target:
    """A service to drive: one of ours (with its process tree), or an external URL."""

    name: str
    label: str
    url: str
    pids: dict[str, int] = field(default_factory=dict)  # component name -> root PID


def run_variant(
    plan: LoadPlan, target: Target, database_url: str | None, out: Path, live: bool = True
) -> dict[str, Any]:
    """Drive one target; its figures, resources (sampled each second while measuring),
    and, with database access, its integrity checks and time spent in PostgreSQL."""
    if database_url:
        seed.reset(database_url, seed.Scale.of(plan.scale))
        pgstats.reset(database_url)
        before = integrity.snapshot(database_url)
        events_before = pgstats.events(database_url)
    with Monitor({name: [pid] for name, pid in target.pids.items()}) as monitor:
        result = drive(plan, target.url, out, monitor, live)
    figures = variant_summary(result)
    start = result["measure_start"] or result["measure_end"]
    measured = monitor.measured(start, result["measure_end"])
    figures.update(
        label=target.label,
        url=target.url,
        resources={name: s.summary() for name, s in measured.samples.items()},
        resources_window="measured",  # reports before this field counted the warm-up too
        cpu_timeline={name: s.cpu for name, s in measured.samples.items()},
        machine_cpu_mean=measured.machine_cpu_mean,
        generator_saturated=measured.generator_saturated(),
        integrity=None,
        database_time=None,
        database_events=None,
    )
    if database_url:
        outcomes = result["recorder"]["outcomes"]
        checks = integrity.check(before, integrity.snapshot(database_url), outcomes)
        figures["integrity"] = [c.as_dict() for c in checks]
        figures["database_time"] = _database_time(database_url, outcomes)
        after = pgstats.events(database_url)
        figures["database_events"] = {k: after[k] - events_before[k] for k in after}
    return figures


def _database_time(database_url: str, outcomes: list[list[Any]]) -> dict[str, float] | None:
    """PostgreSQL's execution time over the run, per request sent (warm-up included)."""
    db = pgstats.totals(database_url)
    sent = sum(n for _, _, n in outcomes)
    if db is None or not sent:
        return None
    return {**db, "exec_ms_per_request": round(db["exec_ms"] / sent, 3), "requests_whole_run": sent}


def plan_dict(plan: LoadPlan) -> dict[str, Any]:
    return asdict(plan)
