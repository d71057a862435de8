"""Commands named in the prose docs exist: every `opentse a b|c ...` in backticks in
the README and docs/*.md names real commands and sub-commands of the typer app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from opentse import docgen

ROOT = Path(__file__).resolve().parents[2]
SPAN = re.compile(r"`(opentse [^`\n]+)`")
FENCE = re.compile(r"^```(?:sh|bash|console)?\n(.*?)^```", re.M | re.S)


def mentions(text: str) -> list[str]:
    found = SPAN.findall(text)
    for block in FENCE.findall(text):
        found += [
            line.strip() for line in block.splitlines() if line.strip().startswith("opentse ")
        ]
    return found


def check(root: Any, mention: str) -> str | None:
    """None when the command path of ``mention`` exists, else what is wrong."""
    command = root
    for word in mention.split()[1:]:
        if not isinstance(getattr(command, "commands", None), dict):
            return None  # a leaf: the rest are its arguments
        if word.startswith(("-", "$", "<", "[")) or not re.fullmatch(r"[a-z][a-z0-9-|]*", word):
            return None  # options, placeholders: the group itself is named
        names = word.split("|")
        unknown = [n for n in names if n not in command.commands]
        if unknown:
            return f"{mention!r}: no command {unknown}"
        command = command.commands[names[0]]
    return None


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def root() -> Any:
    return docgen._click_root()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_commands_exist(page: Path, root: Any) -> None:
    problems = [p for m in mentions(page.read_text(encoding="utf-8")) if (p := check(root, m))]
    assert not problems, f"{page.relative_to(ROOT)}: {problems}"


def test_the_checker_notices_a_wrong_command(root: Any) -> None:
    assert check(root, "opentse pos sell|refund") is not None
    assert check(root, "opentse tse create --data DIR") is None
