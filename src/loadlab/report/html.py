"""The comparison page of one run: one self-contained HTML file (inline CSS and SVG)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from loadlab.analysis.repeats import METRICS, is_repeated
from loadlab.report import claims
from loadlab.report.svg import NINES_TICKS, line_chart, nines

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;
padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;border-bottom:1px solid #eee;
text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}
.flag{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px;margin:8px 0}
.fail{background:#fde8e8;border-color:#d66}.ok{color:#2f7d32}.bad{color:#b3261e;font-weight:bold}
.muted{color:#666}code{background:#f3f3f3;padding:1px 4px}svg{max-width:100%;height:auto}
"""

OPEN_KEYS = ("p50", "p99", "p99_9", "max")
LATENCY_KEYS = (
    ("p50", "p50"),
    ("p90", "p90"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("p99_9", "p99.9"),
    ("max", "max"),
    ("mean", "mean"),
)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    cells = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _headline(variants: dict[str, Any]) -> str:
    head = [
        "variant",
        "requests",
        "req/s (± sd per s)",
        "error rate",
        "errors by kind",
        *[f"{label} ms" for _, label in LATENCY_KEYS],
    ]
    rows = []
    for name, v in variants.items():
        errors = "<br>".join(f"{escape(k)}: {n}" for k, n in v["errors"].items()) or "none"
        rows.append(
            [
                f"<b>{escape(name)}</b><br><span class=muted>{escape(v['label'])}</span>",
                f"{v['requests']:,}",
                f"{v['throughput_rps']:,.1f} ± {v['throughput_rps_per_second_sd']:,.1f}",
                f"{v['error_rate']:.2%}",
                errors,
                *[_ms(v["latency_ms"][key]) for key, _ in LATENCY_KEYS],
            ]
        )
    return _table(head, rows)


def _across_rounds(variants: dict[str, Any]) -> str:
    """With repeated rounds: the mean of each headline figure and its 95% interval, then
    every round's own figures."""
    if not is_repeated(variants):
        return ""
    head = ["variant", "rounds"] + [label for _, label, _, _, _ in METRICS]
    rows = []
    for name, v in variants.items():
        cells = []
        for key, _, unit, _, _ in METRICS:
            i = v["across_rounds"][key]
            fmt = (lambda x: f"{x:.2%}") if unit == "" else (lambda x: f"{x:,.1f}")
            lo, hi = i["ci95"]
            cells.append(f"{fmt(i['mean'])}<br><span class=muted>{fmt(lo)} to {fmt(hi)}</span>")
        rows.append([f"<b>{escape(name)}</b>", str(len(v["rounds"])), *cells])
    each = []
    for name, v in variants.items():
        for number, r in enumerate(v["rounds"], 1):
            lat = r["latency_ms"]
            each.append(
                [
                    escape(f"{name} round {number}"),
                    f"{r['requests']:,}",
                    f"{r['throughput_rps']:,.1f}",
                    *[_ms(lat[k]) for k in ("p50", "p95", "p99")],
                    f"{r['error_rate']:.2%}",
                ]
            )
    return (
        "<h2>Across rounds</h2><p>Each variant ran in several rounds, in alternating order "
        "(A B, B A, ...), with the data reset before each. Mean over the rounds, and under it "
        "the 95% confidence interval of that mean (Student's t); latencies in ms, "
        "throughput in req/s.</p>"
        + _table(head, rows)
        + "<details><summary>every round</summary>"
        + _table(["round", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], each)
        + "</details>"
    )


def _gates(summary: dict[str, Any]) -> str:
    results = summary.get("slo")
    if not results:
        return ""
    rows = [
        [
            escape(r["variant"] + ("" if r["round"] is None else f" round {r['round']}")),
            f"<code>{escape(r['objective'])}</code>",
            f"{r['value']:,.2f} {escape(r['unit'])}",
            "<span class=ok>holds</span>"
            if r["holds"]
            else f"<span class=bad>BROKEN</span> by {r['by']:,.2f} {escape(r['unit'])}",
        ]
        for r in results
    ]
    broken = sum(not r["holds"] for r in results)
    verdict = "every objective holds" if not broken else f"{broken} broken: the run fails"
    return (
        f"<h2>Gates: {verdict}</h2><p class=muted>The run's objectives (<code>--slo</code>), "
        "checked on every variant and round; latencies in ms, errors in percent of measured "
        "requests, rps answered per second.</p>"
        + _table(["variant", "objective", "measured", "verdict"], rows)
    )


def _open_model(variants: dict[str, Any]) -> str:
    """Offered against achieved, and latency from the intended start against the send."""
    opened = {n: v for n, v in variants.items() if "offered_rps" in v}
    if not opened:
        return ""
    rows = []
    for name, v in opened.items():
        a, fixed, raw = v["arrivals"], v["latency_ms"], v["latency_uncorrected_ms"]
        late = a["late"] / a["sent"] if a["sent"] else 0.0
        rows.append(
            [
                f"<b>{escape(name)}</b>",
                f"{v['offered_rps']:,.1f}",
                f"{v['achieved_rps']:,.1f}",
                f"{a['late']:,} ({late:.1%})",
                f"{a['not_sent']:,}",
                *[f"{_ms(fixed[k])}<br><span class=muted>{_ms(raw[k])}</span>" for k in OPEN_KEYS],
            ]
        )
    head = ["variant", "offered req/s", "answered req/s", "late starts", "not sent"]
    head += [f"{label} ms" for key, label in LATENCY_KEYS if key in OPEN_KEYS]
    return (
        "<h2>Open model: latency as arriving users feel it</h2><p>Requests were sent on a "
        "schedule that does not wait for replies (<code>--arrival-rate</code>), with at most "
        "the run's users in flight: a request due while all were busy waited for the first "
        "free one (a <i>late start</i>, over 1 ms after its intended time); <i>not sent</i> "
        "are those still waiting when the run ended. Each latency counts from the request's "
        "<i>intended</i> start (top figure); under it, the same percentile from the actual "
        "send, which is what a closed-loop tool reports. A gap between them is time requests "
        "waited to be sent because the service held every user: a stall or saturation that "
        "the lower figure hides (coordinated omission).</p>" + _table(head, rows)
    )


def _generator(variants: dict[str, Any]) -> str:
    rows = [
        [escape(name), *[_ms(v["generator_delay_ms"][k]) for k in ("p50", "p99", "max")]]
        for name, v in variants.items()
        if v.get("generator_delay_ms")
    ]
    if not rows:
        return ""
    return (
        "<h3>The generator's own delay</h3><p>Each Locust process sleeps 10 ms over and over "
        "and records how much later it woke: a process busy with its own work (or short of "
        "CPU) times every request that much late. Over 5 ms at p99, or over 10% of the "
        "measured p50, the page warns at the top.</p>"
        + _table(["variant", "p50 ms", "p99 ms", "max ms"], rows)
    )


def _charts(variants: dict[str, Any]) -> str:
    over_time: dict[str, list[tuple[float, float]]] = {}
    rps: dict[str, list[tuple[float, float]]] = {}
    for name, v in variants.items():
        over_time[f"{name} p99"] = [(r["t"], r["p99_ms"]) for r in v["timeline"]]
        over_time[f"{name} p50"] = [(r["t"], r["p50_ms"]) for r in v["timeline"]]
        rps[name] = [(r["t"], r["rps"]) for r in v["timeline"][1:-1]]
    curve = {
        name: [(nines(p), ms) for p, ms in v["percentile_curve"]] for name, v in variants.items()
    }
    return "\n".join(
        [
            line_chart(
                over_time,
                title="Latency over time (exact, per second)",
                x_label="seconds after warm-up",
                y_label="ms",
                dashed=lambda n: n.endswith("p50"),
            ),
            line_chart(
                rps,
                title="Throughput over time",
                x_label="seconds after warm-up",
                y_label="requests per second",
            ),
            line_chart(
                curve,
                title="Latency by percentile (log scale of nines)",
                x_label="percentile",
                y_label="ms",
                x_ticks=NINES_TICKS,
            ),
        ]
    )


def _mean_p99(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    return f"{figures['mean']:,.1f}<br><span class=muted>p99 {figures['p99']:,.1f}</span>"


def _where_time_went(variants: dict[str, Any]) -> str:
    rows = []
    for name, v in variants.items():
        lat, server, db = v["latency_ms"], v.get("server_ms") or {}, v.get("database_time")
        app = server.get("app")
        rows.append(
            [
                escape(name),
                _mean_p99(lat),
                "-" if not app else f"{lat['mean'] - app['mean']:,.1f}",
                _mean_p99(app),
                _mean_p99(server.get("conn")),
                _mean_p99(server.get("sql")),
                "not measured" if not db else f"{db['exec_ms_per_request']:,.3f}",
            ]
        )
    intro = (
        "<p>Mean ms per request, p99 under it. The services measure their own part and send "
        "it in a <code>Server-Timing</code> header, which the load generator records: "
        "<i>in the app</i> from the app receiving the request to its answer, of which "
        "<i>waiting for a connection</i> until the pool handed one over and <i>in SQL "
        "calls</i> inside the driver (network and server included). <i>Before the app</i> "
        "is the client's mean minus the app's: queued for a worker thread or the event loop, "
        "and the network. <i>PostgreSQL executing</i> is pg_stat_statements' execution time "
        "per request over the whole run.</p>"
    )
    table = _table(
        [
            "variant",
            "client saw",
            "before the app",
            "in the app",
            "waiting for a connection",
            "in SQL calls",
            "PostgreSQL executing",
        ],
        rows,
    )
    events = [
        f"{escape(name)}: " + ", ".join(f"{n} {kind}" for kind, n in v["database_events"].items())
        for name, v in variants.items()
        if v.get("database_events")
    ]
    if events:
        table += (
            "<p>Background work in PostgreSQL during the run (each can stall requests for a "
            "moment): " + "; ".join(events) + ".</p>"
        )
    res_rows = []
    for name, v in variants.items():
        per_request = v.get("cpu_ms_per_request") or {}
        for component, r in v["resources"].items():
            cost = per_request.get(component)
            res_rows.append(
                [
                    escape(f"{name}: {component}"),
                    "-" if cost is None else f"{cost:,.3f}",
                    f"{r['cpu_mean']:.0f}%",
                    f"{r['cpu_max']:.0f}%",
                    f"{r['process_cpu_max']:.0f}%",
                    f"{r['memory_max_mb']:,.0f}",
                    f"{r['rss_max_mb']:,.0f}" if "rss_max_mb" in r else "-",
                ]
            )
        res_rows.append(
            [escape(f"{name}: whole machine"), "", f"{v['machine_cpu_mean']:.0f}%", "", "", "", ""]
        )
    resources = _table(
        [
            "component",
            "CPU ms per request",
            "CPU mean (of one core)",
            "CPU max",
            "busiest process max",
            "memory max MB (PSS)",
            "RSS max MB (shared pages counted per process)",
        ],
        res_rows,
    )
    connections = [
        f"{escape(name)}: {c['open_mean']:,.1f} open on average (at most {c['open_max']}), "
        f"{c['active_mean']:,.1f} running a statement (at most {c['active_max']})"
        for name, v in variants.items()
        if (c := v.get("database_connections"))
    ]
    if connections:
        resources += (
            "<p>PostgreSQL's client connections to the database, sampled each second while "
            "measuring: " + "; ".join(connections) + ". With CPU ms per request, these are "
            "the figures to multiply for the cores and connections a target rate needs.</p>"
        )
    return (
        intro
        + table
        + "<h3>CPU and memory of each component (sampled each second"
        + (
            " while measuring"
            if all(v.get("resources_window") == "measured" for v in variants.values())
            else ", warm-up included"
        )
        + ")</h3>"
        + resources
    )


def _integrity(variants: dict[str, Any]) -> str:
    rows = []
    for name, v in variants.items():
        for c in v.get("integrity") or []:
            verdict = (
                "<span class=ok>holds</span>" if c["holds"] else "<span class=bad>BROKEN</span>"
            )
            rows.append(
                [
                    escape(name),
                    escape(c["request"]),
                    f"{c['acknowledged']:,}",
                    f"{c['applied']:,}",
                    f"{c['in_doubt']:,}",
                    verdict,
                ]
            )
    if not rows:
        return "<p class=muted>No write was checked (no database access, or no writes).</p>"
    return (
        "<p>Rule: acknowledged &le; applied &le; acknowledged + in doubt, over the whole "
        "run including warm-up.</p>"
        + _table(["variant", "request", "acknowledged", "applied", "in doubt", "rule"], rows)
    )


def _claims(summary: dict[str, Any]) -> str:
    if summary["scenario"] != claims.HEADLINE["scenario"]:
        return ""
    rounds = summary["plan"].get("repeat", 1)
    this_run = "this run" if rounds == 1 else f"this run (latency: mean of {rounds} rounds)"
    rows = []
    for name, claim in claims.HEADLINE["variants"].items():
        ours = summary["variants"].get(name)
        if ours is None:
            continue
        across, every = ours.get("across_rounds"), ours.get("rounds") or [ours]
        for key in ("p50", "p95", "p99"):
            mine = across[key]["mean"] if across else ours["latency_ms"][key]
            rows.append([escape(f"{name} {key} ms"), _ms(claim[key]), _ms(mine)])
        rows.append(
            [
                escape(f"{name} errors"),
                claim["errors"],
                f"{sum(r['failures'] for r in every):,} of {sum(r['requests'] for r in every):,}",
            ]
        )
    return (
        f"<h2>Beside the article's claim</h2><p>The article ({escape(claims.SOURCE)}) "
        f"claims, for {escape(claims.CONDITIONS)}:</p>"
        + _table(["figure", "article claims", this_run], rows)
        + f"<p class=muted>This run: {summary['plan']['users']} users on "
        f"{summary['environment']['cpu_count']} cores shared by generator, services "
        "and database.</p>"
    )


def what_ran(env: dict[str, Any], plan: dict[str, Any]) -> str:
    """Versions, machine and every setting: what a reader needs to run it again."""
    rows = [
        ["python", env["python"]],
        ["PostgreSQL", env["postgresql"]],
        ["PgBouncer", env["pgbouncer"]],
        ["CPU count", env["cpu_count"]],
        ["machine", env["machine"]],
        ["git commit", env["git_commit"]],
        *[[name, version] for name, version in env["packages"].items()],
    ]
    settings = json.dumps({**plan, "settings": env["settings"]}, indent=2)
    return (
        _table(["what", "version"], [[escape(str(a)), escape(str(b))] for a, b in rows])
        + f"<pre>{escape(settings)}</pre>"
    )


def _order(summary: dict[str, Any]) -> str:
    """Which variant ran when: one after another on a machine that may drift."""
    order = summary.get("run_order")
    if not order or len(summary["variants"]) < 2:
        return ""
    if summary["plan"].get("repeat", 1) > 1:
        return (
            "<p class=muted>Order: the variants alternated from round to round "
            f"({escape(' → '.join(f'{n} {r}' for n, r in order))}).</p>"
        )
    return (
        f"<p class=muted>Order: {escape(' then '.join(n for n, _ in order))}, one run each. "
        "A machine that warms up, cools down or gets busier over the run favours one of "
        "them; <code>--repeat</code> alternates the order and tells drift from difference."
        "</p>"
    )


def _load(plan: dict[str, Any]) -> str:
    if plan.get("arrival_rate"):
        return (
            f"{plan['arrival_rate']:,g} req/s offered ({escape(plan['arrivals'])} arrivals), "
            f"at most {plan['users']} in flight"
        )
    return f"{plan['users']} users"


def render(summary: dict[str, Any]) -> str:
    """The whole page for a run's summary (as written to summary.json)."""
    variants = summary["variants"]
    plan = summary["plan"]
    flags = "".join(
        f'<div class="flag{" fail" if f.startswith("FAIL") else ""}">{escape(f)}</div>'
        for f in summary["flags"]
    )
    verdicts = "".join(f"<li>{escape(s)}</li>" for s in summary["verdicts"])
    verdict_section = (
        f"<h2>Is the difference real?</h2><ul>{verdicts or '<li>Only one variant ran.</li>'}</ul>"
    )
    repeated = is_repeated(variants)
    side_note = " (round 1; the charts and resources below are round 1's too)" if repeated else ""
    links = " · ".join(
        f'<a href="{escape(n)}/locust.html">{escape(n)} Locust report</a>' for n in variants
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loadlab {escape(summary["run_id"])}</title>
<style>{CSS}</style></head><body>
<h1>{escape(plan["scenario"])}: {_load(plan)}, {len(variants)} variants</h1>
<p class=muted>run {escape(summary["run_id"])} · {escape(summary["created_at"])} ·
{plan["duration"]:.0f} s measured after {plan["warmup"]:.0f} s warm-up · spawn rate
{plan["spawn_rate"]}/s · Locust workers: {plan["workers"] or "none (one process)"} ·
rounds per variant: {plan.get("repeat", 1)}</p>
{_order(summary)}
{flags}
{_gates(summary)}
{_across_rounds(variants)}
{verdict_section if repeated else ""}
<h2>Side by side{side_note}</h2>
{_headline(variants)}
<p class=muted>Latencies are exact (HdrHistogram, 3 significant digits) over every measured
request, failed ones included; throughput ± the standard deviation of per-second rates.</p>
{"" if repeated else verdict_section}
{_open_model(variants)}
<h2>Charts</h2>
{_charts(variants)}
<h2>Where the time went</h2>
{_where_time_went(variants)}
{_generator(variants)}
<h2>Integrity</h2>
{_integrity(variants)}
{_claims(summary)}
<h2>What exactly ran</h2>
{what_ran(summary["environment"], {"plan": summary["plan"]})}
<p>{links} · <a href="summary.json">summary.json</a></p>
</body></html>
"""
