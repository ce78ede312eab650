"""The `python -m loadlab` command line: up, down, status, verify, run, loadtest, ui."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from loadlab.errors import INTERRUPTED, GateFailed, UsageError
from loadlab.settings import StackSettings
from loadlab.stack.services import DUEL, VARIANTS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"loadlab: {message} (see `python -m loadlab {self._sub()}--help`)\n")

    def _sub(self) -> str:
        parts = self.prog.split()[1:]
        return " ".join(parts) + " " if parts else ""


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", help="where the cluster, logs and PIDs live (.loadlab)")


def _placement_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--isolate",
        nargs="?",
        const="split",
        choices=("shared", "split", "priority"),
        help="where the generator runs: shared (every CPU for all), split (CPUs of its own; "
        "what a bare --isolate means) or priority (every CPU, the generator first; the "
        "default, measured best here: docs/statistics.md)",
    )
    parser.add_argument(
        "--cpus",
        metavar="generator=LIST stack=LIST",
        help='a split\'s CPUs, e.g. "generator=1 stack=0" (LIST: 0, 0,2 or 1-3)',
    )


def _up_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--pgbouncer",
        action="store_true",
        default=None,
        help="put PgBouncer (transaction mode) in front",
    )
    add(
        "--database-url",
        help="use this existing PostgreSQL instead of starting one (its loadlab tables are reset)",
    )
    add("--scale", type=float, help="seed size; 1.0 = 10,000 users and orders")
    add(
        "--pg-bin", help="folder of initdb and postgres (default: newest /usr/lib/postgresql/*/bin)"
    )
    add("--pg-port", type=int)
    add("--pgbouncer-port", type=int)
    add(
        "--port",
        action="append",
        metavar="VARIANT=PORT",
        dest="ports",
        help="a service's port (default: its registry port, 8001 up); repeatable",
    )
    _variants_option(parser, "which stacks to start")
    _profile_option(parser)
    add("--web-workers", type=int, help="gunicorn / uvicorn worker processes per service")
    add("--web-threads", type=int, help="gunicorn threads per worker")
    add("--db-pool-size", type=int)
    add("--db-max-overflow", type=int)


def _variants_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--variants",
        help=f"{what}: comma-separated names or 'all' ({', '.join(VARIANTS)}; "
        f"default: {','.join(DUEL)})",
    )


def _profile_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        help="run the services with this profile: profiles/<variant>.<name>.json, or "
        "'default' (a running service keeps its own unless this is given)",
    )


OUT_HELP = "report folder (default: reports/<date>-<scenario>-<users>u)"


def duration(text: str) -> float:
    """Seconds from '90', '90s', '2m' or '1m30s'."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 60s, 2m, 1m30s)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def percent(text: str) -> float:
    """A fraction from '10%' or '0.1'."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (try 10%)") from None
    return value / 100 if text.strip().endswith("%") else value


AUTO = 0  # --repeat auto, until the rounds are chosen (_auto_repeat)
CAPACITY = "capacity"  # tune --arrival-rate capacity: the newest sweep's, resolved in _cmd_tune


def rate_or_capacity(text: str) -> float | str:
    """tune's --arrival-rate: requests per second, or the word `capacity`."""
    if text.strip() == CAPACITY:
        return CAPACITY
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a rate: {text!r} (a number of requests per second, or capacity)"
        ) from None


def _repeat(text: str) -> int:
    if text.strip() == "auto":
        return AUTO
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of rounds: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--repeat {value}: give 1 or more, or auto")
    return value


def _load_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--scenario", default="select_update", help="a file in locustfiles/ (default: %(default)s)")
    add(
        "--locustfile",
        metavar="FILE",
        help="drive with your own Locust file instead of a scenario: loadlab's exact recorder, "
        "gates and report attached (the open model needs users subclassing LoadlabUser)",
    )
    add("--users", type=int, default=200, help="concurrent users (default: %(default)s)")
    add(
        "--spawn-rate",
        type=float,
        default=50,
        help="users started per second (default: %(default)s)",
    )
    add("--duration", type=duration, default=60.0, help="measured time per variant (default: 60s)")
    add("--warmup", type=duration, default=15.0, help="uncounted time before it (default: 15s)")
    add("--workers", type=int, default=0, help="Locust worker processes (default: 0, one process)")
    add(
        "--remote-workers",
        type=int,
        default=0,
        help="also wait for this many workers started on other machines (see docs/distributed.md)",
    )
    add("--tags", nargs="*", default=(), help="only the scenario's tasks with these Locust tags")
    add(
        "--repeat",
        type=_repeat,
        default=1,
        help="rounds per variant, interleaved; 5 or more can show a difference is real; "
        "'auto': as many as the newest matching calibration asks (see --budget)",
    )
    add(
        "--budget",
        type=duration,
        help="with --repeat auto: the most time the rounds may take (e.g. 20m)",
    )
    add(
        "--arrival-rate",
        type=float,
        help="open model: requests per second over all Locust processes, sent on a schedule "
        "that does not wait for replies, at most --users in flight (default: closed model)",
    )
    add(
        "--slo",
        help='objectives that gate the run, e.g. "p99<500ms,errors<1%%,rps>400" (p50, p90, p95, '
        "p99, p99.9, max, mean, errors, rps): one broken exits 1",
    )
    add(
        "--arrivals",
        choices=("constant", "poisson"),
        default="constant",
        help="open model: evenly spaced, or a Poisson process (default: %(default)s)",
    )
    add(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        help="after the variants, pgbench runs the scenario's SQL straight at PostgreSQL at the "
        "connections they used: the database's ceiling beside them (loadtest: on by default)",
    )
    _locust_html_option(parser)


