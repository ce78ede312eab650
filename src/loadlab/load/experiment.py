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

import httpx

from loadlab import faults
from loadlab.analysis import integrity
from loadlab.analysis.summary import variant_summary
from loadlab.errors import UsageError
from loadlab.load import pgstats
from loadlab.load.monitor import GENERATOR, Monitor
from loadlab.load.runner import LoadPlan, drive
from loadlab.settings import StackSettings
from loadlab.stack import lifecycle, placement, procs, seed, services


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


@dataclass(frozen=True)
class Baseline:
    """The database just before a run: what its integrity checks and event counts compare
    with afterwards."""

    snapshot: dict[str, int]
    newest_order: int
    events: dict[str, int]
    # Reset to the seed first: its integrity is checked over this run alone (a sweep's later
    # steps go on from the data as it is; the sweep checks over all its steps).
    fresh: bool


def baseline(database_url: str, scale: float, fresh: bool = True) -> Baseline:
    """Reset the data to the seed (`fresh`) and PostgreSQL's statistics; what is there now."""
    if fresh:
        seed.reset(database_url, seed.Scale.of(scale))
    pgstats.reset(database_url)
    return Baseline(
        integrity.snapshot(database_url),
        integrity.newest_order(database_url),
        pgstats.events(database_url),
        fresh,
    )


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
    # The stack as it is now (a copy or a restarted service included) on its side.
    placement.active().apply_to_stack(list(target.pids.values()))
    before = baseline(database_url, plan.scale, fresh) if database_url else None
    connections = (
        pgstats.Connections(database_url, target.name) if database_url else contextlib.nullcontext()
    )
    injector = faults.Injector(plan.faults, out / "status.json", act) if act else None
    with connections, watch(target) as monitor:
        if injector is not None:
            injector.start()
        try:
            result = drive(plan, target.url, out, monitor, live)
        finally:
            injected = injector.stop() if injector is not None else []
    start = result["measure_start"] or result["measure_end"]
    measured_connections = (
        connections.summary(start, result["measure_end"])
        if isinstance(connections, pgstats.Connections)
        else None
    )
    figures = summarise(target, result, monitor, database_url, before, measured_connections)
    if injector is not None:
        figures["faults"] = faults.outcomes(injected, start, figures["timeline"])
    return figures


def watch(target: Target) -> Monitor:
    """A monitor of the target's process trees and, for one of ours, its accept queue."""
    listening = {target.name: port} if target.pids and (port := urlsplit(target.url).port) else {}
    return Monitor({name: [pid] for name, pid in target.pids.items()}, listening=listening)


def summarise(
    target: Target,
    result: dict[str, Any],
    monitor: Monitor,
    database_url: str | None,
    before: Baseline | None,
    database_connections: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A driven target's figures from Locust's result, the monitor's samples and, with a
    database, its integrity checks and time spent in PostgreSQL."""
    figures = variant_summary(result)
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
        database_connections=database_connections,
        resources_window="measured",  # reports before this field counted the warm-up too
        cpu_timeline={name: s.cpu for name, s in measured.samples.items()},
        machine_cpu_mean=measured.machine_cpu_mean,
        # The kernel's queue before the server: connections not yet accepted, each second.
        accept_queue=monitor.accept_queue(start, result["measure_end"]).get(target.name),
        generator_saturated=measured.generator_saturated(),
        placement=placement.record(
            placement.active(),
            {name: [pid] for name, pid in target.pids.items()},
            _cpu_mean(resources, [GENERATOR]),
            _cpu_mean(resources, [n for n in resources if n != GENERATOR]),
        ),
        integrity=None,
        database_time=None,
        database_events=None,
    )
    figures["outcomes"] = outcomes = result["recorder"]["outcomes"]
    if not database_url:
        return figures
    if before is not None and before.fresh:
        checks = integrity.check(before.snapshot, integrity.snapshot(database_url), outcomes)
        figures["integrity"] = [c.as_dict() for c in checks]
        figures["half_written"] = integrity.half_written(database_url)
        orders = [(kind, n) for name, kind, n in outcomes if name == integrity.ORDERS]
        if orders:
            in_doubt = sum(n for kind, n in orders if kind == "in_doubt")
            figures["orders"] = integrity.acknowledged_orders(
                database_url, result["recorder"].get("orders", []), before.newest_order, in_doubt
            )
    figures["database_time"] = _database_time(database_url, outcomes)
    if before is not None:
        after = pgstats.events(database_url)
        figures["database_events"] = {k: after[k] - before.events[k] for k in after}
    return figures


def _cpu_mean(resources: dict[str, dict[str, Any]], names: list[str]) -> float | None:
    """The components' CPU over the measured window, added up (percent of one core)."""
    found = [resources[n]["cpu_mean"] for n in names if n in resources]
    return round(sum(found), 1) if found else None


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


def local_targets(
    settings: StackSettings, variants: list[str], restart: bool = True
) -> tuple[list[Target], procs.State]:
    """The running stack's services, with the process trees to watch while each is driven.
    With `restart`, a named service that is not running yet is started, one asked to run
    another profile (--profile) restarted with it."""
    state = procs.load_state(settings.state_dir)
    if state is None:
        raise UsageError(
            "the stack is not up: run `python -m loadlab up` first (or give --target URL)"
        )
    if restart:
        lifecycle.ensure_services(settings, state, variants)
    lifecycle.place(state)  # every component, driven or idle, on the stack's side
    shared = {
        c.name: pid
        for c in state.components
        if c.name in ("postgres", "pgbouncer") and (pid := c.current_pid()) is not None
    }
    targets = []
    for name in variants:
        component = state.get(name)
        pid = component.current_pid() if component else None
        # A few seconds' grace: after a database restart each stale pooled connection
        # answers one 503 before the pool renews it.
        if component is None or pid is None or not services.becomes_healthy(component.url, 10):
            raise UsageError(f"{name} is not healthy: see `python -m loadlab status`")
        targets.append(
            Target(
                name,
                services.VARIANTS[name].label,
                component.url,
                {name: pid, **shared},
                component.setup,
            )
        )
    return targets, state


def external_target(target: str) -> Target:
    """A service elsewhere that implements the contract, given as [NAME=]URL; it must answer
    /healthz."""
    name, _, url = target.rpartition("=") if "=" in target.split("://")[0] else ("", "", target)
    name = name or "target"
    if not url.startswith(("http://", "https://")) or not name.replace("_", "").isalnum():
        raise UsageError(f"--target {target!r}: give NAME=http://host:port (or just the URL)")
    try:
        httpx.get(f"{url.rstrip('/')}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        raise UsageError(
            f"--target {url} does not answer ({type(exc).__name__}): "
            "check the URL and that the service is running"
        ) from None
    return Target(name, f"external service at {url}", url.rstrip("/"))
