"""The services' Server-Timing header (`app;dur=6.3, queue;dur=0.3, conn;dur=1.7, ...`), read
into the parts the recorder keeps.

The generator does not read the header when the answer comes: it keeps the text, and reads a
few thousand at once when the recorder flushes (`parts`). Answers of one service carry the
same names in the same order, so the headers of one shape become one matrix of numbers with
a single regular-expression pass over their joined text: a fifth of the cost of reading each
alone, paid away from the moment a request is timed (`loadlab bench` measures it).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Sequence

import numpy as np

# The header as loadlab's services send it: names and durations only.
_PLAIN = re.compile(r"\w+;dur=\d+(?:\.\d+)?(?:, ?\w+;dur=\d+(?:\.\d+)?)*")
_PLAIN_PART = re.compile(r"(\w+);dur=([\d.]+)")
_DURATION = re.compile(r"(?<=;dur=)\d+(?:\.\d+)?")
_PLAIN_SHAPE = re.compile(r"\w+;dur=(?:, ?\w+;dur=)*")
_SHAPE_NAME = re.compile(r"(\w+);dur=")


def parse(value: str) -> dict[str, float]:
    """`app;dur=1.5, conn;dur=0.2` -> {"app": 1.5, "conn": 0.2} (ms); parts with no
    readable duration are left out."""
    if _PLAIN.fullmatch(value):
        return {name: float(number) for name, number in _PLAIN_PART.findall(value)}
    found = {}
    for part in value.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key.strip() == "dur":
                with contextlib.suppress(ValueError):
                    found[name.strip()] = float(number)
    return found


def derived(timing: dict[str, float], client_ms: float | None) -> dict[str, float]:
    """One answer's parts and those derived from them (`_with_derived`), as floats."""
    columns = {name: np.array([ms]) for name, ms in timing.items()}
    client = np.array([math.nan if client_ms is None else client_ms])
    return {name: float(v[0]) for name, v in _with_derived(columns, client).items()}


def parts(headers: Sequence[str], client_ms: Sequence[float]) -> dict[str, list[np.ndarray]]:
    """Every part (derived ones included) of many answers, as arrays of ms: the same values
    `derived(parse(header), client_ms)` gives one at a time. `client_ms` is NaN where the
    client's time is not known."""
    shapes: dict[str, list[int]] = {}
    for i, header in enumerate(headers):
        shapes.setdefault(_DURATION.sub("", header), []).append(i)
    found: dict[str, list[np.ndarray]] = {}
    for shape, rows in shapes.items():
        names = _SHAPE_NAME.findall(shape) if _PLAIN_SHAPE.fullmatch(shape) else []
        numbers = _DURATION.findall(",".join(headers[i] for i in rows)) if names else []
        client = np.asarray([client_ms[i] for i in rows], dtype=np.float64)
        if names and len(set(names)) == len(names) and len(numbers) == len(rows) * len(names):
            matrix = np.array(numbers, dtype=np.float64).reshape(len(rows), len(names))
            columns = _with_derived(dict(zip(names, matrix.T, strict=True)), client)
        else:  # not the services' plain form (or a name twice): one header at a time
            columns = _one_by_one([headers[i] for i in rows], client)
        for name, values in columns.items():
            found.setdefault(name, []).append(values)
    return found


def _one_by_one(headers: list[str], client: np.ndarray) -> dict[str, np.ndarray]:
    """`derived(parse(...))` of each header, for headers not in the plain form."""
    found: dict[str, list[float]] = {}
    for header, ms in zip(headers, client.tolist(), strict=True):
        for name, value in derived(parse(header), None if ms != ms else ms).items():
            found.setdefault(name, []).append(value)
    return {name: np.array(values) for name, values in found.items()}


def _with_derived(columns: dict[str, np.ndarray], client: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of answers' parts, and three derived from them per answer: `before` (the
    client's time from its send minus the app's: the kernel's accept queue and socket
    buffers, the server's worker, thread or event-loop queue, the network), of which
    `kernel` is what the server's own `queue` part leaves: not yet taken up by the server;
    and `rest` (the app's time minus the pool wait and the SQL calls: Python, and in an async
    stack the loop running other requests between this one's awaits). `before` and `kernel`
    only where the client's time is known (not NaN)."""
    out = dict(columns)
    if "app" in columns:
        known = ~np.isnan(client)
        before = np.maximum(client - columns["app"], 0.0)
        if known.any():
            out["before"] = before[known]
            if "queue" in columns:
                out["kernel"] = np.maximum(before - columns["queue"], 0.0)[known]
    if {"app", "conn", "sql"} <= columns.keys():
        out["rest"] = np.maximum(columns["app"] - columns["conn"] - columns["sql"], 0.0)
    return out
