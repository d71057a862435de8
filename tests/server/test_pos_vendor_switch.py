"""A POS vendor moves its fiskaly SIGN DE v2 integration to opentse by changing the
base URL: plain httpx against a real ``opentse serve`` process, in the order and with
the checks of fiskaly's own "Standard scenario" Postman collection (restated by hand:
TSS, metadata, admin PIN, clients, a receipt in three revisions, lists, export,
disable), then every schema variant, the retries a till makes after a lost answer,
and the error bodies of the 4xx answers a till meets.

What this walk found (each failed before): a payment sent without ``currency_code``
came back without it (fiskaly answers its default ``"EUR"``); metadata values sent as
``null`` (the collection's "Set TSS Metadata to Null/Empty String") were refused with
400 instead of removing the key; FINISHED without ``schema`` signed the transaction's
type with empty data, a receipt without amounts.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opentse.testing.serving import serve_process

OPENTSE = str(Path(sys.executable).parent / "opentse")
PIN = "1234567890"
ERROR_KEYS = {"status_code", "error", "code", "message"}


@pytest.fixture(scope="module")
def pos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A till's HTTP client, logged in to a fresh ``opentse serve`` at /api/v2."""
    data = tmp_path_factory.mktemp("switch") / "data"
    out = subprocess.run(
        [OPENTSE, "apikey", "create", "--data", str(data), "--org", "shop", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = json.loads(out.stdout)
    log = data.parent / "serve.log"
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(serve_process(data, output=log))
        client = stack.enter_context(httpx.Client(base_url=origin + "/api/v2", timeout=30))
        r = client.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        yield client
    assert "Traceback" not in log.read_text(errors="replace")


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def refused(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """fiskaly's error body: exactly status_code, error, code, message."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    body: dict[str, Any] = r.json()
    assert set(body) == ERROR_KEYS, body
    assert body["status_code"] == status and body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert r.headers["content-type"].startswith("application/json")
    return body


def new_tss(pos: httpx.Client, metadata: dict[str, str] | None = None) -> str:
    """createTss, UNINITIALIZED, admin PIN with the PUK, admin login, INITIALIZED."""
    tss = str(uuid.uuid4())
    puk = ok(pos.put(f"/tss/{tss}", json={"metadata": metadata or {}}))["admin_puk"]
    ok(pos.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))
    ok(pos.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": PIN}))
    ok(pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN}))
    ok(pos.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}))
    return tss


def new_client(pos: httpx.Client, tss: str, serial: str) -> str:
    client = str(uuid.uuid4())
    ok(pos.put(f"/tss/{tss}/client/{client}", json={"serial_number": serial}))
    return client


def put_tx(
    pos: httpx.Client, tss: str, tx: str, revision: int, body: dict[str, Any]
) -> httpx.Response:
    return pos.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": revision}, json=body)


def receipt(vat: list[tuple[str, str]], pay: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "standard_v1": {
            "receipt": {
                "receipt_type": "RECEIPT",
                "amounts_per_vat_rate": [{"vat_rate": v, "amount": a} for v, a in vat],
                "amounts_per_payment_type": pay,
            }
        }
    }


def signed_data(tx: dict[str, Any]) -> str:
    return base64.b64decode(tx["schema"]["raw"]["process_data"]).decode()


def test_fiskalys_standard_scenario(pos: httpx.Client) -> None:
    tss = str(uuid.uuid4())
    created = ok(pos.put(f"/tss/{tss}", json={"metadata": {"custom_field": "custom_value"}}))
    assert created["state"] == "CREATED" and created["_id"] == tss and created["admin_puk"]
    uninit = ok(pos.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))
    assert uninit["state"] == "UNINITIALIZED" and uninit["time_uninit"] > 0
    assert "time_init" not in uninit and "time_disable" not in uninit

    # metadata: modify, set to null / empty string, put back (each answered 200)
    meta = f"/tss/{tss}/metadata"
    both = {"custom_field": "modified_custom_value", "custom_field2": "custom_value2"}
    assert ok(pos.patch(meta, json=both)) == both
    cleared = ok(pos.patch(meta, json={"custom_field": None, "custom_field2": ""}))
    assert cleared == {"custom_field2": ""}  # null removes the key, "" is a value
    assert ok(pos.get(meta)) == cleared
    again = {"custom_field": "custom_value", "custom_field2": "custom_value2"}
    assert ok(pos.patch(meta, json=again)) == again

    ok(
        pos.patch(
            f"/tss/{tss}/admin", json={"admin_puk": created["admin_puk"], "new_admin_pin": PIN}
        )
    )
    ok(pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN}))
    init = ok(pos.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}))
    assert init["state"] == "INITIALIZED" and init["time_init"] >= init["time_uninit"] > 0
    got = ok(pos.get(f"/tss/{tss}"))
    assert got["signature_algorithm"] == "ecdsa-plain-SHA256"
    assert got["signature_timestamp_format"] == "unixTime"
    assert got["transaction_data_encoding"] == "UTF-8"
    assert (got["max_number_registered_clients"], got["max_number_active_transactions"]) == (
        199,
        2000,
    )
    assert got["supported_update_variants"] == "SIGNED" and got["_type"] == "TSS"
    assert got["_env"] == "TEST" and got["signature_counter"] != "0"
    assert got["metadata"]["custom_field"] == "custom_value" and "time_disable" not in got
    listed = ok(pos.get("/tss"))
    assert listed["_type"] == "TSS_LIST" and listed["count"] > 0
    assert tss in {t["_id"] for t in listed["data"]}

    client = str(uuid.uuid4())
    serial = f"ERS {uuid.uuid4()}"
    body = {"serial_number": serial, "metadata": {"custom_field": "custom_value"}}
    ok(pos.put(f"/tss/{tss}/client/{client}", json=body))
    update = {"state": "REGISTERED", "metadata": {"custom_field": "custom_value_2"}}
    ok(pos.patch(f"/tss/{tss}/client/{client}", json=update))
    client2 = str(uuid.uuid4())
    body2 = {"serial_number": f"ERS {uuid.uuid4()}", "metadata": {"custom_field": "client 2"}}
    ok(pos.put(f"/tss/{tss}/client/{client2}", json=body2))
    dereg = ok(pos.patch(f"/tss/{tss}/client/{client2}", json={"state": "DEREGISTERED"}))
    assert dereg["state"] == "DEREGISTERED"
    rereg = ok(pos.patch(f"/tss/{tss}/client/{client2}", json={"state": "REGISTERED"}))
    assert rereg["state"] == "REGISTERED"
    assert ok(pos.post(f"/tss/{tss}/admin/logout", json={})) == {}
    ok(pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN}))
    c = ok(pos.get(f"/tss/{tss}/client/{client}"))
    assert (c["state"], c["metadata"]["custom_field"], c["_id"]) == (
        "REGISTERED",
        "custom_value_2",
        client,
    )
    assert c["_type"] == "CLIENT" and c["time_creation"] > 0 and c["time_update"] > 0
    clients = ok(pos.get(f"/tss/{tss}/client"))
    assert clients["_type"] == "CLIENT_LIST" and clients["count"] == 2

    tx = str(uuid.uuid4())
    card = receipt([("NORMAL", "21.42")], [{"payment_type": "NON_CASH", "amount": "21.42"}])
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": client}))
    ok(put_tx(pos, tss, tx, 2, {"schema": card, "state": "ACTIVE", "client_id": client}))
    ok(put_tx(pos, tss, tx, 3, {"schema": card, "state": "FINISHED", "client_id": client}))

    def fiskalys_checks(t: dict[str, Any]) -> None:
        assert t["number"] >= 0 and t["time_start"] > 0 and t["state"] == "FINISHED"
        assert t["client_id"] == client and t["tss_id"] == tss and t["_id"] == tx
        r = t["schema"]["standard_v1"]["receipt"]
        assert r["receipt_type"] == "RECEIPT"
        assert r["amounts_per_vat_rate"][0] == {"vat_rate": "NORMAL", "amount": "21.42"}
        pay = r["amounts_per_payment_type"][0]
        assert (pay["payment_type"], pay["amount"]) == ("NON_CASH", "21.42")
        assert pay["currency_code"] == "EUR"  # the schema's default, answered
        assert t["schema"]["raw"]["process_type"] == "Kassenbeleg-V1"
        assert signed_data(t) == "Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
        assert (t["revision"], t["latest_revision"]) == (3, 3)
        assert t["log"]["operation"] == "Finish" and t["log"]["timestamp"] >= 0
        assert t["signature"]["algorithm"] == "ecdsa-plain-SHA256"
        assert (t["_type"], t["_env"]) == ("TRANSACTION", "TEST")

    fiskalys_checks(ok(pos.get(f"/tss/{tss}/tx/{tx}")))
    for path in (f"/tss/{tss}/tx", f"/tss/{tss}/client/{client}/tx", "/tx"):
        page = ok(pos.get(path, params={"limit": 100}))
        assert page["_type"] == "TRANSACTION_LIST" and page["count"] > 0
        fiskalys_checks(next(t for t in page["data"] if t["_id"] == tx))

    export = str(uuid.uuid4())
    assert ok(pos.put(f"/tss/{tss}/export/{export}", json={}))["_id"] == export
    deadline = time.monotonic() + 60
    while (state := ok(pos.get(f"/tss/{tss}/export/{export}"))["state"]) != "COMPLETED":
        assert state in ("PENDING", "WORKING") and time.monotonic() < deadline, state
        time.sleep(0.2)
    assert export in {e["_id"] for e in ok(pos.get("/export"))["data"]}
    assert export in {e["_id"] for e in ok(pos.get(f"/tss/{tss}/export"))["data"]}
    tar = pos.get(f"/tss/{tss}/export/{export}/file")
    assert tar.status_code == 200 and tar.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as archive:
        assert any("_Finish_" in name for name in archive.getnames())
    assert ok(pos.get(f"/tss/{tss}/export/{export}/metadata")) == {}
    assert ok(pos.patch(f"/tss/{tss}/export/{export}/metadata", json={})) == {}
    ok(pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN}))
    disabled = ok(pos.patch(f"/tss/{tss}", json={"state": "DISABLED"}))
    assert disabled["state"] == "DISABLED" and disabled["time_disable"] > 0


def test_every_schema_variant_is_signed_and_answered(pos: httpx.Client) -> None:
    tss = new_tss(pos)
    till = new_client(pos, tss, "KASSE-1")
    # several VAT rates and payment types, a foreign currency, a deprecated rate name
    mixed = receipt(
        [("NORMAL", "11.90"), ("REDUCED_1", "10.70"), ("NULL", "1.00"), ("19", "1.00")],
        [
            {"payment_type": "CASH", "amount": "10.00"},
            {"payment_type": "NON_CASH", "amount": "9.60"},
            {"payment_type": "CASH", "amount": "5.00", "currency_code": "USD"},
        ],
    )
    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till}))
    done = ok(put_tx(pos, tss, tx, 2, {"state": "FINISHED", "client_id": till, "schema": mixed}))
    assert signed_data(done) == (
        "Beleg^12.90_10.70_0.00_0.00_1.00^10.00:Bar_9.60:Unbar_5.00:Bar:USD"
    )
    pays = done["schema"]["standard_v1"]["receipt"]["amounts_per_payment_type"]
    assert [p["currency_code"] for p in pays] == ["EUR", "EUR", "USD"]
    assert done["qr_code_data"].split(";")[3] == signed_data(done)
    again = ok(pos.get(f"/tss/{tss}/tx/{done['number']}"))
    assert again["schema"]["standard_v1"] == done["schema"]["standard_v1"]

    order = {
        "standard_v1": {
            "order": {
                "line_items": [
                    {"quantity": "2", "text": "Eis", "price_per_unit": "2.50"},
                    {"quantity": "0.5", "text": "Kaffee", "price_per_unit": "3.00"},
                ]
            }
        }
    }
    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till}))
    updated = ok(put_tx(pos, tss, tx, 2, {"state": "ACTIVE", "client_id": till, "schema": order}))
    assert updated["log"]["operation"] == "Update" and "qr_code_data" not in updated
    finished = ok(
        put_tx(pos, tss, tx, 3, {"state": "FINISHED", "client_id": till, "schema": order})
    )
    assert finished["schema"]["raw"]["process_type"] == "Bestellung-V1"
    assert signed_data(finished) == '2;"Eis";2.50\r0.5;"Kaffee";3.00'
    refused(
        put_tx(pos, tss, str(uuid.uuid4()), 1, {"state": "FINISHED", "client_id": till}),
        409,
        "E_TX_NO_TYPE_DEFINED",
    )

    other = {"standard_v1": {"other": {}}}
    t = ok(
        put_tx(
            pos,
            tss,
            str(uuid.uuid4()),
            1,
            {"state": "FINISHED", "client_id": till, "schema": other},
        )
    )
    assert (t["schema"]["raw"]["process_type"], signed_data(t)) == ("SonstigerVorgang", "")

    data = base64.b64encode(b"Geldtransit").decode()
    raw = {"raw": {"process_type": "SonstigerVorgang", "process_data": data}}
    t = ok(
        put_tx(
            pos, tss, str(uuid.uuid4()), 1, {"state": "FINISHED", "client_id": till, "schema": raw}
        )
    )
    assert t["schema"] == raw and t["qr_code_data"].split(";")[3] == "Geldtransit"

    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till}))
    cancelled = ok(put_tx(pos, tss, tx, 2, {"state": "CANCELLED", "client_id": till}))
    assert cancelled["state"] == "CANCELLED" and cancelled["log"]["operation"] == "Finish"
    assert signed_data(cancelled).startswith("AVBelegabbruch^")

    states = ok(pos.get(f"/tss/{tss}/tx", params={"states[]": ["CANCELLED"]}))
    assert [t["_id"] for t in states["data"]] == [tx] and states["count"] == 1
    numbers = [t["number"] for t in ok(pos.get(f"/tss/{tss}/tx", params={"order": "desc"}))["data"]]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 5
    page = ok(pos.get(f"/tss/{tss}/tx", params={"limit": 2, "offset": 2, "order_by": "number"}))
    assert [t["number"] for t in page["data"]] == sorted(numbers)[2:4] and page["count"] == 5


def test_a_till_retrying_after_a_lost_answer_never_signs_twice(pos: httpx.Client) -> None:
    tss = new_tss(pos)
    till = new_client(pos, tss, "KASSE-1")
    tx = str(uuid.uuid4())
    cash = receipt([("NORMAL", "5.00")], [{"payment_type": "CASH", "amount": "5.00"}])
    first = ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till}))
    counter = ok(pos.get(f"/tss/{tss}"))["signature_counter"]
    assert ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till})) == first
    refused(
        put_tx(pos, tss, tx, 3, {"state": "FINISHED", "client_id": till, "schema": cash}),
        400,
        "E_TX_UPSERT",
    )
    assert ok(pos.get(f"/tss/{tss}"))["signature_counter"] == counter  # nothing signed
    body = {"state": "FINISHED", "client_id": till, "schema": cash, "metadata": {"bon": "7"}}
    finished = ok(put_tx(pos, tss, tx, 2, body))
    retried = ok(put_tx(pos, tss, tx, 2, body))
    assert retried["signature"] == finished["signature"]
    assert retried["qr_code_data"] == finished["qr_code_data"]
    assert retried["schema"] == finished["schema"] and retried["metadata"] == {"bon": "7"}
    lower = ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till}))
    assert (lower["revision"], lower["latest_revision"], lower["state"]) == (1, 2, "ACTIVE")
    assert lower["signature"] == first["signature"]
    after = int(ok(pos.get(f"/tss/{tss}"))["signature_counter"])
    assert after == int(counter) + 1  # the one Finish log
    refused(put_tx(pos, tss, tx, 3, body), 400, "E_TX_UPSERT")  # finished is final
    refused(
        pos.get(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 9}), 400, "E_TX_REVISION_NOT_FOUND"
    )


def test_null_metadata_removes_a_key_everywhere(pos: httpx.Client) -> None:
    tss = new_tss(pos, {"shop": "1", "drop": "x"})
    body = {"serial_number": "KASSE-9", "metadata": {"a": "1", "gone": None}}
    client = str(uuid.uuid4())
    assert ok(pos.put(f"/tss/{tss}/client/{client}", json=body))["metadata"] == {"a": "1"}
    update = {"state": "REGISTERED", "metadata": {"a": None, "b": ""}}
    assert ok(pos.patch(f"/tss/{tss}/client/{client}", json=update))["metadata"] == {"b": ""}
    assert ok(pos.patch(f"/tss/{tss}/client/{client}/metadata", json={"b": None})) == {}
    tss_update = {"state": "INITIALIZED", "metadata": {"drop": None}}
    assert ok(pos.patch(f"/tss/{tss}", json=tss_update))["metadata"] == {"shop": "1"}

    tx = str(uuid.uuid4())
    start = {"state": "ACTIVE", "client_id": client, "metadata": {"bon": "1", "tmp": "t"}}
    ok(put_tx(pos, tss, tx, 1, start))
    step = {"state": "ACTIVE", "client_id": client, "metadata": {"tmp": None}}
    assert ok(put_tx(pos, tss, tx, 2, step))["metadata"] == {"bon": "1"}
    assert ok(pos.patch(f"/tss/{tss}/tx/{tx}/metadata", json={"bon": None})) == {}
    assert ok(pos.get(f"/tss/{tss}/tx/{tx}"))["metadata"] == {}

    export = str(uuid.uuid4())
    ok(pos.put(f"/tss/{tss}/export/{export}"))
    ok(pos.patch(f"/tss/{tss}/export/{export}/metadata", json={"k": "v"}))
    assert ok(pos.patch(f"/tss/{tss}/export/{export}/metadata", json={"k": None})) == {}
    # a value is a string or null, or a number or boolean kept as its text (as fiskaly
    # does); a list or an object is refused, as before
    for wrong in (["x"], {"x": "y"}):
        msg = refused(
            pos.patch(f"/tss/{tss}/metadata", json={"k": wrong}), 400, "E_FAILED_SCHEMA_VALIDATION"
        )
        assert "body/k" in msg["message"]
    assert ok(pos.get(f"/tss/{tss}/metadata")) == {"shop": "1"}


def test_every_4xx_a_till_meets_has_fiskalys_error_body(pos: httpx.Client) -> None:
    tss = new_tss(pos)
    till = new_client(pos, tss, "KASSE-1")
    other = new_client(pos, tss, "KASSE-2")
    ok(pos.patch(f"/tss/{tss}/client/{other}", json={"state": "DEREGISTERED"}))
    start = {"state": "ACTIVE", "client_id": till}
    unknown = str(uuid.uuid4())
    bad = "E_FAILED_SCHEMA_VALIDATION"
    base = str(pos.base_url).rstrip("/")
    t, x = f"/tss/{tss}", unknown
    js = {"content-type": "application/json"}
    cases: list[tuple[httpx.Response, int, str]] = [
        (httpx.get(base + "/tss"), 401, "E_UNAUTHORIZED"),
        (
            pos.post("/auth", json={"api_key": "k" * 20, "api_secret": "s" * 20}),
            401,
            "E_UNAUTHORIZED",
        ),
        (pos.get(f"/tss/{x}"), 404, "E_TSS_NOT_FOUND"),
        (pos.get("/tss/not-a-uuid"), 400, bad),
        (pos.get(f"{t}/client/{x}"), 404, "E_CLIENT_NOT_FOUND"),
        (pos.get(f"{t}/tx/{x}"), 404, "E_TX_NOT_FOUND"),
        (pos.get(f"{t}/export/{x}"), 404, "E_EXPORT_NOT_FOUND"),
        (pos.get(f"{t}/tx", params={"limit": 0}), 400, bad),
        (pos.get(f"{t}/tx", params={"states[]": "DONE"}), 400, bad),
        (pos.patch(t, json={"state": "UNINITIALIZED"}), 400, "E_ILLEGAL_TSS_STATE_CHANGE"),
        (pos.put(t, json={}), 409, "E_TSS_CONFLICT"),
        (pos.put(f"{t}/client/{till}", json={"serial_number": "B"}), 409, "E_CLIENT_CONFLICT"),
        (pos.put(f"{t}/client/{x}", json={"serial_number": "A_B"}), 400, bad),
        (put_tx(pos, tss, x, 1, {"state": "ACTIVE", "client_id": x}), 400, "E_CLIENT_NOT_FOUND"),
        (put_tx(pos, tss, x, 1, {**start, "client_id": other}), 400, "E_CLIENT_DEREGISTERED"),
        (pos.put(f"{t}/tx/{x}", json=start), 400, "E_TX_UPSERT"),
        (put_tx(pos, tss, x, 1, {"client_id": till}), 400, bad),
        (pos.put(f"{t}/tx/{x}", params={"tx_revision": 1}, content=b"{", headers=js), 400, bad),
        (pos.put(f"{t}/export/{x}", params={"transaction_number": "99"}), 400, "E_TX_NOT_FOUND"),
        (
            pos.put(f"{t}/export/{x}", params={"maximum_number_records": "1000001"}),
            400,
            "E_PARAMETER_MISMATCH",
        ),
        (pos.post(t, json={}), 405, "E_METHOD_NOT_ALLOWED"),
    ]
    for response, status, code in cases:
        refused(response, status, code)
    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, start))
    line = {"quantity": "1", "text": "Eis", "price_per_unit": "1.00"}
    order = {"standard_v1": {"order": {"line_items": [line]}}}
    ok(put_tx(pos, tss, tx, 2, {**start, "schema": order}))
    cash = receipt([("NORMAL", "1.00")], [])
    refused(put_tx(pos, tss, tx, 3, {**start, "schema": cash}), 409, "E_TX_ILLEGAL_TYPE_CHANGE")
    ok(pos.post(f"/tss/{tss}/admin/logout", json={}))
    refused(pos.patch(f"/tss/{tss}", json={"state": "DISABLED"}), 401, "E_UNAUTHORIZED")


def test_what_opentse_chose_where_fiskaly_is_silent(pos: httpx.Client) -> None:
    """The choices docs/api.md publishes: a description is taken when initializing
    only; a revision may come from another registered client than the one that
    started the transaction (a table moved to another till), as certified TSEs allow."""
    tss = str(uuid.uuid4())
    puk = ok(pos.put(f"/tss/{tss}", json={}))["admin_puk"]
    kept = ok(pos.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED", "description": "X"}))
    assert kept["description"] == ""
    ok(pos.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": PIN}))
    ok(pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN}))
    init = {"state": "INITIALIZED", "description": "Filiale 1"}
    assert ok(pos.patch(f"/tss/{tss}", json=init))["description"] == "Filiale 1"
    later = ok(pos.patch(f"/tss/{tss}", json={**init, "description": "Filiale 2"}))
    assert later["description"] == "Filiale 1"
    assert ok(pos.get(f"/tss/{tss}"))["description"] == "Filiale 1"

    first, second = new_client(pos, tss, "KASSE-1"), new_client(pos, tss, "KASSE-2")
    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": first}))
    cash = receipt([("NORMAL", "1.00")], [{"payment_type": "CASH", "amount": "1.00"}])
    moved = {"state": "FINISHED", "client_id": second, "schema": cash}
    done = ok(put_tx(pos, tss, tx, 2, moved))  # a table moved to another till
    assert (done["client_id"], done["client_serial_number"]) == (second, "KASSE-2")
    assert done["qr_code_data"].startswith("V0;KASSE-2;Kassenbeleg-V1;")
    # listed as fiskaly lists it: by the client of its latest revision
    assert [t["_id"] for t in ok(pos.get(f"/tss/{tss}/client/{second}/tx"))["data"]] == [tx]
    assert ok(pos.get(f"/tss/{tss}/client/{first}/tx"))["data"] == []
    stranger = str(uuid.uuid4())
    tx2 = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx2, 1, {"state": "ACTIVE", "client_id": first}))
    refused(put_tx(pos, tss, tx2, 2, {**moved, "client_id": stranger}), 400, "E_CLIENT_NOT_FOUND")


def test_finishing_without_a_schema_never_signs_an_empty_receipt(pos: httpx.Client) -> None:
    """FINISHED without ``schema`` finishes the transaction as its latest revision left
    it (type and data); it signed the type with empty processData before, a receipt
    whose fiscal record holds no amounts. With no data signed yet: fiskaly's 409
    E_TX_NO_TYPE_DEFINED ("The process_type is missing from your request body")."""
    tss = new_tss(pos)
    till = new_client(pos, tss, "KASSE-1")
    cash = receipt([("NORMAL", "2.00")], [{"payment_type": "CASH", "amount": "2.00"}])
    finish = {"state": "FINISHED", "client_id": till}

    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till}))
    ok(put_tx(pos, tss, tx, 2, {"state": "ACTIVE", "client_id": till, "schema": cash}))
    done = ok(put_tx(pos, tss, tx, 3, finish))
    assert (done["state"], done["revision"], done["log"]["operation"]) == (
        "FINISHED",
        3,
        "Finish",
    )
    assert signed_data(done) == "Beleg^2.00_0.00_0.00_0.00_0.00^2.00:Bar"
    assert done["qr_code_data"].split(";")[2:4] == ["Kassenbeleg-V1", signed_data(done)]
    assert done["schema"]["standard_v1"]["receipt"]["receipt_type"] == "RECEIPT"
    assert ok(pos.get(f"/tss/{tss}/tx/{tx}"))["schema"] == done["schema"]
    assert ok(put_tx(pos, tss, tx, 3, finish))["signature"] == done["signature"]  # a retry

    typed = {"raw": {"process_type": "Kassenbeleg-V1", "process_data": ""}}
    tx = str(uuid.uuid4())
    ok(put_tx(pos, tss, tx, 1, {"state": "ACTIVE", "client_id": till, "schema": typed}))
    counter = ok(pos.get(f"/tss/{tss}"))["signature_counter"]
    body = refused(put_tx(pos, tss, tx, 2, finish), 409, "E_TX_NO_TYPE_DEFINED")
    assert "schema" in body["message"]
    assert ok(pos.get(f"/tss/{tss}"))["signature_counter"] == counter  # nothing signed
    assert ok(pos.get(f"/tss/{tss}/tx/{tx}"))["state"] == "ACTIVE"
    done = ok(put_tx(pos, tss, tx, 2, {**finish, "schema": cash}))
    assert signed_data(done) == "Beleg^2.00_0.00_0.00_0.00_0.00^2.00:Bar"
