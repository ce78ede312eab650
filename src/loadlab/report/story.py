"""What one headline run showed, as markdown bullets made from its summary.json.

The README tells the headline duel's story in words; every figure in that story comes from
here, so that a rerun rewrites it (`evidence --results`) and a test fails when it drifts.
One run gives figures for this machine, not verdicts: the bullets never say "faster".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadlab.analysis import repeats
from loadlab.report import claims, pages

SHORT = {"flask_sync": "Flask", "fastapi_async": "FastAPI"}


def _name(variant: str) -> str:
    return SHORT.get(variant, variant)


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _parts(server: dict[str, Any], key: str) -> str:
    part = server[key]
    return f"p50 {_ms(part['p50'])}, p99 {_ms(part['p99'])}, max {_ms(part['max'])} ms"


def _failures(variants: dict[str, Any]) -> str:
    said = [
        f"{_name(n)} {v['failures']:,} of {v['requests']:,} ({v['error_rate']:.2%})"
        for n, v in variants.items()
    ]
    if all(v["failures"] == 0 for v in variants.values()):
        return "Neither stack failed a request"
    return "Requests failed: " + ", ".join(said)


def _against_article(variants: dict[str, Any]) -> str:
    article = claims.HEADLINE["variants"]
    ratios = []
    for n, v in variants.items():
        if n in article:
            p50, theirs = v["latency_ms"]["p50"], article[n]["p50"]
            ratios.append(
                f"{_ms(p50)} ms for {_name(n)}, {p50 / theirs:.1f} times the article's {theirs:g}"
            )
    return "the medians were " + "; ".join(ratios) if ratios else ""


def _where_the_tail_is(variants: dict[str, Any]) -> list[str]:
    lines = []
    for row in pages.tail_parts(variants):
        server = variants[row["name"]]["server_ms"]
        seen = [f"{label}: {_parts(server, key)}" for key, label in pages.QUEUES if key in server]
        lines.append(
            f"{_name(row['name'])}'s largest part of the tail: *{row['tail']}*, p99 "
            f"{_ms(row['tail_p99'])} ms of the client's {_ms(row['client_p99'])} ms. Each part, "
            "per request: " + "; ".join(seen[1:] if "queue" in server else seen) + "."
        )
    return lines


def _overhead(variants: dict[str, Any]) -> str:
    said = []
    for n, v in variants.items():
        server, db = v.get("server_ms") or {}, v.get("database_time")
        if "bridge" not in server or not db:
            continue
        said.append(
            f"{_name(n)} {server['bridge']['mean']:.2f} ms a request (p99 "
            f"{_ms(server['bridge']['p99'])} ms), with {server['sql']['mean']:,.1f} ms in the "
            f"driver's calls against PostgreSQL's own {db['exec_ms_per_request']:.2f} ms"
        )
    return (
        "The article's \"invisible overhead\", each session call timed whole minus the driver's "
        "time and the pool wait inside it: " + "; ".join(said)
        if said
        else ""
    )


def _ceiling(variants: dict[str, Any]) -> str:
    said = [
        f"{_name(n)} {v['ceiling']['share']:.0%} ({v['ceiling']['ms_per_request']:.2f} ms of the "
        f"machine a request against {v['ceiling']['ceiling_ms_per_request']:.2f} ms)"
        for n, v in variants.items()
        if v.get("ceiling")
    ]
    if not said:
        return ""
    c = next(v["ceiling"] for v in variants.values() if v.get("ceiling"))
    return (
        f"Of what pgbench does with the same transaction at {c['connections']} connections "
        f"({c['tps']:,.0f} transactions/s), the stacks served: " + "; ".join(said)
    )


def _generator(variants: dict[str, Any]) -> str:
    said = []
    for n, v in variants.items():
        delay = v.get("generator_delay_ms")
        if delay:
            waited = delay.get("cpu_wait_share")
            said.append(
                f"during {_name(n)}'s run p99 {delay['p99']:.1f} ms (max {_ms(delay['max'])} ms"
                + (f", {waited:.0%} of it waiting for a CPU" if waited is not None else "")
                + f"; the machine {v['machine_cpu_mean']:.0f}% busy)"
            )
    return "The load generator's own scheduler delay: " + "; ".join(said) if said else ""


def bullets(summary: dict[str, Any]) -> str:
    """The run's story, one bullet per finding, every figure from `summary`."""
    variants = summary["variants"]
    first = _failures(variants)
    article = _against_article(variants)
    found = [first + ("; " + article if article else "") + "."]
    found += _where_the_tail_is(variants)
    found += [s + "." for s in (_overhead(variants), _ceiling(variants), _generator(variants)) if s]
    return "".join(f"- {line}\n" for line in found)


