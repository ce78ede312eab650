"""loadlab's tab in Locust's web UI (`loadlab ui`): the exact figures of a headless run while
an interactive test runs, and its report when it stops.

Locust's own tab rounds percentiles to two digits over a rolling window; this one reads the
same HdrHistograms a headless `run` reports from (the master's, merged from every worker):
p50/p95/p99/p99.9 of the last 10 s and of the whole test, where the time went (the services'
Server-Timing), the generator's own delay, and the CPU of each component. Each test starts
from the seed data, as a headless run does, so when it stops the integrity check runs over
that test alone, and the report link writes the same report folder `run` writes.

The form gains loadlab's fields: which running stack to drive (the Host field is then set
from the registry), and the open model's arrival rate (0: the closed model).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import httpx
from flask import Response, jsonify, redirect, request, send_from_directory
from locust.env import Environment
from locust.runners import MasterRunner

from loadlab import ROOT
from loadlab.analysis import repeats
from loadlab.environment import describe
from loadlab.errors import UsageError
from loadlab.load import hdr
from loadlab.load.experiment import Baseline, Target, baseline, plan_dict, summarise
from loadlab.load.monitor import GENERATOR, Monitor
from loadlab.load.recorder import KEEP_WHOLE_S, PERCENTILES, Recorder, latency_ms
from loadlab.load.runner import LoadPlan
from loadlab.load.ui_config import PARENT_ENV, UiConfig
from loadlab.report import writer
from loadlab.stack import postgres, procs, services

TAB = "loadlab"
RECENT_S = 10
# A worker ships its figures every 3 s and once more when it stops: the master waits this
# long after a test stops before it reads the figures and checks integrity.
SETTLE_S = 4.0


class OffLoopMonitor(Monitor):
    """The monitor in the Locust master: psutil's reads (each PostgreSQL backend's memory map,
    tens of ms a second) run in a native thread, so the event loop that times requests is
    not held up by them."""

    def _sample(self) -> dict[str, tuple[float, float, float, float, int]]:
        sample = super()._sample
        return gevent.get_hub().threadpool.apply(sample)  # type: ignore[no-any-return]


@dataclass
class Test:
    """One test started in the UI: what it drives, and what is known once it stops."""

    stack: str
    url: str
    started: float
    users: int
    spawn_rate: float
    arrival_rate: float | None
    arrivals: str
    before: Baseline | None = None
    monitor: Monitor | None = None
    stopped: float | None = None  # when it began to stop: the end of its window
    settling: bool = False
    result: dict[str, Any] | None = None  # what a headless run's master writes, once settled
    figures: dict[str, Any] | None = None  # set once it stopped and settled
    report: str | None = None  # the report folder, once written
    problem: str | None = None  # why its figures could not be read


class Session:
    """The UI's tests, one at a time; the tab's rows and the report come from here."""

    def __init__(self, environment: Environment, recorder: Recorder, config: UiConfig) -> None:
        self.environment = environment
        self.recorder = recorder
        self.config = config
        self.test: Test | None = None
        self.reports: list[str] = []  # written this session, oldest first

    # The test's life, from Locust's events.
    def start(self) -> None:
        options = self.environment.parsed_options
        stack = getattr(options, "stack", None) or next(iter(self.config.stacks))
        url = self.config.stacks[stack]
        self.environment.host = url  # the registry's address wins over the Host field
        rate = float(getattr(options, "arrival_rate", 0) or 0)
        test = Test(
            stack=stack,
            url=url,
            started=time.time(),
            users=int(getattr(options, "num_users", 0) or 0),
            spawn_rate=float(getattr(options, "spawn_rate", 1) or 1),
            arrival_rate=rate or None,
            arrivals=getattr(options, "arrivals", "constant"),
        )
        self.test = test
        if self.config.external:  # `ui --target`: no processes of ours to watch but Locust's
            database_url, scale = self._database(), float(self.config.settings["scale"])
            roots = {GENERATOR: [os.getppid()]}
        else:
            state = procs.load_state(Path(self.config.state_dir))
            if state is None:
                test.problem = "the stack's state is gone: was it stopped (`loadlab down`)?"
                return
            database_url, scale = state.direct_database_url, state.scale
            roots = self._roots(state, stack)
        if database_url:
            try:
                test.before = baseline(database_url, scale)
            except Exception as exc:  # the database is down: the test runs, unchecked
                test.problem = f"no integrity check: the database did not answer ({exc})"
        test.monitor = OffLoopMonitor(roots)
        test.monitor.__enter__()

    def stopping(self) -> None:
        """The end of the test's window: no request is started after this (the open model's
        schedule closes now), though the last ones may take up to the stop timeout."""
        if self.test is not None and self.test.stopped is None:
            self.test.stopped = time.time()

    def stop(self) -> None:
        """Every user has stopped: read the figures once the workers' last reports are in."""
        test = self.test
        if test is None or test.settling:
            return
        test.settling = True
        self.stopping()
        gevent.spawn(self._settle, test)

    def _settle(self, test: Test) -> None:
        gevent.sleep(SETTLE_S if isinstance(self.environment.runner, MasterRunner) else 0.5)
        if test.monitor is not None:
            test.monitor.__exit__(None, None, None)
        try:
            test.figures = self._figures(test)
        except Exception as exc:  # shown in the tab: the UI itself goes on
            test.problem = f"{type(exc).__name__}: {exc}"

    def _figures(self, test: Test) -> dict[str, Any]:
        exported = self.recorder.export()
        self.recorder.merge(exported)  # the tab still shows them
        runner = self.environment.runner
        assert runner is not None and test.stopped is not None
        result = {
            "measure_start": self.recorder.measure_start or test.started,
            "measure_end": test.stopped,
            "locust_requests": runner.stats.total.num_requests,
            "locust_failures": runner.stats.total.num_failures,
            "recorder": exported,
        }
        state = None if self.config.external else procs.load_state(Path(self.config.state_dir))
        component = state.get(test.stack) if state is not None else None
        target = Target(
            test.stack,
            services.VARIANTS[test.stack].label if test.stack in services.VARIANTS else test.stack,
            test.url,
            setup=component.setup if component is not None else None,
        )
        database_url = state.direct_database_url if state is not None else self._database()
        test.result = result
        return summarise(target, result, test.monitor or Monitor({}), database_url, test.before)

    # The report.
    def write_report(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): the report folder of the last test, written once."""
        test = self.test
        if test is None:
            return 409, {"error": "no test has run yet: start one first"}
        if test.stopped is None:
            return 409, {"error": "the test is still running: stop it first"}
        if test.problem:
            return 409, {"error": f"the test's figures could not be read: {test.problem}"}
        if test.figures is None:
            return 409, {"error": "the test's figures are being read: try again in a moment"}
        if test.report is None:
            try:
                test.report = self._publish(test)
            except UsageError as exc:  # the folder exists, or cannot be written
                return 409, {"error": str(exc)}
            self.reports.append(test.report)
        return 200, self._report_links(test.report)

    def _publish(self, test: Test) -> str:
        from loadlab.report.writer import prepare_out  # the same folder rules as `run`

        assert test.figures is not None and test.stopped is not None
        plan = self._plan(test)
        final = Path(self.config.reports) / writer.run_id(plan.scenario, plan.tag)
        tmp = prepare_out(final)
        try:
            (tmp / test.stack).mkdir()
            (tmp / test.stack / "recorder.json").write_text(json.dumps(test.result))
            state = procs.load_state(Path(self.config.state_dir))
            version = postgres.server_version(state.direct_database_url) if state else "unknown"
            environment = describe(version, bool(state and state.pgbouncer), self.config.settings)
            summary = writer.build_summary(
                final.name,
                {**plan_dict(plan), "interactive": True},
                environment,
                {test.stack: repeats.with_rounds([test.figures])},
            )
            summary["run_order"] = [[test.stack, 1]]
            summary["ceilings"] = None
            writer.publish(summary, tmp, final)
        except BaseException:
            writer.discard(tmp)
            raise
        return final.name

    def _plan(self, test: Test) -> LoadPlan:
        assert test.stopped is not None
        start = self.recorder.measure_start or test.started
        return LoadPlan(
            scenario=self.config.scenario,
            users=max(test.users, 1),
            spawn_rate=test.spawn_rate,
            duration=max(test.stopped - start, 1.0),
            warmup=0,
            workers=self.config.workers,
            arrival_rate=test.arrival_rate,
            arrivals=test.arrivals,
        )

    def _report_links(self, name: str) -> dict[str, Any]:
        links: dict[str, Any] = {
            "report": name,
            "folder": self._shown(name),
            "page": f"/loadlab/reports/{name}/index.html",
        }
        if len(self.reports) >= 2:
            a, b = self.reports[-2:]
            links["compare"] = f"python -m loadlab compare {self._shown(a)} {self._shown(b)}"
        return links

    def _shown(self, name: str) -> str:
        """A report folder as the user would type it: from the repository when inside it."""
        folder = Path(self.config.reports) / name
        return str(folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder)

    # What the tab shows.
    def data(self) -> dict[str, Any]:
        test = self.test
        recent = self.recorder.recent(RECENT_S)
        now = int(self.recorder.now())
        recent_failures = sum(
            self.recorder.failures_per_second.get(s, 0) for s in range(now - RECENT_S, now)
        )
        data: dict[str, Any] = {
            "state": self.environment.runner.state if self.environment.runner else "missing",
            "stack": test.stack if test else None,
            "url": test.url if test else None,
            "recent": {**_percentiles(recent), "failures": recent_failures},
            "whole": {
                **_percentiles(self.recorder.total),
                "failures": sum(self.recorder.errors.values()),
            },
            "server_p50_ms": {
                part: round(hdr.values_at(h, [50.0])[0] / 1000, 3)
                for part, h in sorted(self.recorder.server.items())
            },
            "generator_delay_ms": _percentiles(self.recorder.generator_delay),
            "cpu": _cpu(test.monitor) if test and test.monitor else {},
            "integrity": None,
            "report": test.report if test else None,
            "problem": test.problem if test else None,
        }
        if test and test.figures is not None:
            data["integrity"] = {
                "checks": test.figures.get("integrity"),
                "half_written": test.figures.get("half_written"),
                "orders": test.figures.get("orders"),
            }
        if test and test.report:
            data.update(self._report_links(test.report))
        return data

    def rows(self) -> list[dict[str, str]]:
        """The tab's table: figure, last 10 s, whole test."""
        d = self.data()
        rows = [
            {"figure": "driving", "recent": d["stack"] or "-", "whole": d["url"] or "-"},
            {"figure": "load", "recent": "", "whole": self._load()},
        ]
        rows.append(
            {
                "figure": "requests (failed)",
                "recent": f"{d['recent']['count']:,} ({d['recent']['failures']:,})",
                "whole": f"{d['whole']['count']:,} ({d['whole']['failures']:,})",
            }
        )
        for key in PERCENTILES:
            if key == "p90":
                continue
            rows.append(
                {
                    "figure": f"{key.replace('_', '.')} ms (exact)",
                    "recent": _ms(d["recent"].get(key)),
                    "whole": _ms(d["whole"].get(key)),
                }
            )
        split = ", ".join(f"{part} {ms:g}" for part, ms in d["server_p50_ms"].items())
        rows.append({"figure": "where the time went (p50 ms)", "recent": "", "whole": split or "-"})
        delay = d["generator_delay_ms"]
        rows.append(
            {
                "figure": "generator delay ms (p99 / max)",
                "recent": "",
                "whole": f"{_ms(delay.get('p99'))} / {_ms(delay.get('max'))}",
            }
        )
        for name, (now_pct, mean_pct) in d["cpu"].items():
            rows.append(
                {
                    "figure": f"CPU {name} (% of a core)",
                    "recent": f"{now_pct:.0f}",
                    "whole": f"{mean_pct:.0f}",
                }
            )
        rows.append({"figure": "integrity", "recent": "", "whole": _integrity_line(d)})
        report = d.get("report")
        rows.append(
            {
                "figure": "report",
                "recent": "",
                "whole": (
                    d["folder"] + (f"; side by side: {d['compare']}" if d.get("compare") else "")
                    if report
                    else "when the test stops: Download Data > loadlab report"
                ),
            }
        )
        return rows

    def _load(self) -> str:
        test = self.test
        if test is None:
            return "-"
        if test.arrival_rate:
            return (
                f"open model: {test.arrival_rate:g} req/s ({test.arrivals}), "
                f"at most {test.users} in flight"
            )
        return f"closed model: {test.users} users"

    def _database(self) -> str | None:
        """With --target: the database behind the targets, if `ui` was given one (from this
        process's environment, as `ui` had it: the config holds no password)."""
        if not self.config.external:
            return None
        from loadlab.settings import StackSettings

        return StackSettings().database_url  # type: ignore[call-arg]  # fields from the env

    def _roots(self, state: procs.State, stack: str) -> dict[str, list[int]]:
        roots = {
            c.name: [pid]
            for c in state.components
            if c.name in (stack, "postgres", "pgbouncer") and (pid := c.current_pid()) is not None
        }
        # `loadlab ui` and every Locust process it started: the generator.
        roots[GENERATOR] = [os.getppid()]
        return roots


