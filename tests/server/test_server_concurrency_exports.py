"""Concurrent requests on one TSS, idempotent races, and the export lifecycle."""

from __future__ import annotations

import io
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from server_support import AppClient, login, new_key, setup_tss

RECEIPT = {
    "receipt_type": "RECEIPT",
    "amounts_per_vat_rate": [{"vat_rate": "REDUCED_1", "amount": "2.55"}],
    "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "2.55"}],
}


def _tx(base: str, h: dict[str, str], tss: str, cid: str) -> list[dict[str, Any]]:
    tx = str(uuid.uuid4())
    with httpx.Client(base_url=base, headers=h, timeout=60) as c:
        a = c.put(
            f"/api/v2/tss/{tss}/tx/{tx}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": cid},
        )
        b = c.put(
            f"/api/v2/tss/{tss}/tx/{tx}",
            params={"tx_revision": 2},
            json={
                "state": "FINISHED",
                "client_id": cid,
                "schema": {"standard_v1": {"receipt": RECEIPT}},
            },
        )
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
    return [a.json(), b.json()]


def test_parallel_transactions_keep_counters_gapless(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    base = str(app_client.base_url)
    before = int(app_client.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])
    with ThreadPoolExecutor(8) as pool:
        results = [r for rs in pool.map(lambda _: _tx(base, h, tss, cid), range(24)) for r in rs]
    counters = sorted(int(r["signature"]["counter"]) for r in results)
    assert len(set(counters)) == 48  # no counter repeated
    numbers = sorted({r["number"] for r in results})
    assert numbers == list(range(1, 25))  # every transaction number once, none lost
    after = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()
    assert int(after["signature_counter"]) == before + 48 and after["transaction_counter"] == "24"
    listing = app_client.get(f"/api/v2/tss/{tss}/tx", params={"limit": 100}, headers=h).json()
    assert listing["count"] == 24


def test_concurrent_replays_sign_once(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    tx = str(uuid.uuid4())
    base = str(app_client.base_url)

    def put(_: int) -> dict[str, Any]:
        with httpx.Client(base_url=base, headers=h, timeout=60) as c:
            r = c.put(
                f"/api/v2/tss/{tss}/tx/{tx}",
                params={"tx_revision": 1},
                json={"state": "ACTIVE", "client_id": cid},
            )
            assert r.status_code == 200, r.text
            return dict(r.json())

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(put, range(6)))
    assert len({a["signature"]["value"] for a in answers}) == 1
    assert {a["number"] for a in answers} == {1}
    state = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()
    assert state["transaction_counter"] == "1" and state["number_active_transactions"] == 1


def _wait_export(c: AppClient, h: dict[str, str], tss: str, exp: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = c.get(f"/api/v2/tss/{tss}/export/{exp}", headers=h).json()
        if body["state"] not in ("PENDING", "WORKING") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_export_filters_limits_and_cancel(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    base = str(app_client.base_url)
    for _ in range(3):
        _tx(base, h, tss, cid)
    # filtered by transaction number: that transaction's logs only
    exp = str(uuid.uuid4())
    r = app_client.put(
        f"/api/v2/tss/{tss}/export/{exp}", params={"transaction_number": "2"}, headers=h
    )
    assert r.status_code == 200 and r.json()["state"] in ("PENDING", "WORKING", "COMPLETED")
    assert _wait_export(app_client, h, tss, exp)["state"] == "COMPLETED"
    tar_bytes = app_client.get(f"/api/v2/tss/{tss}/export/{exp}/file", headers=h).content
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        tx_logs = [m.name for m in tar.getmembers() if "_Log-Tra_" in m.name]
    assert len(tx_logs) == 2 and all("_No-2_" in n for n in tx_logs)
    # the same request again is idempotent; the id with other filters is refused
    again = app_client.put(
        f"/api/v2/tss/{tss}/export/{exp}", params={"transaction_number": "2"}, headers=h
    )
    assert again.json()["_id"] == exp
    other = app_client.put(f"/api/v2/tss/{tss}/export/{exp}", headers=h)
    assert (other.status_code, other.json()["code"]) == (400, "E_DUPLICATE_EXPORT")
    # numbers and dates together: E_PARAMETER_MISMATCH
    bad = app_client.put(
        f"/api/v2/tss/{tss}/export/{uuid.uuid4()}",
        params={"start_transaction_number": "1", "start_date": "0"},
        headers=h,
    )
    assert bad.status_code == 400 and bad.json()["code"] == "E_PARAMETER_MISMATCH"
    # more than 10 running: E_TOO_MANY_EXPORTS (the pool is paused so they stay PENDING)
    ctx = app_client.ctx
    gate = threading.Event()
    ctx.exports._pool.submit(gate.wait, 60)
    ctx.exports._pool.submit(gate.wait, 60)
    try:
        codes = [
            app_client.put(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", headers=h).status_code
            for _ in range(11)
        ]
        assert codes[:10] == [200] * 10 and codes[10] == 409
        running = app_client.get(
            f"/api/v2/tss/{tss}/export", params={"states[]": "PENDING"}, headers=h
        ).json()
        target = running["data"][-1]["_id"]
        cancelled = app_client.delete(f"/api/v2/tss/{tss}/export/{target}", headers=h)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
        again = app_client.delete(f"/api/v2/tss/{tss}/export/{target}", headers=h)
        assert again.status_code == 400 and again.json()["code"] == "E_CANCEL_EXPORT"
        early = app_client.get(f"/api/v2/tss/{tss}/export/{target}/file", headers=h)
        assert early.status_code == 404 and early.json()["code"] == "E_EXPORT_NOT_COMPLETED"
        # cancelled: it will never have a file, so nothing to retry after
        assert "retry-after" not in early.headers
        pending = running["data"][0]["_id"]
        assert pending != target
        waiting = app_client.get(f"/api/v2/tss/{tss}/export/{pending}/file", headers=h)
        assert waiting.status_code == 404 and waiting.json()["code"] == "E_EXPORT_NOT_COMPLETED"
        assert int(waiting.headers["retry-after"]) > 0
        # signing goes on while exports wait and run
        _tx(base, h, tss, cid)
    finally:
        gate.set()


def test_export_needs_initialized_tss(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss = str(uuid.uuid4())
    app_client.put(f"/api/v2/tss/{tss}", json={}, headers=h)
    r = app_client.put(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT"


def test_a_defective_tss_still_exports_its_data(app_client: AppClient) -> None:
    """fiskaly: a DEFECTIVE TSS can still export; nothing is signed for it (no
    exportData log, the signature counter stays), and the archive holds every log."""
    from opentse.engine import tse as tse_steps

    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    _tx(str(app_client.base_url), h, tss, cid)
    app_client.ctx.store.run_locked(tss, lambda t: t.save(tse_steps.mark_defective(t.load())))
    before = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()
    assert before["state"] == "DEFECTIVE"
    exp = str(uuid.uuid4())
    r = app_client.put(f"/api/v2/tss/{tss}/export/{exp}", headers=h)
    assert r.status_code == 200, r.text
    assert _wait_export(app_client, h, tss, exp)["state"] == "COMPLETED"
    file = app_client.get(f"/api/v2/tss/{tss}/export/{exp}/file", headers=h)
    assert file.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(file.content)) as archive:
        logs = [m.name for m in archive.getmembers() if m.name.endswith(".log")]
    after = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()
    assert after["signature_counter"] == before["signature_counter"]
    assert len(logs) == int(before["signature_counter"])
    assert not any("exportData" in name for name in logs)
