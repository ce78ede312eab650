"""`loadlab tune`: a stack's best knob values on this machine, saved as a profile.

A coordinate search: start from the stack's default profile; for each knob in turn, try
each of its candidate values (services.KNOBS) with the others held at the best so far, one
short trial each (the service restarted with those values, the data reset to the seed). The
best trial is the one with the highest throughput within the objective (closed model), or
the lowest p99 within it at the given arrival rate (open model). A short trial is one
measurement on a noisy machine, so when the budget allows, the best and the runner-up are
measured once more and the choice is made on the mean of their trials.

Every trial is kept in the tune report (summary.json and index.html), and the winner is
saved as profiles/<variant>.<name>.json with the machine's CPU count and the date.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.analysis import slo
from loadlab.environment import describe
from loadlab.errors import UsageError
from loadlab.load.experiment import local_targets, run_variant
from loadlab.load.runner import LoadPlan
from loadlab.report import pages, schema, writer
from loadlab.settings import StackSettings
from loadlab.stack import lifecycle, postgres, procs, profiles, services

# The most connections one stack may open at once (its workers x its pools): PostgreSQL
# allows 200 (infra/postgres/postgresql.conf), and the stacks not under test keep theirs.
CONNECTION_LIMIT = 150
PROFILE = "tuned"  # what `loadtest --tuned` runs
RESTART_S = 6.0  # a restart and a reset, before a trial's first measurement is known


@dataclass(frozen=True)
class TunePlan:
    variant: str
    scenario: str = "select_update"
    users: int = 200
    arrival_rate: float | None = None
    rate_from: str | None = None  # the sweep report whose capacity the rate is (or None)
    budget: float = 600.0  # seconds for the whole search
    trial: float = 15.0  # measured seconds per trial
    warmup: float = 5.0
    slo: str = "p99<500ms,errors<1%"
    name: str = PROFILE  # of the profile written
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.variant not in services.VARIANTS:
            services.names(self.variant)  # the registry's own message, exit 2
        profiles.check_name(self.name)
        if self.name == profiles.DEFAULT:
            raise UsageError("--name default is the registry's own profile: choose another")
        slo.parse(self.slo)
        if self.trial <= 0 or self.warmup < 0:
            raise UsageError("--trial must be more than 0 s and --warmup at least 0 s")
        check_budget(self.budget, self.trial_cost)

    @property
    def trial_cost(self) -> float:
        return self.warmup + self.trial + RESTART_S

    def load(self) -> LoadPlan:
        return LoadPlan(
            scenario=self.scenario,
            users=self.users,
            spawn_rate=max(self.users / 2, 1),
            duration=self.trial,
            warmup=self.warmup,
            scale=self.scale,
            arrival_rate=self.arrival_rate,
        )


def check_budget(budget: float, trial_cost: float | None = None) -> None:
    cost = trial_cost if trial_cost is not None else TunePlan.warmup + TunePlan.trial + RESTART_S
    if budget < cost:
        raise UsageError(
            f"the tuning budget {budget:g}s is too small for one trial ({cost:g} s with the "
            "warm-up and a restart): give more"
        )


def connections(knobs: dict[str, int]) -> int:
    """The most database connections a stack with these knobs can open."""
    per_worker = knobs.get("db_pool_size", 0) + knobs.get("db_max_overflow", 0)
    per_worker += knobs.get("db_read_pool_size", 0)
    return knobs["web_workers"] * per_worker


def moot(knobs: dict[str, int]) -> str | None:
    """Why these knobs cannot differ from a trial already made, or None: a gunicorn worker's
    threads never hold more connections than it has threads, so a pool larger than that is
    the same stack."""
    threads = knobs.get("web_threads")
    if threads is not None and knobs["db_pool_size"] > threads:
        return f"a pool of {knobs['db_pool_size']} behind {threads} threads is never filled"
    return None


def score(plan: TunePlan, figures: dict[str, Any]) -> tuple[bool, float]:
    """(within the objective, how good: higher is better)."""
    held = all(r["holds"] for r in slo.check(plan.slo, {plan.variant: figures}))
    if plan.arrival_rate is None:
        return held, float(figures["throughput_rps"])
    return held, -float(figures["latency_ms"]["p99"])


def _candidates(variant: services.Variant) -> list[tuple[str, int]]:
    return [(k, v) for k in variant.defaults for v in services.KNOBS[k].candidates]


class Search:
    """The trials so far, and which knobs are best."""

    def __init__(self, plan: TunePlan, settings: StackSettings, out: Path, live: bool) -> None:
        self.plan = plan
        self.settings = settings
        self.out = out
        self.live = live
        self.trials: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []  # never started, with why
        self.deadline = time.monotonic() + plan.budget
        self.spent: list[float] = []

    def affordable(self) -> bool:
        typical = statistics.fmean(self.spent) if self.spent else self.plan.trial_cost
        return time.monotonic() + typical <= self.deadline

    def trial(self, knobs: dict[str, int], why: str) -> dict[str, Any]:
        """Restart the stack with `knobs`, reset the data, drive the trial, keep its figures."""
        started = time.monotonic()
        number = len(self.trials) + 1
        shown = ", ".join(f"{k}={v}" for k, v in knobs.items())
        print(f"  trial {number} ({why}): {shown}", flush=True)
        state = procs.load_state(self.settings.state_dir)
        assert state is not None
        setup = services.Setup(f"trial-{number}", knobs)
        lifecycle.apply_setups(self.settings, state, {self.plan.variant: setup})
        (target,), _ = local_targets(self.settings, [self.plan.variant], restart=False)
        out = self.out / "trials" / str(number)
        figures = run_variant(self.plan.load(), target, state.direct_database_url, out, self.live)
        held, value = score(self.plan, figures)
        row = {
            "trial": number,
            "why": why,
            "knobs": dict(knobs),
            "connections": connections(knobs),
            "held": held,
            "score": value,
            "throughput_rps": figures["throughput_rps"],
            "latency_ms": figures["latency_ms"],
            "error_rate": figures["error_rate"],
            "generator_delay_ms": figures.get("generator_delay_ms"),
            "machine_cpu_mean": figures["machine_cpu_mean"],
            "cpu_ms_per_request": figures["cpu_ms_per_request"],
            "database_connections": figures["database_connections"],
        }
        self.trials.append(row)
        print(
            f"    {row['throughput_rps']:8.1f} req/s  p50 {row['latency_ms']['p50']:7.1f}  "
            f"p99 {row['latency_ms']['p99']:8.1f} ms  errors {row['error_rate']:.2%}  "
            + ("within" if held else "outside")
            + f" {self.plan.slo}",
            flush=True,
        )
        self.spent.append(time.monotonic() - started)
        return row

    def measured(self, knobs: dict[str, int]) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["knobs"] == knobs]

    def best(self, top: int = 1) -> list[dict[str, int]]:
        """The best knob sets, judged on the mean of their trials: first those within the
        objective (by score), then, if none is, the lowest p99."""
        sets: list[dict[str, int]] = []
        for t in self.trials:
            if t["knobs"] not in sets:
                sets.append(t["knobs"])

        def rank(knobs: dict[str, int]) -> tuple[bool, float]:
            rows = self.measured(knobs)
            held = all(r["held"] for r in rows)
            if any(r["held"] for r in self.trials):
                return held, statistics.fmean(r["score"] for r in rows)
            return False, -statistics.fmean(r["latency_ms"]["p99"] for r in rows)

        return sorted(sets, key=rank, reverse=True)[:top]


def search(plan: TunePlan, settings: StackSettings, out: Path, live: bool) -> Search:
    variant = services.VARIANTS[plan.variant]
    found = Search(plan, settings, out, live)
    found.trial(dict(variant.defaults), "the default profile")
    for knob, value in _candidates(variant):
        current = found.best()[0]
        knobs = {**current, knob: value}
        if found.measured(knobs):
            continue
        if connections(knobs) > CONNECTION_LIMIT:
            why = f"{connections(knobs)} connections, over the {CONNECTION_LIMIT} allowed"
            found.skipped.append({"knobs": knobs, "why": why})
            continue
        if (why_moot := moot(knobs)) is not None:
            found.skipped.append({"knobs": knobs, "why": why_moot})
            continue
        if not found.affordable():
            print("  the budget is spent: the search stops here", flush=True)
            break
        found.trial(knobs, f"{knob} = {value}")
    # A second look at the two best, so one lucky short trial does not decide.
    for knobs in found.best(top=2):
        if len(found.measured(knobs)) == 1 and found.affordable():
            found.trial(knobs, "measured again")
    return found


def _put_back(settings: StackSettings, variant: str, setup: dict[str, Any] | None) -> None:
    """After a failed or interrupted search: the stack as it was before, not a trial's."""
    state = procs.load_state(settings.state_dir)
    if setup is None or state is None:
        return
    with contextlib.suppress(Exception):
        restore = services.Setup(setup["profile"], setup["knobs"])
        lifecycle.apply_setups(settings, state, {variant: restore})


