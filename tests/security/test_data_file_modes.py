"""What a served data folder shows to the machine's other users.

opentse creates a new data folder 0700, but ``--data`` often names a folder made
beforehand with the usual 0755: a systemd ``StateDirectory=``, a Docker volume, a
``mkdir /srv/opentse``. The database and the secrets are 0600 in it; the export TARs
(every organization's receipts), the dashboard's export reports and export lists
must be as private: their folders are 0700 whatever the umask, and an older folder
left 0755 by an earlier version is tightened at the start.
"""

from __future__ import annotations

import os
import re
import stat
import time
import uuid
from pathlib import Path

import httpx
from live_server import LiveServer, download_export, finished_tx, new_tss, ok

# readable by a user other than the owner: every folder on the way searchable (x)
# and the file readable (r) by the group or by others
_GROUP = (stat.S_IXGRP, stat.S_IRGRP)
_OTHERS = (stat.S_IXOTH, stat.S_IROTH)


def exposed(root: Path) -> list[str]:
    """The files under ``root`` that the group or others can read."""
    found: list[str] = []
    for folder, _dirs, files in os.walk(root):
        parts = Path(folder).relative_to(root).parts
        chain = [root, *(root.joinpath(*parts[: i + 1]) for i in range(len(parts)))]
        modes = [stat.S_IMODE(p.stat().st_mode) for p in chain]
        for name in files:
            mode = stat.S_IMODE((Path(folder) / name).lstat().st_mode)
            for search, read in (_GROUP, _OTHERS):
                if all(m & search for m in modes) and mode & read:
                    found.append(str((Path(folder) / name).relative_to(root)))
                    break
    return sorted(found)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None, html[:300]
    return m.group(1)


def test_exports_and_dashboard_files_are_private_in_a_0755_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # made beforehand, as a service manager or a volume does
    old = data / "exports"  # as an earlier opentse left it
    old.mkdir()
    os.chmod(old, 0o755)
    live = LiveServer(data, tmp_path / "server.log")
    key = live.new_key_cli("modes")
    live.start()
    try:
        with live.client(live.token(key)) as c:
            tss, _ = new_tss(c, live)
            client = str(uuid.uuid4())
            ok(c.put(f"/tss/{tss}/client/{client}", json={"serial_number": "till-modes"}))
            finished_tx(c, tss, client)
            download_export(c, tss, tmp_path / "export.tar")
            export_id = ok(c.get(f"/tss/{tss}/export"))["data"][0]["_id"]
        dash = live.origin + "/dashboard"
        with httpx.Client(timeout=60, follow_redirects=True) as web:
            csrf = _csrf(web.get(dash + "/login").text)
            r = web.post(dash + "/login", data={**key, "csrf": csrf})
            assert r.status_code == 200, r.text[:300]
            assert web.get(f"{dash}/tss/{tss}").status_code == 200
            deadline = time.monotonic() + 60
            while not any((data / "export-checks").glob("*.json")):
                assert time.monotonic() < deadline, "the export's check was never kept"
                assert web.get(f"{dash}/exports/{export_id}").status_code == 200
                time.sleep(0.5)
    finally:
        live.stop()
    assert any((data / "exports").glob("*.tar"))
    assert any((data / "export-logs").glob("*.json"))
    assert stat.S_IMODE(data.stat().st_mode) == 0o755  # the operator's folder, kept
    assert exposed(data) == []
    for name in ("exports", "export-checks", "export-logs"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o700, name
