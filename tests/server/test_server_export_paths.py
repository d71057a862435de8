"""Export files are recorded by absolute path, whatever ``--data`` looked like.

With a relative data folder (``opentse serve --data data``) the COMPLETED export
recorded ``data/exports/<name>.tar``, relative to the working directory of the
moment; once that was another one, the recorded path and the fallback under the
(relative) data folder both missed, and the download answered 404 "export is
COMPLETED and has no file".
"""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from server_support import AppClient, login, new_key, setup_tss

from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.context import ServerConfig
from opentse.server.protocol import CoalescingHttpToolsProtocol
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread


def test_download_after_the_working_directory_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    clock = FrozenClock(1_700_000_000)
    inst = Installation.open(tmp_path / "data", clock=clock)
    app = create_app(inst, ServerConfig(data_dir=Path("data")), clock=clock)
    try:
        with (
            serving_in_thread(app, http=CoalescingHttpToolsProtocol) as origin,
            AppClient(base_url=origin, timeout=30) as c,
        ):
            c.ctx = app.state.ctx
            h = login(c, new_key(c))
            tss, _ = setup_tss(c, h)
            exp = str(uuid.uuid4())
            assert c.put(f"/api/v2/tss/{tss}/export/{exp}", headers=h).status_code == 200
            deadline = time.monotonic() + 30
            while c.get(f"/api/v2/tss/{tss}/export/{exp}", headers=h).json()["state"] != (
                "COMPLETED"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            recorded = c.ctx.svc.get_export(exp).file_path
            assert Path(recorded).is_absolute(), recorded
            assert Path(recorded).parent == tmp_path / "data" / "exports"

            (tmp_path / "elsewhere").mkdir()
            monkeypatch.chdir(tmp_path / "elsewhere")
            r = c.get(f"/api/v2/tss/{tss}/export/{exp}/file", headers=h)
            assert r.status_code == 200, r.text
            with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
                assert any(m.name.endswith(".csv") for m in tar.getmembers())
    finally:
        monkeypatch.chdir(tmp_path)
        inst.close()
