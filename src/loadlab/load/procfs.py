"""What the resource monitor reads from the kernel once a second, in as few reads as it can.

The monitor runs on the cores it measures, so its own cost is taken from the stack: one pass
over /proc/<pid>/stat gives every process's parent, CPU time and RSS (psutil reads the stat
file again per figure and per process), PSS comes from smaps_rollup alone, and the accept
queues of every listening socket come from one netlink dump of the LISTEN sockets (the
kernel prints the whole /proc/net/tcp, every connection included, for each read of it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    ppid: int
    cpu_s: float  # user + system, since the process started
    rss_bytes: int


def stat_table() -> dict[int, Stat]:
    """Every process's /proc/<pid>/stat, read once."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # "pid (name) state ppid ...": the name may hold spaces and parentheses, so
                # the fields are counted from its closing one (state is field 0 after it).
                fields = stat.read().rpartition(b")")[2].split()
            found[int(entry.name)] = Stat(
                int(fields[1]),
                (int(fields[11]) + int(fields[12])) / TICKS_PER_S,
                int(fields[21]) * PAGE_BYTES,
            )
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not readable
    return found


def pss_bytes(pid: int) -> int | None:
    """PSS in bytes from smaps_rollup (None where the system keeps none or may not show
    it): it splits shared memory (PostgreSQL's buffers, forked workers' pages) between the
    processes sharing it, where RSS counts it once per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


# Netlink's sock_diag (linux/inet_diag.h): a dump of the TCP sockets in the LISTEN state.
_NETLINK_SOCK_DIAG = 4  # not in Python's socket module
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
# inet_diag_req_v2: family, protocol, extensions, pad, states; then a zeroed socket id.
_REQUEST = struct.Struct("=BBBxI48x")
# inet_diag_msg after its header: family, state, timer, retransmits, the socket id (source
# port big-endian first), expires, then rqueue: for a listener, its accept queue.
_SPORT_AT, _RQUEUE_AT = 4, 56


def _dump_listeners(family: int) -> dict[int, int]:
    queues: dict[int, int] = {}
    request = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << _TCP_LISTEN)
    message = _HEADER.pack(_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY,
                           _NLM_F_REQUEST_DUMP, 1, 0) + request  # fmt: skip
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(1.0)
        sock.sendto(message, (0, 0))
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
                if kind == _NLMSG_DONE:
                    return queues
                if kind == _NLMSG_ERROR or length < _HEADER.size:
                    raise OSError("sock_diag refused the dump")
                body = offset + _HEADER.size
                (port,) = struct.unpack_from("!H", data, body + _SPORT_AT)
                (depth,) = struct.unpack_from("=I", data, body + _RQUEUE_AT)
                queues[port] = max(queues.get(port, 0), depth)
                offset += (length + 3) & ~3


def _from_proc(tables: tuple[Path, ...]) -> dict[int, int]:
    """The same from /proc/net/tcp (a LISTEN socket's rx_queue is its backlog): where
    netlink is not allowed, and for tests with a table of their own."""
    queues: dict[int, int] = {}
    for table in tables:
        with contextlib.suppress(OSError):
            for row in table.read_text().splitlines()[1:]:
                fields = row.split()
                local, state, rx = fields[1], fields[3], fields[4].split(":")[1]
                if state == "0A":
                    port = int(local.rsplit(":", 1)[1], 16)
                    queues[port] = max(queues.get(port, 0), int(rx, 16))
    return queues


def listen_queues(tables: tuple[Path, ...] | None = None) -> dict[int, int]:
    """The accept queue's depth of every listening TCP socket, by port."""
    if tables is None:
        try:
            v4, v6 = _dump_listeners(socket.AF_INET), _dump_listeners(socket.AF_INET6)
            return {port: max(v4.get(port, 0), v6.get(port, 0)) for port in {*v4, *v6}}
        except OSError:
            tables = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
    return _from_proc(tables)
