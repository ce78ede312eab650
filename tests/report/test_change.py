"""`loadlab compare`: the threshold, rounds and noise, error rates near 0, sweeps, and bad
input, on small summaries written the way a run writes them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from loadlab.analysis import change
from tests.cli import loadlab


def _run(folder: Path, variants: dict[str, Any], **plan: Any) -> Path:
    folder.mkdir(parents=True)
    summary = {
        "run_id": folder.name,
        "plan": {"scenario": "select_update", "users": 200, "duration": 60, **plan},
        "environment": {"cpu_count": 2},
        "variants": variants,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def _figures(rps: float, p50: float, p99: float, errors: float = 0.0) -> dict[str, Any]:
    return {
        "throughput_rps": rps,
        "latency_ms": {"p50": p50, "p95": p50 * 1.5, "p99": p99},
        "error_rate": errors,
    }


def _rounds(rows: list[tuple[float, float, float]]) -> dict[str, Any]:
    rounds = [_figures(*row) for row in rows]
    return {**rounds[0], "rounds": rounds}


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return loadlab("compare", *args)


def test_a_report_against_itself_exits_0(tmp_path: Path) -> None:
    run = _run(tmp_path / "a", {"flask_sync": _figures(700, 270, 540)})
    result = _compare(str(run), str(run))
    assert result.returncode == 0, result.stderr
    assert (run / "compare.html").exists() and (run / "compare.json").exists()
    assert json.loads((run / "compare.json").read_text())["regressions"] == []


def test_worse_beyond_the_threshold_exits_1_and_names_the_figure(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", {"flask_sync": _figures(700, 270, 540)})
    new = _run(tmp_path / "new", {"flask_sync": _figures(690, 280, 650)})  # p99 +20%
    result = _compare(str(old), str(new), "--threshold", "10%")
    assert result.returncode == 1
    assert "flask_sync p99 latency" in result.stderr
    found = json.loads((new / "compare.json").read_text())["regressions"]
    assert [(r["variant"], r["figure"]) for r in found] == [("flask_sync", "p99 latency")]
    page = (new / "compare.html").read_text()
    assert "only the threshold was applied" in page and "FAIL flask_sync: p99 latency" in page
    # The same change within a 25% threshold passes.
    assert (
        _compare(
            str(old), str(new), "--threshold", "25%", "--out", str(tmp_path / "c.html")
        ).returncode
        == 0
    )


def test_better_is_never_a_regression(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", {"x": _figures(500, 300, 900)})
    new = _run(tmp_path / "new", {"x": _figures(900, 100, 200)})
    assert _compare(str(old), str(new)).returncode == 0


def test_error_rate_needs_a_real_rise_not_just_a_relative_one() -> None:
    assert not change._worse("error_rate", 0.0, 0.0005, False, 0.10)  # 0% to 0.05%
    assert change._worse("error_rate", 0.0, 0.002, False, 0.10)  # 0% to 0.2%
    assert not change._worse("error_rate", 0.05, 0.054, False, 0.10)  # +8% relative
    assert change._worse("throughput", 100.0, 89.0, True, 0.10)
    assert not change._worse("throughput", 100.0, 91.0, True, 0.10)


def test_with_rounds_a_change_inside_the_noise_does_not_fail(tmp_path: Path) -> None:
    """p99 15% worse on average, but the rounds overlap: within noise, exit 0. A p99 twice
    as bad in every round of five is a regression."""
    base = [(700, 270, 500), (710, 268, 560), (690, 275, 470), (705, 271, 530), (700, 269, 490)]
    noisy = [(700, 270, 480), (705, 271, 700), (695, 272, 520), (702, 270, 680), (698, 270, 560)]
    worse = [
        (700, 270, 1000),
        (705, 271, 1100),
        (695, 272, 990),
        (702, 270, 1050),
        (698, 270, 1010),
    ]
    old = _run(tmp_path / "old", {"v": _rounds(base)}, repeat=5)
    within = change.compare(old, _run(tmp_path / "n1", {"v": _rounds(noisy)}, repeat=5), 0.10)
    p99 = next(c for c in within["changes"] if c["figure"] == "p99 latency")
    assert p99["worse"] and p99["noise"] and not p99["regression"]
    assert within["regressions"] == []
    real = change.compare(old, _run(tmp_path / "n2", {"v": _rounds(worse)}, repeat=5), 0.10)
    assert [c["figure"] for c in real["regressions"]] == ["p99 latency"]
    assert real["regressions"][0]["p"] < 0.0001
    assert real["family"] == 5 and "one-sided Welch" in real["test"]


def test_a_difference_is_not_a_difference_beyond_the_threshold(tmp_path: Path) -> None:
    """p99 11% worse, every round, on a 10% threshold: certainly *a* difference (the old
    rule, "worse and significantly different", failed the run), but the rounds cannot say
    it is beyond 10%: within noise."""
    base = [(700, 270, p) for p in (100, 101, 99, 100, 100)]
    new = [(700, 270, p) for p in (111, 108, 114, 110, 112)]
    old = _run(tmp_path / "old", {"v": _rounds(base)}, repeat=5)
    found = change.compare(old, _run(tmp_path / "new", {"v": _rounds(new)}, repeat=5), 0.10)
    p99 = next(c for c in found["changes"] if c["figure"] == "p99 latency")
    assert p99["worse"] and p99["noise"] and not p99["regression"] and p99["p"] > 0.05
    assert found["regressions"] == []
    # 30% worse in every round is beyond 10%.
    bad = [(700, 270, p * 1.3) for p in (100, 101, 99, 100, 100)]
    found = change.compare(old, _run(tmp_path / "bad", {"v": _rounds(bad)}, repeat=5), 0.10)
    assert [c["figure"] for c in found["regressions"]] == ["p99 latency"]


def test_the_family_is_every_variant_any_of_which_fails_the_run(tmp_path: Path) -> None:
    """Two variants x 5 figures: one family of 10 (Holm over each variant alone let the
    familywise error reach about twice 5%)."""
    base = [(700, 270, p) for p in (500, 560, 470, 530, 490)]
    old = _run(tmp_path / "old", {"a": _rounds(base), "b": _rounds(base)}, repeat=5)
    new = _run(tmp_path / "new", {"a": _rounds(base), "b": _rounds(base)}, repeat=5)
    found = change.compare(old, new, 0.10)
    assert found["family"] == 10 and len(found["changes"]) == 10


def test_open_runs_do_not_judge_the_scheduled_throughput(tmp_path: Path) -> None:
    def opened(rows: list[tuple[float, float, float]]) -> dict[str, Any]:
        v = _rounds(rows)
        for r in [v, *v["rounds"]]:
            r["offered_rps"] = 700.0
        return v

    base = [(700, 270, p) for p in (500, 560, 470, 530, 490)]
    slower = [(300, 270, p) for p in (500, 560, 470, 530, 490)]  # the schedule's doing
    old = _run(tmp_path / "old", {"v": opened(base)}, repeat=5, arrival_rate=700)
    new = _run(tmp_path / "new", {"v": opened(slower)}, repeat=5, arrival_rate=700)
    found = change.compare(old, new, 0.10)
    assert "throughput" not in {c["figure"] for c in found["changes"]}
    assert found["family"] == 4 and found["regressions"] == []


def test_rounds_on_one_side_test_the_one_run_against_them(tmp_path: Path) -> None:
    """A baseline of 5 rounds and one new run: the run is tested against the rounds (not a
    mean of rounds silently set against one value). 16% worse than a noisy baseline's mean
    is within its noise; three times worse is not."""
    base = [(700, 270, p) for p in (500, 600, 450, 650, 550)]
    old = _run(tmp_path / "old", {"v": _rounds(base)}, repeat=5)
    one = _run(tmp_path / "one", {"v": _figures(700, 270, 640)})
    found = change.compare(old, one, 0.10)
    assert found["rounds"] == {"v": [5, 1]} and "one run against" in found["test"]
    p99 = next(c for c in found["changes"] if c["figure"] == "p99 latency")
    assert p99["worse"] and p99["noise"] and not p99["regression"]
    far = _run(tmp_path / "far", {"v": _figures(700, 270, 1650)})
    assert [c["figure"] for c in change.compare(old, far, 0.10)["regressions"]] == ["p99 latency"]


def test_sweeps_compare_capacity(tmp_path: Path) -> None:
    def sweep(folder: Path, capacity: float | None) -> Path:
        folder.mkdir()
        summary = {"kind": "sweep", "sweep": {"rates": [100, 200]}, "variants": {
            "flask_sync": {"capacity_rps": capacity, "steps": []}}}  # fmt: skip
        (folder / "summary.json").write_text(json.dumps(summary))
        return folder

    old, new = sweep(tmp_path / "a", 700), sweep(tmp_path / "b", 600)
    result = change.compare(old, new, 0.10)
    assert [c["figure"] for c in result["regressions"]] == ["capacity"]
    assert change.compare(old, sweep(tmp_path / "c", 650), 0.10)["regressions"] == []
    assert change.compare(old, sweep(tmp_path / "d", None), 0.10)["regressions"]


def test_a_changed_setting_is_said(tmp_path: Path) -> None:
    def setup(pool: int) -> dict[str, Any]:
        return {"profile": "default", "knobs": {"db_pool_size": pool}}

    old = _run(tmp_path / "a", {"v": {**_figures(700, 270, 540), "setup": setup(10)}})
    new = _run(tmp_path / "b", {"v": {**_figures(700, 270, 540), "setup": setup(1)}}, users=50)
    said = change.compare(old, new, 0.10)["differences"]
    assert "users: 200 then 50" in said
    assert (
        "v setup: profile default (db_pool_size=10) then profile default (db_pool_size=1)" in said
    )


@pytest.mark.parametrize(
    ("make", "said"),
    [
        ("missing", "is not a loadlab report"),
        ("no_variant_shared", "share no variant"),
        ("sweep_and_run", "compare like with like"),
        ("negative", "--threshold must be 0% or more"),
    ],
)
def test_bad_compare_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, make: str, said: str
) -> None:
    old = _run(tmp_path / "old", {"flask_sync": _figures(700, 270, 540)})
    new = _run(tmp_path / "new", {"flask_sync": _figures(700, 270, 540)})
    args = [str(old), str(new)]
    if make == "missing":
        args = [str(old), str(tmp_path / "nothing")]
    elif make == "no_variant_shared":
        two = {"fastapi_async": _figures(1, 1, 1), "fastapi_hybrid": _figures(1, 1, 1)}
        args = [str(old), str(_run(tmp_path / "x", two))]
    elif make == "sweep_and_run":
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "summary.json").write_text(json.dumps({"kind": "sweep", "variants": {}}))
        args = [str(old), str(tmp_path / "s")]
    else:
        args += ["--threshold=-5%"]
    result = _compare(*args)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (new / "compare.html").exists() and not (old / "compare.html").exists()


def test_two_one_stack_reports_of_different_stacks_compare_side_by_side(tmp_path: Path) -> None:
    """The web UI's last two tests, one per stack: compare pairs them and says so."""
    old = _run(tmp_path / "old", {"flask_sync": _figures(700, 270, 540)})
    new = _run(tmp_path / "new", {"fastapi_async": _figures(800, 250, 600)})
    found = change.compare(old, new, 0.10)
    assert found["differences"][0] == (
        "stacks: flask_sync in the earlier report, fastapi_async in the later one"
    )
    throughput = next(c for c in found["changes"] if c["unit"] == "req/s")
    assert (throughput["old"], throughput["new"]) == (700, 800)
