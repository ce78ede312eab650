"""Your own app, proven: loadlab drives an ASGI application it did not write (Datasette, from
PyPI, on a SQLite table) with a plain Locust file (third_party_locustfile.py: HttpUser and
FastHttpUser, `name=`, `catch_response`), in the closed model and in the open model (its
plain users take the schedule's starts, load/plain_users.py). The report's counts equal
Locust's own statistics for the same window, and its failures by kind are what the app
answered."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadlab import ROOT
from loadlab.stack.procs import free_port

LOCUSTFILE = Path(__file__).parent / "third_party_locustfile.py"
DATASETTE = Path(sys.executable).parent / "datasette"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("datasette")
    with sqlite3.connect(folder / "data.db") as db:
        db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany(
            "INSERT INTO things VALUES (?, ?)", [(i, f"thing {i}") for i in range(1, 101)]
        )
    port = free_port()
    server = subprocess.Popen(
        [
            str(DATASETTE),
            "serve",
            str(folder / "data.db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/versions.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "datasette did not start"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _run(app: str, out: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "run", "--locustfile", str(LOCUSTFILE),
            "--target", f"datasette={app}", "--users", "6", "--spawn-rate", "6",
            "--duration", "4s", "--warmup", "1s", "--out", str(out), *extra,
        ],
        capture_output=True, text=True, cwd=ROOT, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (v,) = json.loads((out / "summary.json").read_text())["variants"].values()
    return v


def _counts_agree(v: dict[str, Any]) -> None:
    """Locust's own statistics, taken as it quit (its CSV files are rewritten once a second
    and may miss the last one), against loadlab's recorder over the same window."""
    own = {name: tuple(counts) for name, counts in v["locust_by_request"].items()}
    assert v["requests"] == v["locust_requests"] == sum(n for n, _ in own.values()) > 0
    assert v["failures"] == v["locust_failures"] == sum(f for _, f in own.values())
    assert sum(v["errors"].values()) == v["failures"]
    # What the app answered: every request to the missing table was its 404, and every page
    # of five failed the file's own check; the rows and versions passed.
    missing, checked = own["GET /data/nothing.json"], own["GET /data/things?_size"]
    assert missing[0] > 0 and missing[0] == missing[1]
    assert checked[0] > 0 and checked[0] == checked[1]
    assert own["GET /data/things/[id]"][1] == 0 and own["GET /-/versions.json"][1] == 0
    # loadlab's failures by kind are Locust's failures by kind.
    locusts = {(name, error): n for _, name, error, n in v["locust_errors"]}
    assert sum(n for kind, n in v["errors"].items() if "404" in kind) == missing[1]
    assert locusts[("/data/nothing.json", next(e for n, e in locusts if "404" in e))] == missing[1]
    assert v["errors"]["expected 10 rows, got 5"] == checked[1]
    assert (
        locusts[("/data/things?_size", "CatchResponseError('expected 10 rows, got 5')")]
        == (checked[1])
    )


def test_a_plain_locust_file_drives_an_app_loadlab_did_not_write(app: str, tmp_path: Path) -> None:
    v = _run(app, tmp_path / "closed")
    _counts_agree(v)
    assert v["integrity"] is None  # not loadlab's database: nothing to check


def test_its_plain_users_take_the_open_models_schedule(app: str, tmp_path: Path) -> None:
    v = _run(app, tmp_path / "open", "--arrival-rate", "10")
    _counts_agree(v)
    # On the schedule, not closed-loop: about 10 a second (six closed-loop users get about
    # 30 from Datasette here), the starts counted.
    assert v["offered_rps"] == pytest.approx(10, rel=0.1)
    assert v["achieved_rps"] == pytest.approx(10, rel=0.2)
    arrivals = v["arrivals"]
    # Each task took one start: the window's starts are its answers and what was due, give
    # or take the requests at its edges (at most one per user).
    assert abs(arrivals["sent"] + arrivals["not_sent"] - arrivals["offered"]) <= 6
    assert abs(v["requests"] - arrivals["sent"]) <= 6 and arrivals["offered"] > 30
    assert v["latency_uncorrected_ms"]["p50"] <= v["latency_ms"]["p50"]
