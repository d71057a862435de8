"""The CLI app as the tests of this folder drive it (typer's runner, in-process)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from opentse.cli.main import build_app

APP = build_app()


def run(*args: str, ok: bool = True) -> Any:
    """Invoke ``opentse ARGS``; with ``ok`` its exit status must be 0."""
    result = CliRunner().invoke(APP, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result
