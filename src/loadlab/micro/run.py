"""`loadlab micro`: run the chosen experiments on loadlab's database and write the findings.

The stack is started if it is not up (and stopped after, as `loadtest` does). The PgBouncer
experiment uses the stack's PgBouncer, or, on loadlab's own cluster, one of its own started
for the experiment and stopped after it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from loadlab import ROOT, environment
from loadlab.errors import UsageError
from loadlab.micro import findings, harness, overheads, serial
from loadlab.report import schema, writer
from loadlab.report.pages import render_findings
from loadlab.settings import StackSettings
from loadlab.stack import lifecycle, pgbouncer, postgres
from loadlab.stack.procs import State

_EXPERIMENTS = (serial, overheads)  # imported for their @experiment registrations


def check(only: list[str] | None, repeat: int) -> list[harness.Experiment]:
    """The experiments asked for; bad input is one line, before anything starts."""
    if repeat < 1:
        raise UsageError(f"--repeat {repeat}: at least 1")
    try:
        return harness.select(only)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run(
    settings: StackSettings,
    only: list[str] | None,
    repeat: int,
    quick: bool,
    out: Path | None,
    reports: Path = ROOT / "reports",
) -> Path:
    """Measure, then write findings.html and findings.json into `out` (default
    reports/<date>-findings), whole or not at all."""
    chosen = check(only, repeat)
    final = out or reports / f"{datetime.now():%Y%m%d-%H%M%S}-findings"
    tmp = writer.prepare_out(final)  # said now, before the stack starts
    try:
        state, started = lifecycle.up(settings)
        try:
            machine = environment.describe(
                postgres.server_version(state.direct_database_url), True, {}
            )
            with pgbouncer.transaction_pooler(settings, state) as pooler:
                context = harness.Context(
                    state.direct_database_url,
                    pgbouncer_url=pooler[0] if pooler else None,
                    postgres_log=_postgres_log(state),
                    quick=quick,
                )
                try:
                    results = {}
                    for found in chosen:
                        print(f"{found.name}: {found.label}", flush=True)
                        results[found.name] = harness.measure(found, context, repeat)
                        _say(results[found.name])
                finally:
                    context.close()
        finally:
            if started:
                lifecycle.down(settings)
        document = {
            "kind": "findings",
            "created_at": datetime.now().isoformat(timespec="seconds"),
            "quick": quick,
            "repeat": repeat,
            "environment": machine,
            "experiments": results,
            "claims": findings.build(results, reports),
        }
        write(tmp, document)
        tmp.rename(final)
    except BaseException:
        writer.discard(tmp)
        raise
    return final / "findings.html"


def write(folder: Path, document: dict[str, Any]) -> None:
    schema.validate(document, "findings.json")
    (folder / "findings.json").write_text(json.dumps(document, indent=1))
    (folder / "findings.html").write_text(render_findings(document))


def rerender(folder: Path, reports: Path = ROOT / "reports") -> Path:
    """The claims and the page again from findings.json's measured experiments (after a
    change to the claims or the page; the duel rows take the newest committed duels)."""
    document = json.loads((folder / "findings.json").read_text())
    document["claims"] = findings.build(document["experiments"], reports)
    write(folder, document)
    return folder / "findings.html"


def _say(result: dict[str, Any]) -> None:
    for name, v in result["variants"].items():
        timing = v["ms_per_op"]
        line = (
            f"  {name:<44} {timing['median']:9.4f} ms/op ({timing['min']:.4f}-{timing['max']:.4f})"
            if timing
            else f"  {name:<44} {'-':>9}"
        )
        if v["outcome"]:
            line += f"  {v['outcome']}"
        print(line, flush=True)


def _postgres_log(state: State) -> Path | None:
    server = state.get("postgres")
    return Path(server.log) if server and server.pid is not None and server.log else None