def _newest(name: str, reports: Path) -> tuple[str, dict[str, Any], dict[str, Any]] | str:
    """(page, manifest entry, summary) of experiment NAME's newest committed run, or what
    to say when `make evidence` has not made it."""
    manifest = json.loads((reports / "evidence.json").read_text())
    entry = next((e for e in manifest["experiments"] if e["name"] == name), None)
    if entry is None:
        return f'`make evidence ARGS="--only {name}"` has not made this yet.\n'
    page = entry["reports"][-1]
    summary = json.loads((reports / Path(page).parent.name / "summary.json").read_text())
    return page, entry, summary


def _source(page: str, entry: dict[str, Any]) -> str:
    return f"From [{Path(page).parent.name}]({page}), commit {entry['git_commit'][:7]}:\n\n"


def block(name: str, reports: Path) -> str:
    """The bullets of experiment NAME's newest committed run, as reports/evidence.json names
    it, with a link to its page (links from the repository's root: the README)."""
    found = _newest(name, reports)
    if isinstance(found, str):
        return found
    page, entry, summary = found
    return _source(page, entry) + bullets(summary)


def ranking(variants: dict[str, Any]) -> list[str]:
    """A repeated run of several stacks, one row per figure: the stack with the best mean,
    the stacks it beat beyond round-to-round noise (Welch, Holm at 5% over every pair and
    figure of the run), and those it could not be told apart from."""
    judged = repeats.judge(variants)
    rows = [
        "| figure | best (mean of its rounds) | better than these, beyond noise "
        "| not told apart from these |",
        "|---|---|---|---|",
    ]
    for key, label, unit, higher, _read in repeats.METRICS:
        tests = [j for j in judged if j.key == key]
        if not tests:
            continue
        means = {n: v["across_rounds"][key]["mean"] for n, v in variants.items()}
        best = (max if higher else min)(means, key=lambda n: means[n])
        if len(set(means.values())) == 1:
            rows.append(f"| {label} | every stack {repeats.fmt(means[best], unit)} | | |")
            continue
        against = [j for j in tests if best in (j.better, j.worse)]
        beaten = [j.worse for j in against if j.real and j.better == best]
        close = [(j.worse if j.better == best else j.better) for j in against if not j.real]

        beaten_said, close_said = (_listed(n, means, unit, higher) for n in (beaten, close))
        rows.append(
            f"| {label} | {best} {repeats.fmt(means[best], unit)} | {beaten_said} | {close_said} |"
        )
    return rows


def _listed(names: list[str], means: dict[str, float], unit: str, higher: bool) -> str:
    """Stacks with their means, best first."""
    ordered = sorted(names, key=lambda n: means[n], reverse=higher)
    return ", ".join(f"{n} {repeats.fmt(means[n], unit)}" for n in ordered) or "none"


def tails(variants: dict[str, Any]) -> list[str]:
    """One row per stack: each part of a request's time (report/pages.py), p50 / p99 in ms,
    and the part whose p99 is largest. Two stacks with the same mean can differ here alone."""
    rows = pages.tail_parts(variants)
    columns = [
        (key, label)
        for key, label in pages.QUEUES
        if any(key in (variants[r["name"]].get("server_ms") or {}) for r in rows)
    ]
    lines = [
        "| stack | client p99 | "
        + " | ".join(label for _, label in columns)
        + " | largest at p99 |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for row in rows:
        server = variants[row["name"]]["server_ms"]
        cells = [
            f"{_ms(server[key]['p50'])} / {_ms(server[key]['p99'])}" if key in server else ""
            for key, _ in columns
        ]
        lines.append(
            f"| {row['name']} | {_ms(row['client_p99'])} | "
            + " | ".join(cells)
            + f" | {row['tail']} |"
        )
    return lines


def tails_block(name: str, reports: Path) -> str:
    """Where each stack's tail was in experiment NAME's newest committed run (docs pages;
    links from docs/)."""
    found = _newest(name, reports)
    if isinstance(found, str):
        return found
    page, entry, summary = found
    variants = summary["variants"]
    first = " in round 1 (the round the page charts in full)" * repeats.is_repeated(variants)
    said = f"Each part's p50 / p99 in ms, per request, as the servers measured it{first}:\n\n"
    return _source("../" + page, entry) + said + "\n".join(tails(variants)) + "\n"


def ranking_block(name: str, reports: Path) -> str:
    """What held in experiment NAME's newest repeated run of several stacks (the README)."""
    found = _newest(name, reports)
    if isinstance(found, str):
        return found
    page, entry, summary = found
    variants = summary["variants"]
    rounds = min(len(v.get("rounds") or []) for v in variants.values())
    if rounds < 2:
        return _source(page, entry) + "One run of each stack: figures, no verdict.\n"
    tests = len(repeats.family(variants))
    said = (
        f"{len(variants)} stacks, {rounds} rounds each; {tests} tests in the family "
        f"(every pair, every figure), 5% familywise (Holm):\n\n"
    )
    return _source(page, entry) + said + "\n".join(ranking(variants)) + "\n"
