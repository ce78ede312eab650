"""The README stays short, links every docs page, and no relative link points nowhere."""

from __future__ import annotations

import re
from pathlib import Path

from loadlab import ROOT

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    return [
        t.split("#")[0]
        for t in LINK.findall(page.read_text())
        if not re.match(r"[a-z]+:", t) and not t.startswith("#")
    ]


def test_the_readme_is_short_and_links_every_page() -> None:
    assert len(README.read_text().splitlines()) <= 250
    linked = {(ROOT / t).resolve() for t in _relative_links(README)}
    missing = [p.name for p in PAGES if p.name != "README.md" and p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_every_relative_link_resolves() -> None:
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in [README, *PAGES]
        for target in _relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert not broken, "links to nothing:\n" + "\n".join(broken)
