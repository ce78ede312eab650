"""The report as a person sees it: headless Chromium opens it and the charts are drawn."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from loadlab.report.svg import COLOURS
from tests.cli import loadlab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def screenshot(page: Path | str, tmp_path: Path, wait_ms: int = 0) -> tuple[Image.Image, list[str]]:
    """Headless Chromium's picture of a page (a file, or a URL), and the console lines it
    logged; `wait_ms` lets a page that fetches its data (Locust's web UI) draw it first."""
    shot = tmp_path / f"{page.parent.name if isinstance(page, Path) else 'page'}.png"
    waiting = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2400",
            *waiting,
            f"--screenshot={shot}",
            page.as_uri() if isinstance(page, Path) else page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return Image.open(shot).convert("RGB"), console


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is installed by make setup / .ci/run"
)


@needs_chromium
def test_chromium_renders_the_charts_without_console_errors(report: Path, tmp_path: Path) -> None:
    image, console = screenshot(report / "index.html", tmp_path)
    assert console == []
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # not a blank page
    present = {rgb for _, rgb in colours}
    for variant, colour in COLOURS.items():
        assert _hex(colour) in present, f"no {variant} line was drawn"
    html = (report / "index.html").read_text()
    assert html.count("<svg") == 3 and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_report_command_renders_the_page_again(report: Path, tmp_path: Path) -> None:

    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    (copy / "index.html").unlink()
    result = loadlab("report", str(copy), timeout=60)
    assert result.returncode == 0, result.stderr
    assert (copy / "index.html").read_text() == (report / "index.html").read_text()
    missing = loadlab("report", str(tmp_path / "none"), timeout=60)
    assert missing.returncode == 2 and "summary.json" in missing.stderr
