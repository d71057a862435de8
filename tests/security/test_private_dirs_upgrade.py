"""The dashboard's folders an older version left open are closed when the server
starts, not only once it writes there again; a folder shared with a group on purpose
(setgid) keeps its group (review C of e49e02d)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
from live_server import LiveServer

from opentse.crypto.private_file import private_dir


def test_older_open_folders_are_closed_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    live = LiveServer(data, tmp_path / "server.log")
    live.new_key_cli("modes")  # sets the installation up
    for name in ("export-checks", "export-logs"):  # as an earlier opentse left them
        folder = data / name
        folder.mkdir()
        os.chmod(folder, 0o755)
        (folder / "old.json").write_text("{}")
        os.chmod(folder / "old.json", 0o644)
    live.start()
    try:
        assert httpx.get(live.origin + "/health", timeout=30).status_code == 200
    finally:
        live.stop()
    for name in ("export-checks", "export-logs"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o700, name


def test_a_group_folder_keeps_its_group(tmp_path: Path) -> None:
    shared = tmp_path / "shared-exports"
    shared.mkdir()
    os.chmod(shared, 0o2775)  # setgid: nodes of one group share it
    private_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o2770  # others out, the group kept
    plain = tmp_path / "plain"
    plain.mkdir()
    os.chmod(plain, 0o755)
    private_dir(plain)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o700
