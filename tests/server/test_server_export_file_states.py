"""retrieveExportFile of an export that will never have a file (ERROR, CANCELLED)
answers 404 E_EXPORT_NOT_COMPLETED without Retry-After and says so: it used to send
``Retry-After`` as for a PENDING export, so a client following fiskaly's advice
("try again later") polled for ever."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from server_support import AppClient, login, new_key, setup_tss


def test_an_export_in_error_has_no_retry_after(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)  # several system logs: more than 1 record
    url = f"/api/v2/tss/{tss}/export/{uuid.uuid4()}"
    r = app_client.put(url, params={"maximum_number_records": "1"}, headers=h)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while (state := app_client.get(url, headers=h).json()["state"]) in ("PENDING", "WORKING"):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state == "ERROR"
    r = app_client.get(url + "/file", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "E_EXPORT_NOT_COMPLETED", r.text
    assert "retry-after" not in r.headers
    assert r.json()["message"] == (
        "export is ERROR (E_TOO_MANY_RECORDS) and has no file; trigger a new export"
    )


def test_a_completed_export_whose_file_is_not_here_says_where_it_went(
    app_client: AppClient,
) -> None:
    """A node of a cluster whose exports folder is not shared (or a file removed by
    hand): the export is COMPLETED elsewhere, not "never completed"."""
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    url = f"/api/v2/tss/{tss}/export/{uuid.uuid4()}"
    assert app_client.put(url, headers=h).status_code == 200
    deadline = time.monotonic() + 30
    while (state := app_client.get(url, headers=h).json()["state"]) in ("PENDING", "WORKING"):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state == "COMPLETED"
    assert app_client.get(url + "/file", headers=h).status_code == 200
    row = app_client.ctx.svc.get_export(url.rsplit("/", 1)[1])
    assert row is not None and row.file_path
    Path(row.file_path).unlink()  # as on a node that does not share the folder
    r = app_client.get(url + "/file", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "E_EXPORT_NOT_COMPLETED", r.text
    assert "retry-after" not in r.headers
    message = r.json()["message"]
    assert message.startswith("export is COMPLETED but its file ")
    assert "share one exports folder" in message and "has no file" not in message
