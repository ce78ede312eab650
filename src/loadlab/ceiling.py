"""The database's own ceiling: the scenario's SQL transaction run by pgbench straight at the
same PostgreSQL, on the same machine, at the number of connections a stack used.

A stack's throughput as a share of this ceiling says how much of the machine the web stack
(server, framework, ORM, driver) takes on top of the database's own work. pgbench's client
shares the cores as Locust does, so the ceiling is what this machine does with no Python
in the path, not what PostgreSQL alone could do on a machine of its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.stack import postgres, seed

SCRIPTS = ROOT / "infra" / "pgbench"
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
_DONE = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.M)


def script(scenario: str) -> Path | None:
    """The scenario's transaction for pgbench, if it has one (infra/pgbench/<scenario>.sql)."""
    path = SCRIPTS / f"{scenario}.sql"
    return path if path.exists() else None


def pgbench(pg_bin: Path | None) -> str:
    """pgbench beside PostgreSQL's server binaries, or on PATH."""
    try:
        beside = postgres.find_bin(pg_bin) / "pgbench"
        if beside.exists():
            return str(beside)
    except UsageError:
        pass
    found = shutil.which("pgbench")
    if found is None:
        raise UsageError("--ceiling needs pgbench: apt-get install postgresql-client")
    return found


def prepare(scenario: str, pg_bin: Path | None) -> str:
    """pgbench's path, once the scenario is known to have a script (UsageError otherwise)."""
    check(scenario)
    return pgbench(pg_bin)


def check(scenario: str) -> Path:
    found = script(scenario)
    if found is None:
        known = ", ".join(sorted(p.stem for p in SCRIPTS.glob("*.sql")))
        raise UsageError(
            f"--ceiling: no pgbench script for scenario {scenario!r} (there is one for {known})"
        )
    return found


def measure(
    binary: str,
    database_url: str,
    scenario: str,
    connections: int,
    seconds: float,
    scale: float,
) -> dict[str, Any]:
    """pgbench at `connections` clients for `seconds`; the data is reset to the seed after."""
    users = seed.Scale.of(scale).users
    argv = [
        binary,
        "--no-vacuum",
        "--protocol=prepared",  # the database's best: parsed once per connection
        f"--client={connections}",
        f"--jobs={min(connections, 2)}",
        f"--time={max(round(seconds), 1)}",
        f"--define=users={users}",
        f"--file={check(scenario)}",
        database_url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    seed.reset(database_url, seed.Scale.of(scale))
    if done.returncode != 0 or not (tps := _TPS.search(done.stdout)):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"pgbench failed (exit {done.returncode}): {tail}")
    failed = _FAILED.search(done.stdout)
    latency = _LATENCY.search(done.stdout)
    done_count = _DONE.search(done.stdout)
    return {
        "connections": connections,
        "seconds": max(round(seconds), 1),
        "tps": float(tps.group(1)),
        "transactions": int(done_count.group(1)) if done_count else None,
        "failed": int(failed.group(1)) if failed else 0,
        "latency_ms_mean": float(latency.group(1)) if latency else None,
    }


def attach(
    figures: dict[str, dict[str, Any]],
    binary: str,
    database_url: str,
    scenario: str,
    seconds: float,
    scale: float,
) -> list[dict[str, Any]]:
    """Measure the ceiling at each connection count the variants used (their most open), and
    give each variant its share of it and the machine time per request the gap amounts to."""
    counts = {}
    for name, v in figures.items():
        peak = (v.get("database_connections") or {}).get("open_max")
        counts[name] = max(int(peak or 1), 1)
    ceilings = {}
    for n in sorted(set(counts.values())):
        print(
            f"ceiling: pgbench, {scenario}'s transaction, {n} connections, {seconds:g} s",
            flush=True,
        )
        ceilings[n] = measure(binary, database_url, scenario, n, seconds, scale)
    for name, v in figures.items():
        c = ceilings[counts[name]]
        across = (v.get("across_rounds") or {}).get("throughput_rps")
        answered = across["mean"] if across else v["throughput_rps"]
        # In an open-model run the schedule set the rate: a share of the ceiling would be
        # the offered load's, not the stack's limit (a sweep's capacity is that).
        scheduled = "offered_rps" in v
        v["ceiling"] = {
            "connections": c["connections"],
            "tps": c["tps"],
            "share": answered / c["tps"] if c["tps"] and not scheduled else None,
            # Per request, wall time of the whole machine: at the stack's rate, and at the
            # ceiling's. Their difference is what the stack adds per request.
            "ms_per_request": 1000 / answered if answered and not scheduled else None,
            "ceiling_ms_per_request": 1000 / c["tps"] if c["tps"] else None,
        }
    return list(ceilings.values())
