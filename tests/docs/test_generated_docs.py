"""The generated reference pages are current and complete (sqlite-utils test_docs.py).

When one fails after a change to a command, a route or the engine's tables, regenerate:
``.venv/bin/python -m opentse.docgen cli > docs/cli.md`` (``api > docs/api.md``,
``states > docs/state-diagrams.md``) and commit the page with the change.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from opentse import docgen

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _hint(page: str) -> str:
    return f"regenerate: .venv/bin/python -m opentse.docgen {page} > docs/{docgen.PAGES[page]}"


def _assert_current(page: str, generated: str) -> None:
    path = DOCS / docgen.PAGES[page]
    assert path.exists(), f"docs/{docgen.PAGES[page]} is missing; {_hint(page)}"
    current = path.read_text(encoding="utf-8")
    if current != generated:
        diff = "".join(
            list(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    "docs/" + docgen.PAGES[page],
                    "generated",
                )
            )[:40]
        )
        pytest.fail(f"docs/{docgen.PAGES[page]} is stale; {_hint(page)}\n{diff}")


@pytest.fixture(scope="module")
def cli_page() -> str:
    return docgen.render_cli()


@pytest.fixture(scope="module")
def http() -> docgen.Http:
    return docgen.http_routes()


def test_cli_reference_is_current(cli_page: str) -> None:
    _assert_current("cli", cli_page)


def test_every_cli_command_has_a_section(cli_page: str) -> None:
    names = docgen.cli_command_names()
    # the groups every helper registers in cli/main.py must all be there
    from opentse.cli.main import GROUP_MODULES

    assert len(names) >= len(GROUP_MODULES)
    for expected in ("opentse pos sell", "opentse verify", "opentse serve", "opentse export"):
        assert expected in names
    documented = set(
        re.findall(r"^#+ `(opentse[^`]*)`$", (DOCS / "cli.md").read_text("utf-8"), re.M)
    )
    missing = sorted(set(names) - documented)
    assert not missing, f"commands missing from docs/cli.md: {missing}; {_hint('cli')}"


def test_every_cli_option_is_documented(cli_page: str) -> None:
    """Each option flag of each command appears in its section."""
    root = docgen._click_root()
    sections = cli_page.split("\n#")
    by_name = {}
    for section in sections:
        match = re.match(r"#* `(opentse[^`]*)`", section.lstrip("#"))
        if match:
            by_name[match.group(1)] = section
    for path, command in docgen.iter_commands(root):
        name = " ".join(("opentse", *path))
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden and param.name != "help":
                for opt in param.opts:
                    assert f"`{opt}`" in by_name[name], f"{name} {opt} not in its section"


def test_api_reference_is_current(http: docgen.Http) -> None:
    _assert_current("api", docgen.render_api(http))


def test_every_route_is_in_the_api_reference(
    http: docgen.Http,
) -> None:
    document, routes = http
    page = (DOCS / "api.md").read_text(encoding="utf-8")
    paths = document["paths"]
    assert isinstance(paths, dict) and len(paths) >= 20
    rows = set(re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", page, re.M))
    for path, ops in paths.items():
        for method, op in ops.items():
            assert (method.upper(), path) in rows, f"{method.upper()} {path}; {_hint('api')}"
            assert f"`{op['operationId']}`" in page
    for method, path, _ in routes:
        assert (method, path) in rows, f"{method} {path} missing; {_hint('api')}"
    for must in ("/metrics", "/health", "/dashboard/tss", "/api/v2/openapi.json"):
        assert any(p == must for _, p in rows), must


def test_state_diagrams_are_current() -> None:
    _assert_current("states", docgen.render_states())


def test_state_diagrams_follow_the_tables() -> None:
    from opentse.engine.rules import ALLOWED, LIFECYCLE_TRANSITIONS
    from opentse.engine.transactions import TX_TRANSITIONS

    page = (DOCS / "state-diagrams.md").read_text(encoding="utf-8")
    for src, dst in LIFECYCLE_TRANSITIONS:
        assert re.search(rf"^    {src.value} --> {dst.value}\b", page, re.M), (src, dst)
    for (tx_from, op), tx_to in TX_TRANSITIONS.items():
        assert f"{tx_from or '[*]'} --> {tx_to}: {op}" in page
    for op in ALLOWED:
        assert f"| `{op.value}` |" in page


def test_main_rejects_unknown_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["nope"]) == 2
    assert "usage" in capsys.readouterr().err


def test_helpers() -> None:
    assert docgen._openapi_path("/tss/{tss_id}/tx/{number:int}/log/{c:int}") == (
        "/tss/{tss_id}/tx/{number}/log/{c}"
    )
    assert docgen._anchor("`opentse pos sell`") == "opentse-pos-sell"
    assert docgen._portable(str(Path.home() / "x")) == "~/x"
    diagram = docgen.transaction_diagram()
    assert diagram.startswith("stateDiagram-v2\n") and "FINISHED --> [*]" in diagram
