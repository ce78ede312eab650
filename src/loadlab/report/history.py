"""How each stack's headline figures moved over the committed reports: one group per
scenario and load (per objective, for sweeps), runs in date order, and a mark on every run
made with other settings, another profile or on another machine than the group's newest, so
that a reader does not compare what cannot be compared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from markupsafe import Markup

from loadlab.load.runner import LoadPlan
from loadlab.report.svg import line_chart

# Plan fields that change what a run measures, beyond what makes its group (scenario, load,
# faults, side by side). Gates (--slo), the ceiling (measured after) and the rounds (a mean
# is still the figure) do not. A report made before a field existed ran with its default.
SETTINGS = (
    "duration",
    "warmup",
    "spawn_rate",
    "workers",
    "remote_workers",
    "tags",
    "scale",
    "arrivals",
    "locustfile",
)
_DEFAULTS = {f.name: f.default for f in fields(LoadPlan)}
RUN_METRICS = (
    ("throughput", "answered req/s", "req/s"),
    ("p50", "p50 latency", "ms"),
    ("p99", "p99 latency", "ms"),
    ("errors", "error rate", "%"),
)
SWEEP_METRICS = (("capacity", "capacity at the objective", "req/s"),)


@dataclass
class Run:
    """One report in a group: where it is, and how it differs from the group's newest."""

    folder: str
    created_at: str
    figures: dict[str, dict[str, float | None]]  # variant -> metric -> value
    differs: list[str] = field(default_factory=list)
    page: str = ""  # its page, from reports/: the report's own, or a retired one's summary


@dataclass
class Group:
    title: str
    metrics: tuple[tuple[str, str, str], ...]
    runs: list[Run] = field(default_factory=list)  # oldest first
    charts: list[Markup] = field(default_factory=list)


def group_key(s: dict[str, Any]) -> tuple[str, str] | None:
    """What a run's trend is grouped by: a sweep's objective, or a run's scenario and load
    with its faults, PgBouncer side by side and profiles; None for a run with no trend."""
    if s.get("kind") == "sweep":
        sweep = s["sweep"]
        return "sweep", f"{s['scenario']}: sweep, capacity at {sweep['slo']}"
    if s.get("kind") in ("tune", "findings", "calibration") or "plan" not in s:
        return None
    plan = s["plan"]
    load = (
        f"{plan['arrival_rate']:g} req/s offered, at most {plan['users']} in flight"
        if plan.get("arrival_rate")
        else f"{plan['users']} users"
    )
    # Runs that break the stack or drive copies of it are histories of their own.
    if plan.get("faults"):
        load += ", with faults " + ", ".join(f"{k} at {t:g} s" for k, t in plan["faults"])
    if plan.get("compare_pgbouncer"):
        load += ", straight and through PgBouncer"
    if plan.get("profiles"):
        load += ", profiles " + " and ".join(plan["profiles"])
    return "run", f"{s['scenario']}: {load}"


