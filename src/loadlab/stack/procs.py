"""Processes that loadlab starts, recorded by PID in `<state_dir>/state.json`.

`down` stops exactly what is recorded there, and only if the PID still belongs to the process
that was started (same creation time), so a reused PID is never signalled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

STATE_FILE = "state.json"
_HELD = (signal.SIGINT, signal.SIGTERM)  # what `interrupts_held` holds back


@dataclass
class Component:
    """One running part of the stack."""

    name: str
    url: str  # how to reach it, without any password
    pid: int | None = None  # None: not started by loadlab (an existing database)
    create_time: float | None = None
    stop_signal: int = signal.SIGTERM
    signal_group: bool = True  # False: signal only the leader (PostgreSQL stops its own children)
    log: str | None = None

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            proc = psutil.Process(self.pid)
            return proc.create_time() == self.create_time and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


@dataclass
class State:
    """What `up` started, in start order."""

    components: list[Component] = field(default_factory=list)
    database_url: str = ""  # the URL the services use (may point at PgBouncer)
    direct_database_url: str = ""  # PostgreSQL itself, for seeding and checks
    pgbouncer: bool = False
    scale: float = 1.0  # of the seed, so load stays inside the seeded ids

    def get(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)


def load_state(state_dir: Path) -> State | None:
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return State(
        components=[Component(**c) for c in raw.pop("components")],
        **raw,
    )


def save_state(state_dir: Path, state: State) -> None:
    """Written after each start, so a crash mid-way still leaves `down` a full record."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.touch(mode=0o600)  # it may hold the password of a database given with --database-url
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(state_dir / STATE_FILE)


def unprivileged_user() -> str | None:
    """As root, the user to run PostgreSQL and PgBouncer as (both refuse root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def give_to(path: Path, user: str) -> None:
    """Hand a file or folder to the unprivileged user (and its primary group, which need not
    share its name: `nobody` is in `nogroup` on Debian)."""
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def runtime_dir(state_dir: Path, user: str | None) -> Path:
    """Where files read or written by the unprivileged user live (cluster, PgBouncer config).

    That user must be able to pass through every parent folder; when one does not let it
    (a clone under /root, pytest's private /tmp folders), use a folder under /tmp instead.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    folders = [state_dir.resolve(), *state_dir.resolve().parents]
    if user is None or all(os.stat(folder).st_mode & 0o001 for folder in folders):
        return state_dir
    digest = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:12]
    folder = Path("/tmp") / f"loadlab-{digest}"
    folder.mkdir(mode=0o755, exist_ok=True)
    return folder


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise KeyboardInterrupt if one came.

    Wrap "start a process, then record it" in this: an interrupt in between would leave the
    process running with nobody knowing its PID. (Blocking the signals with a mask instead
    would pass the mask on to the child, which could then never be stopped.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _: held.append(signum))
        for s in _HELD
        if signal.getsignal(s) is not signal.SIG_IGN  # an ignored signal stays ignored
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)
        if held:
            raise KeyboardInterrupt


def start(
    name: str,
    argv: Sequence[str],
    *,
    url: str,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    signal_group: bool = True,
) -> Component:
    """Start a process in its own session (it outlives this CLI, and `down` can stop its
    whole process group: gunicorn and uvicorn workers included)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
        )
    return Component(
        name=name,
        url=url,
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        stop_signal=int(stop_signal),
        signal_group=signal_group,
        log=str(log),
    )


def stop(component: Component, timeout: float = 20.0) -> None:
    """Stop one component and everything in its process group; SIGKILL after `timeout`."""
    if not component.alive() or component.pid is None:
        return
    pid = component.pid
    send = os.killpg if component.signal_group else os.kill
    try:
        send(pid, component.stop_signal)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def exited_early(component: Component) -> str | None:
    """If the process has already exited: the last lines of its log, for the error."""
    if component.alive():
        return None
    tail = ""
    if component.log and Path(component.log).exists():
        tail = " | ".join(Path(component.log).read_text(errors="replace").strip().splitlines()[-3:])
    return tail or "no output"
