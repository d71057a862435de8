"""A data folder the server may not write (``chmod 0500``, a wrong owner, a read-only
mount): ``opentse serve``, ``apikey create`` and ``migrate`` say so in one line and
exit 1. A new installation in such a folder was a traceback (the installation key
could not be created; ``migrate``: sqlite3's "unable to open database file").

Run as root (a container), the commands run without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH, so the folder's mode binds them as it binds a service user.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opentse.installation import Installation

OPENTSE = str(Path(sys.executable).parent / "opentse")
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _without_override() -> None:  # in the child, before exec: root is bound by modes
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            os._exit(97)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENTSE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_without_override if os.geteuid() == 0 else None,
    )


def _refused(proc: subprocess.CompletedProcess[str], data: Path) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = " ".join(proc.stderr.split())  # rich folds a long line
    assert line.startswith("error E_STORAGE_READONLY: "), proc.stderr
    assert str(data) in line.replace(" ", "") or str(data) in line, line
    return line


@pytest.fixture
def read_only(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o500)
    return data


@pytest.mark.parametrize(
    "command",
    [("serve", "--port", "1"), ("apikey", "create"), ("migrate",)],
    ids=["serve", "apikey", "migrate"],
)
def test_a_new_installation_in_a_read_only_folder_is_one_line(
    read_only: Path, command: tuple[str, ...]
) -> None:
    line = _refused(_run(*command, "--data", str(read_only)), read_only)
    assert "owner and mode" in line
    assert sorted(read_only.iterdir()) == []  # nothing half-made


def test_serve_on_an_installation_whose_folder_became_read_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Installation.open(data).close()
    os.chmod(data, 0o500)
    line = _refused(_run("serve", "--data", str(data), "--port", "1"), data)
    assert "read-only mount" in line
