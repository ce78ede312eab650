"""Profiles: named knob values per stack, checked against the registry when read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loadlab.errors import UsageError
from loadlab.stack import profiles, services


def test_default_is_the_registrys_own_values(tmp_path: Path) -> None:
    for name, variant in services.VARIANTS.items():
        assert profiles.load(name, "default", tmp_path).knobs == dict(variant.defaults)


def test_a_saved_profile_reads_back_and_flags_beat_it(tmp_path: Path) -> None:
    saved = profiles.Profile("flask_sync", "wide", {"web_threads": 60}, cpu_count=os.cpu_count())
    path = profiles.save(saved, tmp_path)
    assert path == tmp_path / "flask_sync.wide.json" and not list(tmp_path.glob("*.tmp"))
    loaded = profiles.load("flask_sync", "wide", tmp_path)
    assert loaded == saved
    knobs = services.VARIANTS["flask_sync"].knobs(loaded.knobs, {"web_threads": 8})
    assert knobs["web_threads"] == 8 and knobs["db_pool_size"] == 10


def test_a_profile_from_a_machine_with_other_cpus_warns_and_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = (os.cpu_count() or 1) * 8
    profiles.save(profiles.Profile("fastapi_async", "big", {"web_workers": 8}, other), tmp_path)
    assert profiles.load("fastapi_async", "big", tmp_path).knobs == {"web_workers": 8}
    warning = capsys.readouterr().err
    assert f"made on a machine with {other} CPUs" in warning


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("not json", "not a loadlab profile"),
        ({"variant": "flask_sync", "name": "x", "knobs": {"db_read_pool_size": 5}}, "knob"),
        ({"variant": "fastapi_async", "name": "x", "knobs": {}}, "variant 'fastapi_async'"),
        ({"variant": "flask_sync", "name": "x", "knobs": {"web_workers": 99}}, "outside 1..32"),
    ],
)
def test_a_bad_profile_is_a_usage_error(tmp_path: Path, content: object, said: str) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    (tmp_path / "flask_sync.x.json").write_text(text)
    with pytest.raises(UsageError, match=said):
        profiles.load("flask_sync", "x", tmp_path)


def test_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="profile name"):
        profiles.load("flask_sync", "../etc", tmp_path)
    with pytest.raises(UsageError, match="no profile 'tuned' for flask_sync"):
        profiles.load("flask_sync", "tuned", tmp_path)
