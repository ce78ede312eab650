"""Writing a run's folder: built in a temporary folder, moved into place only when complete."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab.analysis import repeats, slo
from loadlab.analysis.compare import verdicts
from loadlab.errors import UsageError
from loadlab.load.monitor import GROWTH_FLOOR_MB, SATURATED_CPU, SATURATED_SECONDS, SOAK_SECONDS
from loadlab.report import history, schema
from loadlab.report.pages import ENV, render

REPORTS = "reports"


def run_id(scenario: str, load: str, now: datetime | None = None) -> str:
    """<date>-<time>-<scenario>-<load>, the load as LoadPlan.tag gives it (200u, 500rps)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{scenario}-{load}"


def expected_failure(variant: dict[str, Any]) -> str | None:
    """Why a leg of a side-by-side run is expected to fail, if it is (side-by-side reports
    before the field said it in their leg)."""
    return variant.get("expected_failure") or (variant.get("leg") or {}).get("expected_failure")


def flags(variants: dict[str, Any]) -> list[str]:
    """Warnings for the top of the report; those starting with FAIL fail the run. With
    several rounds every round is checked: a failure is named by its round, a warning is
    said once per variant with the rounds it concerns."""
    found = []
    for name, variant in variants.items():
        rounds = variant.get("rounds") or [variant]
        expected = expected_failure(variant)
        for number, v in enumerate(rounds, 1):
            which = name if len(rounds) == 1 else f"{name} round {number}"
            found.extend(run_failures(which, v, expected))
        saturated = [n for n, v in enumerate(rounds, 1) if v["generator_saturated"]]
        if saturated:
            found.append(
                f"{name}{_which(saturated, len(rounds))}: the load generator was saturated (a "
                f"Locust process at >= {SATURATED_CPU:.0f}% of a core for {SATURATED_SECONDS} s "
                "or more); these figures are generator-bound, not the service's. Add Locust "
                "workers (--workers) or a second machine."
            )
        found.extend(generator_warnings(name, rounds))
        found.extend(placement_warnings(name, rounds))
        found.extend(memory_warnings(name, rounds[0]))
        found.extend(_behind_schedule(name, rounds))
        busy = [
            (n, v["machine_cpu_mean"])
            for n, v in enumerate(rounds, 1)
            if v["machine_cpu_mean"] >= 90
        ]
        if busy:
            low, high = round(min(c for _, c in busy)), round(max(c for _, c in busy))
            share = f"{low}%" if low == high else f"{low}-{high}%"
            found.append(
                f"{name}{_which([n for n, _ in busy], len(rounds))}: the whole machine was "
                f"{share} busy on average: generator, service and database competed for the "
                "same cores."
            )
    return found


GENERATOR_SIDE_BUSY = 90.0  # percent of the generator side's CPUs


def placement_warnings(name: str, rounds: list[dict[str, Any]]) -> list[str]:
    """On a split, a generator side busy for most of its share: it is what limits the
    figures; and any component that did not keep to its side."""
    found = []
    busy = []
    for number, v in enumerate(rounds, 1):
        p = v.get("placement") or {}
        used, share = p.get("generator_cpu_mean"), p.get("generator_share")
        if p.get("mode") != "split" or used is None or not share:
            continue
        if float(used) >= GENERATOR_SIDE_BUSY / 100 * float(share):
            busy.append((number, float(used) / float(share)))
    if busy:
        low, high = min(b for _, b in busy), max(b for _, b in busy)
        share_text = f"{low:.0%}" if round(low, 2) == round(high, 2) else f"{low:.0%}-{high:.0%}"
        found.append(
            f"{name}{_which([n for n, _ in busy], len(rounds))}: the generator's CPUs were "
            f"{share_text} busy: the generator saturates its side of the split, so these "
            "figures may be its limit, not the service's (give it more CPUs with --cpus)"
        )
    p = rounds[0].get("placement") or {}
    if p.get("mode") == "split":
        stack = set(p.get("stack_cpus") or [])
        strays = [c for c, o in (p.get("observed") or {}).items() if not set(o["cpus"]) <= stack]
        if strays:
            found.append(
                f"{name}: {', '.join(strays)} ran outside the stack's CPUs "
                f"({','.join(map(str, sorted(stack)))}): the split did not hold"
            )
    return found


