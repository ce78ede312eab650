"""`loadlab sweep`: each variant's capacity at a service-level objective.

The arrival rate steps up (open model, load/arrivals.py) for one variant at a time, with the
data reset before each variant and a short warm-up before its first step. A step that breaks
the objective, or whose answered rate falls below 95% of the offered one, is run once more at
the same rate before the variant stops: one p99 spike on a shared machine must not decide a
capacity (the page says where a step broke and then held). Its capacity is the highest offered
rate it held. One step is one Locust run of `step_duration` seconds; integrity is checked over
all of a variant's steps together.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.analysis import integrity, slo
from loadlab.duel import what_to_drive
from loadlab.errors import UsageError
from loadlab.load.experiment import Target, run_variant
from loadlab.load.runner import LoadPlan
from loadlab.report import history, writer
from loadlab.settings import StackSettings
from loadlab.stack import seed

MIN_STEP_SECONDS = 5.0


def parse_rates(text: str) -> list[float]:
    """`100:1000:100` (start:stop:step, stop included) or `100,200,400`: increasing, above 0."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or not math.isfinite(stop - start):
                raise ValueError
            count = math.floor((stop - start) / step + 1e-9) + 1
            rates = [start + i * step for i in range(max(count, 0))]
        else:
            rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(
            f"--rates {text!r}: give start:stop:step (100:1000:100) or a list (100,200,400)"
        ) from None
    if not rates:
        raise UsageError(f"--rates {text!r} gives no rate")
    if not all(r > 0 and math.isfinite(r) for r in rates):
        raise UsageError(f"--rates {text!r}: every rate must be above 0 requests per second")
    if any(b <= a for a, b in zip(rates, rates[1:], strict=False)):
        raise UsageError(f"--rates {text!r}: the rates must increase")
    return rates


@dataclass(frozen=True)
class SweepPlan:
    scenario: str
    rates: tuple[float, ...]
    step_duration: float
    warmup: float  # before the first step of each variant only
    slo: str
    users: int  # the most requests in flight at once
    arrivals: str = "constant"
    workers: int = 0
    scale: float = 1.0
    locust_html: bool = False
    tries: int = 2  # runs at one rate, all broken, before a variant stops

    def __post_init__(self) -> None:
        if not self.step_duration >= MIN_STEP_SECONDS:
            raise UsageError(f"--step-duration must be at least {MIN_STEP_SECONDS:.0f}s")
        slo.parse(self.slo)
        if self.tries < 1:
            raise UsageError("a sweep needs at least one try per rate")
        self.step(0)  # the rest (scenario, users, warm-up) is checked as a run's plan is

    def step(self, index: int) -> LoadPlan:
        return LoadPlan(
            scenario=self.scenario,
            users=self.users,
            spawn_rate=self.users,  # the pool exists at once: the schedule does the pacing
            duration=self.step_duration,
            warmup=self.warmup if index == 0 else 0.0,
            workers=self.workers,
            scale=self.scale,
            arrival_rate=self.rates[index],
            arrivals=self.arrivals,
            slo=self.slo,
            locust_html=self.locust_html,
        )


def step_verdict(plan: SweepPlan, name: str, step: dict[str, Any]) -> str | None:
    """Why a step ends the sweep of its variant, or None if it held."""
    broken = [r for r in slo.check(plan.slo, {name: step}) if not r["holds"]]
    if broken:
        r = broken[0]
        return f"{r['objective']} broken ({r['value']:,.1f} {r['unit']})"
    if step["achieved_rps"] < writer.KEEP_UP_SHARE * step["offered_rps"]:
        return (
            f"answered {step['achieved_rps']:,.1f} of {step['offered_rps']:,.1f} req/s "
            f"offered (under {writer.KEEP_UP_SHARE:.0%})"
        )
    if writer.run_failures(name, step):
        return "the step failed (see the flags)"
    return None


def broke_then_held(steps: list[dict[str, Any]]) -> list[float]:
    """The rates at which a step broke and a later try at the same rate held: where one
    sweep alone would have called the capacity lower."""
    return sorted({s["rate"] for s in steps if s["held"] and s.get("attempt", 1) > 1})


