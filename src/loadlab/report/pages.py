"""The report pages, rendered from jinja2 templates (templates/, autoescaped): a run's page
and a sweep's. Python prepares what the templates show (charts as inline SVG from svg.py,
rows gathered across variants); the templates hold every word and tag."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from loadlab.analysis.repeats import METRICS, is_repeated
from loadlab.load.monitor import SOAK_SECONDS
from loadlab.report import claims
from loadlab.report.svg import NINES_TICKS, line_chart, nines

TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt field fails the render, not shows as blank
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["ms"] = lambda v, digits=1: "-" if v is None else f"{v:,.{digits}f}"
ENV.filters["pct"] = lambda v, digits=2: f"{v:.{digits}%}"
ENV.filters["thousands"] = lambda v: f"{v:,}"
ENV.filters["fmt_rate"] = lambda v: f"{v:g}"
# An across-rounds figure: the error rate is a fraction, the others ms or req/s.
ENV.filters["figure"] = lambda v, unit: (
    "-" if v is None else f"{v:.2%}" if unit == "" else f"{v:,.1f}"
)

LATENCY_KEYS = (
    ("p50", "p50"),
    ("p90", "p90"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("p99_9", "p99.9"),
    ("max", "max"),
    ("mean", "mean"),
)
OPEN_KEYS = ("p50", "p99", "p99_9", "max")


def _what_ran(env: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """Versions, machine and every setting: what a reader needs to run it again."""
    rows = [
        ("python", env["python"]),
        ("PostgreSQL", env["postgresql"]),
        ("PgBouncer", env["pgbouncer"]),
        ("CPU count", env["cpu_count"]),
        ("machine", env["machine"]),
        ("git commit", env["git_commit"]),
        *env["packages"].items(),
    ]
    return {"rows": rows, "settings": json.dumps({**plan, "settings": env["settings"]}, indent=2)}


def _setups(variants: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant: the profile and knobs it ran with, and the processes and database
    connections it used at most (a run's own figures, or the most over a sweep's steps)."""
    rows = []
    for name, v in variants.items():
        measured = v.get("steps") or [v]
        processes = [m["resources"].get(name, {}).get("processes_max") for m in measured]
        connections = [(m.get("database_connections") or {}).get("open_max") for m in measured]
        setup = v.get("setup") or {}
        rows.append(
            {
                "name": name,
                "profile": setup.get("profile"),
                "knobs": setup.get("knobs") or {},
                "processes": max((p for p in processes if p), default=None),
                "connections": max((c for c in connections if c is not None), default=None),
            }
        )
    return rows


# The parts of a request's time a service's Server-Timing lets us see, in the order a
# request meets them (load/recorder.py derives `before`, `kernel` and `rest` per request).
# `before` is `kernel` + `queue`: it is shown only for a service that does not send `queue`.
QUEUES = (
    ("before", "before the app (not split)"),
    ("kernel", "not yet taken up by the server"),
    ("queue", "server queue (thread / event loop)"),
    ("conn", "pool wait"),
    ("sql", "SQL calls"),
    ("rest", "rest of the app"),
)


def _queue_columns(variants: dict[str, Any]) -> list[tuple[str, str]]:
    """The parts any variant has; `before` only where some variant lacks the split."""
    servers = [v.get("server_ms") or {} for v in variants.values()]
    split = all("queue" in s for s in servers if s)
    return [
        (key, label)
        for key, label in QUEUES
        if any(key in s for s in servers) and not (key == "before" and split)
    ]


