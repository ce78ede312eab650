"""The `run`, `loadtest` and `ui` commands: drive a scenario at each variant, report it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab import ROOT, ceiling, faults, side_by_side, verify
from loadlab.analysis import repeats
from loadlab.environment import describe
from loadlab.errors import UsageError
from loadlab.load.experiment import (
    Target,
    external_target,
    local_targets,
    plan_dict,
    run_variant,
)
from loadlab.load.runner import LOCUST_PYTHONPATH, LOCUSTFILES, LoadPlan, locust_roles
from loadlab.load.ui_config import CONFIG_ENV, PARENT_ENV, UiConfig
from loadlab.report import writer
from loadlab.settings import StackSettings
from loadlab.stack import lifecycle, placement, postgres, procs, profiles, services
from loadlab.stack.procs import interrupts_held

CEILING_SECONDS = 20.0  # pgbench per connection count: a steady figure well before this


@dataclass(frozen=True)
class Driven:
    """What a run or a sweep drives: its targets, and the database behind them if ours."""

    targets: list[Target]
    database_url: str | None  # None for an external target: no reset, no integrity
    scale: float | None  # the running stack's seed scale
    pgbouncer: bool

    def environment(self, settings: StackSettings) -> dict[str, Any]:
        pg_version = (
            postgres.server_version(self.database_url)
            if self.database_url
            else "unknown (external target)"
        )
        return describe(pg_version, self.pgbouncer, settings.model_dump(mode="json")) | {
            "placement": placement.active().describe()
        }


def result_lines(figures: dict[str, Any], repeat: int) -> list[str]:
    """Each stack's (each round's) figures, one line each, as a run prints them at its end
    (docs quote them, and a test compares the quote with the report's JSON)."""
    width = max(16, *map(len, figures))  # the names' column
    lines = []
    for name, v in figures.items():
        for number, r in enumerate(v.get("rounds") or [v], 1):
            lat = r["latency_ms"]
            lines.append(
                f"  {name:<{width}} {'' if repeat == 1 else f'round {number} '}"
                f"{r['requests']:>8,} req  {r['throughput_rps']:8.1f} req/s  "
                f"p50 {lat['p50']:7.1f}  p95 {lat['p95']:7.1f}  p99 {lat['p99']:8.1f} ms  "
                f"errors {r['error_rate']:.2%}"
            )
            if "offered_rps" in r:
                raw = r["latency_uncorrected_ms"]
                lines.append(
                    f"  {'':<{width}} offered {r['offered_rps']:8.1f} req/s, "
                    f"{r['arrivals']['not_sent']:,} not sent, {r['arrivals']['late']:,} late; "
                    f"from the send: p50 {raw['p50']:7.1f}  p99 {raw['p99']:8.1f} ms"
                )
    return lines


def closing_lines(summary: dict[str, Any]) -> list[str]:
    """What a run prints after its load, from its summary alone: the flags, each stack's
    figures, each fault, the verdicts of rounds and the database's ceiling (docs quote these
    lines, and a test compares a quote with its report's JSON)."""
    figures, repeat = summary["variants"], summary["plan"]["repeat"]
    width = max(16, *map(len, figures))  # the names' column
    lines = [f"  ! {line}" for line in summary["flags"]]
    lines += result_lines(figures, repeat)
    for name, v in figures.items():
        for f in v.get("faults") or []:
            back = (
                "still failing at the end"
                if f["recovery_s"] is None
                else (f"no errors again after {f['recovery_s']:.1f} s")
            )
            lines.append(
                f"  {name:<{width}} {f['kind']} at {f['at_s']:.1f} s ({f['detail']}): "
                f"{f['failed_requests']:,} failed, {back}"
            )
    lines += [f"  {sentence}" for sentence in summary["verdicts"] if repeat > 1]
    for name, v in figures.items() if summary.get("ceilings") else []:
        c = v["ceiling"]
        share = "" if c["share"] is None else f"{c['share']:.0%} of "
        lines.append(
            f"  {name:<{width}} {share}the database's ceiling: {c['tps']:,.0f} "
            f"transactions/s by pgbench at {c['connections']} connections"
        )
    return lines


def what_to_drive(
    settings: StackSettings, variants: list[str], targets: list[str] | None
) -> Driven:
    """The --target services (any HTTP services, compared in one report), or the running
    stack's `variants`."""
    if targets:
        if len(targets) > 1 and [t for t in targets if "=" not in t.split("://")[0]]:
            raise UsageError("several --target: give each a name (--target NAME=URL)")
        external = [external_target(t) for t in targets]
        names = [t.name for t in external]
        if len(set(names)) < len(names):
            raise UsageError(f"--target names {names[0]} twice: give each service its own name")
        if settings.database_url:
            # The database behind them, given: reset before each run and checked after it,
            # as the stack's own (the compose `load` profile).
            database = postgres.given_database(settings.database_url, settings.ready_timeout)
            return Driven(external, database, settings.scale, False)
        return Driven(external, None, None, False)
    found, state = local_targets(settings, variants)
    return Driven(found, state.direct_database_url, state.scale, state.pgbouncer)


def run(
    settings: StackSettings,
    plan: LoadPlan,
    variants: list[str],
    target: list[str] | None,
    out: Path | None,
    live: bool = True,
) -> tuple[int, Path]:
    """Drive `plan` at each variant in turn and publish the report; (exit code, index.html).
    With `target` (NAME=URL each), those services instead of `variants`."""
    final = out or ROOT / writer.REPORTS / writer.run_id(plan.scenario, plan.tag)
    if plan.ceiling and target:
        raise UsageError("--ceiling measures loadlab's own database: not with --target")
    # Said before any load is sent: no script for the scenario, or no pgbench.
    pgbench = ceiling.prepare(plan.scenario, settings.pg_bin) if plan.ceiling else None
    driven = what_to_drive(settings, variants, target)
    targets, database_url = driven.targets, driven.database_url
    tmp = writer.prepare_out(final)
    try:
        with contextlib.ExitStack() as copies:
            legs: dict[str, side_by_side.Leg] = {}
            state = procs.load_state(settings.state_dir)
            if plan.compare_pgbouncer and state is not None:
                targets, legs = copies.enter_context(side_by_side.legs(settings, state, targets))
            if plan.profiles and state is not None:
                targets = side_by_side.profile_legs(settings, state, targets, list(plan.profiles))
            order = run_order([t.name for t in targets], plan.repeat)
            figures = {
                name: repeats.with_rounds(rounds)
                for name, rounds in drive_rounds(
                    plan, targets, database_url, tmp, live, settings
                ).items()
            }
        for name, leg in legs.items():
            figures[name]["leg"] = leg.as_dict()
        ceilings = None
        if pgbench is not None and database_url:
            seconds = min(plan.duration, CEILING_SECONDS)
            ceilings = ceiling.attach(
                figures, pgbench, database_url, plan.scenario, seconds, plan.scale
            )
        summary = writer.build_summary(
            final.name, plan_dict(plan), driven.environment(settings), figures
        )
        summary["run_order"] = order
        summary["ceilings"] = ceilings
        index = writer.publish(summary, tmp, final)
    except BaseException:
        writer.discard(tmp)
        raise
    for line in closing_lines(summary):
        print(line)
    return (1 if writer.failed(summary) else 0), index


def run_order(names: list[str], repeat: int) -> list[list[Any]]:
    """[variant, round] in the order they run: alternating (A B, B A, ...) so that a machine
    that slows down or speeds up over time favours neither. With one round the first named
    runs first, and the page says so."""
    return [
        [name, number]
        for number in range(1, repeat + 1)
        for name in (names if number % 2 else names[::-1])
    ]


def drive_rounds(
    plan: LoadPlan,
    targets: list[Target],
    database_url: str | None,
    tmp: Path,
    live: bool,
    settings: StackSettings | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Each target `plan.repeat` times, never two at once, in `run_order`. Round 1 is
    written to <variant>/, later rounds to <variant>/round-<n>/."""
    rounds: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    by_name = {t.name: t for t in targets}
    for name, number in run_order(list(by_name), plan.repeat):
        t = by_name[name]
        of = "" if plan.repeat == 1 else f" (round {number} of {plan.repeat})"
        out = tmp / t.name if number == 1 else tmp / t.name / f"round-{number}"
        act = faults.actions(settings, t.name) if plan.faults and settings else None
        # A side-by-side copy runs for its own leg only (side_by_side._Copy.launch).
        with t.launch() if t.launch else contextlib.nullcontext(t) as started:
            driven = dataclasses.replace(
                started, label=t.label, launch=None, expected_failure=t.expected_failure
            )
            print(
                f"{t.name}{of}: {plan.describe()}, {plan.warmup:.0f} s warm-up + "
                f"{plan.duration:.0f} s measured against {driven.url}",
                flush=True,
            )
            rounds[t.name].append(run_variant(plan, driven, database_url, out, live, act=act))
    return rounds


def loadtest(
    settings: StackSettings,
    plan: LoadPlan,
    out: Path | None = None,
    tune_budget: float | None = None,
) -> tuple[int, Path]:
    """up -> verify -> run the variants -> report -> down (if this command started the stack).
    With `tune_budget`, best against best: each variant without a "tuned" profile is tuned
    first (that long each, at this load), then every variant runs its tuned profile."""
    if out is not None:
        writer.discard(writer.prepare_out(out))  # said now, not after the stack is up
    names = services.names(settings.variants)
    state, started = lifecycle.up(settings)
    try:
        if len(names) > 1:  # one stack alone has nothing to be compared with
            print(f"stack up; verifying the contract on {', '.join(names)} ...", flush=True)
            verify.run(settings, quiet=True, variants=list(names))
        plan = dataclasses.replace(plan, scale=state.scale)
        if tune_budget is not None:
            settings = _tuned(settings, plan, names, tune_budget)
        code, index = run(settings, plan, names, None, out)
    finally:
        if started:
            _, held = lifecycle.down(settings)
            for sentence in held:
                print(f"  ! {sentence}: stop it by hand", file=sys.stderr)
    return code, index


def _tuned(
    settings: StackSettings, plan: LoadPlan, names: list[str], budget: float
) -> StackSettings:
    """Tune each variant that has no "tuned" profile yet; settings that run them tuned."""
    from loadlab import tune  # tune drives through this module

    for name in names:
        if profiles.exists(name, tune.PROFILE, settings.profiles_dir):
            print(f"{name}: using profiles/{name}.{tune.PROFILE}.json", flush=True)
            continue
        tune.run(
            settings,
            tune.TunePlan(
                variant=name,
                scenario=plan.scenario,
                users=plan.users,
                arrival_rate=plan.arrival_rate,
                budget=budget,
                slo=plan.slo or tune.TunePlan.slo,
                scale=plan.scale,
            ),
            None,
            live=False,
        )
    return settings.model_copy(update={"profile": tune.PROFILE})


def ui(
    settings: StackSettings,
    variant: str,
    scenario: str,
    port: int,
    run_time: float,
    workers: int = 0,
    reports: Path | None = None,
    targets: list[str] | None = None,
    web_host: str = "127.0.0.1",
) -> int:
    """The Locust web UI (127.0.0.1 by default) against the running stacks, with loadlab's tab
    (load/webui.py), until Ctrl-C; starts the stack if it is not up, and leaves it up.
    `variant` is the stack chosen first; any other running stack can be chosen per test.
    With `targets` (NAME=URL), those services instead, the first chosen first, and the
    database behind them if one is given (the compose `ui` profile)."""
    services.names(variant)  # known, or exit 2
    # Validates the scenario and --workers; its roles are the Locust processes to start.
    plan = LoadPlan(scenario=scenario, users=1, spawn_rate=1, duration=1, warmup=0, workers=workers)
    if run_time <= 0:
        raise UsageError("--run-time must be more than 0")
    lifecycle.check_port_free(port, "--web-port")
    reports = reports or ROOT / writer.REPORTS
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write reports to {reports}: {exc.strerror or exc}") from None
    if targets:
        driven = what_to_drive(settings, [variant], targets)
        stacks = {t.name: t.url for t in driven.targets}
        variant, url = next(iter(stacks.items()))
        scale = driven.scale or settings.scale
    else:
        with procs.state_lock(settings.state_dir, "ui"):  # only while starting: the UI stays
            state, _ = lifecycle.up(settings)
        component = state.get(variant)
        assert component is not None
        url, scale = component.url, state.scale
        stacks = {variant: url}
        for c in state.components:  # the others that run now, to switch to in the form
            if c.name in services.VARIANTS and c.name != variant and services.healthy(c.url, 1.0):
                stacks[c.name] = c.url
    config = UiConfig(
        scenario=scenario,
        state_dir=str(settings.state_dir),
        settings=settings.model_dump(mode="json"),  # as every report has them: no password
        stacks=stacks,
        reports=str(reports.resolve()),
        workers=workers,
        external=bool(targets),
    )
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / f"{scenario}.py")]
    master_role, *worker_roles = locust_roles(plan)
    argv = [
        *locust,
        "--host",
        url,
        "--web-host",
        web_host,
        "--web-port",
        str(port),
        "--run-time",
        f"{run_time:g}s",
        "--users",
        "200",
        "--spawn-rate",
        "50",
        "--stop-timeout",  # as in a headless run: users finish the request they are in
        "10",
    ]
    argv += master_role
    print(
        f"Locust web UI: http://{web_host}:{port} driving {variant} at {url} "
        f"(loadlab tab: exact figures, integrity, report); each test stops after "
        f"{run_time:g} s. Ctrl-C ends the UI; the stack stays up (`make down` stops it).",
        flush=True,
    )
    env = {
        **os.environ,
        "LOADLAB_SCALE": str(scale),
        "PYTHONPATH": LOCUST_PYTHONPATH,
        CONFIG_ENV: json.dumps(dataclasses.asdict(config)),
        PARENT_ENV: str(os.getpid()),
    }
    started: list[subprocess.Popen[bytes]] = []
    try:
        with interrupts_held():
            started = [subprocess.Popen([*locust, *role], env=env) for role in worker_roles]
            master = subprocess.Popen(argv, env=env)
            started.append(master)
        for proc in started:
            placement.active().generator_started(proc.pid)
        return master.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)  # workers quit when their master does
            if proc.poll() is None:
                proc.kill()
                proc.wait()
