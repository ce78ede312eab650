"""Which committed duel the findings quote, and how they read it: on summaries written the
way runs write them (no stack needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadlab.analysis import repeats, significance
from loadlab.micro import findings


def _figures(p99: float, rps: float) -> dict[str, Any]:
    return {
        "requests": 1000,
        "failures": 0,
        "throughput_rps": rps,
        "latency_ms": {"p50": p99 / 4, "p95": p99 / 2, "p99": p99},
        "error_rate": 0.0,
        "setup": {"profile": "default", "knobs": {}},
    }


def _variant(rows: list[tuple[float, float]]) -> dict[str, Any]:
    rounds = [_figures(*row) for row in rows]
    v = repeats.with_rounds(rounds) if len(rounds) > 1 else rounds[0]
    return {**v, "setup": {"profile": "default", "knobs": {}}}


def _report(
    reports: Path, name: str, rounds: int = 1, fastapi_sync: bool = False, **plan: Any
) -> Path:
    folder = reports / name
    folder.mkdir(parents=True)
    flask = _variant([(500.0 + 10 * n, 700.0 + n) for n in range(rounds)])
    fastapi = _variant([(300.0 + 10 * n, 760.0 - n) for n in range(rounds)])
    variants = {"flask_sync": flask, "fastapi_async": fastapi}
    if fastapi_sync:  # the thread pool: slower than the event loop by a fifth, a little noisy
        variants["fastapi_sync"] = _variant(
            [(900.0 + 10 * n, 600.0 + 3 * (-1) ** n) for n in range(rounds)]
        )
    summary = {
        "run_id": name,
        "plan": {"scenario": "select_update", "users": 200, "duration": 60.0,
                 "repeat": rounds, "faults": [], "profiles": [], "compare_pgbouncer": False,
                 "tags": [], "locustfile": None, **plan},
        "variants": variants,
    }  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_the_duel_is_picked_by_what_ran_not_by_date(tmp_path: Path) -> None:
    """Rebuilt today, the old rule took the newest 200-user report of any kind: the soak,
    the fault run. Now: the newest repeated plain duel, else the newest plain one."""
    _report(tmp_path, "20261101-000000-single")
    assert findings.pick_duel(tmp_path, "default")[0] == "20261101-000000-single"
    _report(tmp_path, "20261102-000000-repeated", rounds=5)
    _report(tmp_path, "20261103-000000-single-later")
    _report(tmp_path, "20261104-000000-soak", duration=1800.0)
    _report(tmp_path, "20261105-000000-faults", faults=[["pg-restart", 30.0]])
    _report(tmp_path, "20261106-000000-open", arrival_rate=500.0)
    _report(tmp_path, "20261107-000000-bouncer", compare_pgbouncer=True)
    _report(tmp_path, "20261108-000000-profiles", profiles=["nested-session"])
    _report(tmp_path, "20261109-000000-own-file", locustfile="mine.py")
    _report(tmp_path, "20261110-000000-50u", users=50)
    assert findings.pick_duel(tmp_path, "default")[0] == "20261102-000000-repeated"
    assert findings.pick_duel(tmp_path, "tuned") is None


def test_one_run_gives_figures_and_no_verdict(tmp_path: Path) -> None:
    _report(tmp_path, "20261101-000000-single")
    rows = findings.duel_rows(tmp_path, "default")
    assert rows and all(r["verdict"] == findings.ONE_RUN for r in rows)
    tail = next(r for r in rows if r["key"] == "duel_default_tail")
    assert tail["ours"]["median"] == pytest.approx(500 / 300) and tail["spread"] == "one run"


def test_a_ratio_comes_with_the_interval_of_the_ratio(tmp_path: Path) -> None:
    """Not the 95% intervals' ends divided crosswise (a range of neither)."""
    _report(tmp_path, "20261102-000000-repeated", rounds=5)
    rows = {r["key"]: r for r in findings.duel_rows(tmp_path, "default")}
    tail = rows["duel_default_tail"]
    flask = [500.0 + 10 * n for n in range(5)]
    fastapi = [300.0 + 10 * n for n in range(5)]
    # At 95% over the run's five tests (two stacks, five figures) at once: a row cannot call
    # "holds" what the run's own Holm family calls noise.
    low, high = significance.ratio_interval(flask, fastapi, 1 - 0.05 / 5)
    assert tail["ours"] == pytest.approx(
        {"median": sum(flask) / sum(fastapi), "min": low, "max": high}
    )
    assert low < sum(flask) / sum(fastapi) < high
    assert tail["spread"] == "95% interval over the run's 5 tests"
    # The crosswise division of the two t intervals is much wider than the ratio's interval.
    across_flask = repeats.interval(flask)["ci95"]
    across_fastapi = repeats.interval(fastapi)["ci95"]
    assert across_flask[0] / across_fastapi[1] < low and high < across_flask[1] / across_fastapi[0]
    assert tail["verdict"] in {"holds", "partly", "does not hold"}