def _figures(s: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    found: dict[str, dict[str, float | None]] = {}
    for name, v in s["variants"].items():
        if s.get("kind") == "sweep":
            found[name] = {"capacity": v.get("capacity_rps")}
            continue
        across = v.get("across_rounds")
        if across:  # several rounds: their means
            found[name] = {
                "throughput": across["throughput_rps"]["mean"],
                "p50": across["p50"]["mean"],
                "p99": across["p99"]["mean"],
                "errors": across["error_rate"]["mean"] * 100,
            }
            continue
        found[name] = {
            "throughput": v["throughput_rps"],
            "p50": v["latency_ms"]["p50"],
            "p99": v["latency_ms"]["p99"],
            "errors": v["error_rate"] * 100,
        }
    return found


def _conditions(s: dict[str, Any]) -> dict[str, Any]:
    """What must be equal for two runs of a group to be compared: settings, each stack's
    profile and knobs, the machine's CPU count."""
    env = s.get("environment") or {}
    plan = s.get("plan") or {}
    if s.get("kind") == "sweep":
        sweep = s["sweep"]
        settings = {k: sweep.get(k) for k in ("step_duration", "warmup", "users", "arrivals")}
    else:
        settings = {k: _plain(plan.get(k, _DEFAULTS[k])) for k in SETTINGS}
    settings["pgbouncer"] = env.get("pgbouncer") not in (None, "not used")
    # None: a report made before services recorded their setup, which cannot be compared.
    setups = {name: v.get("setup") for name, v in s["variants"].items()}
    return {"settings": settings, "setups": setups, "cpu_count": env.get("cpu_count")}


def _differences(run: dict[str, Any], newest: dict[str, Any]) -> list[str]:
    said = []
    changed = [k for k, v in run["settings"].items() if newest["settings"].get(k) != v]
    if changed:
        said.append(f"other settings ({', '.join(changed)})")
    shared = set(run["setups"]) & set(newest["setups"])
    if any(_other_setup(run["setups"][n], newest["setups"][n]) for n in shared):
        said.append("another profile or knobs")
    if run["cpu_count"] != newest["cpu_count"]:
        said.append(f"another machine ({run['cpu_count']} CPUs)")
    return said


def _plain(value: Any) -> Any:
    """JSON's lists as the plan's tuples, so a default compares equal."""
    return tuple(_plain(v) for v in value) if isinstance(value, list | tuple) else value


def _other_setup(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two setups differ in their profile or a knob both have (a knob added later
    ran at its default before; an unrecorded setup is not held against a run)."""
    if a is None or b is None:
        return False
    both = set(a["knobs"]) & set(b["knobs"])
    return a["profile"] != b["profile"] or any(a["knobs"][k] != b["knobs"][k] for k in both)


RETIRED = "history"  # reports/history/<folder>.json: the summaries of superseded reports


def newest_first(reports: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(folder, summary) of each report in `reports`, newest first; an unreadable summary
    is skipped (what the tools that pick "the newest matching report" read)."""
    for path in sorted(reports.glob("*/summary.json"), reverse=True):
        try:
            yield path.parent.name, json.loads(path.read_text())
        except (OSError, ValueError):
            continue


def kept_page(reports: Path, folder: str) -> str:
    """A committed run's page under reports/: its folder's index.html, or, once `evidence
    --retire` removed the folder, the summary kept in reports/history/FOLDER.json."""
    if not (reports / folder).is_dir() and (reports / RETIRED / f"{folder}.json").exists():
        return f"{RETIRED}/{folder}.json"
    return f"{folder}/index.html"


def kept_summary(reports: Path, folder: str) -> tuple[dict[str, Any], str]:
    """A committed run's summary and its page under reports/ (kept_page)."""
    page = kept_page(reports, folder)
    if page.startswith(f"{RETIRED}/"):
        return json.loads((reports / page).read_text()), page
    return json.loads((reports / folder / "summary.json").read_text()), page


def groups(
    summaries: list[tuple[str, dict[str, Any]]], retired: frozenset[str] = frozenset()
) -> list[Group]:
    """The history of (folder, summary) pairs: groups with two or more runs, each with its
    runs in date order and a chart per headline figure. A retired report (its folder gone,
    its summary kept in reports/history/) links to that summary."""
    by_key: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for folder, s in summaries:
        key = group_key(s)
        if key is not None:
            by_key.setdefault(key, []).append((folder, s))
    found = []
    for (kind, title), members in sorted(by_key.items(), key=lambda kv: kv[0][1]):
        if len(members) < 2:
            continue
        members.sort(key=lambda m: m[1]["created_at"])
        newest = _conditions(members[-1][1])
        group = Group(title, SWEEP_METRICS if kind == "sweep" else RUN_METRICS)
        for folder, s in members:
            differs = _differences(_conditions(s), newest)
            page = f"{RETIRED}/{folder}.json" if folder in retired else f"{folder}/index.html"
            group.runs.append(Run(folder, s["created_at"], _figures(s), differs, page))
        group.charts = [_chart(group, key, label, unit) for key, label, unit in group.metrics]
        found.append(group)
    return found


def _chart(group: Group, key: str, label: str, unit: str) -> Markup:
    series: dict[str, list[tuple[float, float]]] = {}
    for x, run in enumerate(group.runs, 1):
        for name, figures in run.figures.items():
            value = figures.get(key)
            if value is not None:
                series.setdefault(name, []).append((float(x), float(value)))
    ticks = [(float(x), r.created_at[5:16].replace("T", " ")) for x, r in enumerate(group.runs, 1)]
    marks = [(float(x), "not comparable") for x, run in enumerate(group.runs, 1) if run.differs]
    return Markup(
        line_chart(
            series,
            title=f"{group.title}: {label}",
            x_label="committed reports, oldest first (date, UTC)",
            y_label=unit,
            x_ticks=ticks,
            marks=marks,
        )
    )