def sweep_variant(
    plan: SweepPlan, target: Target, database_url: str | None, out: Path, live: bool
) -> dict[str, Any]:
    """Step the rate up at one target until a step breaks; its capacity and every step."""
    if database_url:
        seed.reset(database_url, seed.Scale.of(plan.scale))
        before = integrity.snapshot(database_url)
    steps: list[dict[str, Any]] = []
    stopped_by = None
    for index, rate in enumerate(plan.rates):
        for attempt in range(1, plan.tries + 1):
            again = "" if attempt == 1 else f" (try {attempt}: the last one broke)"
            print(
                f"  {target.name}: {rate:g} req/s for {plan.step_duration:.0f} s{again}", flush=True
            )
            folder = out / (f"{rate:g}rps" if attempt == 1 else f"{rate:g}rps-try{attempt}")
            step = run_variant(
                plan.step(index), target, database_url, folder, live=live, fresh=False
            )
            step["rate"] = rate
            step["attempt"] = attempt
            stopped_by = step_verdict(plan, target.name, step)
            step["held"] = stopped_by is None
            steps.append(step)
            latency = step["latency_ms"]
            print(
                f"    answered {step['achieved_rps']:8.1f} req/s  p50 {latency['p50']:7.1f}"
                f"  p99 {latency['p99']:8.1f} ms  errors {step['error_rate']:.2%}  "
                + ("held" if stopped_by is None else f"broke: {stopped_by}"),
                flush=True,
            )
            if stopped_by is None:
                break
        if stopped_by is not None:
            break
    held = [s["rate"] for s in steps if s["held"]]
    checks = None
    if database_url:
        outcomes = [row for s in steps for row in s["outcomes"]]
        after = integrity.snapshot(database_url)
        checks = [c.as_dict() for c in integrity.check(before, after, outcomes)]
    return {
        "label": target.label,
        "url": target.url,
        "setup": target.setup,
        "capacity_rps": max(held) if held else None,
        "stopped_by": None if stopped_by is None else f"{steps[-1]['rate']:g} req/s: {stopped_by}",
        "broke_then_held": broke_then_held(steps),
        "integrity": checks,
        "steps": steps,
    }


def newest_capacity(
    reports: Path, variant: str, scenario: str, slo_text: str, cpu_count: int
) -> tuple[float, str] | None:
    """(capacity in req/s, report folder) from the newest sweep in `reports` that drove
    `variant` under its default profile, with this scenario and objective, on a machine with
    as many CPUs; None if there is none, or if the variant held no rate in it."""
    for folder, s in history.newest_first(reports):
        v = (s.get("variants") or {}).get(variant) if s.get("kind") == "sweep" else None
        if (
            v is not None
            and (v.get("setup") or {}).get("profile") == "default"
            and s["sweep"].get("scenario") == scenario
            and s["sweep"].get("slo") == slo_text
            and (s.get("environment") or {}).get("cpu_count") == cpu_count
        ):
            return (v["capacity_rps"], folder) if v.get("capacity_rps") else None
    return None


def run(
    settings: StackSettings,
    plan: SweepPlan,
    variants: list[str],
    target: list[str] | None,
    out: Path | None,
    live: bool = True,
) -> tuple[int, Path]:
    """Sweep each variant (or each --target) and publish the report; (exit code, page)."""
    final = out or ROOT / writer.REPORTS / writer.run_id("sweep", plan.scenario)
    driven = what_to_drive(settings, variants, target)
    targets, database_url = driven.targets, driven.database_url
    if driven.scale is not None:
        plan = dataclasses.replace(plan, scale=driven.scale)
    tmp = writer.prepare_out(final)
    try:
        figures = {}
        for t in targets:
            print(f"{t.name}: sweeping {len(plan.rates)} rates, {plan.slo}", flush=True)
            figures[t.name] = sweep_variant(plan, t, database_url, tmp / t.name, live)
        summary = {
            "kind": "sweep",
            "run_id": final.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scenario": plan.scenario,
            "sweep": dataclasses.asdict(plan),
            "environment": driven.environment(settings),
            "variants": figures,
        }
        summary["flags"] = writer.sweep_flags(figures)
        index = writer.publish(summary, tmp, final)
    except BaseException:
        writer.discard(tmp)
        raise
    for line in summary["flags"]:
        print(f"  ! {line}")
    for name, v in figures.items():
        capacity = v["capacity_rps"]
        said = f"{capacity:g} req/s" if capacity else f"below {plan.rates[0]:g} req/s"
        end = f"stopped at {v['stopped_by']}" if v["stopped_by"] else "held at every rate"
        print(f"  {name:<16} capacity {said} within {plan.slo}; {end}")
    return (1 if any(f.startswith("FAIL") for f in summary["flags"]) else 0), index
