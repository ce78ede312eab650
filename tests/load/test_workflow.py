""".github/workflows/loadtest.yml: valid against GitHub's workflow schema (offline, with
check-jsonschema's builtin copy), and each step's command runs here as the runner would run
it: the same shell lines, only the load window shortened through the workflow's own LOAD."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from loadlab import ROOT
from loadlab.stack.procs import free_port
from loadlab.stack.services import DUEL
from loadlab.verify import SEQUENCE
from tests.cli import loadlab
from tests.report.test_junit import _parsed

WORKFLOW = ROOT / ".github" / "workflows" / "loadtest.yml"
CHECK = Path(sys.executable).parent / "check-jsonschema"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workflow_is_valid_and_a_broken_one_is_not(tmp_path: Path) -> None:
    result = _validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = yaml.safe_load(WORKFLOW.read_text())
    del broken["jobs"]["loadtest"]["runs-on"]  # every job needs a runner
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _validate(tmp_path / "broken.yml").returncode != 0


def test_each_steps_command_runs_here(tmp_path: Path) -> None:
    """In a scratch folder with the checkout's .venv, on a stack of its own ports: set-up,
    a short loadtest with its gates, the comparison with the committed headline; each
    writes what the upload step keeps, and the JUnit files parse.

    The loadtest step is also `make loadtest`'s chain at a small size: it brings the stack
    up, verifies it, runs the duel, reports, and stops what it started."""
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["loadtest"]
    env = {
        **os.environ,
        **job["env"],
        "LOAD": "--users 20 --spawn-rate 20 --duration 3s --warmup 1s",
        "LOADLAB_STATE_DIR": str(tmp_path / "state"),
        "LOADLAB_PG_PORT": str(free_port()),
        "LOADLAB_PGBOUNCER_PORT": str(free_port()),
        "LOADLAB_SERVICE_PORTS": json.dumps({name: free_port() for name in DUEL}),
        "LOADLAB_SCALE": "0.2",
    }
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    codes, said = {}, {}
    for step in job["steps"]:
        if "run" not in step:
            continue
        cwd = ROOT if step["run"].startswith("make ") else tmp_path  # the Makefile's checkout
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        codes[step["name"]], said[step["name"]] = done.returncode, done.stdout
        assert done.returncode in (0, 1), (step["name"], done.stdout[-2000:], done.stderr)
    assert codes["Load test with gates"] == 0  # 20 users, 3 s: the gates hold
    n, report = len(SEQUENCE), tmp_path / "loadlab-report"
    assert f"{n} of {n} requests identical" in said["Load test with gates"]
    assert f"report: {report / 'index.html'}" in said["Load test with gates"]
    summary = json.loads((report / "summary.json").read_text())
    assert list(summary["variants"]) == list(DUEL)
    assert all(v["requests"] > 0 for v in summary["variants"].values())
    # It started the stack, so it stopped it: nothing recorded, nothing running.
    assert not (tmp_path / "state" / "state.json").exists()
    status = loadlab("status", "--json", env={"LOADLAB_STATE_DIR": str(tmp_path / "state")})
    assert json.loads(status.stdout)["components"] == []
    _, gates = _parsed(tmp_path / "loadlab-gates.xml")
    assert {f"{name}: p99<2s" for name in DUEL} <= set(gates)
    # A 3-second run against the committed 60-second one: exit 1 if something is 50% worse,
    # which such a different run may well be; either way every tested figure is a case.
    _, compared = _parsed(tmp_path / "loadlab-compare.xml")
    regressions = sum(message is not None for message in compared.values())
    assert compared and (regressions > 0) == (codes["Compare with the committed headline"] == 1)
    assert (report / "index.html").exists()
