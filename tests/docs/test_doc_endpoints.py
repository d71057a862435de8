"""HTTP endpoints named in the prose docs exist: every `METHOD /path` in backticks in
the README and docs/*.md is a route of the app (path parameters may be named freely,
and /api/v2 may be left off as fiskaly's documentation does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opentse import docgen

ROOT = Path(__file__).resolve().parents[2]
MENTION = re.compile(r"`(GET|PUT|POST|PATCH|DELETE) (/[^`\s]*)`")
PARAM = re.compile(r"{[^}]*}")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shape(path: str) -> str:
    return PARAM.sub("{}", path.split("?")[0]).rstrip("/") or "/"


@pytest.fixture(scope="module")
def routes() -> set[tuple[str, str]]:
    document, others = docgen.http_routes()
    known = {(m.upper(), shape(p)) for p, ops in document["paths"].items() for m in ops}
    known |= {(m, shape(docgen._openapi_path(p))) for m, p, _ in others}
    return known


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_endpoints_exist(page: Path, routes: set[tuple[str, str]]) -> None:
    wrong = []
    for method, path in MENTION.findall(page.read_text(encoding="utf-8")):
        candidates = {shape(path), shape("/api/v2" + path)}
        if not any((method, c) in routes for c in candidates):
            wrong.append(f"{method} {path}")
    assert not wrong, f"{page.relative_to(ROOT)} names routes the app does not have: {wrong}"


def test_shapes_match_and_differ(routes: set[tuple[str, str]]) -> None:
    assert ("PUT", shape("/api/v2/tss/{x}/tx/{y}")) in routes
    assert ("PUT", shape("/api/v2/tss/{x}/nothing")) not in routes
