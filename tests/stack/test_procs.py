"""procs.interrupts_held: an interrupt waits until a started process is recorded."""

from __future__ import annotations

import os
import signal
import time

import pytest

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
