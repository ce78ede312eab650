"""One experiment: the same load at each variant in turn, with the data reset to the seed
before each, resources sampled, the integrity rule checked, and figures summarised."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadlab import faults
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
    setup: dict[str, Any] | None = None  # its profile and knobs, when one of ours
    # A service started for this target's run alone (side_by_side's copies): the target to
    # drive, with its URL and PIDs, while the context lasts.
    launch: Callable[[], AbstractContextManager[Target]] | None = None
    # Why this target is run to fail (a known misconfiguration shown beside its fix): its
    # error rate is then a note on the page, not a failed run.
    expected_failure: str | None = None


def run_variant(
    plan: LoadPlan,
    target: Target,
    database_url: str | None,
    out: Path,
    live: bool = True,
    fresh: bool = True,
    act: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Drive one target; its figures, resources (sampled each second while measuring),
    and, with database access, its integrity checks and time spent in PostgreSQL. `fresh`
    resets the data first and checks integrity over this run; a sweep's later steps go on
    from the data as it is, and the sweep checks integrity over all its steps. `act` performs
    the plan's faults (faults.actions) while it measures."""
    if database_url:
        if fresh:
            seed.reset(database_url, seed.Scale.of(plan.scale))
        pgstats.reset(database_url)
        before = integrity.snapshot(database_url)
        newest_order = integrity.newest_order(database_url)
        events_before = pgstats.events(database_url)
    connections = (
        pgstats.Connections(database_url, target.name) if database_url else contextlib.nullcontext()
    )
    listening = {target.name: port} if target.pids and (port := urlsplit(target.url).port) else {}
    roots = {name: [pid] for name, pid in target.pids.items()}
    injector = faults.Injector(plan.faults, out / "status.json", act) if act else None
    with connections, Monitor(roots, listening=listening) as monitor:
        if injector is not None:
            injector.start()
        try:
            result = drive(plan, target.url, out, monitor, live)
        finally:
            injected = injector.stop() if injector is not None else []
    figures = variant_summary(result)
    if injector is not None:
        measure_start = result["measure_start"] or result["measure_end"]
        figures["faults"] = faults.outcomes(injected, measure_start, figures["timeline"])
    start = result["measure_start"] or result["measure_end"]
    measured = monitor.measured(start, result["measure_end"])
    resources = {name: s.summary() for name, s in measured.samples.items()}
    figures.update(
        label=target.label,
        url=target.url,
        setup=target.setup,
        expected_failure=target.expected_failure,
        resources=resources,
        # What a capacity review multiplies: CPU ms each component spent per request.
        cpu_ms_per_request=cpu_ms_per_request(resources, figures),
        database_connections=(
            connections.summary(start, result["measure_end"])
            if isinstance(connections, pgstats.Connections)
            else None
        ),
        resources_window="measured",  # reports before this field counted the warm-up too
        cpu_timeline={name: s.cpu for name, s in measured.samples.items()},
        machine_cpu_mean=measured.machine_cpu_mean,
        # The kernel's queue before the server: connections not yet accepted, each second.
        accept_queue=monitor.accept_queue(start, result["measure_end"]).get(target.name),
        generator_saturated=measured.generator_saturated(),
        integrity=None,
        database_time=None,
        database_events=None,
    )
    figures["outcomes"] = result["recorder"]["outcomes"]
    if database_url:
        outcomes = result["recorder"]["outcomes"]
        if fresh:
            checks = integrity.check(before, integrity.snapshot(database_url), outcomes)
            figures["integrity"] = [c.as_dict() for c in checks]
            figures["half_written"] = integrity.half_written(database_url)
            orders = [(kind, n) for name, kind, n in outcomes if name == integrity.ORDERS]
            if orders:
                in_doubt = sum(n for kind, n in orders if kind == "in_doubt")
                figures["orders"] = integrity.acknowledged_orders(
                    database_url, result["recorder"].get("orders", []), newest_order, in_doubt
                )
        figures["database_time"] = _database_time(database_url, outcomes)
        after = pgstats.events(database_url)
        figures["database_events"] = {k: after[k] - events_before[k] for k in after}
    return figures


def cpu_ms_per_request(
    resources: dict[str, dict[str, Any]], figures: dict[str, Any]
) -> dict[str, float]:
    """Mean CPU (percent of one core) x measured seconds / measured requests, per component."""
    if not figures["requests"]:
        return {}
    per_request_s = figures["measured_seconds"] / figures["requests"]
    return {
        name: round(r["cpu_mean"] / 100 * per_request_s * 1000, 3) for name, r in resources.items()
    }


def _database_time(database_url: str, outcomes: list[list[Any]]) -> dict[str, float] | None:
    """PostgreSQL's execution time over the run, per request sent (warm-up included)."""
    db = pgstats.totals(database_url)
    sent = sum(n for _, _, n in outcomes)
    if db is None or not sent:
        return None
    return {**db, "exec_ms_per_request": round(db["exec_ms"] / sent, 3), "requests_whole_run": sent}


def plan_dict(plan: LoadPlan) -> dict[str, Any]:
    return asdict(plan)
