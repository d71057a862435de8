"""Installation secret file: created 0600 atomically, loose permissions refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from opentse.crypto import installation_secret as inst


def test_created_0600_and_stable(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask must not leak into the file mode
    try:
        path = tmp_path / "sub" / "installation.key"
        secret = inst.load_or_create(path)
    finally:
        os.umask(old_umask)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert inst.load_or_create(path) == secret
    assert path.read_text().strip() == secret.hex()
    assert [p.name for p in path.parent.iterdir()] == ["installation.key"]  # no temp files
    other = inst.load_or_create(tmp_path / "other.key")
    assert other != secret


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_loose_permissions_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "installation.key"
    inst.load_or_create(path)
    path.chmod(mode)
    with pytest.raises(inst.SecretFileError) as info:
        inst.load_or_create(path)
    assert info.value.code == "E_SECRET_FILE_PERMISSIONS"
    assert "chmod 600" in str(info.value)
    assert path.read_text().strip() not in str(info.value)


def test_damaged_or_not_a_file(tmp_path: Path) -> None:
    path = tmp_path / "installation.key"
    path.write_text("not hex\n")
    path.chmod(0o600)
    with pytest.raises(inst.SecretFileError) as info:
        inst.load_or_create(path)
    assert info.value.code == "E_SECRET_FILE_FORMAT"
    directory = tmp_path / "dir.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(inst.SecretFileError):
        inst.load_or_create(directory)


def test_resolve_path_env_override(tmp_path: Path) -> None:
    assert inst.resolve_path(tmp_path, {}) == tmp_path / "installation.key"
    elsewhere = tmp_path / "etc" / "opentse.key"
    assert inst.resolve_path(tmp_path, {inst.ENV_VAR: str(elsewhere)}) == elsewhere
