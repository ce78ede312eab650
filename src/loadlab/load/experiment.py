"""One experiment: the same load at each variant in turn, with the data reset to the seed
before each, resources sampled, the integrity rule checked, and figures summarised."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadlab.analysis import integrity
from loadlab.analysis.summary import variant_summary
from loadlab.load import pgstats
from loadlab.load.monitor import GENERATOR, Monitor
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
    """Drive one target; its figures, resources and integrity checks."""
    if database_url:
        seed.reset(database_url, seed.Scale.of(plan.scale))
        pgstats.reset(database_url)
        before = integrity.snapshot(database_url)
    with Monitor({name: [pid] for name, pid in target.pids.items()}) as monitor:
        result = drive(plan, target.url, out, monitor, live)
    figures = variant_summary(result)
    figures["label"] = target.label
    figures["url"] = target.url
    figures["resources"] = {name: s.summary() for name, s in monitor.samples.items()}
    figures["resources_timeline"] = {name: s.cpu for name, s in monitor.samples.items()}
    figures["machine_cpu_mean"] = round(
        sum(monitor.machine_cpu) / max(len(monitor.machine_cpu), 1), 1
    )
    figures["generator_saturated"] = monitor.generator_saturated()
    figures["generator"] = GENERATOR
    figures["integrity"] = None
    figures["database_time"] = None
    if database_url:
        after = integrity.snapshot(database_url)
        checks = integrity.check(before, after, result["recorder"]["outcomes"])
        figures["integrity"] = [c.as_dict() for c in checks]
        db = pgstats.totals(database_url)
        sent = sum(n for _, _, n in result["recorder"]["outcomes"])
        if db is not None and sent:
            figures["database_time"] = {
                **db,
                "exec_ms_per_request": round(db["exec_ms"] / sent, 3),
                "requests_whole_run": sent,
            }
    return figures


def plan_dict(plan: LoadPlan) -> dict[str, Any]:
    return asdict(plan)
