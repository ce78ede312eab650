"""Pages rendered from jinja2 templates (templates/, autoescaped): the sweep's page. Charts
are inline SVG from svg.py, passed in as markup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from loadlab.report.html import what_ran
from loadlab.report.svg import line_chart

TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt field fails the render, not shows as blank
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["ms"] = lambda v, digits=1: "-" if v is None else f"{v:,.{digits}f}"
ENV.filters["fmt_rate"] = lambda v: f"{v:g}"


def _sweep_charts(variants: dict[str, Any]) -> list[Markup]:
    latency: dict[str, list[tuple[float, float]]] = {}
    answered: dict[str, list[tuple[float, float]]] = {}
    errors: dict[str, list[tuple[float, float]]] = {}
    cpu: dict[str, list[tuple[float, float]]] = {}
    rates: set[float] = set()
    for name, v in variants.items():
        steps = v["steps"]
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
        name: next((s for s in v["steps"] if s["rate"] == v["capacity_rps"]), None)
        for name, v in variants.items()
    }
    components = sorted({c for s in at_capacity.values() if s for c in s["cpu_ms_per_request"]})
    return ENV.get_template("sweep.html").render(
        title=summary["run_id"],
        s=summary,
        flags=summary["flags"],
        charts=_sweep_charts(variants),
        at_capacity=at_capacity,
        components=components,
        what_ran=Markup(what_ran(summary["environment"], {"sweep": summary["sweep"]})),
    )
