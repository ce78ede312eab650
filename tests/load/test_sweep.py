"""`loadlab sweep` on the real services, short: three rates, five seconds each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadlab import sweep
from loadlab.errors import UsageError
from loadlab.report.svg import COLOURS
from tests.conftest import Stack
from tests.report.test_html import _hex, needs_chromium, screenshot
from tests.stack.test_cli import loadlab


@pytest.fixture(scope="module")
def swept(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = sweep.SweepPlan(
        scenario="select_update",
        rates=(20.0, 80.0),  # two steps show the stepping; each costs make test 10 s
        step_duration=5,
        warmup=1,
        slo="p99<5s,errors<1%",
        users=20,
        scale=stack.settings.scale,
    )
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    code, index = sweep.run(
        stack.settings, plan, ["flask_sync", "fastapi_async"], None, out, live=False
    )
    assert code == 0
    assert index == out / "index.html"
    return out


def test_a_sweep_finds_each_capacity_and_keeps_every_step(swept: Path) -> None:
    summary = json.loads((swept / "summary.json").read_text())
    assert summary["kind"] == "sweep"
    assert [f for f in summary["flags"] if f.startswith("FAIL")] == []
    for name, v in summary["variants"].items():
        # 80 req/s is far below either service's limit: every step holds.
        assert v["capacity_rps"] == 80 and v["stopped_by"] is None
        assert [s["rate"] for s in v["steps"]] == [20, 80]
        assert [s["attempt"] for s in v["steps"]] == [1, 1] and v["broke_then_held"] == []
        for step in v["steps"]:
            assert step["held"]
            assert step["offered_rps"] == pytest.approx(step["rate"], rel=0.05)
            assert step["achieved_rps"] >= 0.95 * step["offered_rps"]
            assert step["requests"] == step["locust_requests"]
            cost = step["cpu_ms_per_request"]
            assert cost[name] > 0 and cost["postgres"] > 0 and cost["locust"] > 0
            assert step["database_connections"]["open_max"] >= 1
        assert [c["holds"] for c in v["integrity"]] == [True]
        assert (swept / name / "80rps" / "locust_stats.csv").exists()
        assert not (swept / name / "80rps" / "locust.html").exists()  # --locust-html: with it


@needs_chromium
def test_the_sweep_page_draws_its_charts(swept: Path, tmp_path: Path) -> None:
    html = (swept / "index.html").read_text()
    assert html.count("<svg") == 4
    assert "Capacity within <code>p99&lt;5s,errors&lt;1%</code>" in html
    image, console = screenshot(swept / "index.html", tmp_path)
    assert console == []
    present = {rgb for _, rgb in image.getcolors(maxcolors=1 << 20) or []}
    for variant, colour in COLOURS.items():
        assert _hex(colour) in present, f"no {variant} line was drawn"


def test_a_step_that_breaks_the_objective_or_falls_behind_ends_the_sweep() -> None:
    plan = sweep.SweepPlan("select_update", (100.0,), 5, 0, "p99<500ms,errors<1%", 50)
    held = {
        "latency_ms": {"p99": 120.0},
        "error_rate": 0.0,
        "offered_rps": 100.0,
        "achieved_rps": 99.0,
        "throughput_rps": 99.0,
        "requests": 1000,
        "failures": 0,
        "locust_requests": 1000,
    }
    assert sweep.step_verdict(plan, "a", held) is None
    slow = {**held, "latency_ms": {"p99": 800.0}}
    assert sweep.step_verdict(plan, "a", slow) == "p99<500ms broken (800.0 ms)"
    behind = {**held, "achieved_rps": 90.0}
    assert sweep.step_verdict(plan, "a", behind).startswith("answered 90.0 of 100.0 req/s")


def test_a_broken_step_is_run_again_before_the_sweep_stops(stack: Stack, tmp_path: Path) -> None:
    # No request is answered within 0.1 ms: both tries at the first rate break.
    plan = sweep.SweepPlan(
        "select_update", (20.0, 40.0), 5, 1, "p99<0.1ms", 10, scale=stack.settings.scale
    )
    code, _ = sweep.run(stack.settings, plan, ["fastapi_async"], None, tmp_path / "s", live=False)
    assert code == 0  # a broken objective is the sweep's finding, not a failure
    v = json.loads((tmp_path / "s" / "summary.json").read_text())["variants"]["fastapi_async"]
    assert [(s["rate"], s["attempt"], s["held"]) for s in v["steps"]] == [
        (20, 1, False),
        (20, 2, False),
    ]
    assert v["capacity_rps"] is None and v["stopped_by"].startswith("20 req/s: p99<0.1ms broken")
    assert (tmp_path / "s" / "fastapi_async" / "20rps-try2" / "locust_stats.csv").exists()
    assert "(try 2)" in (tmp_path / "s" / "index.html").read_text()


def test_a_rate_that_broke_and_then_held_is_named_and_counts_as_held() -> None:
    steps = [
        {"rate": 100.0, "attempt": 1, "held": True},
        {"rate": 200.0, "attempt": 1, "held": False},
        {"rate": 200.0, "attempt": 2, "held": True},
        {"rate": 300.0, "attempt": 1, "held": False},
        {"rate": 300.0, "attempt": 2, "held": False},
    ]
    assert sweep.broke_then_held(steps) == [200.0]
    assert sweep.broke_then_held(steps[:2]) == []


def test_a_sweep_needs_a_try_per_rate() -> None:
    with pytest.raises(UsageError, match="at least one try"):
        sweep.SweepPlan("select_update", (100.0,), 5, 0, "p99<500ms", 50, tries=0)


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ("", "gives no rate"),
        ("300,200", "must increase"),
        ("100,100", "must increase"),
        ("-100:100:100", "every rate must be above 0"),
        ("100:1000:0", "give start:stop:step"),
        ("fast", "give start:stop:step"),
    ],
)
def test_bad_rates_are_refused(rates: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sweep.parse_rates(rates)


def test_rates_from_a_range_include_the_end() -> None:
    assert sweep.parse_rates("100:500:100") == [100, 200, 300, 400, 500]
    assert sweep.parse_rates("50, 75,200") == [50, 75, 200]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--step-duration", "4s"], "--step-duration must be at least 5s"),
        (["--rates", "200,100"], "must increase"),
        (["--slo", "p99<"], "--slo: cannot read"),
    ],
)
def test_bad_sweep_input_is_one_line_and_exit_2(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = loadlab("sweep", "--state-dir", str(tmp_path / "s"), "--out", str(out), *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _copy_with(swept: Path, reports: Path, name: str, change) -> None:
    """The real sweep's summary under another folder name, one thing changed."""
    summary = json.loads((swept / "summary.json").read_text())
    change(summary)
    (reports / name).mkdir(parents=True)
    (reports / name / "summary.json").write_text(json.dumps(summary))