def _junit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--junit",
        metavar="FILE",
        help="also write the checks as JUnit XML for CI: each gate, integrity rule and "
        "figure (or, for compare, each tested figure) a test case, failed as the exit code is",
    )


def _locust_html_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--locust-html",
        action="store_true",
        help="also write Locust's own HTML report per variant (about 1 MB each; "
        "loadlab's page and Locust's CSV statistics are always written)",
    )


def _plan(args: argparse.Namespace, scale: float) -> Any:
    from loadlab.load.runner import LoadPlan

    return LoadPlan(
        scenario=Path(args.locustfile).stem if args.locustfile else args.scenario,
        locustfile=args.locustfile,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration=args.duration,
        warmup=args.warmup,
        workers=args.workers,
        remote_workers=args.remote_workers,
        tags=tuple(args.tags),
        scale=scale,
        repeat=args.repeat or 1,  # --repeat auto: chosen next (_auto_repeat)
        arrival_rate=args.arrival_rate,
        arrivals=args.arrivals,
        slo=args.slo,
        ceiling=bool(args.ceiling),
        locust_html=args.locust_html,
    )


def _variant_names(args: argparse.Namespace) -> list[str]:
    """--variants as a list (default: the duel's two); --target names its own service."""
    from loadlab.stack.services import names

    if args.target is not None and args.variants is not None:
        raise UsageError("--target names its service itself (--target NAME=URL): drop --variants")
    return [] if args.target is not None else names(args.variants)


def _sweep_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--scenario", default="select_update", help="a file in locustfiles/ (default: %(default)s)")
    _variants_option(parser, "the stacks to sweep, in order")
    _profile_option(parser)
    add(
        "--target",
        action="append",
        metavar="[NAME=]URL",
        help="sweep this running service instead (repeatable, NAME= each)",
    )
    add("--rates", default="100:1000:100", help="start:stop:step or a list (default: %(default)s)")
    add("--step-duration", type=duration, default=20.0, help="seconds per rate (default: 20s)")
    add("--warmup", type=duration, default=10.0, help="before each variant's first step (10s)")
    add(
        "--tries",
        type=int,
        default=2,
        help="runs at one rate, all broken, before a variant stops (default: %(default)s)",
    )
    add("--slo", default="p99<500ms,errors<1%", help="the objective (default: %(default)s)")
    add("--users", type=int, default=200, help="most requests in flight (default: %(default)s)")
    add("--arrivals", choices=("constant", "poisson"), default="constant")
    add("--workers", type=int, default=0, help="Locust worker processes (default: 0)")
    add("--out", help="report folder (default: reports/<date>-sweep-<scenario>)")
    _locust_html_option(parser)