def _percentiles(histogram: Any) -> dict[str, Any]:
    """Its count and exact percentiles, or only its count (0) when it is empty."""
    count = histogram.get_total_count()
    return {"count": count, **(latency_ms(histogram, mean=False) if count else {})}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _cpu(monitor: Monitor) -> dict[str, tuple[float, float]]:
    """Per component: its mean over the last 10 samples (one a second) and over the test,
    in percent of one core."""
    return {
        name: (sum(s.cpu[-RECENT_S:]) / len(s.cpu[-RECENT_S:]), sum(s.cpu) / len(s.cpu))
        for name, s in list(monitor.samples.items())
        if s.cpu
    }


def _integrity_line(d: dict[str, Any]) -> str:
    if d["problem"]:
        return f"not checked: {d['problem']}"
    found = d["integrity"]
    if found is None:
        return "checked when the test stops"
    parts = []
    for c in found["checks"] or []:
        verdict = "holds" if c["holds"] else "BROKEN"
        parts.append(
            f"{c['request']}: {verdict} (acknowledged {c['acknowledged']:,} <= applied "
            f"{c['applied']:,} <= + in doubt {c['in_doubt']:,})"
        )
    half = found["half_written"] or {}
    if any(half.values()):
        parts.append("HALF-WRITTEN: " + ", ".join(f"{k} {v}" for k, v in half.items() if v))
    return "; ".join(parts) or "no writes to check"


