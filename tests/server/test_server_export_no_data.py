"""Exports that match no log, as fiskaly answers them.

fiskaly's triggerExport answers 400 ``E_TX_NOT_FOUND`` (beside ``E_CLIENT_NOT_FOUND``)
and an export's ``exception`` may be ``E_NO_DATA_AVAILABLE``. opentse accepted an
export of a transaction number that does not exist, or of a date range without logs,
and completed it: a TAR of certificates only, which looked like a successful export,
and an exportData log signed for it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from server_support import AppClient, login, new_key, setup_tss


def _ready(c: AppClient) -> tuple[dict[str, str], str]:
    h = login(c, new_key(c))
    tss, cid = setup_tss(c, h)
    r = c.put(
        f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1",
        json={"state": "ACTIVE", "client_id": cid},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["number"] == 1, r.text
    return h, tss


def _finished(c: AppClient, h: dict[str, str], path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (body := c.get(path, headers=h).json())["state"] in ("PENDING", "WORKING"):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("number", ["2", "0"])
def test_a_transaction_number_that_does_not_exist_is_refused(
    app_client: AppClient, number: str
) -> None:
    h, tss = _ready(app_client)
    export = f"/api/v2/tss/{tss}/export/{uuid.uuid4()}"
    r = app_client.put(export, params={"transaction_number": number}, headers=h)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "status_code": 400,
        "error": "Bad Request",
        "code": "E_TX_NOT_FOUND",
        "message": f"this TSS has no transaction {number}",
    }
    assert app_client.get(export, headers=h).status_code == 404
    r = app_client.put(export, params={"transaction_number": "1"}, headers=h)
    assert r.status_code == 200, r.text  # the one that exists
    assert _finished(app_client, h, export)["state"] == "COMPLETED"


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "1000", "end_date": "2000"},  # the logs are of 1_700_000_000
        {"start_transaction_number": "7", "end_transaction_number": "9"},
    ],
)
def test_an_export_that_matches_no_log_ends_with_no_data(
    app_client: AppClient, params: dict[str, str]
) -> None:
    h, tss = _ready(app_client)
    counter = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"]
    export = f"/api/v2/tss/{tss}/export/{uuid.uuid4()}"
    assert app_client.put(export, params=params, headers=h).status_code == 200
    body = _finished(app_client, h, export)
    assert body["state"] == "ERROR" and body["exception"] == "E_NO_DATA_AVAILABLE", body
    r = app_client.get(export + "/file", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "E_EXPORT_NOT_COMPLETED", r.text
    # no exportData log for an export of nothing
    assert app_client.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"] == counter
