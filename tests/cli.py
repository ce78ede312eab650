"""`python -m loadlab ARGS` for the tests, each call its own process, started by fork from
an interpreter that has already imported loadlab.

A cold `python -m loadlab` spends about 1.2 s of CPU importing SQLAlchemy, numpy and the
command's modules before it reads its first flag; a forked one about 0.2 s in all (make test
here: 85 s less). Forked, each call still gets its own argv, environment, working folder,
stdin (/dev/null), stdout, stderr, signal handlers and exit status, and still runs
loadlab/__main__.py from its top: only the imports are shared.

The entry point itself is still started cold where it matters (tests/stack/test_cli.py's
up/status/verify/down and the interrupt tests, which use subprocess directly).

The server is one process per test session (started on first use, stopped at exit); a
call's request goes over a Unix socket: the server forks a handler, the handler forks the
command and sends back its pid, then its exit status.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadlab import ROOT

# The command modules `cli` imports lazily (the slow part), none of which starts a thread or
# patches anything when imported: checked by the server before it serves.
PRELOAD = (
    "loadlab.cli",
    "loadlab.duel",
    "loadlab.sweep",
    "loadlab.tune",
    "loadlab.calibrate",
    "loadlab.side_by_side",
    "loadlab.verify",
    "loadlab.faults",
    "loadlab.evidence",
    "loadlab.report.pages",
    "loadlab.report.junit",
    "loadlab.analysis.change",
    "loadlab.stack.lifecycle",
)

SERVER = r"""
import importlib, json, os, runpy, socket, sys, threading

for name in sys.argv[2].split(","):
    importlib.import_module(name)
assert threading.active_count() == 1 and "gevent.monkey" not in sys.modules

listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
listener.settimeout(5)  # to look now and then whether the test session is still there
parent, server = os.getppid(), os.getpid()
print("ready", flush=True)


def command(request, connection):
    # The child: the call's process from here on, as `python -m loadlab` would be.
    connection.close()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                           (2, request["stderr"], os.O_WRONLY)):
        os.dup2(os.open(path, mode), fd)
    sys.argv = ["-m", *request["args"]]
    # SystemExit from loadlab/__main__.py ends this interpreter the usual way (threads joined,
    # atexit run, buffers flushed) with the command's status.
    runpy.run_module("loadlab", run_name="__main__", alter_sys=True)
    sys.exit(0)


def handle(connection):
    request = json.loads(connection.makefile().readline())
    pid = os.fork()
    if pid == 0:
        command(request, connection)
    connection.sendall(f"{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())


def serve(connection):
    if os.fork() == 0:
        handler = os.getpid()
        listener.close()
        try:
            handle(connection)
        finally:
            if os.getpid() == handler:  # the command's own exit passes on to the top
                os._exit(0)
    connection.close()


def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


while os.getppid() == parent:  # the session gone (even killed), the server goes too
    try:
        serve(listener.accept()[0])  # the connection blocks, whatever the listener's timeout
    except TimeoutError:
        if os.getpid() != server:  # a command's own, on its way out
            raise
    reap()
"""

_server: dict[str, object] = {}


def _socket_path() -> str:
    """The server's socket, the server started the first time."""
    server = _server.get("process")
    if isinstance(server, subprocess.Popen) and server.poll() is None:
        return str(_server["socket"])
    folder = Path(tempfile.mkdtemp(prefix="loadlab-cli-"))
    path = folder / "socket"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(path), ",".join(PRELOAD)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    _server.update(process=process, socket=path)
    atexit.register(_stop, process, folder)
    return str(path)


def _stop(process: subprocess.Popen[str], folder: Path) -> None:
    process.kill()
    process.wait()
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()


def cold(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m loadlab ARGS` started from nothing, as a user starts it."""
    return subprocess.run(
        [sys.executable, "-m", "loadlab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def loadlab(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """What `cold` gives (exit status, stdout, stderr; TimeoutExpired past the timeout, the
    command killed), from a forked process: the environment is os.environ updated with env,
    the folder this one's unless given."""
    with tempfile.TemporaryDirectory(prefix="loadlab-call-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        out.touch()
        err.touch()
        request = {
            "args": list(args),
            "env": {**os.environ, **(env or {})},
            "cwd": str(cwd or Path.cwd()),
            "stdout": str(out),
            "stderr": str(err),
        }
        argv = [sys.executable, "-m", "loadlab", *args]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(_socket_path())
            connection.sendall((json.dumps(request) + "\n").encode())
            answers = connection.makefile()
            pid = int(answers.readline())
            connection.settimeout(timeout)
            started = time.monotonic()
            try:
                code = int(answers.readline())
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(argv, time.monotonic() - started) from None
        return subprocess.CompletedProcess(argv, code, out.read_text(), err.read_text())