def install(environment: Environment, recorder: Recorder) -> Session:
    """Add the tab, its data and report routes, and the form's checks to the web UI."""
    config = UiConfig.from_environment()
    session = Session(environment, recorder, config)
    web_ui = environment.web_ui
    assert web_ui is not None
    web_ui.template_args.update(
        extended_tabs=[{"title": "loadlab", "key": TAB}],
        extended_tables=[
            {
                "key": TAB,
                "structure": [
                    {"key": "figure", "title": "figure"},
                    {"key": "recent", "title": f"last {RECENT_S} s"},
                    {"key": "whole", "title": "whole test"},
                ],
            }
        ],
        extended_csv_files=[
            {"href": "./loadlab/report", "title": "loadlab report of the last test (writes it)"},
            {"href": "./loadlab/data", "title": "loadlab figures (JSON)"},
        ],
    )
    app = web_ui.app
    assert app is not None
    gevent.spawn(_compact, recorder, os.environ.get(PARENT_ENV))

    @app.after_request
    def _with_tab(response: Response) -> Response:
        if request.path.endswith("/stats/requests") and response.is_json:
            body = response.get_json()
            body["extended_stats"] = [{"key": TAB, "data": session.rows()}]
            response.set_data(json.dumps(body))
        return response

    @app.before_request
    def _check_swarm() -> Response | None:
        if not request.path.endswith("/swarm") or request.method != "POST":
            return None
        stack = request.form.get("stack") or next(iter(config.stacks))
        problem = (
            _workers_problem(environment)
            or _stack_problem(config, stack)
            or _rate_problem(request.form.get("arrival_rate"))
        )
        if problem:
            return jsonify({"success": False, "message": problem, "host": environment.host})
        return None

    @app.route("/loadlab/data")
    def _data() -> Response:
        return jsonify(session.data())

    @app.route("/loadlab/report", methods=["GET", "POST"])
    def _report() -> Response | tuple[Response, int]:
        status, body = session.write_report()
        if status == 200 and request.method == "GET":
            return redirect(f".{body['page'].removeprefix('/loadlab')}")  # type: ignore[return-value]
        return jsonify(body), status

    @app.route("/loadlab/reports/<path:name>")
    def _report_file(name: str) -> Response:
        return send_from_directory(Path(config.reports).resolve(), name)

    return session