def _cmd_sweep(settings: StackSettings, args: argparse.Namespace) -> int:
    from loadlab import sweep
    from loadlab.stack import procs

    state = procs.load_state(settings.state_dir)
    plan = sweep.SweepPlan(
        scenario=args.scenario,
        rates=tuple(sweep.parse_rates(args.rates)),
        step_duration=args.step_duration,
        warmup=args.warmup,
        slo=args.slo,
        users=args.users,
        arrivals=args.arrivals,
        workers=args.workers,
        scale=state.scale if state else settings.scale,
        locust_html=args.locust_html,
        tries=args.tries,
    )
    names = _variant_names(args)
    out = Path(args.out) if args.out else None
    code, index = sweep.run(settings, plan, names, args.target, out)
    return _reported(args, code, index)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loadlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    up = sub.add_parser("up", help="start PostgreSQL, PgBouncer (optional) and both services")
    _stack_options(up)
    _placement_options(up)
    _up_options(up)
    down = sub.add_parser("down", help="stop everything `up` started")
    _stack_options(down)
    down.add_argument("--purge", action="store_true", help="also delete the cluster and logs")
    status = sub.add_parser("status", help="what is running, with PIDs and health")
    _stack_options(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    run = sub.add_parser("run", help="drive one scenario at each variant in turn and report")
    _stack_options(run)
    _placement_options(run)
    _load_options(run)
    _variants_option(run, "the stacks to drive, in order")
    _profile_option(run)
    run.add_argument(
        "--target",
        action="append",
        metavar="[NAME=]URL",
        help="drive this running HTTP service instead of the local ones, named NAME in the "
        "report; repeatable, to compare several in one report (with --database-url, the "
        "database behind them is reset before and checked after, as the local stack's)",
    )
    run.add_argument(
        "--fault",
        action="append",
        metavar="KIND",
        help="inject a fault while measuring: pg-restart, pg-terminate, pgbouncer-restart, "
        "service-kill or pg-slow (repeatable; each with its --fault-at)",
    )
    run.add_argument(
        "--fault-at",
        action="append",
        type=duration,
        metavar="T",
        help="when, into the measured window (e.g. 20s); one per --fault, in the same order",
    )
    run.add_argument(
        "--compare-pgbouncer",
        action="store_true",
        help="each variant straight to PostgreSQL and through PgBouncer (transaction mode) in "
        "one report; an asyncpg stack also with asyncpg's default statement cache behind it",
    )
    run.add_argument(
        "--profiles",
        metavar="A,B",
        help="each variant under each of these profiles (profiles/<variant>.<name>.json), in "
        "one report: copies of the services, the running ones left as they are",
    )
    run.add_argument("--out", help=OUT_HELP)
    _junit_option(run)
    sweep = sub.add_parser(
        "sweep", help="step the arrival rate up at each variant: its capacity at an objective"
    )
    _stack_options(sweep)
    _placement_options(sweep)
    _sweep_options(sweep)
    _junit_option(sweep)
    loadtest = sub.add_parser("loadtest", help="up, verify, run both variants, report, down")
    _stack_options(loadtest)
    _placement_options(loadtest)
    _up_options(loadtest)
    _load_options(loadtest)
    loadtest.add_argument("--out", help=OUT_HELP)
    _junit_option(loadtest)
    loadtest.add_argument(
        "--tuned",
        action="store_true",
        help="best against best: tune each variant without a 'tuned' profile, then run them all "
        "with theirs",
    )
    loadtest.add_argument(
        "--tune-budget",
        type=duration,
        default=300.0,
        help="with --tuned, the search time per variant to tune (default: 5m)",
    )
    ui = sub.add_parser("ui", help="the Locust web UI against one service")
    _stack_options(ui)
    _placement_options(ui)
    ui.add_argument("--variant", default="flask_sync", help=f"one of {', '.join(VARIANTS)}")
    ui.add_argument("--scenario", default="select_update")
    ui.add_argument("--web-port", type=int, default=8089)
    ui.add_argument(
        "--run-time",
        type=duration,
        default=600.0,
        help="each test started in the UI stops after this (default: 10m)",
    )
    ui.add_argument(
        "--workers", type=int, default=0, help="local Locust workers under the UI's master"
    )
    ui.add_argument(
        "--reports", default=None, help="where the tab writes report folders (default: reports/)"
    )
    ui.add_argument(
        "--target",
        action="append",
        metavar="NAME=URL",
        help="drive these running services instead of starting the local stack (repeatable; "
        "with --database-url, its database is reset and checked, as the stack's)",
    )
    ui.add_argument(
        "--web-host",
        default="127.0.0.1",
        help="the address the UI listens on (default: %(default)s; 0.0.0.0 only inside a "
        "container whose port is published on loopback)",
    )
    tune = sub.add_parser(
        "tune", help="search one stack's knobs for its best on this machine; save a profile"
    )
    _stack_options(tune)
    _placement_options(tune)
    add = tune.add_argument
    add("--variant", required=True, help=f"one of {', '.join(VARIANTS)}")
    add("--scenario", default="select_update", help="a file in locustfiles/ (default: %(default)s)")
    add("--users", type=int, default=200, help="users, or most in flight (default: %(default)s)")
    add(
        "--arrival-rate",
        type=rate_or_capacity,
        help="open model: best = lowest p99 at this rate; `capacity`: the stack's capacity "
        "at the same objective in the newest sweep of this scenario (its defaults just hold it)",
    )
    add("--budget", type=duration, default=600.0, help="time for the whole search (default: 10m)")
    add("--trial", type=duration, default=15.0, help="measured seconds per trial (default: 15s)")
    add("--warmup", type=duration, default=5.0, help="before each trial (default: 5s)")
    add("--slo", default="p99<500ms,errors<1%", help="the objective (default: %(default)s)")
    add("--name", default="tuned", help="the profile to write (default: %(default)s)")
    add("--out", help="report folder (default: reports/<date>-tune-<variant>-<scenario>)")
    calibrate = sub.add_parser(
        "calibrate", help="one stack against itself in alternating rounds: this machine's noise"
    )
    _stack_options(calibrate)
    _placement_options(calibrate)
    add = calibrate.add_argument
    add("--variant", default="fastapi_async", help=f"one of {', '.join(VARIANTS)}")
    add("--scenario", default="select_update", help="a file in locustfiles/ (default: %(default)s)")
    add("--rounds", type=int, default=5, help="rounds a side, 3 or more (default: %(default)s)")
    add("--users", type=int, default=200, help="users, or most in flight (default: %(default)s)")
    add("--arrival-rate", type=float, help="open model: requests per second")
    add("--spawn-rate", type=float, default=50, help="users started per second (default: 50)")
    add("--duration", type=duration, default=30.0, help="measured time per round (default: 30s)")
    add("--warmup", type=duration, default=10.0, help="before each round (default: 10s)")
    add("--workers", type=int, default=0, help="Locust worker processes (default: 0)")
    add("--out", help="report folder (default: reports/<date>-<scenario>-calibrate-<load>)")
    bench = sub.add_parser(
        "bench", help="what loadlab's generator costs, beside plain Locust on the same stack"
    )
    _stack_options(bench)
    add = bench.add_argument
    add("--variant", default="fastapi_async", help=f"one of {', '.join(VARIANTS)}")
    add("--users", type=int, default=50, help="users of each tool (default: %(default)s)")
    add("--quick", action="store_true", help="two short passes: checks, not figures")
    add("--out", help="report folder (default: reports/<date>-select_update-bench-<users>u)")
    compose = sub.add_parser(
        "compose",
        help="infra/docker-compose.yml's load run: build, up, verify, worker containers, down",
    )
    _stack_options(compose)
    add = compose.add_argument
    add("--workers", type=int, default=2, help="worker containers (default: %(default)s)")
    add("--users", type=int, default=200, help="users (default: %(default)s)")
    add("--duration", type=duration, default=60.0, help="measured time (default: 60s)")
    add("--warmup", type=duration, default=15.0, help="before it (default: 15s)")
    add("--base-image", default="loadlab-base:bookworm", help="the image's Debian bookworm base "
        "(default: %(default)s, made here with debootstrap: no registry needed)")  # fmt: skip
    add("--out", help="report folder (default: reports/<date>-select_update-<users>u)")
    evidence = sub.add_parser(
        "evidence", help="make every committed report again, in order, from a clean tree"
    )
    _stack_options(evidence)
    add = evidence.add_argument
    add("--only", nargs="+", metavar="NAME", help="these experiments only (see --list)")
    add("--list", action="store_true", help="print the experiments and their commands")
    add("--quick", action="store_true", help="each at a small size: checks, not figures")
    add("--out", help="where the reports go (default: reports/, which needs a clean tree)")
    add("--results", action="store_true", help="write docs/results.md from reports/ only")
    add("--where", metavar="NAME", help="print the committed report folder(s) of one experiment")
    add(
        "--status",
        action="store_true",
        help="each experiment's commit, whether the code changed since, and whether the "
        "committed set is one commit (exit 1 when it is not)",
    )
    add(
        "--retire",
        action="store_true",
        help="remove the reports evidence.json does not name (their summaries stay in "
        "reports/history/ for the trends), then rebuild reports/index.html",
    )
    compare = sub.add_parser(
        "compare", help="how each variant's figures changed from one report to another"
    )
    compare.add_argument("old", help="the earlier report folder (a run or a sweep)")
    compare.add_argument("new", help="the later one, of the same kind")
    compare.add_argument(
        "--threshold",
        type=percent,
        default=0.10,
        help="worse by more than this (relative) is a regression, exit 1 (default: 10%%)",
    )
    compare.add_argument("--out", help="the page to write (default: NEW/compare.html)")
    _junit_option(compare)
    micro = sub.add_parser(
        "micro", help="re-run the article's experiments on the database; write the findings"
    )
    _stack_options(micro)
    micro.add_argument(
        "--only", nargs="+", metavar="NAME", help="these experiments only (default: all)"
    )
    micro.add_argument("--repeat", type=int, default=3, help="timed passes (default: 3)")
    micro.add_argument("--quick", action="store_true", help="small sizes: checks, not figures")
    micro.add_argument("--out", help="findings folder (default: reports/<date>-findings)")
    report = sub.add_parser(
        "report", help="render report pages again from their data; --index: reports/index.html"
    )
    report.add_argument("runs", nargs="*", help="report folders, e.g. reports/2026...-200u")
    report.add_argument(
        "--index",
        action="store_true",
        help="rebuild reports/index.html: every report, and how the figures moved",
    )
    report.add_argument(
        "--schema",
        action="store_true",
        help="print the JSON Schema of summary.json, findings.json and bench.json",
    )
    seed_cmd = sub.add_parser(
        "seed", help="create the schema if missing and reset the rows to the seed"
    )
    _stack_options(seed_cmd)
    seed_cmd.add_argument("--database-url", help="default: the running stack's database")
    seed_cmd.add_argument("--scale", type=float, help="1.0 = 10,000 users and orders")
    seed_cmd.add_argument(
        "--app-role",
        action="store_true",
        help="also create the services' role loadlab_app, password from LOADLAB_APP_PASSWORD "
        "(the compose setup does this)",
    )
    verify = sub.add_parser(
        "verify", help="check every stack gives flask_sync's answers and SQL counts"
    )
    _stack_options(verify)
    verify.add_argument(
        "--variants", help="comma-separated names or 'all' (default: every running stack)"
    )
    verify.add_argument(
        "--target",
        action="append",
        metavar="NAME=URL",
        help="check these running services instead (repeatable; needs --database-url, the "
        "database behind them, which is reset before each)",
    )
    verify.add_argument("--database-url", help="with --target: the database behind them")
    return parser


def _ports(given: list[str] | None) -> dict[str, int]:
    """--port VARIANT=PORT, repeated."""
    ports = {}
    for item in given or []:
        name, _, port = item.partition("=")
        if name not in VARIANTS or not port.isdigit():
            raise UsageError(
                f"--port {item!r}: give VARIANT=PORT, VARIANT one of {', '.join(VARIANTS)}"
            )
        ports[name] = int(port)
    return ports


def settings_from(args: argparse.Namespace) -> StackSettings:
    """Defaults, then LOADLAB_* environment, then the flags given."""
    given = {
        k: v for k, v in vars(args).items() if v is not None and k in StackSettings.model_fields
    }
    if getattr(args, "ports", None):
        given["service_ports"] = _ports(args.ports)
    try:
        return StackSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "settings"
        raise UsageError(f"{name}: {first['msg']}") from None


def _print_status(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        health = "healthy" if row["healthy"] else ("running" if row["running"] else "stopped")
        pid = row["pid"] if row["pid"] is not None else "-"
        print(f"  {row['name']:<16} {health:<8} pid {pid!s:<8} {row['url']}")


def _cmd_up(settings: StackSettings) -> int:
    from loadlab.stack import credentials, lifecycle

    if settings.database_url:
        print(
            f"using the existing database {credentials.redact(settings.database_url)} (from "
            "--database-url, LOADLAB_DATABASE_URL or DATABASE_URL)"
        )
    state, started = lifecycle.up(settings)
    print("loadlab is up" if started else "loadlab was already up")
    _print_status(lifecycle.status(settings))
    print(f"logs: {settings.state_dir / 'logs'}; stop with `python -m loadlab down`")
    return 0


def _cmd_down(settings: StackSettings, purge: bool) -> int:
    from loadlab.stack import lifecycle

    stopped, held = lifecycle.down(settings, purge)
    if held:
        print(
            f"loadlab: {'; '.join(held)}: stop it by hand, then run `down` again", file=sys.stderr
        )
        return 1
    print(f"stopped: {', '.join(stopped)}; ports free" if stopped else "nothing was running")
    return 0


def _cmd_status(settings: StackSettings, as_json: bool) -> int:
    from loadlab.stack import lifecycle

    rows = lifecycle.status(settings)
    if as_json:
        print(json.dumps({"components": rows}, indent=2))
    elif rows:
        _print_status(rows)
    else:
        print("nothing is running (start it with `python -m loadlab up`)")
    return 0 if all(r["healthy"] for r in rows) else 1


def _cmd_verify(settings: StackSettings, spec: str | None, targets: list[str] | None) -> int:
    from loadlab import verify
    from loadlab.stack.services import names

    if spec and targets:
        raise UsageError("verify: --variants or --target, not both")
    return verify.run(settings, variants=names(spec) if spec else None, targets=targets)


def _cmd_run(settings: StackSettings, args: argparse.Namespace) -> int:
    from loadlab import duel
    from loadlab.stack import procs

    state = procs.load_state(settings.state_dir)
    plan = _plan(args, state.scale if state else settings.scale)
    names = _variant_names(args)
    plan = _auto_repeat(plan, args, names)
    if args.fault or args.fault_at:
        from loadlab import faults

        if args.target:
            raise UsageError("--fault breaks loadlab's own stack: not with --target")
        pgbouncer = state.pgbouncer if state else bool(settings.pgbouncer)
        plan = dataclasses.replace(
            plan,
            faults=faults.plan(args.fault or [], args.fault_at or [], plan.duration, pgbouncer),
        )
    if args.compare_pgbouncer or args.profiles is not None:
        plan = _side_by_side(settings, args, plan, names)
    code, index = duel.run(settings, plan, names, args.target, Path(args.out) if args.out else None)
    return _reported(args, code, index)


def _reported(args: argparse.Namespace, code: int, index: Path) -> int:
    """Say where the report is, and write its checks as JUnit XML with --junit."""
    print(f"report: {index}")
    if args.junit:
        from loadlab.report import junit

        cases, properties = junit.for_report(index.parent)
        print(f"junit: {junit.write(Path(args.junit), args.command, cases, properties)}")
    return code


def _auto_repeat(plan: Any, args: argparse.Namespace, variants: list[str]) -> Any:
    """The plan with its rounds chosen before it runs (--repeat auto): from the newest
    matching calibration of this machine, capped by --budget; never from the run's own p."""
    budget = args.budget
    if args.repeat != AUTO:
        if budget is not None:
            raise UsageError("--budget goes with --repeat auto")
        return plan
    from loadlab import ROOT
    from loadlab.analysis import noise
    from loadlab.load.experiment import plan_dict
    from loadlab.report.writer import REPORTS
    from loadlab.stack import placement

    mode = placement.active().mode
    names: list[str | None] = list(variants) or [None]  # --target: any stack's calibration
    found = [
        folder
        for name in names
        if (
            folder := noise.matching(
                ROOT / REPORTS, plan_dict(plan), os.cpu_count() or 1, mode, name
            )
        )
    ]
    if not found and budget is None:
        raise UsageError(
            "--repeat auto: no calibration of this scenario and load on this machine "
            "(run `python -m loadlab calibrate` first) and no --budget to fit rounds into"
        )
    if budget is not None and budget <= 0:
        raise UsageError("--budget must be more than 0")
    seconds = noise.round_seconds(plan.warmup, plan.duration, max(len(variants), 1))
    # The most demanding of the stacks' calibrations: every stack's figures must be seen.
    choices = [
        (*noise.auto_rounds(json.loads((f / "summary.json").read_text())["calibration"],
                            seconds, budget), f" ({f.name})")
        for f in dict.fromkeys(found)
    ] or [(*noise.auto_rounds(None, seconds, budget), "")]  # fmt: skip
    rounds, why, source = max(choices)
    print(f"--repeat auto: {rounds} rounds per variant: {why}{source}", flush=True)
    return dataclasses.replace(plan, repeat=rounds)


def _cmd_calibrate(settings: StackSettings, args: argparse.Namespace) -> int:
    from loadlab import calibrate
    from loadlab.load.runner import LoadPlan
    from loadlab.stack import procs

    state = procs.load_state(settings.state_dir)
    plan = LoadPlan(
        scenario=args.scenario,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration=args.duration,
        warmup=args.warmup,
        workers=args.workers,
        scale=state.scale if state else settings.scale,
        repeat=args.rounds,
        arrival_rate=args.arrival_rate,
    )
    calibrate.check(plan)  # before anything starts
    code, index = calibrate.run(settings, plan, args.variant, Path(args.out) if args.out else None)
    print(f"report: {index}")
    return code


def _side_by_side(
    settings: StackSettings, args: argparse.Namespace, plan: Any, names: list[str]
) -> Any:
    """The plan with --compare-pgbouncer or --profiles, checked before anything starts."""
    from loadlab import side_by_side

    flag = "--compare-pgbouncer" if args.compare_pgbouncer else "--profiles"
    if args.target or plan.faults or (args.compare_pgbouncer and args.profiles is not None):
        raise UsageError(
            f"{flag} starts copies of loadlab's own services: not with --target, --fault "
            "or the other of --compare-pgbouncer and --profiles"
        )
    chosen = tuple(p.strip() for p in (args.profiles or "").split(",") if p.strip())
    if args.profiles is not None:
        if len(chosen) < 2 or len(set(chosen)) < len(chosen) or args.profile:
            raise UsageError(
                "--profiles names two or more different profiles, e.g. "
                "nested-session,nested-session-fixed (and no --profile)"
            )
        side_by_side.profile_setups(settings, names, list(chosen))  # each one exists
    return dataclasses.replace(plan, compare_pgbouncer=args.compare_pgbouncer, profiles=chosen)


def _cmd_seed(settings: StackSettings, scale_given: float | None, app_role: bool) -> int:
    from loadlab.stack import credentials, postgres, procs, seed

    app_password = os.environ.get("LOADLAB_APP_PASSWORD", "")
    if app_role and not app_password:
        raise UsageError("--app-role needs the role's password in LOADLAB_APP_PASSWORD")

    state = procs.load_state(settings.state_dir)
    url = settings.database_url or (state.direct_database_url if state else None)
    if url is None:
        raise UsageError("no database: give --database-url or start the stack with `up`")
    postgres.wait_ready(url, settings.ready_timeout)
    server = state.get("postgres") if state else None
    own = settings.database_url is None and server is not None and server.pid is not None
    postgres.apply_schema(url, own_cluster=own)  # a cluster `up` started is loadlab's own
    if app_role:
        postgres.grant_app_role(url, credentials.scram_sha_256(app_password))
    # Without --scale, keep the running stack's scale: the scenarios draw ids from it.
    scale = seed.Scale.of(scale_given or (state.scale if state else settings.scale))
    seed.reset(url, scale)
    print(f"seeded {credentials.redact(url)}: {scale.users:,} users, {scale.orders:,} orders")
    return 0


def _cmd_tune(settings: StackSettings, args: argparse.Namespace) -> int:
    from loadlab import tune
    from loadlab.stack import procs

    rate, rate_from = args.arrival_rate, None
    if rate == CAPACITY:
        from loadlab import ROOT, sweep
        from loadlab.report.writer import REPORTS

        found = sweep.newest_capacity(
            ROOT / REPORTS, args.variant, args.scenario, args.slo, os.cpu_count() or 1
        )
        if found is None:
            raise UsageError(
                f"--arrival-rate capacity: no sweep of {args.scenario} within {args.slo} on "
                f"this machine in which {args.variant} held a rate (run `python -m loadlab "
                "sweep` with that --slo first, or give a rate)"
            )
        rate, rate_from = found
        print(f"tuning at {rate:g} req/s: {args.variant}'s capacity in reports/{rate_from}")
    state = procs.load_state(settings.state_dir)
    plan = tune.TunePlan(
        variant=args.variant,
        scenario=args.scenario,
        users=args.users,
        arrival_rate=rate,
        rate_from=rate_from,
        budget=args.budget,
        trial=args.trial,
        warmup=args.warmup,
        slo=args.slo,
        name=args.name,
        scale=state.scale if state else settings.scale,
    )
    plan.load()  # the scenario, users and rate checked before anything restarts
    return tune.run(settings, plan, Path(args.out) if args.out else None)


def _cmd_compare(args: argparse.Namespace) -> int:
    from loadlab.analysis import change
    from loadlab.report import pages

    result = change.compare(Path(args.old), Path(args.new), args.threshold)
    page = Path(args.out) if args.out else Path(args.new) / "compare.html"
    if not page.parent.is_dir():
        raise UsageError(f"--out {page}: its folder does not exist")
    for c in result["changes"]:
        verdict = "REGRESSION" if c["regression"] else ("within noise" if c["worse"] else "ok")
        rel = "" if c["relative"] is None else f" ({c['relative']:+.1%})"
        old = "-" if c["old"] is None else f"{c['old']:,.4g}"
        new = "-" if c["new"] is None else f"{c['new']:,.4g}"
        p = "" if c["p"] is None else f", p = {c['p']:.4f}"
        print(f"  {c['variant']:<16} {c['figure']:<12} {old:>10} -> {new:<10}{rel}{p}  {verdict}")
    if result["test"]:
        print(f"  test: {result['test']}; Holm over {result['family']} tests, 5% familywise")
    else:
        print("  one run a side: only the threshold applied, no test (--repeat for one)")
    for line in result["differences"]:
        print(f"  ! ran differently: {line}")
    # Written whole, then moved into place: never half a page.
    for target, text in (
        (page, pages.render_compare(result)),
        (page.with_suffix(".json"), json.dumps(result, indent=1)),
    ):
        tmp = target.with_name(f".tmp-{target.name}")
        tmp.write_text(text)
        tmp.replace(target)
    print(f"compare: {page}")
    if args.junit:
        from loadlab.report import junit

        cases = junit.compare_cases(result)
        properties = {"old": result["old"], "new": result["new"]}
        print(f"junit: {junit.write(Path(args.junit), 'compare', cases, properties)}")
    if result["regressions"]:
        named = ", ".join(f"{r['variant']} {r['figure']}" for r in result["regressions"])
        raise GateFailed(f"worse beyond {args.threshold:.0%}: {named}")
    return 0


def _on_interrupt(signum: int, frame: object) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt  # SIGTERM takes the same clean-up path as Ctrl-C


# Commands that start, stop, reset or drive the stack: one at a time per state folder.
LOCKED = {"up", "down", "seed", "run", "sweep", "loadtest", "verify", "tune", "micro", "calibrate"}
# Commands that start or drive the stack under a placement (--isolate, --cpus).
PLACED = {"up", "run", "sweep", "loadtest", "tune", "ui", "calibrate"}


def _dispatch(args: argparse.Namespace, settings: StackSettings) -> int:
    if args.command == "up":
        return _cmd_up(settings)
    if args.command == "down":
        return _cmd_down(settings, args.purge)
    if args.command == "status":
        return _cmd_status(settings, args.json)
    if args.command == "report":
        from loadlab import ROOT
        from loadlab.report.writer import REPORTS, rerender, write_index

        if args.schema:
            from loadlab.report.schema import json_schema

            print(json_schema(), end="")
            return 0
        if not args.runs and not args.index:
            raise UsageError("report: name report folders, --index (or both), or --schema")
        for run in args.runs:
            if (Path(run) / "findings.json").exists():  # a `loadlab micro` folder
                from loadlab.micro.run import rerender as rerender_findings

                print(f"report: {rerender_findings(Path(run))}")
            else:
                print(f"report: {rerender(Path(run))}")
        if args.index:
            print(f"index: {write_index(ROOT / REPORTS)}")
        return 0
    if args.command == "tune":
        return _cmd_tune(settings, args)
    if args.command == "compare":
        return _cmd_compare(args)
    if args.command == "calibrate":
        return _cmd_calibrate(settings, args)
    if args.command == "evidence":
        from loadlab import evidence

        if args.list:
            print("\n".join(evidence.listing(evidence.chosen(args.only))))
            return 0
        if args.where:
            print("\n".join(evidence.where(args.where)))
            return 0
        if args.status:
            lines = evidence.status()
            print("\n".join(lines))
            return 0 if lines[-1].startswith("one set") else 1
        if args.retire:
            gone = evidence.retire()
            print(f"retired {len(gone)} report(s): {', '.join(gone) or 'none'}")
            return 0
        if not args.results:
            out = Path(args.out) if args.out else None
            print(f"evidence: {evidence.run(args.only, args.quick, out, settings)}")
            if out is not None:
                return 0  # a folder of its own: docs/results.md stays the committed set's
        from loadlab.report import results as results_page

        results_page.RESULTS.write_text(evidence.results())
        print(f"results: {results_page.RESULTS}")
        for page in results_page.update_pages():
            print(f"updated: {page}")
        return 0
    if args.command == "compose":
        from loadlab.stack import compose

        plan = compose.Load(args.workers, args.users, f"{args.duration:g}s", f"{args.warmup:g}s")
        code, page = compose.run(
            settings, plan, Path(args.out) if args.out else None, args.base_image
        )
        print(f"report: {page}")
        return code
    if args.command == "bench":
        from loadlab import bench

        page = bench.run(
            settings, args.variant, args.users, args.quick, Path(args.out) if args.out else None
        )
        print(f"report: {page}")
        return 0
    if args.command == "micro":
        from loadlab.micro import run as micro

        page = micro.run(
            settings, args.only, args.repeat, args.quick, Path(args.out) if args.out else None
        )
        print(f"findings: {page}")
        return 0
    if args.command == "seed":
        return _cmd_seed(settings, args.scale, args.app_role)
    if args.command == "run":
        return _cmd_run(settings, args)
    if args.command == "sweep":
        return _cmd_sweep(settings, args)
    if args.command == "loadtest":
        from loadlab import duel

        out = Path(args.out) if args.out else None
        if args.tuned and args.profile:
            raise UsageError("--tuned runs the 'tuned' profiles: drop --profile")
        if args.tuned:
            from loadlab import tune

            tune.check_budget(args.tune_budget)  # said before the stack starts
        budget = args.tune_budget if args.tuned else None
        if args.ceiling is None:  # on wherever the scenario has a pgbench script
            from loadlab import ceiling

            args.ceiling = not args.locustfile and ceiling.script(args.scenario) is not None
        from loadlab.stack.services import names

        plan = _auto_repeat(_plan(args, settings.scale), args, names(args.variants))
        code, index = duel.loadtest(settings, plan, out, budget)
        return _reported(args, code, index)
    if args.command == "ui":
        from loadlab import duel

        return duel.ui(
            settings,
            args.variant,
            args.scenario,
            args.web_port,
            args.run_time,
            args.workers,
            Path(args.reports) if args.reports else None,
            args.target,
            args.web_host,
        )
    return _cmd_verify(settings, args.variants, args.target)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 a check failed, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored one stays so
        signal.signal(signal.SIGINT, _on_interrupt)
    if getattr(args, "out", None):
        # Locust runs in loadlab's root and writes its results under the report folder: a
        # relative --out means the user's folder, so it is made absolute here, once.
        args.out = str(Path(args.out).resolve())
    try:
        settings = settings_from(args)
        if getattr(args, "junit", None):
            from loadlab.report import junit

            junit.check_target(Path(args.junit))  # said before anything starts
        if args.command in PLACED:
            from loadlab.stack import placement

            # Said before anything starts; from here on this process is the generator's.
            placement.activate(placement.resolve(settings.isolate, settings.cpus))
        if args.command in LOCKED:
            from loadlab.stack.procs import state_lock

            with state_lock(settings.state_dir, args.command):
                return _dispatch(args, settings)
        return _dispatch(args, settings)
    except UsageError as exc:
        print(f"loadlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except GateFailed as exc:
        print(f"loadlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # The clean-up has run; a second Ctrl-C now has nothing left to interrupt, and
        # ignoring it keeps the exit status 130 instead of death by SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("loadlab: interrupted; everything started was stopped", file=sys.stderr)
        return 130
