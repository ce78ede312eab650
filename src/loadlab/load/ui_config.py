"""What `loadlab ui` tells the Locust processes it starts (load/webui.py reads it there).
Kept apart from webui.py: importing Locust patches the standard library for gevent, which the
`loadlab` command itself must not be."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

CONFIG_ENV = "LOADLAB_UI"  # the config, as JSON, in the Locust processes' environment
PARENT_ENV = "LOADLAB_UI_PARENT"  # the pid of `loadlab ui`: its Locust stops when it is gone


@dataclass(frozen=True)
class UiConfig:
    """What `loadlab ui` tells the Locust master (no secret: the database's address comes
    from the stack's state, as for every other command)."""

    scenario: str
    state_dir: str
    settings: dict[str, Any]
    stacks: dict[str, str]  # running stacks at start: name -> URL
    reports: str  # the folder report folders are written into
    workers: int = 0
    # `ui --target`: services loadlab did not start; the database behind them, if any, comes
    # from the environment (LOADLAB_DATABASE_URL) in every Locust process.
    external: bool = False

    @classmethod
    def from_environment(cls) -> UiConfig:
        return cls(**json.loads(os.environ[CONFIG_ENV]))
