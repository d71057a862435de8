"""End to end, as a POS would run it: plain httpx against a real ``opentse serve``.

The export is checked with the stdlib tarfile reader, every log decoded with the
codec and its signature checked against the TSS public key, and then the verifier
(``opentse.verify``) runs over the whole archive; the QR code goes through
``verify_receipt``, which rebuilds the signed Finish log independently.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
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

from opentse.testing.serving import wait_until_serving

OPENTSE = [str(Path(sys.executable).parent / "opentse")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uuid() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("e2e") / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(
        [*OPENTSE, "apikey", "create", "--data", str(data), "--org", "shop", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    key = json.loads(out.stdout)
    other = json.loads(
        subprocess.run(
            [*OPENTSE, "apikey", "create", "--data", str(data), "--org", "other", "--json"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        ).stdout
    )
    port = _free_port()
    proc = subprocess.Popen(
        [*OPENTSE, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_until_serving(base, proc):
        proc.kill()
        raise AssertionError("server did not start: " + proc.stdout.read().decode())  # type: ignore[union-attr]
    try:
        yield {"base": base + "/api/v2", "key": key, "other": other, "data": data}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        output = ""
        if proc.stdout is not None:
            output = proc.stdout.read().decode(errors="replace")
            proc.stdout.close()
        sys.stderr.write(output)  # shown by pytest when a test failed
        assert "Traceback" not in output, "the server logged an unexpected error"


def _client(server: dict[str, Any], key: dict[str, str]) -> httpx.Client:
    c = httpx.Client(base_url=server["base"], timeout=30)
    r = c.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]})
    assert r.status_code == 200, r.text
    assert r.json()["access_token_claims"]["organization_id"] == key["organization_id"]
    c.headers["Authorization"] = "Bearer " + r.json()["access_token"]
    return c


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["status_code"] == status
    assert set(body) == {"status_code", "error", "code", "message"}


def test_pos_flow(server: dict[str, Any], tmp_path: Path) -> None:
    with contextlib.closing(_client(server, server["key"])) as pos:
        _pos_flow(pos, server, tmp_path)


def _pos_flow(pos: httpx.Client, server: dict[str, Any], tmp_path: Path) -> None:
    from opentse.tr03151.codec import decode_log_message
    from opentse.tr03151.oids import algorithm_oid
    from opentse.tr03151.signature import verify_signature

    _error(
        pos.post("/auth", json={"api_key": server["key"]["api_key"], "api_secret": "wrong"}),
        401,
        "E_UNAUTHORIZED",
    )
    tss = _uuid()
    created = _ok(pos.put(f"/tss/{tss}", json={"metadata": {"shop": "Berlin 1"}}))
    assert created["state"] == "CREATED" and created["_type"] == "TSS"
    puk = created["admin_puk"]
    assert (
        _ok(pos.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))["state"] == "UNINITIALIZED"
    )
    assert "admin_puk" not in _ok(pos.get(f"/tss/{tss}"))
    _error(
        pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": "123456"}), 423, "E_ADMIN_PIN_BLOCKED"
    )
    _ok(pos.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "246810"}))
    _error(pos.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}), 401, "E_UNAUTHORIZED")
    _ok(pos.post(f"/tss/{tss}/admin/auth", json={"admin_pin": "246810"}))
    tss_body = _ok(
        pos.patch(f"/tss/{tss}", json={"state": "INITIALIZED", "description": "Kasse Berlin"})
    )
    assert tss_body["state"] == "INITIALIZED" and "time_init" in tss_body
    public_key = base64.b64decode(tss_body["public_key"])

    c1, c2 = _uuid(), _uuid()
    _ok(pos.put(f"/tss/{tss}/client/{c1}", json={"serial_number": "KASSE-01"}))
    _ok(pos.put(f"/tss/{tss}/client/{c2}", json={"serial_number": "KASSE-02"}))
    _error(
        pos.put(f"/tss/{tss}/client/{_uuid()}", json={"serial_number": "KASSE-01"}),
        409,
        "E_CLIENT_CONFLICT",
    )
    assert _ok(pos.get(f"/tss/{tss}/client"))["count"] == 2

    # a receipt: revision 1 ACTIVE, revision 2 FINISHED with standard_v1.receipt
    tx = _uuid()
    start = _ok(
        pos.put(
            f"/tss/{tss}/tx/{tx}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": c1},
        )
    )
    assert start["log"]["operation"] == "Start" and start["state"] == "ACTIVE"
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
        "amounts_per_payment_type": [
            {"payment_type": "NON_CASH", "amount": "21.42", "currency_code": "EUR"}
        ],
    }
    fin_body = {
        "state": "FINISHED",
        "client_id": c1,
        "schema": {"standard_v1": {"receipt": receipt}},
    }
    _error(
        pos.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 3}, json=fin_body), 400, "E_TX_UPSERT"
    )
    fin = _ok(pos.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 2}, json=fin_body))
    assert fin["state"] == "FINISHED" and fin["revision"] == 2 and fin["latest_revision"] == 2
    assert (
        fin["client_serial_number"] == "KASSE-01"
        and fin["tss_serial_number"] == tss_body["serial_number"]
    )
    assert (
        base64.b64decode(fin["schema"]["raw"]["process_data"])
        == b"Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
    )
    assert fin["schema"]["standard_v1"]["receipt"] == receipt
    assert fin["time_end"] >= fin["time_start"]
    # replay: the stored result, never a second signature
    replay = _ok(pos.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 2}, json=fin_body))
    assert replay["signature"] == fin["signature"] and replay["qr_code_data"] == fin["qr_code_data"]
    assert (
        _ok(pos.get(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 1}))["signature"]
        == start["signature"]
    )
    assert _ok(pos.get(f"/tss/{tss}/tx/{fin['number']}"))["signature"] == fin["signature"]

    from opentse.verify.receipt import verify_receipt

    checked = verify_receipt(fin["qr_code_data"])
    assert checked.ok, checked.findings

    # an order
    order = {"line_items": [{"quantity": "2", "text": 'Kaffee "gross"', "price_per_unit": "3.50"}]}
    otx = _uuid()
    _ok(
        pos.put(
            f"/tss/{tss}/tx/{otx}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": c2},
        )
    )
    ofin = _ok(
        pos.put(
            f"/tss/{tss}/tx/{otx}",
            params={"tx_revision": 2},
            json={
                "state": "FINISHED",
                "client_id": c2,
                "schema": {"standard_v1": {"order": order}},
            },
        )
    )
    assert ofin["schema"]["raw"]["process_type"] == "Bestellung-V1"

    # a cancelled transaction
    ctx_ = _uuid()
    _ok(
        pos.put(
            f"/tss/{tss}/tx/{ctx_}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": c1},
        )
    )
    cancelled = _ok(
        pos.put(
            f"/tss/{tss}/tx/{ctx_}",
            params={"tx_revision": 2},
            json={"state": "CANCELLED", "client_id": c1},
        )
    )
    assert cancelled["state"] == "CANCELLED" and cancelled["log"]["operation"] == "Finish"
    assert base64.b64decode(cancelled["schema"]["raw"]["process_data"]).startswith(
        b"AVBelegabbruch^"
    )
    _error(
        pos.put(
            f"/tss/{tss}/tx/{ctx_}",
            params={"tx_revision": 3},
            json={"state": "ACTIVE", "client_id": c1},
        ),
        400,
        "E_TX_UPSERT",
    )

    # a deregistered client cannot sign
    assert (
        _ok(pos.patch(f"/tss/{tss}/client/{c2}", json={"state": "DEREGISTERED"}))["state"]
        == "DEREGISTERED"
    )
    _error(
        pos.put(
            f"/tss/{tss}/tx/{_uuid()}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": c2},
        ),
        400,
        "E_CLIENT_DEREGISTERED",
    )

    listing = _ok(pos.get(f"/tss/{tss}/tx", params={"states[]": "FINISHED"}))
    assert listing["_type"] == "TRANSACTION_LIST" and listing["count"] == 2
    assert {t["state"] for t in listing["data"]} == {"FINISHED"}

    # export: trigger, early fetch, poll, download, verify
    exp = _uuid()
    triggered = _ok(pos.put(f"/tss/{tss}/export/{exp}"))
    assert triggered["state"] in ("PENDING", "WORKING", "COMPLETED")
    deadline = time.monotonic() + 60
    while (state := _ok(pos.get(f"/tss/{tss}/export/{exp}"))["state"]) != "COMPLETED":
        assert state in ("PENDING", "WORKING") and time.monotonic() < deadline, state
        early = pos.get(f"/tss/{tss}/export/{exp}/file")
        if early.status_code == 404:
            assert (
                early.json()["code"] == "E_EXPORT_NOT_COMPLETED" and "retry-after" in early.headers
            )
        time.sleep(0.1)
    file = pos.get(f"/tss/{tss}/export/{exp}/file")
    assert file.status_code == 200 and file.headers["content-type"] == "application/x-tar"
    path = tmp_path / "export.tar"
    path.write_bytes(file.content)
    names: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(file.content)) as tar:
        for member in tar.getmembers():
            assert member.isfile()
            names.append(member.name)
            if not member.name.endswith(".log"):
                continue
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            msg = decode_log_message(data)
            assert msg.signed_data is not None
            verify_signature(
                public_key,
                algorithm_oid("ecdsa-plain-SHA256"),
                msg.signed_data,
                msg.signature_value,
            )
    tx_logs = [n for n in names if "_Log-Tra_" in n]
    assert len(tx_logs) == 6  # 3 transactions x (Start, Finish)
    assert "info.csv" in names

    from opentse.verify.report import verify_exports

    report = verify_exports([path])
    assert report.ok, [f for f in report.findings if f.severity.name == "ERROR"]
    assert report.log_messages == len([n for n in names if n.endswith(".log")])


def test_tenant_isolation(server: dict[str, Any]) -> None:
    with (
        contextlib.closing(_client(server, server["key"])) as a,
        contextlib.closing(_client(server, server["other"])) as b,
    ):
        _isolation(a, b)


def _isolation(a: httpx.Client, b: httpx.Client) -> None:
    tss = _uuid()
    _ok(a.put(f"/tss/{tss}"))
    for method, path in (
        ("GET", f"/tss/{tss}"),
        ("PATCH", f"/tss/{tss}"),
        ("GET", f"/tss/{tss}/client"),
        ("GET", f"/tss/{tss}/tx"),
        ("GET", f"/tss/{tss}/tx/1"),
        ("GET", f"/tss/{tss}/metadata"),
        ("PUT", f"/tss/{tss}/export/{_uuid()}"),
        ("GET", f"/tss/{tss}/export"),
        ("POST", f"/tss/{tss}/admin/auth"),
    ):
        body = (
            {"state": "UNINITIALIZED"}
            if method == "PATCH"
            else ({"admin_pin": "123456"} if method == "POST" else None)
        )
        r = b.request(method, path, json=body)
        _error(r, 404, "E_TSS_NOT_FOUND")
    assert all(t["_id"] != tss for t in _ok(b.get("/tss"))["data"])
    assert _ok(b.get("/tx"))["count"] == 0 and _ok(b.get("/client"))["count"] == 0
    assert any(t["_id"] == tss for t in _ok(a.get("/tss"))["data"])
