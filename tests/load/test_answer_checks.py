"""The scenarios' answer check (locustfiles/common.py `problem`) on real HTTP answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadlab.load.runner import LOCUSTFILES


def test_each_odd_answer_is_a_failure_of_its_own_kind() -> None:
    probe = Path(__file__).with_name("answer_checks_probe.py")
    done = subprocess.run(
        [sys.executable, str(probe), str(LOCUSTFILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    kinds = json.loads(done.stdout.strip().splitlines()[-1])
    assert kinds == {
        "/ok": [None, "Zoë Ørsted"],  # UTF-8, as JSON is: read as such
        "/not-json": ["HTTP 200, body not JSON", None],
        "/shape": ["wrong JSON shape: no name", None],
        "/conflict": ["HTTP 409 insufficient_stock", None],
        # Not UTF-8 (RFC 8259 says JSON between systems is): not read as JSON either.
        "/latin1": ["HTTP 200, body not JSON", None],
    }