def tail_parts(variants: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant, each part's p50, p99 and max, and the part whose p99 is largest: where
    the tail is (among parts that do not overlap: `before` only when it is not split)."""
    columns = _queue_columns(variants)
    rows = []
    for name, v in variants.items():
        server = v.get("server_ms") or {}
        overlapping = {"before"} if "queue" in server else {"kernel", "queue"}
        parts = [
            (key, label, server[key])
            for key, label in QUEUES
            if key in server and key not in overlapping
        ]
        if not parts:
            continue
        tail = max(parts, key=lambda p: p[2]["p99"])
        rows.append(
            {
                "name": name,
                "cells": [server.get(key) for key, _ in columns],
                "client_p99": v["latency_ms"]["p99"],
                "accept": v.get("accept_queue"),
                "tail": tail[1],
                "tail_p99": tail[2]["p99"],
            }
        )
    return rows


def _run_charts(variants: dict[str, Any]) -> list[Markup]:
    over_time: dict[str, list[tuple[float, float]]] = {}
    rps: dict[str, list[tuple[float, float]]] = {}
    for name, v in variants.items():
        over_time[f"{name} p99"] = [(r["t"], r["p99_ms"]) for r in v["timeline"]]
        over_time[f"{name} p50"] = [(r["t"], r["p50_ms"]) for r in v["timeline"]]
        rps[name] = [(r["t"], r["rps"]) for r in v["timeline"][1:-1]]
    curve = {
        name: [(nines(p), ms) for p, ms in v["percentile_curve"]] for name, v in variants.items()
    }
    # Each variant met its faults at (nearly) the same second of its own window.
    marks = sorted(
        {(round(f["at_s"]), f["kind"]) for v in variants.values() for f in v.get("faults") or []}
    )
    return [
        Markup(
            line_chart(
                over_time,
                title="Latency over time (exact, per second)",
                x_label="seconds after warm-up",
                y_label="ms",
                dashed=lambda n: n.endswith("p50"),
                marks=marks,
            )
        ),
        Markup(
            line_chart(
                rps,
                title="Throughput over time",
                x_label="seconds after warm-up",
                y_label="requests per second",
                marks=marks,
            )
        ),
        Markup(
            line_chart(
                curve,
                title="Latency by percentile (log scale of nines)",
                x_label="percentile",
                y_label="ms",
                x_ticks=NINES_TICKS,
            )
        ),
    ]


def _claims(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Our figures beside the article's, for its headline scenario."""
    if summary["scenario"] != claims.HEADLINE["scenario"]:
        return None
    rounds = summary["plan"].get("repeat", 1)
    rows = []
    for name, claim in claims.HEADLINE["variants"].items():
        ours = summary["variants"].get(name)
        if ours is None:
            continue
        across, every = ours.get("across_rounds"), ours.get("rounds") or [ours]
        for key in ("p50", "p95", "p99"):
            mine = across[key]["mean"] if across else ours["latency_ms"][key]
            rows.append((f"{name} {key} ms", f"{claim[key]:,.1f}", f"{mine:,.1f}"))
        failed = sum(r["failures"] for r in every)
        sent = sum(r["requests"] for r in every)
        rows.append((f"{name} errors", claim["errors"], f"{failed:,} of {sent:,}"))
    return {
        "source": claims.SOURCE,
        "conditions": claims.CONDITIONS,
        "this_run": "this run" if rounds == 1 else f"this run (latency: mean of {rounds} rounds)",
        "rows": rows,
    }


def _load(plan: dict[str, Any]) -> str:
    if plan.get("arrival_rate"):
        return (
            f"{plan['arrival_rate']:,g} req/s offered ({plan['arrivals']} arrivals), "
            f"at most {plan['users']} in flight"
        )
    return f"{plan['users']} users"


def render_run(summary: dict[str, Any]) -> str:
    """The whole page for a run's summary (as written to summary.json)."""
    variants = summary["variants"]

    def having(key: str) -> list[tuple[str, dict[str, Any]]]:
        return [(n, v) for n, v in variants.items() if v.get(key)]

    return ENV.get_template("run.html").render(
        title=summary["run_id"],
        s=summary,
        flags=summary["flags"],
        load=_load(summary["plan"]),
        order=summary.get("run_order"),
        repeated=is_repeated(variants),
        metrics=[{"key": k, "label": label, "unit": unit} for k, label, unit, _, _ in METRICS],
        latency_keys=LATENCY_KEYS,
        open_keys=OPEN_KEYS,
        opened=having("offered_rps"),
        events=having("database_events"),
        connected=having("database_connections"),
        delayed=having("generator_delay_ms"),
        checked=[(n, c) for n, v in variants.items() for c in v.get("integrity") or []],
        measured_window=all(v.get("resources_window") == "measured" for v in variants.values()),
        charts=_run_charts(variants),
        setups=_setups(variants),
        queues=tail_parts(variants),
        faults=[(n, f) for n, v in variants.items() for f in v.get("faults") or []],
        legs=having("leg"),
        by_route=_ranked_by_route(variants),
        soak_minutes=SOAK_SECONDS // 60,
        queue_labels=_queue_columns(variants),
        claims=_claims(summary),
        ran=_what_ran(summary["environment"], {"plan": summary["plan"]}),
    )


def _ranked_by_route(variants: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Per route of a PgBouncer side-by-side run, the stacks that ran clean by answered
    requests per second, most first: whether the ranking holds on both routes."""
    ranked: dict[str, list[tuple[str, float]]] = {}
    for v in variants.values():
        leg = v.get("leg")
        if leg and not leg["expected_failure"]:
            ranked.setdefault(leg["route"], []).append((leg["variant"], v["throughput_rps"]))
    return {route: sorted(rows, key=lambda r: -r[1]) for route, rows in ranked.items()}


def _sweep_charts(variants: dict[str, Any]) -> list[Markup]:
    latency: dict[str, list[tuple[float, float]]] = {}
    answered: dict[str, list[tuple[float, float]]] = {}
    errors: dict[str, list[tuple[float, float]]] = {}
    cpu: dict[str, list[tuple[float, float]]] = {}
    rates: set[float] = set()
    for name, v in variants.items():
        # A rate tried twice is drawn at its last try; the table below keeps every try.
        steps = list({s["rate"]: s for s in v["steps"]}.values())
        rates |= {s["rate"] for s in steps}
        latency[f"{name} p99"] = [(s["rate"], s["latency_ms"]["p99"]) for s in steps]
        latency[f"{name} p50"] = [(s["rate"], s["latency_ms"]["p50"]) for s in steps]
        answered[name] = [(s["rate"], s["achieved_rps"]) for s in steps]
        errors[name] = [(s["rate"], 100 * s["error_rate"]) for s in steps]
        for component in steps[0]["resources"] if steps else []:
            cpu[f"{name}: {component}"] = [
                (s["rate"], s["resources"][component]["cpu_mean"]) for s in steps
            ]
    answered["offered"] = [(r, r) for r in sorted(rates)]
    x = "offered rate (req/s)"
    return [
        Markup(chart)
        for chart in (
            line_chart(
                latency,
                title="Latency against offered rate (from the intended start)",
                x_label=x,
                y_label="ms",
                dashed=lambda n: n.endswith("p50"),
            ),
            line_chart(
                answered,
                title="Answered against offered",
                x_label=x,
                y_label="req/s answered",
                dashed=lambda n: n == "offered",
            ),
            line_chart(errors, title="Errors against offered rate", x_label=x, y_label="%"),
            line_chart(
                cpu,
                title="CPU of each component against offered rate",
                x_label=x,
                y_label="% of one core",
            ),
        )
    ]


def render_sweep(summary: dict[str, Any]) -> str:
    variants = summary["variants"]
    at_capacity = {
        name: next((s for s in v["steps"] if s["rate"] == v["capacity_rps"] and s["held"]), None)
        for name, v in variants.items()
    }
    components = sorted({c for s in at_capacity.values() if s for c in s["cpu_ms_per_request"]})
    return ENV.get_template("sweep.html").render(
        title=summary["run_id"],
        s=summary,
        flags=summary["flags"],
        charts=_sweep_charts(variants),
        setups=_setups(variants),
        at_capacity=at_capacity,
        components=components,
        ran=_what_ran(summary["environment"], {"sweep": summary["sweep"]}),
    )


def render_compare(result: dict[str, Any]) -> str:
    """The page of `loadlab compare` (analysis/change.py's result)."""
    return ENV.get_template("compare.html").render(title="compare", c=result)


def render_tune(summary: dict[str, Any]) -> str:
    """The page of a `loadlab tune` search: every trial, the chosen knobs."""
    trials = summary["trials"]
    chart = line_chart(
        {
            "p99": [(t["trial"], t["latency_ms"]["p99"]) for t in trials],
            "p50": [(t["trial"], t["latency_ms"]["p50"]) for t in trials],
        },
        title="Latency of each trial",
        x_label="trial",
        y_label="ms",
        dashed=lambda n: n == "p50",
    )
    return ENV.get_template("tune.html").render(
        title=summary["run_id"],
        s=summary,
        chart=Markup(chart),
        ran=_what_ran(summary["environment"], {"tune": summary["tune"]}),
    )


def render(summary: dict[str, Any]) -> str:
    """A report folder's page: a tune's, a sweep's, or a run's."""
    if summary.get("kind") == "tune":
        return render_tune(summary)
    return render_sweep(summary) if summary.get("kind") == "sweep" else render_run(summary)


def number(value: float) -> str:
    """Three significant digits, thousands separated: 0.0123, 1.23, 1,234."""
    if value == 0 or value != value:
        return "0" if value == 0 else "-"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:,.{digits}f}"


def render_findings(document: dict[str, Any]) -> str:
    """The page of `loadlab micro`: each claim beside our figure, then every experiment."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for row in document["claims"]:
        sections.setdefault(row["section"], []).append(row)
    return ENV.get_template("findings.html").render(
        title="findings",
        d=document,
        sections=list(sections.items()),
        number=number,
        article="../shared/seeds/000_caf037058c97b154.txt",
        ran=_what_ran(document["environment"], {"micro": {"repeat": document["repeat"]}}),
    )