def test_tune_at_capacity_reads_the_newest_sweep_of_the_same_scenario_and_objective(
    swept: Path, tmp_path: Path
) -> None:
    summary = json.loads((swept / "summary.json").read_text())
    held = summary["variants"]["flask_sync"]["capacity_rps"]
    assert held, "the short sweep held a rate"
    cpus = summary["environment"]["cpu_count"]
    slo_text = summary["sweep"]["slo"]
    reports = tmp_path / "reports"

    def capacity(variant: str = "flask_sync", slo_text: str = slo_text) -> object:
        return sweep.newest_capacity(reports, variant, "select_update", slo_text, cpus)

    _copy_with(swept, reports, "20260101-000000-sweep-select_update", lambda s: None)
    assert capacity() == (held, "20260101-000000-sweep-select_update")
    assert capacity(slo_text="p99<123ms,errors<1%") is None  # another objective

    def tuned(s: dict) -> None:  # newer, but under a tuned profile: not the defaults' capacity
        s["variants"]["flask_sync"]["setup"]["profile"] = "tuned"
        s["variants"]["flask_sync"]["capacity_rps"] = held * 10

    _copy_with(swept, reports, "20260102-000000-sweep-select_update", tuned)
    assert capacity() == (held, "20260101-000000-sweep-select_update")

    def other_machine(s: dict) -> None:
        s["environment"]["cpu_count"] = cpus + 1
        s["variants"]["flask_sync"]["capacity_rps"] = held * 10

    _copy_with(swept, reports, "20260103-000000-sweep-select_update", other_machine)
    assert capacity() == (held, "20260101-000000-sweep-select_update")

    def broke_at_once(s: dict) -> None:  # the newest says no rate held: no older one is used
        s["variants"]["flask_sync"]["capacity_rps"] = None

    _copy_with(swept, reports, "20260104-000000-sweep-select_update", broke_at_once)
    assert capacity() is None
    assert capacity("fastapi_async")[1] == "20260104-000000-sweep-select_update"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--arrival-rate", "fast"], "not a rate: 'fast'"),
        (["--arrival-rate", "capacity", "--slo", "p99<123ms,errors<1%"], "no sweep of"),
    ],
)
def test_a_tune_at_a_capacity_no_sweep_measured_is_one_line_and_exit_2(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = loadlab(
        "tune", "--state-dir", str(tmp_path / "s"), "--variant", "flask_sync", "--out", str(out),
        *flags,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
