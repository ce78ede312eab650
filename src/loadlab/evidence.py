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
import re
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
from loadlab.load.monitor import SOAK_SECONDS
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
        "every stack at the headline's load in rounds: the drivers, the thread pool and gevent "
        "beside the duel",
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
        ("sweep", "--rates", "20,40", "--step-duration", "3s", "--warmup", "1s"),
        20,
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
        ("run", "--variants", "fastapi_async", "--duration", "30m", "--warmup", "30s"),
        ("run", "--variants", "fastapi_async", *_SHORT),
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
)
BY_NAME = {e.name: e for e in EXPERIMENTS}


def chosen(only: list[str] | None) -> list[Experiment]:
    unknown = [n for n in only or [] if n not in BY_NAME]
    if unknown:
        raise UsageError(f"--only {unknown[0]!r}: one of {', '.join(BY_NAME)}")
    return [e for e in EXPERIMENTS if not only or e.name in only]


def listing(experiments: list[Experiment]) -> list[str]:
    total = sum(e.minutes for e in experiments)
    return [
        *(
            f"{e.name:<14} ~{e.minutes:g} min  {e.what}\n{'':<14} python -m loadlab "
            + " ".join(e.args)
            for e in experiments
        ),
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
    _, started = lifecycle.up(settings)
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
                "command": "python -m loadlab " + " ".join(args),
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


# Reports the docs quote that `make evidence` does not make, kept by --retire: each with why.
KEPT = {
    "20261202-185057-select_update-200u": "the compose stack's load run, made in Docker by the "
    "steps docs/distributed.md shows (a test checks its output there)",
    **{
        f"20261203-{hhmmss}-select_update-200u": "the repeated headline duel at one commit "
        "(a8a3a7d), hours apart, from a clean clone: the README's table of verdicts reads it"
        for hhmmss in ("123717", "135154", "143227")
    },
}
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


def retire(reports: Path = ROOT / "reports") -> list[str]:
    """Remove the report folders neither the manifest nor KEPT names: superseded by a newer
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
        if folder.name in named or folder.name in KEPT:
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


RAW_KEPT_PLAIN = 16_000  # bytes: a raw file larger than this is committed gzipped


def compress_raw(folder: Path) -> list[Path]:
    """A committed report's raw recorder data (recorder.json, one per round: a run's own
    pages are made from summary.json, not from it) gzipped where large, losslessly: a run
    of six stacks in five rounds keeps 30 of them. Returns the files written."""
    written = []
    for raw in sorted(folder.rglob("recorder.json")):
        if raw.stat().st_size > RAW_KEPT_PLAIN:
            packed = raw.with_name(raw.name + ".gz")
            packed.write_bytes(gzip.compress(raw.read_bytes(), mtime=0))
            raw.unlink()
            written.append(packed)
    return written


RESULTS = ROOT / "docs" / "results.md"


def results(reports: Path = ROOT / "reports") -> str:
    """docs/results.md: for each experiment reports/evidence.json lists, its command, commit
    and each stack's headline figures, from the reports' JSON (a test checks the page)."""
    manifest = json.loads((reports / "evidence.json").read_text())
    lines = [
        "# Results: what `make evidence` made",
        "",
        "Generated by `python -m loadlab evidence --results` from `reports/evidence.json` and",
        "the reports' own JSON; a test fails when this page and they differ. Means over the",
        "rounds where an experiment ran in rounds.",
    ]
    for entry in manifest["experiments"]:
        e = BY_NAME[entry["name"]]
        lines += ["", f"## {e.name}: {e.what}", ""]
        lines.append(
            f"`{entry['command']}`, commit {entry['git_commit'][:7]}, {entry['minutes']:g} minutes."
            + _exit_said(entry)
        )
        for page in entry["reports"]:
            lines += ["", *_report_lines(reports, page)]
    return "\n".join(lines) + "\n"


def _report_lines(reports: Path, page: str) -> list[str]:
    """One committed report's tables, by what it is (a bench, findings, a run, sweep or tune)."""
    folder = Path(page).parent.name
    if page.endswith("bench.json"):
        from loadlab.bench import quoted

        return [quoted(reports, folder, "../reports/").rstrip("\n")]
    if page.endswith("findings.html"):
        return _findings_table(reports / folder, folder)
    return _run_table(reports / folder, folder)


