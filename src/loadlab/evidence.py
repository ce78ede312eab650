"""`loadlab evidence`: every report the project commits, from one declared list, in order.

The README and docs quote committed reports; a report is evidence only if one command makes
it again from a commit anyone can check out. EXPERIMENTS is that list: each experiment's
command (the same `python -m loadlab ...` a user types), a short name, and how long it takes
here at full size. `make evidence` runs them all in order; `--only NAME...` some; `--list`
prints them; `--quick` runs each at a small size into a folder outside reports/ (the tests).

A tree with uncommitted changes is refused when the reports go into reports/, rather than
recording its diff: a report must name a commit that rebuilds it, and a diff kept beside a
report is code nobody reviews. Each run leaves reports/evidence.json: which command made which
report, at which commit.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab import ROOT, environment
from loadlab.errors import UsageError
from loadlab.settings import StackSettings

# Small sizes for --quick: seconds, not minutes, and every command still does its whole job.
_SHORT = ("--users", "20", "--spawn-rate", "20", "--duration", "3s", "--warmup", "1s")


@dataclass(frozen=True)
class Experiment:
    name: str
    what: str
    args: tuple[str, ...]  # after `python -m loadlab`
    quick: tuple[str, ...] | None  # the same experiment, small (None: it has none)
    minutes: float  # at full size on this machine (2 cores), about

    @property
    def command(self) -> str:
        """Its full-size command as a user types it, and as the manifest records it."""
        return command_line(self.args)


def command_line(args: tuple[str, ...]) -> str:
    return "python -m loadlab " + " ".join(args)


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "calibration",
        "one stack against itself: this machine's noise, and the rounds a verdict needs",
        ("calibrate", "--variant", "fastapi_async", "--rounds", "5"),
        ("calibrate", "--variant", "fastapi_async", "--rounds", "3", *_SHORT),
        5,
    ),
    Experiment(
        "headline",
        "the default duel: 200 users, SELECT + UPDATE, one run each, the ceiling beside",
        ("loadtest",),
        ("loadtest", *_SHORT),
        4,
    ),
    Experiment(
        "duel-repeated",
        "the headline duel in rounds, as many as the calibration asks within 15 minutes",
        ("loadtest", "--repeat", "auto", "--budget", "15m", "--duration", "40s", "--warmup", "10s"),
        ("loadtest", "--repeat", "2", *_SHORT),
        15,
    ),
    Experiment(
        "all-stacks",
        "every stack at the headline's load in rounds: the drivers, the thread pool, gevent "
        "and Granian beside the duel",
        (
            "loadtest",
            "--variants",
            "all",
            "--repeat",
            "auto",
            "--budget",
            "25m",
            "--duration",
            "30s",
            "--warmup",
            "10s",
        ),
        ("loadtest", "--variants", "all", *_SHORT),
        25,
    ),
    Experiment(
        "open-model",
        "500 requests a second on a schedule, coordinated omission corrected, with a gate",
        ("loadtest", "--arrival-rate", "500", "--slo", "p99<100ms,errors<1%"),
        ("loadtest", "--arrival-rate", "40", "--slo", "p99<100ms,errors<1%", *_SHORT),
        4,
    ),
    Experiment(
        "sweep",
        "the stacks' capacity at an objective: the arrival rate stepped up",
        ("sweep", "--variants", "all", "--slo", "p99<500ms,errors<1%"),
        ("sweep", "--rates", "20,40", "--step-duration", "5s", "--warmup", "1s"),
        23,
    ),
    Experiment(
        "pgbouncer",
        "each stack straight to PostgreSQL and through PgBouncer, side by side",
        ("run", "--compare-pgbouncer"),
        ("run", "--compare-pgbouncer", *_SHORT),
        8,
    ),
    Experiment(
        "faults",
        "a bad day: backends terminated, a service killed, PostgreSQL restarted and slowed",
        (
            "run",
            "--fault",
            "pg-terminate",
            "--fault-at",
            "10s",
            "--fault",
            "service-kill",
            "--fault-at",
            "20s",
            "--fault",
            "pg-restart",
            "--fault-at",
            "30s",
            "--fault",
            "pg-slow",
            "--fault-at",
            "45s",
        ),  # fmt: skip
        ("run", "--fault", "pg-terminate", "--fault-at", "1s", *_SHORT),
        3,
    ),
    Experiment(
        "tune-flask",
        "Flask's knobs searched for its best in the open model: profiles/flask_sync.tuned.json",
        ("tune", "--variant", "flask_sync", "--arrival-rate", "capacity", "--budget", "7m"),
        None,  # a tune writes its profile into profiles/, which the tests must not change
        7,
    ),
    Experiment(
        "tune-fastapi",
        "FastAPI's knobs searched likewise: profiles/fastapi_async.tuned.json",
        ("tune", "--variant", "fastapi_async", "--arrival-rate", "capacity", "--budget", "7m"),
        None,
        7,
    ),
    Experiment(
        "duel-tuned",
        "best against best: each stack under its tuned profile, in rounds",
        ("loadtest", "--profile", "tuned", "--repeat", "5", "--duration", "40s", "--warmup", "10s"),
        ("loadtest", "--profile", "tuned", *_SHORT),
        12,
    ),
    Experiment(
        "pool-deadlock",
        "the nested-session pattern and its fix, each stack under each",
        ("run", "--profiles", "nested-session,nested-session-fixed"),
        ("run", "--profiles", "nested-session,nested-session-fixed", *_SHORT),
        6,
    ),
    Experiment(
        "soak",
        "30 minutes of the headline load at one stack: memory that levels off or grows",
        # Named: a running service keeps its profile, and the tuned duel before left it tuned.
        (
            "run",
            "--variants",
            "fastapi_async",
            "--duration",
            "30m",
            "--warmup",
            "30s",
            "--profile",
            "default",
        ),  # fmt: skip
        ("run", "--variants", "fastapi_async", "--profile", "default", *_SHORT),
        31,
    ),
    Experiment(
        "bench",
        "what loadlab's generator costs against plain Locust",
        ("bench",),
        ("bench", "--quick"),
        11,
    ),
    Experiment(
        "findings",
        "the article's experiments at its sizes, and its claims beside our figures",
        ("micro",),
        ("micro", "--quick"),
        6,
    ),
    Experiment(
        "compose",
        "the Docker Compose stack built and run: both services in containers, two worker "
        "containers feeding loadlab's Locust master",
        ("compose", "--workers", "2"),
        ("compose", "--workers", "2", "--users", "10", "--duration", "5s", "--warmup", "2s"),
        6,
    ),
)
BY_NAME = {e.name: e for e in EXPERIMENTS}
OWN_STACK = {"compose"}  # commands that start (and stop) the services they drive themselves


def chosen(only: list[str] | None) -> list[Experiment]:
    unknown = [n for n in only or [] if n not in BY_NAME]
    if unknown:
        raise UsageError(f"--only {unknown[0]!r}: one of {', '.join(BY_NAME)}")
    return [e for e in EXPERIMENTS if not only or e.name in only]


def listing(experiments: list[Experiment]) -> list[str]:
    total = sum(e.minutes for e in experiments)
    return [
        *(f"{e.name:<14} ~{e.minutes:g} min  {e.what}\n{'':<14} {e.command}" for e in experiments),
        f"{len(experiments)} experiment(s), about {total:g} minutes here",
    ]


def _relative(path: Path) -> str:
    """A report's path from the repository's root when inside it: the manifest is committed."""
    try:
        return str(path.resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)


def run(only: list[str] | None, quick: bool, out: Path | None, settings: StackSettings) -> Path:
    """Run the experiments in order; returns the manifest written beside their reports. The
    stack is started if it is not up (calibrate, run and tune need it; loadtest would start
    it itself) and stopped after, as `loadtest` does, only if this command started it."""
    from loadlab.stack import lifecycle

    experiments = chosen(only)
    if quick and out is None:
        raise UsageError("--quick makes small reports, not evidence: give --out DIR for them")
    folder = out or ROOT / "reports"
    if not quick and folder.resolve() == (ROOT / "reports").resolve() and environment.uncommitted():
        raise UsageError(
            "the tree has uncommitted changes: commit them first (a committed report must "
            "name a commit that rebuilds it), or write elsewhere with --out"
        )
    folder.mkdir(parents=True, exist_ok=True)
    commit = environment.git_commit()
    # The compose run brings a stack of its own, in containers, on other ports.
    needed = any(e.args[0] not in OWN_STACK for e in experiments)
    started = lifecycle.up(settings)[1] if needed else False
    made: list[dict[str, Any]] = []
    try:
        _each(experiments, quick, out, folder, settings.state_dir, commit, made)
    finally:
        if started:
            lifecycle.down(settings)
        # Also when a later experiment stopped the set: what the earlier ones made is recorded.
        _write_manifest(folder, quick, made)
    return folder / "evidence.json"


def _write_manifest(folder: Path, quick: bool, made: list[dict[str, Any]]) -> None:
    manifest = folder / "evidence.json"
    # Experiments not run this time keep their entries (--only): the manifest says, for every
    # experiment, the newest command that made its reports and at which commit.
    kept = json.loads(manifest.read_text())["experiments"] if manifest.exists() else []
    entries = {e["name"]: e for e in kept} | {e["name"]: e for e in made}
    ordered = [entries[e.name] for e in EXPERIMENTS if e.name in entries]
    manifest.write_text(json.dumps({"quick": quick, "experiments": ordered}, indent=1) + "\n")


def _each(
    experiments: list[Experiment],
    quick: bool,
    out: Path | None,
    folder: Path,
    state_dir: Path,
    commit: str,
    made: list[dict[str, Any]],
) -> None:
    """Each experiment's command in a process of its own, in order; what each made is
    appended to `made` as it finishes."""
    for number, e in enumerate(experiments, 1):
        args = e.quick if quick else e.args
        if args is None:
            print(f"evidence {number}/{len(experiments)}: {e.name}: no quick form, skipped")
            continue
        argv = [sys.executable, "-m", "loadlab", *args, "--state-dir", str(state_dir)]
        target = folder / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{e.name}" if out else None
        if target is not None:
            argv += ["--out", str(target)]
        print(f"evidence {number}/{len(experiments)}: {e.name}: {' '.join(args)}", flush=True)
        started = time.monotonic()
        # Passed through as it comes (a live line every few seconds), and kept: the lines
        # "report: PATH" say which reports the command made.
        reports = []
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1) as child:
            assert child.stdout is not None
            for line in child.stdout:
                print(line, end="", flush=True)
                # `micro` names its page "findings: PATH"; every other command "report: PATH".
                if line.startswith(("report:", "findings:")):
                    reports.append(_relative(Path(line.split(":", 1)[1].strip())))
        # Exit 1 is a finding, not a failure of the experiment: a gate broken, a check that
        # failed (the open-model example's gate is meant to show one); its report is the
        # evidence. Anything else (2: bad usage, a crash, an interrupt) stops the set.
        if child.returncode not in (0, 1) or not reports:
            raise UsageError(f"evidence stopped: {e.name} exited {child.returncode}")
        if child.returncode == 1:
            print(f"evidence: {e.name} exited 1 (a gate or check failed): kept as its finding")
        made.append(
            {
                "name": e.name,
                "command": command_line(args),
                "reports": reports,
                "git_commit": commit,
                "minutes": round((time.monotonic() - started) / 60, 1),
                "exit_code": child.returncode,
            }
        )


def where(name: str, reports: Path = ROOT / "reports") -> list[str]:
    """The report folders the committed manifest names for one experiment (the CI workflow
    compares against the headline's, whatever its folder is called this time)."""
    if name not in BY_NAME:
        raise UsageError(f"--where {name!r}: one of {', '.join(BY_NAME)}")
    manifest = reports / "evidence.json"
    entries = json.loads(manifest.read_text())["experiments"] if manifest.exists() else []
    # From the repository's root (reports/'s parent), so that the path works from any folder.
    root = reports.parent
    found = [
        str((root / page).parent) for e in entries if e["name"] == name for page in e["reports"]
    ]
    if not found:
        raise UsageError(f"--where {name}: {manifest} names no report of it (make evidence)")
    return found


# What a report measured, or computed its figures with: a change here after the report's
# commit may change them. Docs, tests and reports do not; a tuned profile is written by
# `tune`, itself an experiment of the set. This file is left out: what it gives an
# experiment is its command, which status compares with the manifest's itself (a quick
# form, a description or a new experiment does not make the others' reports stale).
CODE = [
    "src",
    "services",
    "locustfiles",
    "profiles",
    "infra",
    ":!profiles/*.tuned.json",
    ":!src/loadlab/evidence.py",
]


def status(reports: Path = ROOT / "reports") -> list[str]:
    """Each experiment's committed reports: the commit that made them and whether the code
    changed since; last, whether the set is one commit. The set need not be made in one
    sitting: `--only` parts run from clean clones of one commit make one set too."""
    manifest = reports / "evidence.json"
    kept = json.loads(manifest.read_text())["experiments"] if manifest.exists() else []
    entries = {e["name"]: e for e in kept}
    lines: list[str] = []
    commits: dict[str, list[str]] = {}
    for e in EXPERIMENTS:
        entry = entries.get(e.name)
        if entry is None:
            lines.append(f"{e.name:<14} never made")
            continue
        commit = entry["git_commit"][:7]
        commits.setdefault(commit, []).append(e.name)
        changed = environment.changed_since(entry["git_commit"], CODE)
        if entry["command"] != e.command:
            said = f"its command changed since: made by `{entry['command']}`"
        elif changed is None:
            said = "a commit this clone does not hold"
        elif changed:
            # Named, so that a reader can tell a change to a report's page from one to what
            # it measured.
            said = f"{len(changed)} file(s) of code changed since: " + ", ".join(changed[:3])
            said += ", ..." if len(changed) > 3 else ""
        else:
            said = "no code changed since"
        lines.append(f"{e.name:<14} {commit}  {said}")
    missing = [e.name for e in EXPERIMENTS if e.name not in entries]
    if len(commits) == 1 and not missing:
        lines.append(f"one set: every experiment made at {next(iter(commits))}")
    else:
        spans = "; ".join(f"{c}: {', '.join(names)}" for c, names in commits.items())
        lines.append(
            f"not one set: {len(commits)} commit(s) ({spans})"
            + (f", never made: {', '.join(missing)}" if missing else "")
        )
    return lines


# Reports the docs quote that `make evidence` does not make, kept by --retire: each with why.
# None today: the compose run, made by hand until `loadlab compose` existed, is an experiment.
# (The README's table of repeated duels at different hours needs only their summaries, which
# --retire keeps in reports/history/.)
KEPT: dict[str, str] = {}
# What a retired report's summary loses: the per-second and per-request detail its page drew.
# The history page, the duel tables and the calibration table need only the figures.
DETAIL = frozenset({"timeline", "cpu_timeline", "percentile_curve", "outcomes"})


def slim(value: Any) -> Any:
    """A summary without its DETAIL keys, at any depth."""
    if isinstance(value, dict):
        return {k: slim(v) for k, v in value.items() if k not in DETAIL}
    if isinstance(value, list):
        return [slim(v) for v in value]
    return value


def retire(reports: Path = ROOT / "reports", keep: dict[str, str] = KEPT) -> list[str]:
    """Remove the report folders neither the manifest nor `keep` (KEPT) names: superseded by a newer
    run of their experiment, or made by hand. Each run's summary stays, without its DETAIL,
    as reports/history/<folder>.json, so that reports/index.html keeps its trends and the
    docs' tables of older runs still regenerate. The folders kept have their large raw
    recorder files gzipped (compress_raw)."""
    from loadlab.report import history, writer

    manifest = json.loads((reports / "evidence.json").read_text())
    named = {Path(page).parent.name for e in manifest["experiments"] for page in e["reports"]}
    kept = reports / history.RETIRED
    gone = []
    for folder in sorted(p for p in reports.iterdir() if p.is_dir() and p != kept):
        if folder.name in named or folder.name in keep:
            continue
        if (folder / "summary.json").exists():
            kept.mkdir(exist_ok=True)
            summary = slim(json.loads((folder / "summary.json").read_text()))
            (kept / f"{folder.name}.json").write_text(json.dumps(summary, separators=(",", ":")))
        shutil.rmtree(folder)
        gone.append(folder.name)
    for folder in sorted(p for p in reports.iterdir() if p.is_dir() and p != kept):
        compress_raw(folder)
    writer.write_index(reports)
    return gone


# bytes: a raw file larger than this is committed gzipped. Low, because a sweep or a repeated
# run keeps one Locust history per step or round, and reports/ has a 10 MB budget to keep.
RAW_KEPT_PLAIN = 1_000


# Raw files a committed report keeps for whoever re-reads a run; its pages need none of them.
RAW_FILES = ("recorder.json", "locust_stats_history.csv")


def compress_raw(folder: Path) -> list[Path]:
    """A committed report's raw data (the recorder's and Locust's per-second history, one of
    each per round: a run's own pages are made from summary.json, not from them) gzipped
    where large, losslessly: a sweep of seven stacks keeps one of each per step. Returns the
    files written."""
    written = []
    for raw in sorted(f for name in RAW_FILES for f in folder.rglob(name)):
        if raw.stat().st_size > RAW_KEPT_PLAIN:
            packed = raw.with_name(raw.name + ".gz")
            packed.write_bytes(gzip.compress(raw.read_bytes(), mtime=0))
            raw.unlink()
            written.append(packed)
    return written


def results(reports: Path = ROOT / "reports") -> str:
    """docs/results.md (report/results.py), each experiment under the words EXPERIMENTS
    gives it."""
    from loadlab.report import results as results_page

    return results_page.page(reports, {e.name: e.what for e in EXPERIMENTS})
