"""The one scan both export clean-ups use (``export_jobs.attempt_files``): regular
files only, never a symlink (in or out of the folder), a directory or a fifo, and
never the file a finished export records."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from server_support import AppClient, login, new_key, setup_tss

from opentse.server.export_jobs import ExportManager, attempt_files
from opentse.server.service_store import ExportRow


def _odd_entries(folder: Path, outside: Path, export_id: str) -> dict[str, Path]:
    """Entries named like attempt files of ``export_id`` that are no regular file."""
    outside.mkdir(exist_ok=True)
    target = outside / "precious.tar"
    target.write_bytes(b"not ours")
    inside = folder / "not-an-attempt.bin"
    inside.write_bytes(b"inside")
    odd = {
        "link_out": folder / f"{export_id}.node-l.0a0b0c0d.tar",
        "link_in": folder / f"{export_id}.node-m.part",
        "dir": folder / f"{export_id}.node-d.part",
        "fifo": folder / f"{export_id}.tar",
    }
    odd["link_out"].symlink_to(target)
    odd["link_in"].symlink_to(inside)
    odd["dir"].mkdir()
    (odd["dir"] / "inner.tar").write_bytes(b"in a directory")
    os.mkfifo(odd["fifo"])
    return odd


def _row(export_id: str, tss: str, org: str, state: str, file_path: str | None) -> ExportRow:
    ended = None if state in ("PENDING", "WORKING") else 3
    return ExportRow(export_id, tss, org, state, {}, None, 1, 2, ended, None, file_path, {})


def test_attempt_files_lists_regular_attempt_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    regular = [folder / f"{one}.node-a.part", folder / f"{one}.node-b.0a0b0c0d.tar"]
    other = folder / f"{two}.tar.host.12.part"
    for path in [*regular, other]:
        path.write_bytes(b"x")
    (folder / f"{one}.notes.txt").write_bytes(b"not an attempt name")
    _odd_entries(folder, tmp_path / "outside", one)

    found = attempt_files(folder)
    assert {k: sorted(v) for k, v in found.items()} == {one: sorted(regular), two: [other]}
    assert sorted(attempt_files(folder, one)[one]) == sorted(regular)
    assert attempt_files(folder, str(uuid.uuid4())) == {}


@pytest.mark.parametrize("state", ["COMPLETED", "CANCELLED"])
def test_clean_ups_skip_links_directories_fifos_and_the_recorded_file(
    app_client: AppClient, tmp_path: Path, state: str
) -> None:
    key = new_key(app_client)
    tss, _ = setup_tss(app_client, login(app_client, key))
    ctx = app_client.ctx
    folder = Path(ctx.config.data_dir) / "exports"
    export_id = str(uuid.uuid4())
    recorded = folder / f"{export_id}.node-r.0a0b0c0d.tar"
    recorded.write_bytes(b"the export")
    file_path = str(recorded) if state == "COMPLETED" else None
    assert ctx.svc.add_export(_row(export_id, tss, key["organization_id"], state, file_path), 10)
    stale = [folder / f"{export_id}.node-x.part", folder / f"{export_id}.node-y.1a2b3c4d.tar"]
    odd = _odd_entries(folder, tmp_path / "outside", export_id)

    manager: ExportManager = ctx.exports
    for clean_up in (manager.remove_stale_attempts, lambda _id: manager.remove_orphans()):
        for path in stale:
            path.write_bytes(b"stale")
        expected = len(stale) + (1 if state == "CANCELLED" else 0)  # nothing recorded
        assert clean_up(export_id) == expected
        assert not any(path.exists() for path in stale)
        assert recorded.exists() == (state == "COMPLETED")
        if state == "COMPLETED":
            assert recorded.read_bytes() == b"the export"
        else:
            recorded.write_bytes(b"an unrecorded attempt")  # for the next clean-up
        # every odd entry is where it was, and so is what the links point to
        assert odd["link_out"].is_symlink() and odd["link_out"].read_bytes() == b"not ours"
        assert odd["link_in"].is_symlink() and odd["link_in"].read_bytes() == b"inside"
        assert (odd["dir"] / "inner.tar").read_bytes() == b"in a directory"
        assert odd["fifo"].exists() and not odd["fifo"].is_file()
    assert (tmp_path / "outside" / "precious.tar").read_bytes() == b"not ours"


def test_a_running_exports_lease_owner_keeps_its_files(app_client: AppClient) -> None:
    key = new_key(app_client)
    tss, _ = setup_tss(app_client, login(app_client, key))
    ctx = app_client.ctx
    folder = Path(ctx.config.data_dir) / "exports"
    export_id = str(uuid.uuid4())
    row = _row(export_id, tss, key["organization_id"], "PENDING", None)
    # reserved for node-o at once: this server's own sweep leaves it alone
    assert ctx.svc.add_export(row, 10, owner="node-o", lease_seconds=300.0)
    owners = folder / f"{export_id}.node-o.part"
    dead = folder / f"{export_id}.node-dead.part"
    for path in (owners, dead):
        path.write_bytes(b"x")
    manager: ExportManager = ctx.exports
    assert manager.remove_orphans() == 0  # running: a live node may be writing
    assert manager.remove_stale_attempts(export_id) == 1
    assert owners.exists() and not dead.exists()
