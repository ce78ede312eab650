"""The two ways a command fails, each with its exit code, and how it is asked to stop."""

import threading


class UsageError(Exception):
    """Bad usage or configuration: one line saying what to do, exit code 2."""

    exit_code = 2


class GateFailed(Exception):
    """A check failed (verify, integrity, SLO): exit code 1."""

    exit_code = 1


# Set when Ctrl-C or SIGTERM asks the command to stop (cli._on_interrupt). The handler also
# raises KeyboardInterrupt, but Python drops one raised while a garbage collector's callback
# runs (it prints "Exception ignored" and goes on), so loops that run long check this too.
INTERRUPTED = threading.Event()


def stop_if_interrupted() -> None:
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt
