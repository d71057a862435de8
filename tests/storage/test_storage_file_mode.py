"""A new SQLite database and its WAL are 0600: they hold hashed PINs and API secrets,
encrypted keys and every log. sqlite3 created them 0644 (the data folder is 0700, but
a copy of the file, a backup, keeps its mode)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from opentse.installation import Installation
from opentse.testing import ready_tse


def test_a_new_database_and_its_wal_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Installation.open(tmp_path / "data") as inst:
            ready_tse(inst.service, "t", logout=True)
            files = sorted((tmp_path / "data").glob("opentse.db*"))
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        os.umask(old)
    assert "opentse.db" in modes and "opentse.db-wal" in modes, modes
    assert set(modes.values()) == {0o600}, modes
