"""procs: interrupts held while a process is started and recorded, one command at a time per
state folder, a runtime folder that is ours."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import tempfile
import time
from pathlib import Path

import pytest

from loadlab.errors import UsageError
from loadlab.stack import procs


def test_interrupts_held_delays_ctrl_c_to_the_end_of_the_block() -> None:
    reached_end = False
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), procs.interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a signal handler runs between bytecodes: give it the chance
        reached_end = True
    assert reached_end
    assert signal.getsignal(signal.SIGINT) is before


def test_interrupts_held_leaves_an_ignored_signal_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with procs.interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_second_command_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    """Two `up`s (or an `up` and a `down`) at once would share one data directory."""
    from tests.stack.test_cli import loadlab, port_flags, recorded_pids

    with procs.state_lock(tmp_path, "up"):
        for command in (["up", *port_flags(tmp_path)], ["down", "--state-dir", str(tmp_path)]):
            result = loadlab(*command)
            assert result.returncode == 2, result.stderr
            assert f"`loadlab up` (pid {os.getpid()}) is using {tmp_path}" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
    assert recorded_pids(tmp_path) == []
    with procs.state_lock(tmp_path, "down"):  # released when the holder is done
        pass


@pytest.mark.skipif(procs.unprivileged_user() is None, reason="only as root")
def test_the_runtime_folder_is_unguessable_and_checked_before_reuse(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)  # the unprivileged user cannot pass: a folder under /tmp then
    state = private / "state"
    user = procs.unprivileged_user()
    folder = procs.runtime_dir(state, user)
    assert folder is not None
    try:
        assert folder.parent == Path(tempfile.gettempdir()) and folder != state
        assert hashlib.sha1(str(state.resolve()).encode()).hexdigest()[:12] not in folder.name
        info = os.lstat(folder)
        assert info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o711
        assert procs.runtime_dir(state, user) == folder  # recorded, found again
        # Someone swaps it for a folder anyone can write to: refused, not used.
        folder.chmod(0o777)
        with pytest.raises(UsageError, match="not a folder of loadlab's own"):
            procs.runtime_dir(state, user)
        folder.chmod(0o711)
        folder.rmdir()
        folder.symlink_to(tmp_path)
        with pytest.raises(UsageError, match="not a folder of loadlab's own"):
            procs.runtime_dir(state, user)
    finally:
        if folder.is_symlink():
            folder.unlink()
        elif folder.exists():
            folder.rmdir()


def test_a_living_process_stays_ours_when_the_wall_clock_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psutil's create_time() is the boot time from /proc/stat plus the process's start, and
    the boot time moves with the wall clock (NTP, a resumed VM): a component must not be
    taken for dead, its PID for reused, and its port left held, when the clock steps."""
    import psutil._pslinux

    sleeper = procs.start("sleeper", ["sleep", "30"], url="-", log=tmp_path / "sleeper.log")
    try:
        assert sleeper.alive()
        stepped = psutil._pslinux.boot_time() + 7.0
        monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: stepped)
        assert sleeper.alive() and sleeper.leftovers() != []
    finally:
        procs.stop(sleeper)
    assert not sleeper.alive()
