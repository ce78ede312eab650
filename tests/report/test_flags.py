"""What lands at the top of a report, and what fails a run."""

from __future__ import annotations

from typing import Any

from loadlab.load.monitor import Measured, Monitor, Samples
from loadlab.report.writer import failed, flags


def _variant(**changes: Any) -> dict[str, Any]:
    base = {
        "generator_saturated": False,
        "requests": 100,
        "failures": 0,
        "error_rate": 0.0,
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


def test_a_run_with_no_success_or_mostly_failures_fails() -> None:
    (none,) = flags({"a": _variant(failures=100, error_rate=1.0)})
    assert none.startswith("FAIL a: no request succeeded")
    (most,) = flags({"a": _variant(failures=51, error_rate=0.51)})
    assert most.startswith("FAIL a: 51.0% of requests failed")
    assert flags({"a": _variant(failures=50, error_rate=0.5)}) == []
    (nothing,) = flags({"a": _variant(requests=0, locust_requests=0)})
    assert "no request succeeded (0 measured)" in nothing


def test_saturated_generator_is_flagged_but_does_not_fail() -> None:
    found = flags({"a": _variant(generator_saturated=True, machine_cpu_mean=95.0)})
    assert any("generator-bound" in f for f in found)
    assert any("95% busy" in f for f in found)
    assert failed({"flags": found}) == []


def test_generator_saturation_needs_three_busy_seconds() -> None:
    samples = Samples(t=[1.0, 2.0, 3.0, 4.0], busiest_process_cpu=[95.0, 40.0, 97.0, 30.0])
    assert not Measured({"locust": samples}, []).generator_saturated()
    samples.busiest_process_cpu.append(91.0)
    assert Measured({"locust": samples}, []).generator_saturated()


def test_warm_up_samples_are_left_out() -> None:
    """A Locust busy spawning users during the warm-up does not flag the measured part."""
    monitor = Monitor({})
    monitor.samples["locust"] = Samples(
        t=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        cpu=[99.0, 99.0, 99.0, 20.0, 20.0, 20.0],
        memory_mb=[50.0] * 6,
        rss_mb=[60.0] * 6,
        busiest_process_cpu=[99.0, 99.0, 99.0, 20.0, 20.0, 20.0],
        processes=[1, 3, 3, 3, 2, 2],
    )
    monitor.machine_t, monitor.machine_cpu = (
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        [100.0] * 3 + [40.0] * 3,
    )
    measured = monitor.measured(3.5, 6.0)
    assert not measured.generator_saturated()
    assert measured.samples["locust"].summary()["cpu_mean"] == 20.0
    assert measured.samples["locust"].summary()["processes_max"] == 3
    assert measured.machine_cpu_mean == 40.0
    assert monitor.measured(0.0, 6.0).generator_saturated()
