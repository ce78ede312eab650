"""`loadlab compose`: infra/docker-compose.yml's load run in one command, the steps
docs/distributed.md shows, so that `make evidence` makes the compose report like any other.

It builds the image (a debootstrap base and a host-built wheelhouse, infra/compose.sh: no
registry and a TLS-intercepting proxy here), starts PostgreSQL and both services under a
project of its own with fresh passwords, verifies them through their published ports, runs
the `load` profile (`loadlab run` as the Locust master fed by worker containers), prints the
master's output, and takes everything down, volumes included. Every port is published on a
free 127.0.0.1 port, so a native stack on the defaults (the evidence runner's) is left alone.
A Docker engine that is not running is started (as root) and stopped after.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.settings import StackSettings
from loadlab.stack.procs import free_port, wait_until

COMPOSE_FILE = ROOT / "infra" / "docker-compose.yml"
SCRIPT = ROOT / "infra" / "compose.sh"
BASE_IMAGE = "loadlab-base:bookworm"  # infra/compose.sh base: made where no registry answers
# What `down` must name so that the containers of every profile go too.
ALL_PROFILES = ("--profile", "all", "--profile", "pgbouncer", "--profile", "load")
LOAD_SERVICES = ("PG", "FLASK_SYNC", "FASTAPI_ASYNC")  # published by the load run's project


def compose_command() -> list[str] | None:
    """Debian's docker-compose (v1), else `docker compose` (v2), else None."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and succeeds(["docker", "compose", "version"]):
        return ["docker", "compose"]
    return None


def succeeds(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def engine(log_dir: Path) -> Iterator[list[str]]:
    """The compose command with an engine answering: dockerd started (and stopped after)
    only when none was running."""
    command = compose_command()
    if command is None:
        raise UsageError("compose: no docker-compose (infra/install-system-deps.sh installs it)")
    if succeeds(["docker", "info"]):
        yield command
        return
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        raise UsageError("compose: no Docker engine is running, and no root to start dockerd")
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "dockerd.log").open("ab") as log:
        started = subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        if not wait_until(lambda: succeeds(["docker", "info"]), 60, poll=0.5):
            raise UsageError(f"compose: dockerd did not answer in 60 s: {log_dir}/dockerd.log")
        print("compose: started dockerd (stopped at the end)", flush=True)
        yield command
    finally:
        started.terminate()
        try:
            started.wait(timeout=60)
        except subprocess.TimeoutExpired:
            started.kill()
            started.wait()


