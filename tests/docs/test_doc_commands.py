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


# --- walked commands, run as written (placeholders filled from earlier output) ---

_FILLS = {
    "ADMIN_PUK": re.compile(r'"admin_puk": "([^"]+)"'),
    "ORG_ID": re.compile(r"organization (\S+) created"),
    "LOCATION_ID": re.compile(r"location (\S+) created"),
}


def fenced_after(page: Path, marker: str) -> list[str]:
    """The `opentse ...` lines of the first ```sh block after ``marker`` on ``page``."""
    text = page.read_text(encoding="utf-8")
    assert marker in text, f"{page.name}: {marker!r} is gone"
    block = FENCE.search(text, text.index(marker))
    assert block is not None, f"{page.name}: no code block after {marker!r}"
    lines = [line.strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line.startswith("opentse ")]


def run_as_written(
    lines: list[str], data: Path, env: dict[str, str] | None = None
) -> dict[str, str]:
    """Run each line through the real app with ``--data``; return the filled values."""
    import shlex

    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    app, runner, seen = build_app(), CliRunner(), {}
    for line in lines:
        words = [seen.get(w, w) for w in shlex.split(line, comments=True)[1:]]
        unfilled = [w for w in words if w in _FILLS]
        assert not unfilled, f"{line!r}: no earlier command printed {unfilled}"
        if "--data" not in words:
            words += ["--data", str(data)]
        result = runner.invoke(app, words, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (line, result.output)
        for name, pattern in _FILLS.items():
            if name not in seen and (m := pattern.search(result.output)):
                seen[name] = m.group(1)
    return seen


def test_operations_first_setup_runs_as_written(tmp_path: Path) -> None:
    """docs/operations.md's first set-up, then status, protocol and the procedure
    documentation it describes, on a fresh data folder."""
    import json

    from typer.testing import CliRunner

    from opentse import NOT_CERTIFIED_NOTICE
    from opentse.cli.main import build_app

    data = tmp_path / "data"
    lines = fenced_after(ROOT / "docs" / "operations.md", "A first set-up, from nothing")
    assert [" ".join(line.split()[:3]) for line in lines][:2] == [
        "opentse tse create", "opentse tse initialize",
    ]  # fmt: skip
    seen = run_as_written(lines, data)
    assert set(seen) == set(_FILLS)

    app, runner = build_app(), CliRunner()

    def out(*args: str) -> str:
        result = runner.invoke(app, [*args, "--data", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    listing = json.loads(out("site", "list", "--json"))
    assert [(r["register_id"], r["tse_id"]) for r in listing["registers"]] == [("KASSE-1", "T1")]
    (tse,) = listing["tses"]
    assert tse["location_id"] == seen["LOCATION_ID"] and tse["interface_type"].startswith(
        "embedded"
    )  # not served over the API: the documented default
    assert out("tse", "status", "--announce") == ""  # nothing due: the cron job is silent
    kinds = [e["kind"] for e in json.loads(out("tse", "protocol", "--json"))]
    assert kinds == ["org.created", "location.created", "tse.assigned", "register.assigned"]
    out("docs", "procedure", str(tmp_path / "vd.md"))
    procedure = (tmp_path / "vd.md").read_text(encoding="utf-8")
    assert NOT_CERTIFIED_NOTICE in procedure and "nicht** vom BSI zertifiziert" in procedure
    assert "Bäckerei Müller GmbH" in procedure and "| KASSE-1 |" in procedure


def test_scaling_step_by_step_on_postgres(tmp_path: Path) -> None:
    """docs/scaling.md steps 1-2 (migrate, the first API key that creates the secret
    and CA) in a throw-away schema; skipped without a PostgreSQL server."""
    import json
    import os

    from opentse.storage.pg_testing import server_url, temporary_schema

    url = server_url(os.environ.get("OPENTSE_TEST_DATABASE"))
    if url is None:
        pytest.skip("no PostgreSQL server reachable (set OPENTSE_TEST_DATABASE)")
    lines = [
        line
        for line in fenced_after(ROOT / "docs" / "scaling.md", "## Step by step")
        if not line.startswith("opentse serve")  # tests/multinode runs the nodes
    ]
    assert [line.split()[1] for line in lines] == ["migrate", "apikey"]
    data = tmp_path / "srv-opentse"
    lines = [line.replace("/srv/opentse", str(data)) for line in lines]
    with temporary_schema(url) as schema_url:
        run_as_written(lines, data, env={"OPENTSE_DATABASE": schema_url})
    assert (data / "installation.key").stat().st_mode & 0o077 == 0
    assert json.loads((data / "ca.json").read_text(encoding="utf-8"))
