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


@pytest.mark.parametrize(
    "args", [["tse", "list"], ["apikey", "create", "--json"], ["serve", "--port", "18998"]]
)
def test_an_option_after_data_is_not_taken_as_the_folder(tmp_path: Path, args: list[str]) -> None:
    """``--data --help`` (the folder forgotten) made a new installation in ./--help."""
    run = subprocess.run(
        [OPENTSE, *args, "--data", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "error E_DATA_DIR" in run.stderr and "looks like an option" in run.stderr
    assert list(tmp_path.iterdir()) == []  # no ./--help folder made


def test_a_folder_really_named_like_an_option_can_be_used(tmp_path: Path) -> None:
    """An existing one by its name; a new one by the full path the refusal names."""
    (tmp_path / "-shop").mkdir()
    run = subprocess.run(
        [OPENTSE, "tse", "list", "--data", "-shop", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "-shop" / "opentse.db").exists()
    refused = subprocess.run(
        [OPENTSE, "tse", "list", "--data", "-new"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert refused.returncode == 1 and str(tmp_path / "-new") in refused.stderr
    made = subprocess.run(
        [OPENTSE, "tse", "list", "--data", str(tmp_path / "-new"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "-new" / "opentse.db").exists()