def _findings_table(folder: Path, name: str) -> list[str]:
    """Each claim of the article and the guides beside ours: the median and its spread (the
    passes' min-max, or the 95% interval of a ratio over a duel's rounds), and the word."""
    from loadlab.report.pages import number

    document = json.loads((folder / "findings.json").read_text())
    rows = [
        f"[{name}](../reports/{name}/findings.html)",
        "",
        "| claim | source | theirs | ours | spread | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in document["claims"]:
        theirs = "-" if c["theirs"] is None else f"{number(c['theirs'])} {c['unit']}"
        if c["ours"]:
            ours = f"{number(c['ours']['median'])} {c['unit']}"
            spread = (
                "one run"
                if c.get("spread") == "one run"
                else f"{number(c['ours']['min'])}-{number(c['ours']['max'])}"
                + (f" ({c['spread']})" if c.get("spread") else "")
            )
        else:
            ours, spread = (c["seen"] or "-").replace("|", "/"), ""
        rows.append(
            f"| {c['claim']} | {'the article' if c['source'].startswith('000') else 'a guide'}"
            f", {c['section']} | {theirs} | {ours} | "
            f"{spread} | {c['verdict']} |"
        )
    return rows


def _exit_said(entry: dict[str, Any]) -> str:
    return (
        " It exited 1: a gate or check failed, as its page says (kept as its finding)."
        if entry.get("exit_code") == 1
        else ""
    )


def _run_table(folder: Path, name: str) -> list[str]:
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("kind") == "sweep":
        return _sweep_table(summary, name)
    if summary.get("kind") == "tune":
        return _tune_table(summary, name)
    rows = [
        f"[{name}](../reports/{name}/index.html)",
        "",
        "| stack | rounds | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, v in summary["variants"].items():
        latency = v["latency_ms"]
        rows.append(
            f"| {variant} | {len(v.get('rounds') or [v])} | "
            f"{_mean(v, 'throughput_rps', v['throughput_rps']):,.1f} | "
            f"{_mean(v, 'p50', latency['p50']):,.1f} | {_mean(v, 'p95', latency['p95']):,.1f} | "
            f"{_mean(v, 'p99', latency['p99']):,.1f} | "
            f"{_mean(v, 'error_rate', v['error_rate']):.2%} |"
        )
    rows += _open_table(summary["variants"])
    rows += _faults_table(summary["variants"])
    rows += _memory_table(summary["variants"])
    rows += ["", *_kept_lines(summary["variants"])]
    rows += [f"- {verdict}" for verdict in summary.get("verdicts") or []]
    rows += [f"- flag: {flag}" for flag in summary.get("flags") or []]
    return rows


def _faults_table(variants: dict[str, Any]) -> list[str]:
    """Each fault a run injected: when, the requests it failed, the seconds to no errors."""
    rows = [(variant, f) for variant, v in variants.items() for f in v.get("faults") or []]
    if not rows:
        return []
    return [
        "",
        "| stack | fault | at s | failed requests | back to no errors in |",
        "|---|---|---|---|---|",
        *(
            f"| {variant} | {f['kind']}: {f['detail']} | {f['at_s']:.0f} | "
            f"{f['failed_requests']:,} | {f['recovery_s']:.1f} s |"
            for variant, f in rows
        ),
    ]


def _memory_table(variants: dict[str, Any]) -> list[str]:
    """A soak's memory: each component's growth per 10 minutes, whole window and last third
    (near 0 once it levelled off), and its most."""
    soaks = {n: v for n, v in variants.items() if v.get("measured_seconds", 0) >= SOAK_SECONDS}
    if not soaks:
        return []
    rows = [
        "",
        "| stack | component | memory growth MB / 10 min, whole window | last third | most MB |",
        "|---|---|---|---|---|",
    ]
    for variant, v in soaks.items():
        for component, r in v["resources"].items():
            rows.append(
                f"| {variant} | {component} | {r['memory_growth_mb_per_10min']:,.2f} | "
                f"{r['memory_growth_last_third_mb_per_10min']:,.2f} | {r['memory_max_mb']:,.0f} |"
            )
    return rows


def _kept_lines(variants: dict[str, Any]) -> list[str]:
    """What failed, by kind, and whether every acknowledged write was in the database."""
    lines = []
    for variant, v in variants.items():
        if v.get("errors"):
            kinds = "; ".join(f"{kind} {count:,}" for kind, count in v["errors"].items())
            lines.append(f"- {variant} failed, by kind: {kinds}")
        raised = (v.get("leg") or {}).get("driver_exceptions")
        if raised:
            said = "; ".join(f"{name} {count:,}" for name, count in raised.items())
            lines.append(f"- {variant}: its service's log, driver exceptions by class: {said}")
    for variant, v in variants.items():
        cost = v.get("cpu_ms_per_request")
        if cost:
            said = ", ".join(f"{part} {ms:.2f}" for part, ms in cost.items())
            lines.append(f"- {variant}, CPU ms per answered request: {said}")
    checks = [(n, c) for n, v in variants.items() for c in v.get("integrity") or []]
    broken = [f"{n} ({c['request']})" for n, c in checks if not c["holds"]]
    if checks:
        lines.append(
            "- integrity: every acknowledged write was applied, none lost or doubled, in "
            "every stack"
            if not broken
            else f"- integrity BROKEN in {', '.join(broken)}"
        )
    return lines


def _open_table(variants: dict[str, Any]) -> list[str]:
    """An open-model run's schedule: offered against answered, what was sent late or never,
    and the p99 from the intended start beside the p99 from the send."""
    opened = {n: v for n, v in variants.items() if "offered_rps" in v}
    if not opened:
        return []
    rows = [
        "",
        "| stack | offered req/s | answered req/s | late starts | not sent "
        "| p99 from the intended start ms | p99 from the send ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, v in opened.items():
        rows.append(
            f"| {variant} | {v['offered_rps']:,.1f} | {v['achieved_rps']:,.1f} | "
            f"{v['arrivals']['late']:,} | {v['arrivals']['not_sent']:,} | "
            f"{v['latency_ms']['p99']:,.1f} | {v['latency_uncorrected_ms']['p99']:,.1f} |"
        )
    return rows


def _sweep_table(summary: dict[str, Any], name: str) -> list[str]:
    rows = [
        f"[{name}](../reports/{name}/index.html)",
        "",
        f"| stack | capacity within {summary['sweep']['slo']} | stopped at |",
        "|---|---|---|",
    ]
    for variant, v in summary["variants"].items():
        capacity = v["capacity_rps"]
        said = f"{capacity:,.0f} req/s" if capacity else "below the first rate"
        stop = v["stopped_by"] or "held at every rate"
        again = v.get("broke_then_held") or []
        if again:
            stop += f"; broke once and held when run again at {', '.join(f'{r:g}' for r in again)}"
        rows.append(f"| {variant} | {said} | {stop} |")
    rows += [
        "",
        "| stack | offered req/s | try | answered req/s | p50 ms | p99 ms "
        "| p99 from the send ms | errors | not sent | the step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, v in summary["variants"].items():
        for step in v["steps"]:
            rows.append(
                f"| {variant} | {step['rate']:,.0f} | {step.get('attempt', 1)} | "
                f"{step['achieved_rps']:,.1f} | {step['latency_ms']['p50']:,.1f} | "
                f"{step['latency_ms']['p99']:,.1f} | "
                f"{step['latency_uncorrected_ms']['p99']:,.1f} | {step['error_rate']:.2%} | "
                f"{step['arrivals']['not_sent']:,} | {'held' if step['held'] else 'broke'} |"
            )
    return rows


def _tune_table(summary: dict[str, Any], name: str) -> list[str]:
    """Each trial: why it ran, its knobs' changes from the defaults, and its figures."""
    plan = summary["tune"]
    rows = [
        f"[{name}](../reports/{name}/index.html): {plan['variant']} at "
        f"{plan['arrival_rate']:g} req/s"
        + (
            f" (its capacity in the sweep [{plan['rate_from']}](../reports/{plan['rate_from']}/"
            "index.html))"
            if plan.get("rate_from")
            else ""
        )
        + f", {len(summary['trials'])} trials within {plan['slo']}; "
        f"chosen: {', '.join(f'{k}={v}' for k, v in summary['chosen'].items())}"
        + (
            "" if summary["met_objective"] else " (no knob set met the objective in all its trials)"
        ),
        "",
        "| trial | why | req/s | p50 ms | p99 ms | errors | within the objective |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in summary["trials"]:
        first = next(f["trial"] for f in summary["trials"] if f["knobs"] == t["knobs"])
        why = t["why"] if first == t["trial"] else f"{t['why']}: trial {first}'s knobs"
        rows.append(
            f"| {t['trial']} | {why} | {t['throughput_rps']:,.1f} | "
            f"{t['latency_ms']['p50']:,.1f} | {t['latency_ms']['p99']:,.1f} | "
            f"{t['error_rate']:.2%} | {'yes' if t['held'] else 'no'} |"
        )
    return rows


BLOCK = re.compile(r"(<!-- generated: evidence ([a-z-]+) -->\n)(.*?)(<!-- end -->)", re.S)


def experiment_block(name: str, reports: Path = ROOT / "reports") -> str:
    """One experiment's command, commit and tables, for a docs page (links from docs/)."""
    manifest = json.loads((reports / "evidence.json").read_text())
    entry = next((e for e in manifest["experiments"] if e["name"] == name), None)
    if entry is None:
        return f'`make evidence ARGS="--only {name}"` has not made this yet.\n'
    lines = [
        f"`{entry['command']}`, commit {entry['git_commit'][:7]}, {entry['minutes']:g} minutes"
        + (
            "; it exited 1, a gate or check failed, as its page says:"
            if entry.get("exit_code") == 1
            else ":"
        )
    ]
    for page in entry["reports"]:
        lines += ["", *_report_lines(reports, page)]
    return "\n".join(lines) + "\n"


STORY = re.compile(r"(<!-- generated: story ([a-z-]+) -->\n)(.*?)(<!-- end -->)", re.S)
RANKING = re.compile(r"(<!-- generated: ranking ([a-z-]+) -->\n)(.*?)(<!-- end -->)", re.S)


def fill_blocks(text: str, reports: Path = ROOT / "reports") -> str:
    """A page with each `<!-- generated: evidence NAME -->` block made from the reports, each
    `<!-- generated: story NAME -->` (what a run showed, in bullets: report/story.py) and
    each `<!-- generated: ranking NAME -->` (what held among several stacks: the same)."""
    from loadlab.report import story

    text = BLOCK.sub(lambda m: m[1] + experiment_block(m[2], reports) + m[4], text)
    text = AGREEMENT.sub(lambda m: m[1] + agreement_block(m[2].split(), reports) + m[4], text)
    text = RANKING.sub(lambda m: m[1] + story.ranking_block(m[2], reports) + m[4], text)
    return STORY.sub(lambda m: m[1] + story.block(m[2], reports) + m[4], text)


AGREEMENT = re.compile(r"(<!-- generated: agreement ([a-z -]+) -->\n)(.*?)(<!-- end -->)", re.S)


def agreement_block(names: list[str], reports: Path = ROOT / "reports") -> str:
    """The verdicts of the newest report of each named repeated experiment side by side, and
    whether they agree (analysis/agreement.py): the same duel under two profiles, say."""
    from loadlab.analysis import agreement

    manifest = json.loads((reports / "evidence.json").read_text())
    newest = {e["name"]: Path(e["reports"][-1]).parent.name for e in manifest["experiments"]}
    missing = [n for n in names if n not in newest]
    if missing:
        return f'`make evidence ARGS="--only {" ".join(missing)}"` has not made this yet.\n'
    return agreement.table(reports, [newest[n] for n in names], link_prefix="../reports/")


def update_pages(docs: Path = ROOT / "docs") -> list[Path]:
    """Fill the generated blocks of every docs page and of the README from the committed
    reports; the pages changed."""
    changed = []
    readme = docs.parent / "README.md"
    for page in [readme] * readme.exists() + sorted(docs.glob("*.md")):
        text = page.read_text()
        filled = fill_blocks(text)
        if filled != text:
            page.write_text(filled)
            changed.append(page)
    return changed


def _mean(variant: dict[str, Any], key: str, whole: float) -> float:
    """The mean over the rounds where the variant ran in rounds, else the one run's figure."""
    across = variant.get("across_rounds") or {}
    return float(across[key]["mean"]) if key in across else float(whole)