def run(settings: StackSettings, plan: TunePlan, out: Path | None, live: bool = False) -> int:
    """The `tune` command: search, write the tune report, save the profile; the stack is
    left running the chosen knobs."""
    state = procs.load_state(settings.state_dir)
    if state is None:
        raise UsageError("the stack is not up: run `python -m loadlab up` first")
    final = out or ROOT / writer.REPORTS / writer.run_id(f"tune-{plan.variant}", plan.scenario)
    tmp = writer.prepare_out(final)
    variant = services.VARIANTS[plan.variant]
    load = plan.load()
    print(
        f"tuning {plan.variant}: {load.describe()}, {plan.trial:g} s trials after "
        f"{plan.warmup:g} s warm-up, within {plan.slo}, budget {plan.budget:g} s",
        flush=True,
    )
    running = state.get(plan.variant)
    before = running.setup if running is not None else None
    try:
        found = search(plan, settings, tmp, live)
        chosen = found.best()[0]
        met = any(t["held"] for t in found.measured(chosen))
        state = procs.load_state(settings.state_dir)
        assert state is not None
        environment = describe(
            postgres.server_version(state.direct_database_url),
            state.pgbouncer,
            settings.model_dump(mode="json"),
        )
        summary = {
            "kind": "tune",
            "run_id": final.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scenario": plan.scenario,
            "tune": asdict(plan),
            "environment": environment,
            "defaults": dict(variant.defaults),
            "chosen": chosen,
            "met_objective": met,
            # As a run's page: a warning at the top (and a mark in reports/index.html).
            "flags": []
            if met
            else [f"No knob set met {plan.slo} in all its trials: the lowest mean p99 was chosen."],
            "trials": found.trials,
            "skipped": found.skipped,
            "connection_limit": CONNECTION_LIMIT,
            "variants": {},
        }
        profile = profiles.Profile(
            variant=plan.variant,
            name=plan.name,
            knobs=chosen,
            cpu_count=os.cpu_count(),
            created=datetime.now(UTC).date().isoformat(),
            made_by=f"reports/{final.name}" if final.parent.name == writer.REPORTS else str(final),
            details={
                "objective": plan.slo,
                "load": load.describe(),
                "scenario": plan.scenario,
                "met_objective": met,
                "trials": len(found.trials),
            },
        )
        schema.validate(summary, f"{final.name}/summary.json")
        (tmp / "summary.json").write_text(writer.summary_text(summary))
        (tmp / "index.html").write_text(pages.render_tune(summary))
        tmp.rename(final)
    except BaseException:
        writer.discard(tmp)
        _put_back(settings, plan.variant, before)
        raise
    saved = profiles.save(profile, settings.profiles_dir)
    if final.parent.name == writer.REPORTS:
        writer.write_index(final.parent)
    # The stack keeps running the winner, now under its profile's name.
    state = procs.load_state(settings.state_dir)
    assert state is not None
    lifecycle.apply_setups(settings, state, {plan.variant: services.Setup(plan.name, chosen)})
    changed = {k: v for k, v in chosen.items() if variant.defaults[k] != v}
    print(
        f"chosen: {', '.join(f'{k}={v}' for k, v in chosen.items())} "
        f"({'changed: ' + ', '.join(changed) if changed else 'the defaults were best'}"
        + ("" if met else f"; NO knob set met {plan.slo} in all its trials: lowest mean p99")
        + ")"
    )
    print(f"profile: {saved}")
    print(f"report: {final / 'index.html'}")
    return 0
