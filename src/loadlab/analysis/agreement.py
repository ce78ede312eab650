"""Which verdicts of a repeated duel held when the same command ran again at other hours.

One repeated run decides at 5% familywise; the same command an hour later meets another
machine state (another tenant, another clock speed). A verdict a capacity review can quote is
one that every repetition reached, in the same direction. The table is generated from the
reports' summary.json (tests/report/test_docs_figures.py checks the README holds it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadlab.analysis import repeats


def _short(name: str) -> str:
    return name.split("_")[0].capitalize().replace("Fastapi", "FastAPI")


def _fmt(value: float, unit: str) -> str:
    return f"{value:.2%}" if unit == "" else f"{value:,.0f} {unit}"


def _cell(j: repeats.Judgement) -> str:
    if j.good["mean"] == j.bad["mean"]:
        return f"both {_fmt(j.good['mean'], j.unit)}"
    figures = f"{_short(j.better)} {_fmt(j.good['mean'], j.unit)} vs {_fmt(j.bad['mean'], j.unit)}"
    p = "p < 0.0001" if j.p < 0.0001 else f"p = {j.p:.2g}"
    if j.real:
        return f"{figures}, {p}: **{_short(j.better)} better**"
    seen = f" (could detect {j.detectable:.0%})" if j.detectable is not None else ""
    return f"{figures}, {p}: noise{seen}"


def _held(judged: list[repeats.Judgement]) -> str:
    if all(j.real for j in judged) and len({j.better for j in judged}) == 1:
        return f"held in all {len(judged)}: {_short(judged[0].better)} better"
    if not any(j.real for j in judged):
        return f"no difference found in any of the {len(judged)}"
    return "**did not hold**: " + ", ".join(
        _short(j.better) + " better" if j.real else "noise" for j in judged
    )


def _runs(reports: Path, folders: list[str]) -> list[tuple[dict[str, Any], str]]:
    from loadlab.report.history import kept_summary

    return [kept_summary(reports, f) for f in folders]


def dated_link(folder: str, href: str) -> str:
    """A report's link named by when it ran, read off its folder's name."""
    f = folder
    return f"[{f[:4]}-{f[4:6]}-{f[6:8]} {f[9:11]}:{f[11:13]}]({href})"


def table(reports: Path, folders: list[str], link_prefix: str = "reports/") -> str:
    """A markdown table: one row per figure of the runs' family, one column per run (the
    means, Welch's p, the verdict at 5% familywise), and whether the verdict held in all."""
    kept = _runs(reports, folders)
    runs = [summary for summary, _ in kept]
    judged = [{j.key: j for j in repeats.judge(s["variants"])} for s in runs]
    keys = [k for k in judged[0] if all(k in j for j in judged)]
    head = ["figure"] + [
        dated_link(f, link_prefix + page) for f, (_, page) in zip(folders, kept, strict=True)
    ]
    rounds = ["rounds a side, commit"] + [
        f"{next(iter(s['variants'].values()))['across_rounds']['p50']['n']}, "
        f"{s['environment']['git_commit'][:7]}"
        for s in runs
    ]
    lines = [
        "| " + " | ".join([*head, "the verdict"]) + " |",
        "|" + "---|" * (len(head) + 1),
        "| " + " | ".join([*rounds, ""]) + " |",
    ]
    for key in keys:
        row = [judged[0][key].label] + [_cell(j[key]) for j in judged]
        lines.append("| " + " | ".join([*row, _held([j[key] for j in judged])]) + " |")
    return "\n".join(lines) + "\n"


def _pair_verdicts(summary: dict[str, Any]) -> dict[tuple[str, str, str], str | None]:
    """(figure, stack, stack) of one repeated run, the pair in name order: the better stack
    where the run found a difference beyond noise (its own family, Holm), else None."""
    found: dict[tuple[str, str, str], str | None] = {}
    for j in repeats.judge(summary["variants"]):
        a, b = sorted((j.better, j.worse))
        found[(j.key, a, b)] = j.better if j.real else None
    return found


def pairs_held(runs: list[dict[str, Any]]) -> list[str]:
    """Repeated runs of several stacks at one load, one row per figure: the pairs every run
    that had both stacks ordered the same way beyond noise, those only some runs ordered
    (how many of them), and those two runs ordered in opposite ways. A pair only one run
    had says nothing about holding and is left out."""
    judged = [_pair_verdicts(s) for s in runs]
    rows = [
        "| figure | held in every run that had both | beyond noise in some runs only "
        "| reversed between runs | noise in every run |",
        "|---|---|---|---|---|",
    ]
    for key, label, *_ in repeats.METRICS:
        held, some, reversed_, noise = [], [], [], 0
        for _, a, b in sorted({t for j in judged for t in j if t[0] == key}):
            seen = [j[(key, a, b)] for j in judged if (key, a, b) in j]
            winners = {w for w in seen if w is not None}
            if len(seen) < 2:
                continue
            if len(winners) > 1:
                reversed_.append(f"{a} / {b}")
            elif not winners:
                noise += 1
            else:
                best = winners.pop()
                said = f"{best} over {b if best == a else a}"
                beyond = sum(w is not None for w in seen)
                if beyond == len(seen):
                    held.append(f"{said} ({beyond} of {beyond})")
                else:
                    some.append(f"{said} ({beyond} of {len(seen)})")
        if held or some or reversed_ or noise:
            cells = [", ".join(c) or "none" for c in (held, some, reversed_)]
            rows.append(f"| {label} | " + " | ".join(cells) + f" | {noise} pair(s) |")
    return rows
