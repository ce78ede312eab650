"""`python -m loadlab loadtest`, the chain behind `make loadtest`, at a small size."""

from __future__ import annotations

import json
from pathlib import Path

from loadlab.verify import SEQUENCE
from tests.stack.test_cli import loadlab, port_flags


def test_loadtest_brings_up_verifies_runs_reports_and_stops(
    tmp_path: Path, own_state_dir: Path
) -> None:
    state_dir, out = own_state_dir, tmp_path / "report"
    result = loadlab(
        "loadtest",
        *port_flags(state_dir),
        "--users",
        "10",
        "--spawn-rate",
        "10",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    n = len(SEQUENCE)
    assert f"{n} of {n} requests identical" in result.stdout
    assert f"report: {out / 'index.html'}" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["variants"]) == ["flask_sync", "fastapi_async"]
    assert all(v["requests"] > 0 for v in summary["variants"].values())
    # It started the stack, so it stopped it: nothing recorded, nothing running.
    assert not (state_dir / "state.json").exists()
    status = loadlab("status", "--json", "--state-dir", str(state_dir))
    assert json.loads(status.stdout)["components"] == []
