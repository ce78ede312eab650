"""infra/docker-compose.yml, checked where no Docker engine runs: against the Compose
specification, and against the native setup it must stay in step with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

from loadlab import ROOT
from loadlab.settings import StackSettings
from loadlab.stack import postgres, services
from services.common.settings import ServiceSettings

COMPOSE = ROOT / "infra" / "docker-compose.yml"
SPEC = ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _validator() -> jsonschema.Draft7Validator:
    # The spec declares draft-07 under an address jsonschema does not know: name it.
    return jsonschema.Draft7Validator(json.loads(SPEC.read_text()))


def _defaults(value: str) -> str:
    """Resolve ${NAME:-default} the way compose does when NAME is unset, and a required
    ${NAME:?message} as if NAME were set to "<NAME>"."""
    value = re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", r"<\1>", value)
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.skipif(not SPEC.exists(), reason="the Compose schema lives in ../shared/")
def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    _validator().validate(compose)


def test_a_broken_file_is_caught_by_the_specification() -> None:
    if not SPEC.exists():
        pytest.skip("the Compose schema lives in ../shared/")
    broken = {"services": {"x": {"image": "y", "depends_on": {"z": {"condition": "whenever"}}}}}
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)


@pytest.mark.parametrize("name", sorted(services.VARIANTS))
def test_services_run_the_native_command_lines(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    port = int(service["ports"][0].rsplit(":", 1)[1])
    variant = services.VARIANTS[name]
    assert port == variant.port
    native = variant.argv(
        port, variant.defaults["web_workers"], host="0.0.0.0", python="python", root=Path("/app")
    )
    assert service["command"] == native


def test_services_read_the_native_environment(compose: dict[str, Any]) -> None:
    env = {k: _defaults(str(v)) for k, v in compose["x-service-env"].items()}
    native = StackSettings().service_env()
    assert {k: env[k] for k in native} == native
    read_by_services = {f.alias for f in ServiceSettings.model_fields.values()}
    assert set(env) <= read_by_services
    assert env["DATABASE_URL"].startswith("postgresql://")
    for name, variant in services.VARIANTS.items():
        # Each stack's own: its fixed environment and its "default" profile's knobs.
        own = {**compose["x-service-env"], **variant.env(variant.defaults), "SERVICE_NAME": name}
        assert compose["services"][name]["environment"] == own
        assert set(own) <= read_by_services


def test_the_same_roles_with_passwords_from_the_environment(compose: dict[str, Any]) -> None:
    """No trusted logins and no password in the file: the superuser for the database's own
    set-up, the seed job and the load run's checks, the services' role for the services,
    each password required from the environment."""
    assert "trust" not in COMPOSE.read_text()
    pg = compose["services"]["postgres"]
    assert _defaults(pg["environment"]["LOADLAB_ADMIN_PASSWORD"]) == "<LOADLAB_ADMIN_PASSWORD>"
    for name in ("seed", "locust-master", "ui"):
        env = compose["services"][name]["environment"]
        admin = make_url(_defaults(env["LOADLAB_DATABASE_URL"]))
        assert (admin.username, admin.password) == (postgres.ADMIN, "<LOADLAB_ADMIN_PASSWORD>")
    seed = compose["services"]["seed"]
    assert seed["command"][-2:] == ["seed", "--app-role"]
    assert _defaults(seed["environment"]["LOADLAB_APP_PASSWORD"]) == "<LOADLAB_APP_PASSWORD>"
    service_url = make_url(_defaults(compose["x-service-env"]["DATABASE_URL"]))
    assert service_url.username == postgres.APP
    assert service_url.password == "<LOADLAB_APP_PASSWORD>"
    bouncer = " ".join(compose["services"]["pgbouncer"]["command"])
    assert f"'{postgres.APP}', os.environ['LOADLAB_APP_PASSWORD']" in bouncer


def test_postgres_is_set_up_by_loadlabs_own_code(compose: dict[str, Any]) -> None:
    """One code path with `up`: the container runs loadlab.stack.container_postgres, which
    calls the functions `up` calls (no image entrypoint of its own), in the project's image."""
    from loadlab.stack import container_postgres

    pg = compose["services"]["postgres"]
    assert pg["command"] == ["python", "-m", container_postgres.__name__]
    assert pg["image"] == "loadlab" and pg["build"]["dockerfile"] == "infra/Dockerfile"
    assert str(container_postgres.READY) in pg["healthcheck"]["test"]
    (volume,) = pg["volumes"]
    assert volume.split(":")[1] == str(container_postgres.DATA.parent)
    assert volume.split(":")[0] in compose["volumes"]  # named: `down -v` drops it


