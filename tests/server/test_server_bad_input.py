"""Bad input gets a fiskaly-style error body with the right status, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from server_support import AppClient, login, new_key, setup_tss


def _problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"status_code", "error", "code", "message"}
    assert body["status_code"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def ready(app_client: AppClient) -> tuple[AppClient, dict[str, str], str, str]:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    return app_client, h, tss, cid


def test_malformed_json_and_types(ready: tuple[AppClient, dict[str, str], str, str]) -> None:
    c, h, tss, cid = ready
    tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1"
    _problem(c.put(tx, content=b"{not json", headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")
    _problem(c.put(tx, content=b"\xff\xfe", headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")
    _problem(c.put(tx, json=[1, 2], headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")
    _problem(
        c.put(tx, json={"state": 1, "client_id": cid}, headers=h), 400, "E_FAILED_SCHEMA_VALIDATION"
    )
    _problem(c.put(tx, json={"state": "DONE", "client_id": cid}, headers=h), 400)
    _problem(c.put(tx, json={"state": "ACTIVE"}, headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")
    _problem(c.put(tx, json={"state": "ACTIVE", "client_id": "nope"}, headers=h), 400)
    _problem(c.put(tx, headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")


def test_unknown_fields_where_forbidden(ready: tuple[AppClient, dict[str, str], str, str]) -> None:
    c, h, tss, _ = ready
    body = {"state": "INITIALIZED", "colour": "red"}
    msg = _problem(
        c.patch(f"/api/v2/tss/{tss}", json=body, headers=h), 400, "E_FAILED_SCHEMA_VALIDATION"
    )
    assert "colour" in msg["message"]


@pytest.mark.parametrize("amount", ["21.4", "21", "1e3", "21.123456", "abc", "", " 1.00"])
def test_amount_pattern(ready: tuple[AppClient, dict[str, str], str, str], amount: str) -> None:
    c, h, tss, cid = ready
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": amount}],
    }
    body = {"state": "FINISHED", "client_id": cid, "schema": {"standard_v1": {"receipt": receipt}}}
    r = c.put(f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1", json=body, headers=h)
    _problem(r, 400, "E_FAILED_SCHEMA_VALIDATION")


def test_body_over_one_megabyte(ready: tuple[AppClient, dict[str, str], str, str]) -> None:
    c, h, tss, _ = ready
    big = b'{"metadata": {"k": "' + b"x" * (1024 * 1024) + b'"}}'
    _problem(c.patch(f"/api/v2/tss/{tss}/metadata", content=big, headers=h), 413)

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        for _ in range(20):
            yield b" " * 65536

    _problem(c.patch(f"/api/v2/tss/{tss}/metadata", content=chunks(), headers=h), 413)


def test_unknown_and_invalid_ids(ready: tuple[AppClient, dict[str, str], str, str]) -> None:
    c, h, tss, _cid = ready
    _problem(c.get(f"/api/v2/tss/{uuid.uuid4()}", headers=h), 404, "E_TSS_NOT_FOUND")
    _problem(c.get("/api/v2/tss/not-a-uuid", headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")
    _problem(
        c.get(f"/api/v2/tss/{tss}/client/{uuid.uuid4()}", headers=h), 404, "E_CLIENT_NOT_FOUND"
    )
    _problem(c.get(f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}", headers=h), 404, "E_TX_NOT_FOUND")
    _problem(c.get(f"/api/v2/tss/{tss}/tx/999", headers=h), 404, "E_TX_NOT_FOUND")
    _problem(
        c.get(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", headers=h), 404, "E_EXPORT_NOT_FOUND"
    )
    r = c.put(
        f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1",
        json={"state": "ACTIVE", "client_id": str(uuid.uuid4())},
        headers=h,
    )
    _problem(r, 400, "E_CLIENT_NOT_FOUND")
    _problem(c.get("/api/v2/nothing-here", headers=h), 404)
    _problem(c.delete(f"/api/v2/tss/{tss}", headers=h), 405)
    _problem(c.get("/api/v2/tss?limit=0", headers=h), 400, "E_FAILED_SCHEMA_VALIDATION")
    _problem(c.get(f"/api/v2/tss/{tss}/tx?states[]=WEIRD", headers=h), 400)


def test_auth_required_and_bad_tokens(app_client: AppClient) -> None:
    _problem(app_client.get("/api/v2/tss"), 401, "E_UNAUTHORIZED")
    _problem(app_client.get("/api/v2/tss", headers={"Authorization": "Bearer abc.def.ghi"}), 401)
    _problem(app_client.post("/api/v2/auth", json={"api_key": "key_x", "api_secret": "y"}), 401)
    _problem(app_client.post("/api/v2/auth", json={"refresh_token": "nope"}), 401, "E_UNAUTHORIZED")
    _problem(app_client.post("/api/v2/auth", json={"user": "x"}), 400, "E_FAILED_SCHEMA_VALIDATION")


def test_refresh_token_and_expiry(app_client: AppClient) -> None:
    key = new_key(app_client)
    r = app_client.post(
        "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
    )
    tokens = r.json()
    assert (
        tokens["access_token_expires_at"] - tokens["access_token_expires_in"]
        == app_client.ctx.now()
    )
    again = app_client.post("/api/v2/auth", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 200 and again.json()["access_token"] != tokens["access_token"]
    # an access token is not a refresh token and vice versa
    _problem(app_client.post("/api/v2/auth", json={"refresh_token": tokens["access_token"]}), 401)
    bearer = {"Authorization": "Bearer " + tokens["refresh_token"]}
    _problem(app_client.get("/api/v2/tss", headers=bearer), 401)
    app_client.ctx.clock.advance(tokens["access_token_expires_in"] + 1)  # type: ignore[attr-defined]
    _problem(
        app_client.get(
            "/api/v2/tss", headers={"Authorization": "Bearer " + tokens["access_token"]}
        ),
        401,
    )


def test_admin_pin_blocks_after_five_failures(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss = str(uuid.uuid4())
    puk = app_client.put(f"/api/v2/tss/{tss}", json={}, headers=h).json()["admin_puk"]
    app_client.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}, headers=h)
    _problem(
        app_client.patch(
            f"/api/v2/tss/{tss}/admin",
            json={"admin_puk": "0" * 10, "new_admin_pin": "123456"},
            headers=h,
        ),
        400,
        "E_CHANGE_ADMIN_PIN_FAILED",
    )
    assert (
        app_client.patch(
            f"/api/v2/tss/{tss}/admin",
            json={"admin_puk": puk, "new_admin_pin": "123456"},
            headers=h,
        ).status_code
        == 200
    )
    for _ in range(4):
        _problem(
            app_client.post(
                f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "999999"}, headers=h
            ),
            401,
            "E_UNAUTHORIZED",
        )
    # the fifth failure blocks the PIN (TR-03151 retry counter), even the right one then
    fifth = app_client.post(
        f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "999999"}, headers=h
    )
    assert fifth.status_code in (401, 423)
    _problem(
        app_client.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h),
        423,
        "E_ADMIN_PIN_BLOCKED",
    )
    # the PUK unblocks it
    assert (
        app_client.patch(
            f"/api/v2/tss/{tss}/admin",
            json={"admin_puk": puk, "new_admin_pin": "654321"},
            headers=h,
        ).status_code
        == 200
    )
    assert (
        app_client.post(
            f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "654321"}, headers=h
        ).status_code
        == 200
    )
    # illegal state change
    r = app_client.patch(f"/api/v2/tss/{tss}", json={"state": "DISABLED"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "DISABLED"
    _problem(
        app_client.patch(f"/api/v2/tss/{tss}", json={"state": "INITIALIZED"}, headers=h),
        400,
        "E_ILLEGAL_TSS_STATE_CHANGE",
    )


def test_odd_numbers_in_paths_and_queries(
    ready: tuple[AppClient, dict[str, str], str, str],
) -> None:
    c, h, tss, cid = ready
    for path in ("²", "12345678901234567890", "-1", "1.5"):
        r = c.get(f"/api/v2/tss/{tss}/tx/{path}", headers=h)
        assert r.status_code in (400, 404), r.text
        r = c.put(
            f"/api/v2/tss/{tss}/tx/{path}", json={"state": "ACTIVE", "client_id": cid}, headers=h
        )
        assert r.status_code in (400, 404), r.text
    for value in ("²", "1e3", "-5", "99999999999999999999"):
        r = c.put(
            f"/api/v2/tss/{tss}/export/{uuid.uuid4()}",
            params={"transaction_number": value},
            headers=h,
        )
        assert r.status_code == 400, r.text
        r = c.get(f"/api/v2/tss/{tss}/tx", params={"limit": value}, headers=h)
        assert r.status_code == 400, r.text


@pytest.mark.parametrize("where", ["receipt_type", "vat_rate", "payment_type"])
@pytest.mark.parametrize("odd", [["RECEIPT"], {"x": 1}, 7, None])
def test_receipt_enums_of_other_types(
    ready: tuple[AppClient, dict[str, str], str, str], where: str, odd: Any
) -> None:
    """A list or object where the receipt has an enum (fuzzing found TypeError in the
    processData builder for these) is a schema error, never a 500 or a signature."""
    c, h, tss, cid = ready
    vat: dict[str, Any] = {"vat_rate": "NORMAL", "amount": "1.00"}
    pay: dict[str, Any] = {"payment_type": "CASH", "amount": "1.00"}
    receipt: dict[str, Any] = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [vat],
        "amounts_per_payment_type": [pay],
    }
    {"receipt_type": receipt, "vat_rate": vat, "payment_type": pay}[where][where] = odd
    body = {"state": "FINISHED", "client_id": cid, "schema": {"standard_v1": {"receipt": receipt}}}
    r = c.put(f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1", json=body, headers=h)
    _problem(r, 400, "E_FAILED_SCHEMA_VALIDATION")
