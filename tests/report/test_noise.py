"""A calibration's figures and --repeat auto's choice, on summaries written the way
`calibrate` writes them (the real calibration is tests/load/test_isolation.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadlab.analysis import noise, repeats, significance


def _side(p99s: list[float]) -> dict[str, Any]:
    rounds = [
        {"throughput_rps": 700.0 + p / 100, "error_rate": 0.0,
         "latency_ms": {"p50": p / 4, "p95": p / 2, "p99": p}}
        for p in p99s
    ]  # fmt: skip
    return repeats.with_rounds(rounds)


def test_the_spread_is_the_rounds_and_the_rounds_needed_follow_from_it() -> None:
    a, b = [500.0, 520.0, 480.0, 510.0, 490.0], [505.0, 515.0, 485.0, 495.0, 500.0]
    found = noise.calibration({"x A": _side(a), "x B": _side(b)})
    p99 = found["figures"]["p99"]
    assert found["rounds"] == 5 and found["tests"] == 5
    assert p99["sd"] == pytest.approx(significance.pooled_sd(a, b))
    assert p99["cv"] == pytest.approx(p99["sd"] / 500.0)
    assert p99["p"] == pytest.approx(significance.welch_p(a, b))
    assert p99["rounds_needed"]["10%"] == significance.rounds_for(p99["cv"], 0.10, 5)
    needed = [p99["rounds_needed"][d] for d in ("5%", "10%", "20%")]
    assert needed == sorted(needed, reverse=True)  # a smaller difference needs more rounds
    assert found["figures"]["error_rate"]["cv"] is None  # never varied from 0


def test_repeat_auto_takes_the_calibration_and_a_budget_caps_it() -> None:
    calibrated = noise.calibration(
        {"x A": _side([500, 560, 450, 530, 470]), "x B": _side([520, 470, 540, 480, 510])}
    )
    wanted = max(
        f["rounds_needed"]["10%"] for k, f in calibrated["figures"].items() if k != "error_rate"
    )
    rounds, why = noise.auto_rounds(calibrated, round_seconds=100.0, budget=None)
    assert rounds == min(max(3, wanted), noise.MAX_AUTO_ROUNDS) and "calibration" in why
    capped, why = noise.auto_rounds(calibrated, round_seconds=100.0, budget=400.0)
    assert capped == max(3, min(4, rounds)) and "fit the budget" in why
    alone, why = noise.auto_rounds(None, round_seconds=100.0, budget=1000.0)
    assert alone == 10 and "no matching calibration" in why


def test_the_matching_calibration_is_the_newest_of_this_load_and_placement(
    tmp_path: Path,
) -> None:
    def write(name: str, users: int, mode: str, kind: str = "calibration") -> None:
        (tmp_path / name).mkdir()
        summary = {"kind": kind, "plan": {"scenario": "s", "users": users, "arrival_rate": None},
                   "environment": {"cpu_count": 2},
                   "variants": {"x A": {"placement": {"mode": mode}}}}  # fmt: skip
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))

    write("20260101-a", 200, "split")
    write("20260102-b", 200, "shared")
    write("20260103-c", 50, "split")
    write("20260104-d", 200, "split", kind="run")
    plan = {"scenario": "s", "users": 200, "arrival_rate": None}
    assert noise.matching(tmp_path, plan, 2, "split") == tmp_path / "20260101-a"
    assert noise.matching(tmp_path, plan, 2, "shared") == tmp_path / "20260102-b"
    assert noise.matching(tmp_path, plan, 4, "split") is None
    assert noise.matching(tmp_path, {**plan, "users": 7}, 2, "split") is None
