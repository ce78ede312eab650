"""`loadlab evidence`: the declared list of committed experiments, run in order."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from loadlab import ROOT, environment, evidence, sweep
from loadlab.cli import build_parser, main
from loadlab.errors import UsageError
from loadlab.report import results as results_page
from loadlab.report import schema
from loadlab.settings import StackSettings
from loadlab.stack import lifecycle
from tests.conftest import Stack, stack_settings


@pytest.mark.parametrize("e", evidence.EXPERIMENTS, ids=lambda e: e.name)
def test_every_declared_command_is_one_the_cli_takes(e: evidence.Experiment) -> None:
    for args in (e.args, e.quick):
        if args is not None:
            parsed = build_parser().parse_args([*args, "--state-dir", "x"])
            assert parsed.command == args[0]


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_every_declared_sweep_form_builds_its_plan(quick: bool) -> None:
    """The sweep's own checks, not only its flags: the quick sweep once asked for 3 s steps,
    which the sweep refuses (its shortest is 5 s), and `evidence --quick` stopped there."""
    forms = [e.quick if quick else e.args for e in evidence.EXPERIMENTS]
    sweeps = [f for f in forms if f is not None and f[0] == "sweep"]
    assert sweeps
    for args in sweeps:
        a = build_parser().parse_args([*args, "--state-dir", "x"])
        plan = sweep.SweepPlan(
            scenario=a.scenario,
            rates=tuple(sweep.parse_rates(a.rates)),
            step_duration=a.step_duration,
            warmup=a.warmup,
            slo=a.slo,
            users=a.users,
        )
        assert plan.step_duration >= sweep.MIN_STEP_SECONDS


# Commands that drive the running services as they find them (a running service keeps its
# profile unless --profile is given); tune sets each trial's knobs, micro drives none.
DRIVES_THE_STACK = {"run", "loadtest", "sweep", "calibrate", "bench"}


def _profile_named(args: tuple[str, ...]) -> str | None:
    if "--profiles" in args or "--tuned" in args:
        return "several"
    return args[args.index("--profile") + 1] if "--profile" in args else None


def test_no_experiment_inherits_a_profile_an_earlier_one_left_running() -> None:
    """In the declared order, once an experiment has left the services under another
    profile (a tune's last trial, the tuned duel), every later one that drives them names
    the profile it means: a soak after the tuned duel was run tuned, unasked."""
    for form in ("args", "quick"):
        maybe_other = None  # the experiment that may have left another profile running
        for e in evidence.EXPERIMENTS:
            args = getattr(e, form)
            if args is None:
                continue
            named = _profile_named(args)
            if args[0] in DRIVES_THE_STACK and named is None:
                assert maybe_other is None, (
                    f"{e.name} runs whatever profile {maybe_other} left: give it --profile"
                )
            if args[0] == "tune" or named not in (None, "default"):
                maybe_other = e.name
            elif named == "default":
                maybe_other = None


def test_the_list_names_each_experiment_and_the_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", "--list"]) == 0
    out = capsys.readouterr().out
    for e in evidence.EXPERIMENTS:
        assert e.name in out and "python -m loadlab " + " ".join(e.args) in out
    total = sum(e.minutes for e in evidence.EXPERIMENTS)
    assert f"{len(evidence.EXPERIMENTS)} experiment(s), about {total:g} minutes" in out


def test_an_unknown_name_is_one_line_and_nothing_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evidence", "--only", "headline", "nope", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--only 'nope'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_quick_reports_never_go_into_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", "--only", "bench", "--quick"]) == 2
    assert "--quick makes small reports, not evidence" in capsys.readouterr().err


def test_a_dirty_tree_is_refused_for_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence.environment, "uncommitted", lambda: True)
    with pytest.raises(UsageError, match="uncommitted changes: commit them first"):
        evidence.run(["headline"], quick=False, out=None, settings=StackSettings())


def test_a_quick_experiment_runs_and_is_recorded(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    manifest = evidence.run(["soak"], quick=True, out=out, settings=stack.settings)
    entries = json.loads(manifest.read_text())["experiments"]
    assert [e["name"] for e in entries] == ["soak"]
    (page,) = entries[0]["reports"]  # outside the repository: kept absolute
    summary = json.loads((Path(page).parent / "summary.json").read_text())
    schema.validate(summary, page)
    assert summary["variants"]["fastapi_async"]["requests"] > 0
    assert Path(page).parent.parent == out


def test_a_report_inside_the_repository_is_recorded_from_its_root() -> None:
    assert evidence._relative(ROOT / "reports" / "x" / "index.html") == "reports/x/index.html"


def test_the_results_page_is_the_reports_own() -> None:
    page = results_page.RESULTS.read_text()
    assert page == evidence.results(), "regenerate it: python -m loadlab evidence --results"
    for entry in json.loads((ROOT / "reports" / "evidence.json").read_text())["experiments"]:
        assert f"`{entry['command']}`" in page  # every experiment made so far is on it
    assert page.replace("0.00%", "0.01%", 1) != evidence.results()  # a hand edit would fail


def test_a_tuned_profile_or_a_report_leaves_the_tree_clean_and_code_does_not(tmp_path) -> None:
    """make evidence tunes and then runs the tuned duel: the profile a tune wrote is output
    (each report records its knobs), but any other tracked change makes a run dirty."""

    from loadlab import environment

    repo = tmp_path / "repo"
    for folder in ("profiles", "reports", "src"):
        (repo / folder).mkdir(parents=True)
    (repo / "profiles" / "flask_sync.tuned.json").write_text("{}")
    (repo / "reports" / "old.json").write_text("{}")
    (repo / "src" / "code.py").write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)

    (repo / "profiles" / "flask_sync.tuned.json").write_text('{"web_workers": 3}')
    shutil.rmtree(repo / "reports")
    assert not environment.uncommitted(repo)
    (repo / "src" / "code.py").write_text("x = 2\n")
    assert environment.uncommitted(repo)


def test_evidence_starts_the_stack_it_needs_and_stops_it(own_state_dir: Path) -> None:
    """On a fresh clone nothing is up: the soak (`run`, the quickest of the experiments that
    drive the native stack: make test's minutes count) needs the stack, so evidence starts
    it, and stops it after since it started it."""
    settings = stack_settings(own_state_dir, variants="fastapi_async")
    out = own_state_dir.parent / "evidence"
    manifest = evidence.run(["soak"], quick=True, out=out, settings=settings)
    (entry,) = json.loads(manifest.read_text())["experiments"]
    assert entry["name"] == "soak" and entry["reports"]
    assert lifecycle.status(settings) == []  # stopped: nothing left running


def test_services_added_to_a_stack_that_is_up_do_not_make_it_this_commands(
    own_state_dir: Path,
) -> None:
    """`loadtest --variants all` (all-stacks) on the stack evidence started for the set adds
    the missing services; `up` said "started", so loadtest took the whole stack down and the
    next experiment (the sweep) found nothing up. Only a stack started afresh is the
    command's to stop; added services stay up, as after `run --variants X`."""
    settings = stack_settings(own_state_dir, variants="flask_sync")
    _, fresh = lifecycle.up(settings)
    assert fresh
    wider = settings.model_copy(update={"variants": "flask_sync,fastapi_sync"})
    state, fresh = lifecycle.up(wider)
    assert not fresh  # what loadtest reads before it stops "the stack it started"
    assert {c["name"] for c in lifecycle.status(settings) if c["healthy"]} >= {
        "postgres",
        "flask_sync",
        "fastapi_sync",
    }


def test_where_names_an_experiments_committed_folders_and_refuses_the_unknown(
    tmp_path: Path,
) -> None:
    entry = {"name": "headline", "reports": ["reports/20261203-064209-x/index.html"]}
    (tmp_path / "evidence.json").write_text(json.dumps({"experiments": [entry]}))
    assert evidence.where("headline", tmp_path) == [
        str(tmp_path.parent / "reports/20261203-064209-x")
    ]
    with pytest.raises(UsageError, match="names no report of it"):
        evidence.where("soak", tmp_path)
    with pytest.raises(UsageError, match="--where 'nope': one of calibration"):
        evidence.where("nope", tmp_path)


def _git(*argv: str) -> str:
    return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def _manifest(
    folder: Path, commits: dict[str, str], commands: dict[str, str] | None = None
) -> Path:
    commands = commands or {}
    entries = [
        {
            "name": name,
            "git_commit": c,
            "command": commands.get(name, evidence.BY_NAME[name].command),
            "reports": [],
        }
        for name, c in commits.items()
    ]
    (folder / "evidence.json").write_text(json.dumps({"experiments": entries}))
    return folder


def test_status_calls_a_set_made_at_this_commit_one_set(tmp_path: Path) -> None:
    head = _git("rev-parse", "--short=12", "HEAD")
    lines = evidence.status(_manifest(tmp_path, {e.name: head for e in evidence.EXPERIMENTS}))
    assert len(lines) == len(evidence.EXPERIMENTS) + 1
    assert all(line.endswith("no code changed since") for line in lines[:-1])
    assert lines[-1] == f"one set: every experiment made at {head[:7]}"


def test_status_names_what_changed_since_a_report_and_what_was_never_made(
    tmp_path: Path,
) -> None:
    # The commit before the newest one that changed the services: HEAD differs in them.
    touched = _git("log", "-1", "--format=%H", "--", "services")
    before = _git("rev-parse", "--short=12", f"{touched}~1")
    if not before:
        pytest.skip("this clone holds too little history (a shallow clone)")
    head = _git("rev-parse", "--short=12", "HEAD")
    commits = {e.name: head for e in evidence.EXPERIMENTS[1:-1]}
    commits |= {"calibration": before}
    lines = evidence.status(_manifest(tmp_path, commits | {"headline": "0" * 12}))
    by_name = {line.split()[0]: line for line in lines[:-1]}
    assert "file(s) of code changed since: " in by_name["calibration"]
    changed = environment.changed_since(before, evidence.CODE) or []
    assert any(name.startswith("services/") for name in changed)
    assert environment.changed_since(head, evidence.CODE) == []
    assert by_name["headline"].endswith("a commit this clone does not hold")
    assert by_name[evidence.EXPERIMENTS[-1].name].endswith("never made")
    assert lines[-1].startswith("not one set: 3 commit(s)")
    assert f"never made: {evidence.EXPERIMENTS[-1].name}" in lines[-1]


def test_status_names_a_report_whose_command_is_no_longer_the_declared_one(
    tmp_path: Path,
) -> None:
    """Its command is what `evidence` gives an experiment: a report made by another one is
    not the declared experiment's, whatever the code did since."""
    head = _git("rev-parse", "--short=12", "HEAD")
    old = "python -m loadlab loadtest --duration 60s"
    manifest = _manifest(tmp_path, {e.name: head for e in evidence.EXPERIMENTS}, {"headline": old})
    by_name = {line.split()[0]: line for line in evidence.status(manifest)[:-1]}
    assert by_name["headline"].endswith(f"its command changed since: made by `{old}`")
    assert by_name["calibration"].endswith("no code changed since")


def test_a_change_to_the_declared_list_alone_leaves_the_reports_current() -> None:
    """evidence.py declares the commands (compared on their own) and measures nothing."""
    touched = _git("log", "-1", "--format=%H", "--", "src/loadlab/evidence.py")
    before = _git("rev-parse", "--short=12", f"{touched}~1") if touched else ""
    if not before:
        pytest.skip("this clone holds too little history (a shallow clone)")
    assert environment.changed_since(before, ["src/loadlab/evidence.py"])
    assert "src/loadlab/evidence.py" not in (environment.changed_since(before, evidence.CODE) or [])


def test_status_on_the_committed_set_exits_1_unless_it_is_one_set() -> None:
    lines = evidence.status()
    assert main(["evidence", "--status"]) == (0 if lines[-1].startswith("one set") else 1)


@pytest.mark.parametrize(("code", "kept"), [(0, True), (1, True), (2, False), (1, "no report")])
def test_a_broken_gate_is_a_finding_and_anything_else_stops_the_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, kept: object
) -> None:
    """The open-model example exits 1 on purpose (its gate breaks): that report is kept and
    the set goes on. Exit 2, or exit 1 with no report made, stops it."""
    said = "" if kept == "no report" else f"echo 'report: {tmp_path}/r/index.html'; "
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\n{said}exit {code}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(evidence.sys, "executable", str(fake))
    experiment = evidence.BY_NAME["open-model"]
    made: list[dict] = []
    if kept is True:
        evidence._each([experiment], False, None, tmp_path, tmp_path, "abc", made)
        (entry,) = made
        assert entry["exit_code"] == code and entry["reports"] == [f"{tmp_path}/r/index.html"]
    else:
        with pytest.raises(UsageError, match=f"evidence stopped: open-model exited {code}"):
            evidence._each([experiment], False, None, tmp_path, tmp_path, "abc", made)


def test_the_findings_page_is_recorded_and_a_late_stop_keeps_what_was_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`micro` names its page "findings: PATH"; and when an experiment stops the set, the
    manifest still records those made before it (the whole set takes two hours)."""
    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/sh\ncase \"$*\" in *micro*) echo 'findings: /x/f/findings.html'; exit 0;;\n"
        "*bench*) exit 2;; esac\necho 'report: /x/r/index.html'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(evidence.sys, "executable", str(fake))
    monkeypatch.setattr(evidence.environment, "uncommitted", lambda *a: False)
    from loadlab.stack import lifecycle

    monkeypatch.setattr(lifecycle, "up", lambda settings: (None, False))
    made: list[dict] = []
    evidence._each([evidence.BY_NAME["findings"]], False, None, tmp_path, tmp_path, "c", made)
    assert made[0]["reports"] == ["/x/f/findings.html"]
    with pytest.raises(UsageError, match="evidence stopped: bench exited 2"):
        evidence.run(["soak", "bench"], False, tmp_path / "out", stack_settings(tmp_path))
    manifest = json.loads((tmp_path / "out" / "evidence.json").read_text())
    assert [e["name"] for e in manifest["experiments"]] == ["soak"]


def _committed(name: str) -> Path:
    manifest = json.loads((ROOT / "reports" / "evidence.json").read_text())
    page = next(e for e in manifest["experiments"] if e["name"] == name)["reports"][-1]
    return (ROOT / page).parent


def test_a_fault_runs_block_has_a_row_per_fault_and_says_what_failed() -> None:
    folder = _committed("faults")
    summary = json.loads((folder / "summary.json").read_text())
    lines = results_page._run_table(folder, folder.name)
    faults = [f for v in summary["variants"].values() for f in v["faults"]]
    rows = [line for line in lines if any(f"| {f['kind']}: " in line for f in faults)]
    assert len(rows) == len(faults) >= 4
    for name, v in summary["variants"].items():
        if v["errors"]:
            assert any(line.startswith(f"- {name} failed, by kind: ") for line in lines)


def test_an_open_model_block_counts_what_was_never_sent() -> None:
    folder = _committed("open-model")
    summary = json.loads((folder / "summary.json").read_text())
    text = "\n".join(results_page._run_table(folder, folder.name))
    assert "| not sent |" in text
    for name, v in summary["variants"].items():
        assert f"| {name} | {v['offered_rps']:,.1f} | {v['achieved_rps']:,.1f} | " in text


def test_the_findings_block_has_a_row_per_claim() -> None:
    folder = _committed("findings")
    claims = json.loads((folder / "findings.json").read_text())["claims"]
    lines = results_page._findings_table(folder, folder.name)
    assert len([line for line in lines if line.startswith("| ") and "---" not in line]) == (
        len(claims) + 1  # and the header
    )


def _committed_reports() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "reports"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def test_the_committed_reports_stay_under_10_mb_with_their_raw_data_gzipped() -> None:
    """The issue's budget for reports/, and what keeps it: `evidence --retire` gzips each raw
    file over RAW_KEPT_PLAIN (run it after copying new reports in)."""
    files = [f for f in _committed_reports() if f.exists()]
    assert files, "no committed report"
    total = sum(f.stat().st_size for f in files)
    assert total < 10_000_000, f"reports/ holds {total:,} bytes: retire superseded reports"
    plain = [
        f
        for f in files
        if f.name in evidence.RAW_FILES and f.stat().st_size > evidence.RAW_KEPT_PLAIN
    ]
    assert plain == [], "run `python -m loadlab evidence --retire` to gzip them"
