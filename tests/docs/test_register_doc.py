"""docs/register.md cannot rot: its examples run, in order, in an empty folder.

``sh`` blocks are read as a small shell subset and run in-process through typer's
CliRunner (an ``opentse`` process per line would take seconds each): ``opentse ...``
lines (``\\`` continues a line, ``$VAR`` expands) must exit 0, and
``VAR=$(opentse ... --json | jq -r .field)`` keeps a field of the JSON output. Any
other line fails the test, so the doc only shows what is checked here. ``python``
blocks are executed; a ``text`` block right after one is its exact output.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "register.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)
CAPTURE = re.compile(r"^([A-Z_][A-Z0-9_]*)=\$\((opentse .*) \| jq -r \.([A-Za-z_]+)\)$")
VARIABLE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def shell_lines(script: str) -> list[str]:
    """Logical lines: continuations joined, comment lines and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", script)
    stripped = (line.strip() for line in joined.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


class Shell:
    """Runs the doc's shell subset against one typer app."""

    def __init__(self) -> None:
        self.app = build_app()
        self.variables: dict[str, str] = {}
        self.transcript: list[tuple[str, str]] = []

    def opentse(self, command: str) -> str:
        expanded = VARIABLE.sub(lambda m: self.variables[m.group(1)], command)
        words = shlex.split(expanded)
        assert words[0] == "opentse", command
        result = CliRunner().invoke(self.app, words[1:])
        output = result.output
        assert result.exit_code == 0, (
            f"docs/register.md: `{command}` exited {result.exit_code}:\n{output}\n"
            f"{result.exception!r}"
        )
        self.transcript.append((command, output))
        return output

    def run(self, line: str) -> None:
        capture = CAPTURE.match(line)
        if capture:
            name, command, field = capture.groups()
            value = json.loads(self.opentse(command))[field]
            assert isinstance(value, str) and value, f"{command}: no {field}"
            self.variables[name] = value
        elif line.startswith("opentse "):
            self.opentse(line)
        else:
            pytest.fail(f"docs/register.md: shell line not understood by the test: {line!r}")


def matches(output: str, expected: str) -> bool:
    """Exact (up to trailing newlines), except that a line of just ``…`` matches any
    one line."""
    got, want = output.rstrip("\n").splitlines(), expected.rstrip("\n").splitlines()
    return len(got) == len(want) and all(w in ("…", g) for g, w in zip(got, want, strict=True))


def test_the_page_has_runnable_examples() -> None:
    kinds = [kind for kind, _ in blocks()]
    assert kinds.count("sh") >= 3 and kinds.count("python") >= 2
    commands = " ".join(body for kind, body in blocks() if kind == "sh")
    for sub in ("pos sell", "pos status", "pos daily", "pos close"):
        assert f"opentse {sub}" in commands


def test_every_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shell = Shell()
    found = blocks()
    for index, (kind, body) in enumerate(found):
        if kind == "sh":
            for line in shell_lines(body):
                shell.run(line)
        elif kind == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(body, f"docs/register.md python block {index}", "exec"), {})
            following = found[index + 1] if index + 1 < len(found) else ("", "")
            if following[0] == "text":
                assert matches(out.getvalue(), following[1]), (
                    f"python block {index} printed:\n{out.getvalue()}"
                )
    outputs = dict(shell.transcript)
    sells = [out for cmd, out in shell.transcript if cmd.startswith("opentse pos sell")]
    assert any("TSE-Signatur" in out for out in sells)  # a signed receipt, §6 Nr. 7
    assert any("TSE-Daten im QR-Code" in out for out in sells)  # --qr-only
    assert any("TSE ausgefallen" in out for out in sells)  # the outage example
    assert (tmp_path / "receipt.svg").read_text(encoding="utf-8").lstrip().startswith("<")
    assert (tmp_path / "closing.zip").stat().st_size > 0
    status = [
        json.loads(out) for cmd, out in outputs.items() if "pos status" in cmd and "--json" in cmd
    ]
    assert status and status[-1]["status"] == "red" and status[-1]["consecutive_failures"] == 1
    closing = next(out for cmd, out in outputs.items() if cmd.startswith("opentse pos close"))
    assert re.search(r"Differenz \(DifferenzSollIst\)\s+0,00", closing), closing


def test_matches_wildcard_stands_for_one_line() -> None:
    assert matches("a\nsig\nb\n", "a\n…\nb\n")
    assert not matches("a\nb\n", "a\n…\nb\n")
    assert not matches("a\nc\n", "a\nb\n")
