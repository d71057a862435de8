"""A data folder whose installation secret was lost must not get a new one.

A new secret fits none of the keys already stored (the CA, every TSE key), and the
new file would sit where the backup is to be restored; so every command refuses with
E_SECRET_MISSING and creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opentse.crypto.installation_secret import SecretFileError
from opentse.installation import Installation

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _installed(data: Path) -> bytes:
    with Installation.open(data):
        pass
    return (data / "installation.key").read_bytes()


def test_a_lost_secret_is_refused_and_not_recreated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    original = _installed(data)
    (data / "installation.key").unlink()
    with pytest.raises(SecretFileError) as info:
        Installation.open(data)
    assert info.value.code == "E_SECRET_MISSING"
    assert original.decode().strip() not in info.value.message  # no secret in errors
    assert not (data / "installation.key").exists()
    # restoring the backup is all it takes
    (data / "installation.key").write_bytes(original)
    os.chmod(data / "installation.key", 0o600)
    with Installation.open(data) as inst:
        assert inst.ca.chain()


def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _installed(data)
    (data / "installation.key").unlink()
    for args in (["tse", "list"], ["apikey", "create", "--json"]):
        run = subprocess.run(
            [OPENTSE, *args, "--data", str(data)], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 1, run.stderr
        assert "error E_SECRET_MISSING" in run.stderr and "Traceback" not in run.stderr
    assert not (data / "installation.key").exists()


def test_a_new_folder_still_gets_its_secret(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    key = _installed(data)
    assert len(key.strip()) == 64 and (data / "installation.key").stat().st_mode & 0o077 == 0
