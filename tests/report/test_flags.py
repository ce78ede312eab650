"""What lands at the top of a report, and what fails a run."""

from __future__ import annotations

from typing import Any

from loadlab.load.monitor import Monitor, Samples
from loadlab.report.writer import failed, flags


def _variant(**changes: Any) -> dict[str, Any]:
    base = {
        "generator_saturated": False,
        "requests": 100,
        "locust_requests": 100,
        "machine_cpu_mean": 50.0,
        "integrity": [
            {
                "request": "POST /users/[id]/visit",
                "acknowledged": 90,
                "applied": 90,
                "in_doubt": 0,
                "holds": True,
            }
        ],
    }
    return {**base, **changes}


def test_a_clean_run_has_no_flags() -> None:
    assert flags({"a": _variant()}) == []


def test_broken_integrity_and_count_mismatch_fail_the_run() -> None:
    broken = [
        {
            "request": "POST /users/[id]/visit",
            "acknowledged": 90,
            "applied": 88,
            "in_doubt": 1,
            "holds": False,
        }
    ]
    found = flags({"a": _variant(integrity=broken, locust_requests=101)})
    summary = {"flags": found}
    assert len(failed(summary)) == 2
    assert any("integrity broken" in f for f in found)


def test_saturated_generator_is_flagged_but_does_not_fail() -> None:
    found = flags({"a": _variant(generator_saturated=True, machine_cpu_mean=95.0)})
    assert any("generator-bound" in f for f in found)
    assert any("95% busy" in f for f in found)
    assert failed({"flags": found}) == []


def test_generator_saturation_needs_three_busy_seconds() -> None:
    monitor = Monitor({})
    monitor.samples["locust"] = Samples(busiest_process_cpu=[95.0, 40.0, 97.0, 30.0])
    assert not monitor.generator_saturated()
    monitor.samples["locust"].busiest_process_cpu.append(91.0)
    assert monitor.generator_saturated()
