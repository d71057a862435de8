"""Docs link where they say: every page is on docs/index.md, and relative links (and
their #anchors) in the README and the docs resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page`` (code spans and punctuation go)."""
    found = set()
    for title in HEADING.findall(page.read_text(encoding="utf-8")):
        text = "".join(c for c in title.strip().lower() if c.isalnum() or c in " -_")
        found.add(text.replace(" ", "-"))
    return found


def pages() -> list[Path]:
    return sorted([ROOT / "README.md", *DOCS.glob("*.md"), *DOCS.glob("*/*.md")])


def test_index_lists_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(LINK.findall(index))
    missing = [
        p.relative_to(DOCS).as_posix()
        for p in [*DOCS.glob("*.md"), *DOCS.glob("*/*.md")]
        if p.name != "index.md" and p.relative_to(DOCS).as_posix() not in linked
    ]
    assert not missing, f"add these pages to docs/index.md: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: link to missing {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: no #{anchor}"
