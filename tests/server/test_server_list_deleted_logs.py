"""Transaction lists after deleteStoredData: ``count`` and the pages agree.

A transaction whose latest revision's log was deleted after an export cannot be
shown (fiskaly's Transaction requires its ``log`` and ``signature``), but the lists
counted it: ``count`` exceeded what the pages held, and a POS paging until it had
``count`` transactions never got there. Such transactions are left out of both now;
one whose latest revision was signed after the deletion is listed as before. On
SQLite and PostgreSQL (the filter reads deleted_refs beside the logs)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock

CASH = {
    "standard_v1": {
        "receipt": {
            "receipt_type": "RECEIPT",
            "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "1.00"}],
            "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "1.00"}],
        }
    }
}


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def _put(c: AppClient, h: dict[str, str], tss: str, tx: str, rev: int, body: Any) -> None:
    r = c.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h)
    assert r.status_code == 200, r.text


def _pages(c: AppClient, h: dict[str, str], path: str, limit: int) -> tuple[list[int], set[int]]:
    """The numbers on every page of ``path`` and the counts the pages named."""
    numbers: list[int] = []
    counts: set[int] = set()
    offset = 0
    while True:
        params = {"limit": limit, "offset": offset, "order_by": "number"}
        r = c.get(path, params=params, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        counts.add(page["count"])
        numbers += [tx["number"] for tx in page["data"]]
        if len(page["data"]) < limit:
            return numbers, counts
        offset += limit


def test_lists_leave_out_what_they_cannot_show(served: AppClient) -> None:
    c = served
    h = login(c, new_key(c))
    tss, cid = setup_tss(c, h)
    sale = {"state": "FINISHED", "client_id": cid, "schema": CASH}
    for _ in range(3):  # numbers 1-3: finished, then exported and deleted
        tx = str(uuid.uuid4())
        _put(c, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
        _put(c, h, tss, tx, 2, sale)
    open_tx = str(uuid.uuid4())  # number 4: started before the deletion, finished after
    _put(c, h, tss, open_tx, 1, {"state": "ACTIVE", "client_id": cid})
    service = c.ctx.service
    service.export(tss, io.BytesIO())
    service.delete_stored_data(tss)
    _put(c, h, tss, open_tx, 2, sale)
    for _ in range(2):  # numbers 5, 6
        tx = str(uuid.uuid4())
        _put(c, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
        _put(c, h, tss, tx, 2, sale)

    for path in (f"/api/v2/tss/{tss}/tx", "/api/v2/tx", f"/api/v2/tss/{tss}/client/{cid}/tx"):
        for limit in (2, 100):
            numbers, counts = _pages(c, h, path, limit)
            assert numbers == [4, 5, 6], (path, limit, numbers)
            assert counts == {3}, (path, limit, counts)
    r = c.get(f"/api/v2/tss/{tss}/tx", params={"states[]": "FINISHED"}, headers=h)
    assert r.json()["count"] == len(r.json()["data"]) == 3
    # a transaction left out is still found by number, and says where its log went
    # (retrieveTransaction's code for it since 642b8e0)
    r = c.get(f"/api/v2/tss/{tss}/tx/2", headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "E_TX_REVISION_NOT_FOUND"), r.text
    assert "deleted after an export" in r.json()["message"]
