"""``schema.raw.process_data`` that is not padded standard base64 is refused with a
message naming the field (it used to be binascii's own text, "body/schema: Incorrect
padding", naming neither the field nor what is wanted); padded data is signed."""

from __future__ import annotations

import base64
import uuid

import pytest
from server_support import AppClient, login, new_key, setup_tss


def _put_raw(client: AppClient, data: str) -> tuple[int, dict[str, object]]:
    h = login(client, new_key(client))
    tss, cid = setup_tss(client, h)
    body = {
        "state": "ACTIVE",
        "client_id": cid,
        "schema": {"raw": {"process_type": "Kassenbeleg-V1", "process_data": data}},
    }
    r = client.put(
        f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}", params={"tx_revision": 1}, json=body, headers=h
    )
    return r.status_code, r.json()


@pytest.mark.parametrize("data", ["A", "AA", "AAA", "AAAAA", "QmVsZWc"])
def test_unpadded_process_data_names_the_field(app_client: AppClient, data: str) -> None:
    status, body = _put_raw(app_client, data)
    assert status == 400, body
    assert body["code"] == "E_FAILED_SCHEMA_VALIDATION"
    assert body["message"] == "body/schema.raw.process_data: must be padded standard base64"


@pytest.mark.parametrize("data", ["", "AA==", "AAA=", "QmVsZWc="])
def test_padded_process_data_is_signed_as_sent(app_client: AppClient, data: str) -> None:
    status, body = _put_raw(app_client, data)
    assert status == 200, body
    raw = body["schema"]["raw"]  # type: ignore[index]
    assert base64.b64decode(raw["process_data"]) == base64.b64decode(data)