def _compact(recorder: Recorder, parent: str | None) -> None:
    """Keep only the timeline's figures of long-past seconds, as a headless master does; and
    once `loadlab ui` (`parent`) is gone, stop as on Ctrl-C (SIGTERM is Locust's own clean
    stop): killed with -9, it cannot stop its Locust, which would serve the page for ever."""
    while True:
        if parent is not None and os.getppid() != int(parent):
            os.kill(os.getpid(), signal.SIGTERM)
            return
        recorder.compact(int(recorder.now()) - KEEP_WHOLE_S)
        gevent.sleep(1)


def _workers_problem(environment: Environment) -> str | None:
    """Locust would answer "started" and then start nothing (it logs why): a worker that has
    just stopped finishes its requests (the stop timeout, 10 s) before it is ready again."""
    runner = environment.runner
    if isinstance(runner, MasterRunner) and runner.worker_count == 0:
        return (
            "no Locust worker is ready yet (after a stop, each finishes its requests for up "
            "to 10 s): start again in a moment"
        )
    return None


def _stack_problem(config: UiConfig, stack: str) -> str | None:
    url = config.stacks.get(stack)
    if url is None:
        return f"{stack} is not one of this UI's stacks ({', '.join(config.stacks)})"
    with contextlib.suppress(httpx.HTTPError):
        if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
            return None
    return f"{stack} is not running at {url}: start it with `python -m loadlab up`"


def _rate_problem(value: str | None) -> str | None:
    try:
        rate = float(value or 0)
    except ValueError:
        return f"arrival rate {value!r} is not a number"
    return None if rate >= 0 and rate == rate else "the arrival rate cannot be negative"