def prepare(base_image: str) -> str:
    """The wheelhouse, the base image when it is ours, and the commit the image names."""
    steps = ["wheels", *(["base"] if base_image == BASE_IMAGE else [])]
    for step in steps:
        done = subprocess.run([str(SCRIPT), step], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise UsageError(f"compose: infra/compose.sh {step} failed: {done.stderr.strip()}")
    return subprocess.run(
        [str(SCRIPT), "commit"], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass
class Project:
    """One compose project: its command, name, environment (passwords included: never
    printed) and the 127.0.0.1 ports it publishes."""

    command: list[str]
    name: str
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, "-p", self.name, "-f", str(COMPOSE_FILE), *args]
        return subprocess.run(
            argv, env=env or self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    def must(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> None:
        done = self(*args, env=env, timeout=timeout)
        if done.returncode != 0:
            raise UsageError(f"compose {' '.join(args)} failed: {_last_line(done.stderr)}")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def admin_url(self) -> str:
        password = self.env["LOADLAB_ADMIN_PASSWORD"]
        return f"postgresql://loadlab_admin:{password}@127.0.0.1:{self.ports['PG']}/loadlab"

    def container(self, service: str) -> str:
        found = self("ps", "-q", service).stdout.split()
        if len(found) != 1:
            raise UsageError(f"compose: {len(found)} containers of {service}, not one")
        return found[0]

    def healthy(self, *names: str, timeout: float = 120) -> None:
        for name in names:
            health = f"{self.url(name)}/healthz"
            if not wait_until(lambda: _answers(health), timeout, 0.5):  # noqa: B023 (waited here)
                raise UsageError(f"compose: {name.lower()} not healthy within {timeout:g} s")

    def down(self) -> None:
        self(*ALL_PROFILES, "down", "-v", "--remove-orphans")


def project(
    command: list[str], name: str, publish: tuple[str, ...], commit: str, base_image: str
) -> Project:
    """A project with fresh passwords, each of `publish` on a free 127.0.0.1 port, and
    report folders owned by the invoking user."""
    ports = {service: free_port() for service in publish}
    env = {
        **os.environ,
        "LOADLAB_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "LOADLAB_APP_PASSWORD": secrets.token_urlsafe(16),
        "LOADLAB_BASE_IMAGE": base_image,
        "LOADLAB_SOURCE_COMMIT": commit,
        "LOADLAB_UID": str(os.getuid()),
        "LOADLAB_GID": str(os.getgid()),
        **{f"LOADLAB_PUBLISH_{service}": str(port) for service, port in ports.items()},
    }
    return Project(command, name, env, ports)


@dataclass(frozen=True)
class Load:
    """The `load` profile's run: worker containers, users and times (`run`'s own forms)."""

    workers: int = 2
    users: int = 200
    duration: str = "60s"
    warmup: str = "15s"


def load(stack: Project, reports: Path, plan: Load) -> int:
    """The `load` profile with its worker containers, its report into `reports`; the
    master's output printed; returns its exit code (0, 1: a gate or check failed, 2)."""
    env = {
        **stack.env,
        "LOADLAB_REPORTS": str(reports),
        "LOCUST_WORKERS": str(plan.workers),
        "LOADLAB_USERS": str(plan.users),
        "LOADLAB_DURATION": plan.duration,
        "LOADLAB_WARMUP": plan.warmup,
    }
    try:
        scale = f"locust-worker={plan.workers}"
        stack.must("--profile", "load", "up", "-d", "--scale", scale, env=env)
        waited = subprocess.run(
            ["docker", "wait", stack.container("locust-master")],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        logs = stack("logs", "--no-color", "--no-log-prefix", "locust-master").stdout
        for line in logs.splitlines():
            if line.startswith("Attaching to "):  # Compose v1's, not the master's
                continue
            # Its path inside the container: this command says where the report lands.
            print(line.replace("report: /app/", "report in the container: /app/", 1))
        return int(waited.stdout.strip() or 2)
    finally:
        stack("--profile", "load", "rm", "-s", "-f", "locust-master", "locust-worker")


def run(
    settings: StackSettings, plan: Load, out: Path | None, base_image: str = BASE_IMAGE
) -> tuple[int, Path]:
    """The `compose` command: returns the load run's exit code and its report page."""
    if plan.workers < 1:
        raise UsageError("--workers: at least one worker container")
    if out is not None and out.exists():
        raise UsageError(f"--out {out}: exists already; a report folder is made, not merged")
    with engine(settings.state_dir / "compose") as command:
        commit = prepare(base_image)
        stack = project(command, f"loadlab-{os.getpid()}", LOAD_SERVICES, commit, base_image)
        print(f"compose: building the image at {commit} from {base_image}", flush=True)
        stack.must("build", timeout=1800)
        # Inside the state folder, the container writes as this user; moved to its place after.
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        landing = Path(tempfile.mkdtemp(prefix="compose-reports-", dir=settings.state_dir))
        try:
            try:
                stack.must("up", "-d")
                stack.healthy("FLASK_SYNC", "FASTAPI_ASYNC")
                _verify(stack, settings)
                code = load(stack, landing, plan)
            finally:
                stack.down()
            made = [p for p in landing.iterdir() if (p / "summary.json").exists()]
            if len(made) != 1:
                raise UsageError(f"compose: the load run exited {code} and wrote no report")
            target = out or ROOT / "reports" / made[0].name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(made[0], target)
        finally:
            shutil.rmtree(landing, ignore_errors=True)
    return code, target / "index.html"


def _verify(stack: Project, settings: StackSettings) -> None:
    """`verify` through the published ports, the database behind them reset before each."""
    from loadlab import verify

    print("compose: PostgreSQL, flask_sync and fastapi_async up; verify:", flush=True)
    verify.run(
        settings.model_copy(update={"database_url": stack.admin_url}),
        quiet=True,
        targets=[f"{n.lower()}={stack.url(n)}" for n in ("FLASK_SYNC", "FASTAPI_ASYNC")],
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