def memory_warnings(name: str, v: dict[str, Any]) -> list[str]:
    """In a soak (10 minutes or more measured), each component whose memory still grew in
    the last third of the window by GROWTH_FLOOR_MB per 10 minutes or more: not levelled
    off, however much faster it grew before (16.7 MB per 10 minutes over the window and
    still 6.6 in its last third is growth, not a plateau)."""
    if v.get("measured_seconds", 0) < SOAK_SECONDS:
        return []
    found = []
    for component, r in (v.get("resources") or {}).items():
        whole, late = (
            r.get("memory_growth_mb_per_10min"),
            r.get("memory_growth_last_third_mb_per_10min"),
        )
        if whole is None or late is None or late < GROWTH_FLOOR_MB:
            continue
        found.append(
            f"{name}: {component}'s memory grew {whole:,.1f} MB per 10 minutes over the "
            f"measured window and {late:,.1f} MB per 10 minutes in its last third: it had not "
            "levelled off (a leak, or a cache still filling: run longer to tell)"
        )
    return found


GENERATOR_DELAY_P99_MS = 5.0
GENERATOR_DELAY_SHARE = 0.10  # of the measured p50


def generator_late(v: dict[str, Any]) -> bool:
    """Whether the generator's own delay may be part of a run's latencies."""
    delay = v.get("generator_delay_ms")
    if not delay:
        return False
    p99 = delay["p99"]
    return bool(
        p99 > GENERATOR_DELAY_P99_MS or p99 > GENERATOR_DELAY_SHARE * v["latency_ms"]["p50"]
    )


GENERATOR_LATE = (
    "part of these latencies is the generator's, not the service's (the limit: p99 over "
    f"{GENERATOR_DELAY_P99_MS:.0f} ms or over {GENERATOR_DELAY_SHARE:.0%} of the measured p50)."
)


def generator_warnings(name: str, rounds: list[dict[str, Any]]) -> list[str]:
    """A generator that wakes late adds its own delay to every latency it times."""
    late = [(n, v) for n, v in enumerate(rounds, 1) if generator_late(v)]
    if not late:
        return []
    worst = max((v for _, v in late), key=lambda v: v["generator_delay_ms"]["p99"])
    share = worst["generator_delay_ms"].get("cpu_wait_share")
    cause = (
        ""
        if share is None
        else f"; {share:.0%} of the lateness was waiting for a CPU, the rest its own loop's work"
    )
    return [
        f"{name}{_which([n for n, _ in late], len(rounds))}: the load generator's own "
        f"scheduler ran late (p99 {worst['generator_delay_ms']['p99']:,.1f} ms against a "
        f"measured p50 of {worst['latency_ms']['p50']:,.1f} ms{cause}): " + GENERATOR_LATE
    ]


def sweep_flags(variants: dict[str, Any]) -> list[str]:
    """A sweep's warnings: FAIL for integrity broken over a variant's steps; one line per
    variant naming the rates at which the generator's delay may be in the figures."""
    found = []
    for name, v in variants.items():
        for c in v["integrity"] or []:
            if not c["holds"]:
                found.append(
                    f"FAIL {name}: integrity broken for {c['request']} over the sweep: "
                    f"acknowledged {c['acknowledged']:,}, applied {c['applied']:,}, in doubt "
                    f"{c['in_doubt']:,}"
                )
        late = [s for s in v["steps"] if generator_late(s)]
        if late:
            rates = ", ".join(f"{s['rate']:g}" for s in late)
            worst = max(s["generator_delay_ms"]["p99"] for s in late)
            found.append(
                f"{name} at {rates} req/s: the load generator's own scheduler ran late (p99 "
                f"up to {worst:,.1f} ms): " + GENERATOR_LATE
            )
    return found


KEEP_UP_SHARE = 0.95  # achieved / offered below this: the schedule was not held


def _behind_schedule(name: str, rounds: list[dict[str, Any]]) -> list[str]:
    """An open-model run whose requests were not all sent, or not all answered in time."""
    found = []
    for n, v in enumerate(rounds, 1):
        if "offered_rps" not in v:
            continue
        which = name if len(rounds) == 1 else f"{name} round {n}"
        not_sent = v["arrivals"]["not_sent"]
        # A request or two due in the run's last instant is still waiting when it ends.
        left_behind = not_sent > (1 - KEEP_UP_SHARE) * v["arrivals"]["offered"]
        if v["achieved_rps"] < KEEP_UP_SHARE * v["offered_rps"] or left_behind:
            found.append(
                f"{which}: {v['offered_rps']:,.1f} req/s offered, {v['achieved_rps']:,.1f} "
                f"answered per second, {not_sent:,} due but never sent when the run ended "
                "(all users busy, or the generator stalled): the service did not keep up "
                "with the arrival rate, or --users is too small for it."
            )
    return found


def _which(numbers: list[int], rounds: int) -> str:
    if rounds == 1:
        return ""
    return f" (in {len(numbers)} of {rounds} rounds: {', '.join(map(str, numbers))})"


