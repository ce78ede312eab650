"""Processes that loadlab starts, recorded by PID in `<state_dir>/state.json`.

`down` stops exactly what is recorded there, and only if the PID still belongs to the process
that was started (same creation time), so a reused PID is never signalled.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import psutil

from loadlab.errors import UsageError
from loadlab.stack import placement

STATE_FILE = "state.json"
_HELD = (signal.SIGINT, signal.SIGTERM)  # what `interrupts_held` holds back


@dataclass
class Component:
    """One running part of the stack."""

    name: str
    url: str  # how to reach it, without any password
    pid: int | None = None  # None: not started by loadlab (an existing database)
    # When the process started, in seconds since boot: unlike psutil's create_time() (boot
    # time read from /proc/stat plus that), no change of the wall clock (NTP, a VM resumed)
    # can move it, so a living leader is never taken for a reused PID.
    started_after_boot: float | None = None
    stop_signal: int = signal.SIGTERM
    log: str | None = None
    # PostgreSQL's data directory: its postmaster.pid names the server that runs there now,
    # also after a restart outside loadlab (`pg_ctl restart` starts a new postmaster).
    data_dir: str | None = None
    # A service's profile and knob values, as started: {"profile": name, "knobs": {...}}.
    setup: dict[str, Any] | None = None

    def current_pid(self) -> int | None:
        """The PID of its server now: the recorded one, or for PostgreSQL whichever
        postmaster serves its data directory. None when no server of it runs (orphaned
        workers are not a server: see `leftovers`)."""
        if self.data_dir is not None and (pid := postmaster_pid(Path(self.data_dir))):
            return pid
        if self.pid is None or not self._leader_is_ours() or not _running(self.pid):
            return None
        return self.pid

    def alive(self) -> bool:
        return self.current_pid() is not None

    def leftovers(self) -> list[psutil.Process]:
        """Processes of its own still running: its process group, whose members stay after
        the leader dies (uvicorn's workers after `kill -9` of their master)."""
        if self.pid is None or not self._leader_is_ours():
            return []
        return group_members(self.pid)

    def _leader_is_ours(self) -> bool:
        """False when the recorded PID now belongs to another process (PIDs are reused)."""
        try:
            return self.pid is not None and started_after_boot(self.pid) == self.started_after_boot
        except psutil.NoSuchProcess:
            return True  # gone: its group, if any is left, is still ours (see group_members)
        except psutil.Error:
            return False


def started_after_boot(pid: int) -> float:
    """Field 22 of /proc/PID/stat (starttime, in clock ticks since boot), in seconds; raises
    psutil.NoSuchProcess when the process is gone, as psutil would."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        raise psutil.NoSuchProcess(pid) from None
    after_name = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and ")"
    return int(after_name[19]) / os.sysconf("SC_CLK_TCK")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    """Every live process in this process group. Linux hands out no PID that is still in use
    as a group id, so while members remain, the group is the one we started."""
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def postmaster_pid(data_dir: Path) -> int | None:
    """The postmaster running in this data directory (the first line of postmaster.pid),
    checked by its working directory, which PostgreSQL sets to its data directory."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or Path(proc.cwd()) != data_dir.resolve():
            return None
        return pid
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


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
    known = {f.name for f in fields(Component)}  # older state files had other fields
    return State(
        components=[
            Component(**{k: v for k, v in c.items() if k in known}) for c in raw.pop("components")
        ],
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


RUNTIME_POINTER = "runtime-dir"  # in the state folder: where its runtime folder is


def runtime_dir(state_dir: Path, user: str | None, create: bool = True) -> Path | None:
    """Where files read or written by the unprivileged user live (cluster, PgBouncer config).

    That user must be able to pass through every parent folder; when one does not let it
    (a clone under /root, pytest's private /tmp folders), a folder of our own under /tmp,
    made with an unguessable name (mkdtemp) and recorded in the state folder. A recorded
    folder is used again only while it is still ours: a real folder (no symlink) owned by
    us that nobody else can write to. None when `create` is false and there is none.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    folders = [state_dir.resolve(), *state_dir.resolve().parents]
    if user is None or all(os.stat(folder).st_mode & 0o001 for folder in folders):
        return state_dir
    pointer = state_dir / RUNTIME_POINTER
    if pointer.exists():
        folder = Path(pointer.read_text().strip())
        if folder.exists() or folder.is_symlink():
            check_own_folder(folder)
            return folder
    if not create:
        return None
    folder = Path(tempfile.mkdtemp(prefix="loadlab-"))
    folder.chmod(0o711)  # the unprivileged user may pass through it, not list or write it
    pointer.write_text(f"{folder}\n")
    return folder


def check_own_folder(folder: Path) -> None:
    """UsageError unless `folder` is a real folder owned by us that only we can write."""
    info = os.lstat(folder)
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise UsageError(
            f"{folder} is not a folder of loadlab's own (a symlink, another owner, or "
            "writable by others): remove it, or the state folder's runtime-dir file"
        )


@contextlib.contextmanager
def state_lock(state_dir: Path, command: str) -> Iterator[None]:
    """One loadlab command at a time on a state folder: two `up`s must not share a data
    directory, and a `run` must not have its data reset under it by another. The lock is
    the kernel's (flock), so it goes with the process however it ends."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another loadlab command"
            raise UsageError(
                f"{holder} is using {state_dir}: wait for it to end, or use another --state-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"`loadlab {command}` (pid {os.getpid()})")
        lock.flush()
        yield


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


def free_port() -> int:
    """A port on 127.0.0.1 free now (the kernel's choice) for a server started next."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    data_dir: Path | None = None,
) -> Component:
    """Start a process in its own session (it outlives this CLI, and `down` can stop its
    whole process group: gunicorn and uvicorn workers included)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            placement.active().stack_argv(list(argv)),
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
        started_after_boot=started_after_boot(proc.pid),
        stop_signal=int(stop_signal),
        log=str(log),
        data_dir=str(data_dir) if data_dir is not None else None,
    )


def stop(component: Component, timeout: float = 20.0) -> None:
    """Stop one component and everything left of it: PostgreSQL through its data directory
    (whichever postmaster runs there), any other server through its whole process group,
    even when the leader is already gone. SIGKILL what is left after `timeout`."""
    if component.data_dir is not None:
        _stop_postmaster(component, timeout)
        return
    if component.pid is None or not component.leftovers():
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(component.pid, component.stop_signal)
    if not wait_until(lambda: not component.leftovers(), timeout):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(component.pid, signal.SIGKILL)
        wait_until(lambda: not component.leftovers(), 5)


def _stop_postmaster(component: Component, timeout: float) -> None:
    # The postmaster stops its own backends; signalling them directly could leave shared
    # memory behind. SIGQUIT is PostgreSQL's "immediate" shutdown, SIGKILL the last resort.
    for sig, wait in (
        (component.stop_signal, timeout),
        (signal.SIGQUIT, 5.0),
        (signal.SIGKILL, 5.0),
    ):
        pid = component.current_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if wait_until(lambda: component.current_pid() is None, wait):
            return


def wait_until(done: Callable[[], bool], timeout: float, poll: float = 0.1) -> bool:
    """Whether `done()` became true within `timeout` seconds (asked every `poll`)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def exited_early(component: Component) -> str | None:
    """If the process has already exited: the last lines of its log, for the error."""
    if component.alive():
        return None
    tail = ""
    if component.log and Path(component.log).exists():
        tail = " | ".join(Path(component.log).read_text(errors="replace").strip().splitlines()[-3:])
    return tail or "no output"
