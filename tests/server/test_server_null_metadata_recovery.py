"""A metadata key removed by ``null`` stays removed when the transaction's index row
is rebuilt from its logs (a crash lost the index write): the emptied metadata was
not logged (only non-empty metadata was) and the rebuild merged the logged keys
into the lagging row's, so the removed key came back."""

from __future__ import annotations

import uuid
from typing import Any

from server_support import AppClient, login, new_key, setup_tss

from opentse.ops.store import OpsDB


def test_a_key_removed_by_null_stays_removed_after_recovery(app_client: AppClient) -> None:
    c = app_client
    h = login(c, new_key(c))
    tss, till = setup_tss(c, h)
    raw = {"raw": {"process_type": "Kassenbeleg-V1", "process_data": ""}}

    def put(tx: str, revision: int, metadata: dict[str, Any]) -> dict[str, Any]:
        body = {"state": "ACTIVE", "client_id": till, "schema": raw, "metadata": metadata}
        answer = c.put(
            f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": revision}, headers=h, json=body
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    emptied, kept = str(uuid.uuid4()), str(uuid.uuid4())
    put(emptied, 1, {"table": "7"})
    assert put(emptied, 2, {"table": None})["metadata"] == {}
    put(kept, 1, {"table": "7", "waiter": "Ana"})
    assert put(kept, 2, {"table": None, "guests": "3"})["metadata"] == {
        "waiter": "Ana",
        "guests": "3",
    }
    c.ctx.svc.flush()
    # the index writes of revision 2 lost: the rows as revision 1 left them
    with OpsDB(c.ctx.svc).tx() as conn:
        conn.execute(
            "UPDATE svc_transactions SET latest_revision = 1, metadata = ? WHERE tx_id = ?",
            ('{"table": "7"}', emptied),
        )
        conn.execute(
            "UPDATE svc_transactions SET latest_revision = 1, metadata = ? WHERE tx_id = ?",
            ('{"table": "7", "waiter": "Ana"}', kept),
        )
    got = c.get(f"/api/v2/tss/{tss}/tx/{emptied}", headers=h).json()
    assert (got["latest_revision"], got["metadata"]) == (2, {})
    got = c.get(f"/api/v2/tss/{tss}/tx/{kept}", headers=h).json()
    assert (got["latest_revision"], got["metadata"]) == (2, {"waiter": "Ana", "guests": "3"})