def test_start_order_waits_for_health(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] in ("service_healthy", "service_completed_successfully")
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][dependency], (name, dependency)


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        assert all(p.startswith("127.0.0.1:") for p in service.get("ports", []))


def test_image_holds_what_loadlab_reads_from_its_root() -> None:
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    for folder in ("src", "services", "locustfiles", "infra", "profiles"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    assert "pip install --no-cache-dir -e" in dockerfile
    assert "ARG BASE_IMAGE=" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile


def test_distributed_load_is_a_loadlab_run_fed_by_worker_containers(
    compose: dict[str, Any],
) -> None:
    """`--profile load`: the master is `loadlab run` (exact recorder, gates, report) with as
    many remote workers as `--scale locust-worker=4` starts, and each worker runs the command
    the runner prints for remote workers."""
    from loadlab.cli import build_parser
    from loadlab.load.runner import LOCUSTFILES, REMOTE_MASTER_PORT

    master, worker = compose["services"]["locust-master"], compose["services"]["locust-worker"]
    assert master["profiles"] == worker["profiles"] == ["load"]
    command = [_defaults(part) for part in master["command"]]
    assert command[:4] == ["python", "-m", "loadlab", "run"]
    args = build_parser().parse_args(command[3:])  # flags loadlab takes
    assert args.remote_workers == 4 and args.workers == 0
    targets = dict(t.split("=", 1) for t in args.target)
    for name in services.DUEL:  # every stack of the duel, on its registry port
        assert targets[name] == f"http://{name}:{services.VARIANTS[name].port}"
        assert master["depends_on"][name] == {"condition": "service_healthy"}
    assert (LOCUSTFILES / f"{args.scenario}.py").exists()
    assert worker["command"] == [
        "python", "-m", "locust", "-f", f"/app/locustfiles/{args.scenario}.py",
        "--worker", "--master-host", "locust-master",
    ]  # fmt: skip
    assert REMOTE_MASTER_PORT == 5557  # Locust's default: the workers need no --master-port
    assert worker["environment"]["LOADLAB_SCALE"] == master["environment"]["LOADLAB_SCALE"]
    assert worker["restart"] == "always"  # back for the next variant's master
    # Nothing published: the master's port stays inside the compose network.
    assert "ports" not in master and "ports" not in worker
    (mount,) = master["volumes"]
    host, inside = _defaults(mount).split(":")
    assert (COMPOSE.parent / host).resolve() == (ROOT / "reports").resolve()
    assert inside == "/app/reports"


# `loadlab compose` (loadlab/stack/compose.py): bad input is refused before Docker is asked.


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--workers", "0"], "--workers: at least one worker container"),
        (["--out", "."], "exists already; a report folder is made, not merged"),
    ],
)
def test_the_compose_command_refuses_bad_input_in_one_line(
    extra: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadlab.cli import main

    assert main(["compose", "--state-dir", str(tmp_path / "state"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1
    assert not (tmp_path / "state").exists()  # nothing started, nothing written


def test_the_compose_command_without_compose_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadlab.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker-compose nor docker on it
    assert main(["compose", "--state-dir", str(tmp_path / "state")]) == 2
    assert "compose: no docker-compose" in capsys.readouterr().err