def test_the_ratio_interval_covers_the_true_ratio_about_95_percent_of_the_time() -> None:
    """Simulated rounds (5 a side, 5% and 10% spread, a true ratio of 1.25): a 95% interval
    that covers the truth 95% of the time (1,000 trials: +-1.4 points is one sd)."""
    import numpy as np

    rng = np.random.default_rng(7)
    covered = 0
    trials = 1000
    for _ in range(trials):
        top = list(rng.normal(125, 6.25, 5))
        bottom = list(rng.normal(100, 10, 5))
        low, high = significance.ratio_interval(top, bottom)
        covered += low <= 1.25 <= high
    assert 0.93 <= covered / trials <= 0.975


def _sweep(reports: Path, name: str, capacities: dict[str, float | None]) -> None:
    folder = reports / name
    folder.mkdir(parents=True)
    variants = {
        n: {"setup": {"profile": "default", "knobs": {}}, "capacity_rps": c, "steps": []}
        for n, c in capacities.items()
    }
    summary = {
        "kind": "sweep",
        "sweep": {"scenario": "select_update", "slo": "p99<500ms,errors<1%"},
        "variants": variants,
    }
    (folder / "summary.json").write_text(json.dumps(summary))


def test_the_guides_event_loop_claim_is_read_from_a_run_that_drove_both_fastapi_stacks(
    tmp_path: Path,
) -> None:
    """The headline duel has no fastapi_sync: no row from it. An all-stacks run at the
    headline's load gives the 200-user row (a verdict from rounds, figures from one run);
    the newest sweep with both held rates gives the capacity row, figures only."""
    _report(tmp_path, "20261101-000000-duel", rounds=5)
    assert findings.guide_rows(tmp_path) == []
    _report(tmp_path, "20261102-000000-all-single", fastapi_sync=True)
    (row,) = findings.guide_rows(tmp_path)
    assert row["verdict"] == findings.ONE_RUN and row["ours"]["median"] == pytest.approx(760 / 603)
    _report(tmp_path, "20261103-000000-all-repeated", rounds=6, fastapi_sync=True)
    _report(tmp_path, "20261104-000000-all-soak", fastapi_sync=True, duration=1800.0)
    (row,) = findings.guide_rows(tmp_path)
    assert row["link"] == "../20261103-000000-all-repeated/index.html"
    assert row["spread"] == "95% interval over the run's 15 tests"  # three stacks
    assert row["verdict"] == "holds"  # 1.27x, steady
    assert row["ours"]["min"] > 1 and row["source"] == findings.TUTORIAL

    _sweep(tmp_path, "20261105-000000-sweep", {"fastapi_async": 300.0, "fastapi_sync": 200.0})
    _sweep(tmp_path, "20261106-000000-sweep", {"fastapi_async": 300.0, "fastapi_sync": None})
    _sweep(tmp_path, "20261107-000000-sweep", {"flask_sync": 300.0, "fastapi_async": 300.0})
    rows = {r["key"]: r for r in findings.guide_rows(tmp_path)}
    capacity = rows["guide_capacity"]
    assert capacity["link"] == "../20261105-000000-sweep/index.html"
    assert capacity["ours"]["median"] == pytest.approx(1.5)
    assert capacity["verdict"] == findings.ONE_RUN and capacity["section"] == "capacity"
