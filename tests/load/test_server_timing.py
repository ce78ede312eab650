"""Server-Timing headers read many at once (server_timing.parts) give what reading each alone
gives, whatever mix of forms the answers carry."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loadlab.load import server_timing
from loadlab.load.recorder import Recorder

NAMES = st.sampled_from(["app", "queue", "conn", "sql", "orm", "bridge", "db2"])
MS = st.floats(min_value=0, max_value=5000, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def header(draw: st.DrawFn) -> str:
    """The services' plain form mostly, and the odd forms a server may send."""
    names = draw(st.lists(NAMES, min_size=1, max_size=7, unique=True))
    parts = [f"{name};dur={draw(MS)}" for name in names]
    odd = draw(st.sampled_from(["", "desc", "no number", "bad number", "integer"]))
    if odd == "desc":
        parts[0] = parts[0].replace(";dur=", ';desc="x";dur=')
    elif odd == "no number":
        parts[-1] = parts[-1].split("=")[0] + "="
    elif odd == "bad number":
        parts[-1] = parts[-1].split("=")[0] + "=1.2.3"
    elif odd == "integer":
        parts[0] = parts[0].split("=")[0] + "=7"
    return draw(st.sampled_from([", ", ","])).join(parts)


def _one_at_a_time(headers: list[str], client: list[float]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for text, ms in zip(headers, client, strict=True):
        known = None if math.isnan(ms) else ms
        for name, value in server_timing.derived(server_timing.parse(text), known).items():
            found.setdefault(name, []).append(value)
    return found


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(header(), st.one_of(st.just(math.nan), MS)), min_size=1, max_size=40).map(
        lambda rows: rows + rows[: len(rows) // 2]
    )  # shapes repeat, as a service's do
)
def test_many_at_once_equal_one_at_a_time(rows: list[tuple[str, float]]) -> None:
    headers, client = [h for h, _ in rows], [c for _, c in rows]
    expected = _one_at_a_time(headers, client)
    got = server_timing.parts(headers, client)
    assert set(got) == set(expected)
    for name, values in expected.items():
        assert sorted(np.concatenate(got[name]).tolist()) == sorted(values), name


def test_the_recorder_keeps_headers_as_parsed_values() -> None:
    """A header kept whole and read at the flush fills the same histograms as its parts
    recorded one at a time; start_measuring drops the ones from the warm-up."""
    text = "app;dur=6.270, queue;dur=0.311, conn;dur=1.651, sql;dur=1.842"
    whole, parsed = Recorder(), Recorder()
    whole.record_server_header("app;dur=99", 120.0)
    whole.start_measuring()
    for client_ms in (9.5, None, 30.25):
        whole.record_server_header(text, client_ms)
        parsed.record_server(server_timing.parse(text), client_ms)
    assert (
        set(whole.server)
        == set(parsed.server)
        == {"app", "queue", "conn", "sql", "before", "kernel", "rest"}
    )
    for part, histogram in parsed.server.items():
        assert whole.server[part].get_total_count() == histogram.get_total_count(), part
        assert whole.server[part].get_max_value() == histogram.get_max_value(), part
    assert whole.server["before"].get_total_count() == 2  # the client time was not known once
