"""The declared shape of what loadlab writes for machines: summary.json, findings.json and
bench.json.

CI jobs and dashboards read these files; a field they rely on must not vanish or change type
unnoticed. Each kind of report has a model here: the fields every report of that kind has,
typed. A report may carry more (a new figure is not a break; `extra="allow"`), but never less.
Every file is validated before its folder is moved into place (report/writer.py), so a report
that breaks its shape is never half-written; docs/summary.schema.json is these models' JSON
Schema, generated (`python -m loadlab report --schema`) and checked by a test.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from loadlab.errors import UsageError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Environment(_Open):
    python: str
    postgresql: str
    pgbouncer: str
    packages: dict[str, str]
    cpu_count: int | None
    machine: str
    git_commit: str = Field(description="the commit, and ' (uncommitted changes)' if any")


class Latency(_Open):
    """Milliseconds, from loadlab's HdrHistogram (three significant digits)."""

    p50: float
    p90: float
    p95: float
    p99: float
    p99_9: float
    max: float


class Integrity(_Open):
    """acknowledged <= applied <= acknowledged + in_doubt, per request kind."""

    request: str
    acknowledged: int
    applied: int
    in_doubt: int
    holds: bool


class Interval(_Open):
    n: int
    mean: float
    sd: float | None
    ci95: list[float] | None
    min: float
    max: float


class Figures(_Open):
    """One variant's measured window (or one round, or one sweep step)."""

    requests: int
    failures: int
    error_rate: float
    errors: dict[str, int]
    throughput_rps: float
    latency_ms: Latency


class Variant(Figures):
    """A variant of a run: round 1 in full; with rounds, every round and the intervals."""

    label: str
    url: str
    outcomes: list[tuple[str, str, int]] = Field(
        description="(request, ok | rejected | in_doubt, count) for the whole run"
    )
    integrity: list[Integrity] | None = None
    rounds: list[Figures] | None = None
    across_rounds: dict[str, Interval] | None = None


class _Measured(_Open):
    """What every report of a load run has: its id, when, which scenario, what ran."""

    run_id: str
    created_at: str
    scenario: str
    environment: Environment


class Run(_Measured):
    """A run, a repeated run or a calibration: `run`, `loadtest`, `calibrate`."""

    kind: Literal["run", "calibration"] = "run"
    plan: dict[str, Any]
    variants: dict[str, Variant]
    flags: list[str]
    verdicts: list[str]


class SweepVariant(_Open):
    label: str
    url: str
    capacity_rps: float | None
    stopped_by: str | None
    steps: list[Figures]


class Sweep(_Measured):
    kind: Literal["sweep"]
    sweep: dict[str, Any]
    variants: dict[str, SweepVariant]
    flags: list[str]


class Tune(_Measured):
    kind: Literal["tune"]
    tune: dict[str, Any]
    defaults: dict[str, Any]
    chosen: dict[str, Any] | None
    trials: list[dict[str, Any]]


class Claim(_Open):
    key: str
    source: str
    claim: str
    verdict: str


class Findings(_Open):
    """findings.json: the article's claims beside loadlab's figures (`make micro`)."""

    kind: Literal["findings"]
    created_at: str
    environment: dict[str, Any]
    experiments: dict[str, Any]
    claims: list[Claim]


class Bench(_Open):
    """bench.json: loadlab's generator against plain Locust (`make bench`)."""

    kind: Literal["bench"]
    created_at: str
    variant: str
    users: int
    environment: dict[str, Any]
    passes: list[dict[str, Any]]
    cost: dict[str, dict[str, float]]
    marginal_ratio: float


MODELS: dict[str, type[BaseModel]] = {
    "run": Run,
    "calibration": Run,
    "sweep": Sweep,
    "tune": Tune,
    "findings": Findings,
    "bench": Bench,
}
REPORT: TypeAdapter[Run | Sweep | Tune | Findings | Bench] = TypeAdapter(
    Run | Sweep | Tune | Findings | Bench
)


def _model(document: dict[str, Any]) -> type[BaseModel]:
    kind = document.get("kind", "run")
    if kind not in MODELS:
        raise UsageError(f"a report of unknown kind {kind!r}")
    return MODELS[kind]


def validate(document: dict[str, Any], where: str) -> None:
    """Raise UsageError (one line) when `document` breaks its kind's declared shape."""
    try:
        _model(document).model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise UsageError(
            f"{where} breaks its schema at {path or 'the top'}: {first['msg']} "
            f"({error.error_count()} problem(s); docs/summary.schema.json)"
        ) from None


def json_schema() -> str:
    """docs/summary.schema.json: every kind, one document."""
    return json.dumps(REPORT.json_schema(), indent=1, sort_keys=True) + "\n"
