"""The two ways a command fails, each with its exit code."""


class UsageError(Exception):
    """Bad usage or configuration: one line saying what to do, exit code 2."""

    exit_code = 2


class GateFailed(Exception):
    """A check failed (verify, integrity, SLO): exit code 1."""

    exit_code = 1
