"""A --data that cannot be a data folder (a file, a path through a file) is one clear
line, E_DATA_DIR and exit 1, in every command that opens an installation; it was a
FileExistsError / NotADirectoryError traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opentse.errors import StorageError
from opentse.installation import Installation

OPENTSE = str(Path(sys.executable).parent / "opentse")


@pytest.mark.parametrize("below", ["", "sub"])
def test_open_refuses_a_file_as_the_data_folder(tmp_path: Path, below: str) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me\n")
    with pytest.raises(StorageError) as info:
        Installation.open(a_file / below if below else a_file)
    assert info.value.code == "E_DATA_DIR"
    assert str(a_file) in info.value.message
    assert a_file.read_text() == "keep me\n"  # nothing written over it


def test_every_command_says_so_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me\n")
    commands = (
        ["tse", "list"],
        ["apikey", "create", "--json"],
        ["site", "list"],
        ["serve", "--port", "18999"],
        ["pos", "status", "--tss", "x", "--client", "y"],
    )
    for args in commands:
        run = subprocess.run(
            [OPENTSE, *args, "--data", str(a_file)], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 1, (args, run.stdout, run.stderr)
        assert "error E_DATA_DIR" in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr + run.stdout, args
    assert a_file.read_text() == "keep me\n"
