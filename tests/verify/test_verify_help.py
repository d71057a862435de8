"""The help an auditor starts from (``opentse verify --help``, ``verify-receipt
--help``) reads as paragraphs at 80 columns and names every exit status."""

from __future__ import annotations

import subprocess
import sys


def _help(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "from opentse.cli.main import main; main()", *command, "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1", "PATH": ""},
        check=True,
    )
    return result.stdout


def _paragraphs(text: str) -> list[list[str]]:
    """The description's paragraphs (between the usage line and the first box)."""
    block = text.split("Usage:", 1)[1].split("╭", 1)[0].splitlines()[1:]
    paragraphs: list[list[str]] = [[]]
    for line in block:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def test_verify_help_has_no_broken_lines() -> None:
    paragraphs = _paragraphs(_help("verify"))
    for paragraph in paragraphs:
        for line in paragraph[:-1]:  # only a paragraph's last line may be short
            assert len(line) >= 50, (line, paragraph)
    exit_text = " ".join(next(p for p in paragraphs if p[0].startswith("Exit status")))
    assert "E_EXPORT_READ (the file failed or changed while it was read" in exit_text


def test_verify_receipt_help_names_its_exit_statuses() -> None:
    text = " ".join(line for p in _paragraphs(_help("verify-receipt")) for line in p)
    assert "Exit status: 0 verified, 1 not verified" in text and "2 no input" in text