MAX_ERROR_RATE = 0.5  # above it a run measures failures, not the service


def run_failures(name: str, v: dict[str, Any], expected_failure: str | None = None) -> list[str]:
    """FAIL lines for a run whose figures cannot stand, or whose data is not whole."""
    return figure_failures(name, v, expected_failure) + integrity_failures(name, v)


def figure_failures(name: str, v: dict[str, Any], expected_failure: str | None = None) -> list[str]:
    """FAIL lines for a run's figures: all or most requests failed, or the two recorders
    counted differently. A leg run to show a known failure (side_by_side: asyncpg's
    defaults behind PgBouncer) says its error rate instead."""
    found = []
    if expected_failure:
        found.append(
            f"{name}: {v['error_rate']:.1%} of requests failed, as expected: {expected_failure}"
            if v["failures"]
            else f"{name}: no request failed, though {expected_failure}: see its errors below"
        )
    elif v["requests"] == v["failures"]:
        found.append(
            f"FAIL {name}: no request succeeded ({v['requests']:,} measured): these figures "
            "describe failures, not the service"
        )
    elif v["error_rate"] > MAX_ERROR_RATE:
        found.append(
            f"FAIL {name}: {v['error_rate']:.1%} of requests failed (more than "
            f"{MAX_ERROR_RATE:.0%}): these figures describe failures more than the service"
        )
    if v["requests"] != v["locust_requests"]:
        found.append(
            f"FAIL {name}: the exact recorder counted {v['requests']:,} requests, "
            f"Locust {v['locust_requests']:,}"
        )
    return found


def integrity_failures(name: str, v: dict[str, Any]) -> list[str]:
    found = []
    for c in v.get("integrity") or []:
        if not c["holds"]:
            found.append(
                f"FAIL {name}: integrity broken for {c['request']}: acknowledged "
                f"{c['acknowledged']:,}, applied {c['applied']:,}, in doubt "
                f"{c['in_doubt']:,}"
            )
    for what, n in (v.get("half_written") or {}).items():
        if n:
            found.append(f"FAIL {name}: the data is not whole after the run: {n:,} {what}")
    orders = v.get("orders")
    if orders and not orders["holds"]:
        found.append(
            f"FAIL {name}: of {orders['acknowledged']:,} orders answered 201, "
            f"{orders['missing']:,} are missing and {orders['different']:,} differ from the "
            f"answer; {orders['unacknowledged']:,} orders no one was answered for exist, with "
            f"{orders['in_doubt']:,} in doubt"
            + (
                f"; {orders['duplicates']:,} answers named an order id another answer had"
                if orders.get("duplicates")
                else ""
            )
        )
    return found


def derive(summary: dict[str, Any]) -> dict[str, Any]:
    """Set the flags and verdicts that follow from the measured figures: from the rounds
    when each variant ran more than once, else from one run's per-second spread."""
    variants = summary["variants"]
    summary["flags"] = flags(variants)
    objectives = summary["plan"].get("slo")
    summary["slo"] = slo.check(objectives, variants) if objectives else None
    summary["flags"] += slo.failures(summary["slo"] or [])
    judge = repeats.verdicts if repeats.is_repeated(variants) else verdicts
    summary["verdicts"] = judge(variants)
    return summary


def build_summary(
    rid: str, plan: dict[str, Any], environment: dict[str, Any], variants: dict[str, Any]
) -> dict[str, Any]:
    return derive(
        {
            "run_id": rid,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scenario": plan["scenario"],
            "plan": plan,
            "environment": environment,
            "variants": variants,
        }
    )


def failed(summary: dict[str, Any]) -> list[str]:
    return [f for f in summary["flags"] if f.startswith("FAIL")]


def summary_text(summary: dict[str, Any]) -> str:
    """summary.json as written: compact, since it is for machines (`python -m json.tool`
    indents it) and indenting made a third of every committed report's bytes."""
    return json.dumps(summary, separators=(",", ":"))


def publish(summary: dict[str, Any], tmp: Path, final: Path) -> Path:
    """Write summary.json and index.html into `tmp`, then move it to `final`; a run in
    reports/ is added to reports/index.html."""
    schema.validate(summary, f"{final.name}/summary.json")
    (tmp / "summary.json").write_text(summary_text(summary))
    (tmp / "index.html").write_text(render(summary))
    tmp.rename(final)
    if final.parent.name == REPORTS:
        write_index(final.parent)
    return final / "index.html"


