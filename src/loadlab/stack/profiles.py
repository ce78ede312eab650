"""Named sets of knob values per stack, kept in the repository as profiles/<variant>.<name>.json.

"default" is the registry's own values (services.VARIANTS) and has no file. `tune` writes
"tuned"; a team may write its own. A profile records the machine it was made on (CPU count),
since the best settings of a 2-core machine are rarely those of a 32-core one.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadlab import ROOT
from loadlab.errors import UsageError
from loadlab.stack.services import VARIANTS

PROFILES = ROOT / "profiles"
DEFAULT = "default"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


@dataclass(frozen=True)
class Profile:
    variant: str
    name: str
    knobs: dict[str, int]
    cpu_count: int | None = None  # of the machine it was made on; None for "default"
    created: str | None = None  # ISO date
    made_by: str | None = None  # e.g. the tune report it came from
    details: dict[str, Any] = field(default_factory=dict)


def path(variant: str, name: str, folder: Path = PROFILES) -> Path:
    return folder / f"{variant}.{name}.json"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"profile name {name!r}: use lower-case letters, digits, '-' and '_' (e.g. tuned)"
        )
    return name


def exists(variant: str, name: str, folder: Path = PROFILES) -> bool:
    return name == DEFAULT or path(variant, name, folder).exists()


def load(variant: str, name: str, folder: Path = PROFILES) -> Profile:
    """The profile, its knobs checked against the registry. A profile made on a machine with
    another CPU count is used, with a warning on stderr."""
    check_name(name)
    stack = VARIANTS[variant]
    if name == DEFAULT:
        return Profile(variant, name, dict(stack.defaults))
    file = path(variant, name, folder)
    try:
        raw = json.loads(file.read_text())
        profile = Profile(**raw)
    except FileNotFoundError:
        raise UsageError(
            f"no profile {name!r} for {variant} ({file.name} in {folder}): "
            f"make it with `python -m loadlab tune --variant {variant}`"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{file}: not a loadlab profile ({exc})") from None
    unknown = sorted(set(profile.knobs) - set(stack.defaults))
    if profile.variant != variant or unknown:
        what = f"knob {unknown[0]!r}" if unknown else f"variant {profile.variant!r}"
        raise UsageError(f"{file}: {what} does not belong to {variant}")
    stack.knobs(profile.knobs)  # in range, or exit 2
    cpus = os.cpu_count()
    if profile.cpu_count is not None and profile.cpu_count != cpus:
        print(
            f"loadlab: warning: profile {name!r} of {variant} was made on a machine with "
            f"{profile.cpu_count} CPUs, this one has {cpus}: its settings may not be its best here",
            file=sys.stderr,
        )
    return profile


def save(profile: Profile, folder: Path = PROFILES) -> Path:
    """Written whole, then moved into place: never half a profile."""
    check_name(profile.name)
    folder.mkdir(parents=True, exist_ok=True)
    final = path(profile.variant, profile.name, folder)
    tmp = final.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(profile), indent=2) + "\n")
    tmp.replace(final)
    return final