def prepare_out(final: Path) -> Path:
    """The temporary folder a report is written into before it moves to `final`, created
    now, so a folder that cannot be written is said before any load is sent."""
    if final.exists():
        raise UsageError(f"{final} exists already: choose another --out or remove it")
    tmp = final.parent / f".tmp-{final.name}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        discard(tmp)
        tmp.mkdir()
    except OSError as exc:
        raise UsageError(f"cannot write the report to {final}: {exc.strerror or exc}") from None
    return tmp


def rerender(run: Path) -> Path:
    """Render a run's page again from its summary.json after a change to the page or to the
    analysis: the measured figures stay the run's own, flags and verdicts are derived anew."""
    summary_path = run / "summary.json"
    if not summary_path.exists():
        raise UsageError(f"{run} holds no summary.json: is it a loadlab report folder?")
    summary = json.loads(summary_path.read_text())
    if summary.get("kind") == "tune":
        pass  # a tune report has no flags or verdicts to derive
    elif summary.get("kind") == "sweep":
        summary["flags"] = sweep_flags(summary["variants"])
    else:
        summary = derive(summary)
        if summary.get("kind") == "calibration":
            from loadlab.analysis.noise import calibration

            summary["calibration"] = calibration(summary["variants"])
    summary_path.write_text(summary_text(summary))
    (run / "index.html").write_text(render(summary))
    if run.resolve().parent.name == REPORTS:
        write_index(run.resolve().parent)
    return run / "index.html"


def _index_cell(name: str, v: dict[str, Any]) -> str:
    if "capacity_rps" in v:
        capacity = v["capacity_rps"]
        return f"{name}: capacity {'-' if capacity is None else f'{capacity:,g}'} req/s"
    across = v.get("across_rounds")
    if across:
        return (
            f"{name}: p99 {across['p99']['mean']:,.1f} ms, "
            f"{across['throughput_rps']['mean']:,.0f} req/s, {across['error_rate']['mean']:.2%} "
            f"errors (means of {across['p99']['n']} rounds)"
        )
    return (
        f"{name}: p99 {v['latency_ms']['p99']:,.1f} ms, {v['throughput_rps']:,.0f} "
        f"req/s, {v['error_rate']:.2%} errors"
    )


def _index_load(s: dict[str, Any]) -> str:
    if s.get("kind") == "tune":
        t = s["tune"]
        load = f"{t['arrival_rate']:g} req/s" if t["arrival_rate"] else f"{t['users']} users"
        return f"tune {t['variant']}: {load}, {len(s['trials'])} trials, {t['slo']}"
    if s.get("kind") == "sweep":
        rates = s["sweep"]["rates"]
        return f"sweep {rates[0]:g}-{rates[-1]:g} req/s, {s['sweep']['slo']}"
    plan = s["plan"]
    if plan.get("arrival_rate"):
        return f"{plan['arrival_rate']:g} req/s, max {plan['users']} in flight"
    return f"{plan['users']} users"


def write_index(reports: Path) -> Path:
    """reports/index.html: how each stack's figures moved over the reports (history.py),
    then every report, newest first; written whole, then moved into place."""
    runs, summaries = [], []
    for summary_path in sorted(reports.glob("*/summary.json"), reverse=True):
        s = json.loads(summary_path.read_text())
        summaries.append((summary_path.parent.name, s))
        runs.append(
            {
                "folder": summary_path.parent.name,
                "page": "index.html",
                "s": s,
                "load": _index_load(s),
                "cells": [_index_cell(n, v) for n, v in s["variants"].items()]
                or [", ".join(f"{k}={v}" for k, v in s.get("chosen", {}).items())],
            }
        )
    for findings_path in reports.glob("*/findings.json"):  # `loadlab micro`
        f = json.loads(findings_path.read_text())
        tally = Counter(c.get("verdict", "?") for c in f.get("claims", []))
        runs.append(
            {
                "folder": findings_path.parent.name,
                "page": "findings.html",
                "s": {
                    "run_id": findings_path.parent.name,
                    "scenario": "the article's claims",
                    "flags": [],
                },
                "load": "micro-benchmarks" + (" (quick)" if f.get("quick") else ""),
                "cells": [", ".join(f"{n} {v}" for v, n in tally.most_common())],
            }
        )
    retired = sorted((reports / history.RETIRED).glob("*.json"))
    summaries += [(p.stem, json.loads(p.read_text())) for p in retired]
    runs.sort(key=lambda r: r["folder"], reverse=True)
    trends = history.groups(summaries, frozenset(p.stem for p in retired))
    page = ENV.get_template("index.html").render(title="runs", runs=runs, history=trends)
    tmp = reports / ".index.html.tmp"
    tmp.write_text(page)
    tmp.replace(reports / "index.html")
    return reports / "index.html"


def discard(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
