"""Recovery's abort of an order over a fiskaly-compatible service.

Recovery closes a dangling transaction with an aborted receipt (Kassenbeleg-V1
AVBelegabbruch). An order's Start named Bestellung-V1, and the service refuses a
Finish that changes the process type (409 E_TX_ILLEGAL_TYPE_CHANGE, as fiskaly
does), so the abort failed at every reconnect and the order stayed open at the TSE
for good. It is now the transaction's CANCELLED revision, which the service signs as
that same aborted receipt: on both of recovery's paths (the Start's own ref, and a
transaction found open on reconnect)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator

import httpx

from opentse.formats import processdata as pd
from opentse.register.recovery import ABORT_PROCESS_DATA, ABORT_PROCESS_TYPE
from opentse.register.remote import RemoteBackend, tx_id_for

CLIENT = "KASSE-1"


@contextlib.contextmanager
def _backend(served: dict[str, str]) -> Iterator[RemoteBackend]:
    args = ("origin", "api_key", "api_secret", "tss", "client")
    backend = RemoteBackend(*(served[a] for a in args), retries=0)
    try:
        yield backend
    finally:
        backend.close()


def _transaction(served: dict[str, str], tx: str) -> dict[str, object]:
    with httpx.Client(base_url=served["origin"], timeout=30) as api:
        auth = {"api_key": served["api_key"], "api_secret": served["api_secret"]}
        token = api.post("/api/v2/auth", json=auth).json()["access_token"]
        r = api.get(
            f"/api/v2/tss/{served['tss']}/tx/{tx}", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body


def test_an_open_order_is_aborted_on_both_recovery_paths(
    fiskaly_tss: Callable[[str], dict[str, str]],
) -> None:
    served = fiskaly_tss(CLIENT)
    with _backend(served) as backend:
        assert ABORT_PROCESS_TYPE == pd.PROCESS_TYPE_KASSENBELEG
        # the Start's own ref (a pending Start in the journal)
        order = backend.start(CLIENT, pd.PROCESS_TYPE_BESTELLUNG, ref="order-1:start")
        aborted = backend.finish(
            CLIENT, order.transaction_number, ABORT_PROCESS_TYPE, ABORT_PROCESS_DATA,
            ref="order-1:finish",
        )  # fmt: skip
        assert aborted.transaction_number == order.transaction_number
        body = _transaction(served, tx_id_for("order-1:start"))
        assert body["state"] == "CANCELLED" and body["latest_revision"] == 2
        raw = body["schema"]["raw"]  # type: ignore[index]
        assert raw["process_type"] == ABORT_PROCESS_TYPE
        assert base64.b64decode(raw["process_data"]).decode() == ABORT_PROCESS_DATA
        # a transaction found open on reconnect (no ref of its Start)
        other = backend.start(CLIENT, pd.PROCESS_TYPE_BESTELLUNG, ref="order-2:start")
        backend.finish(
            CLIENT, other.transaction_number, ABORT_PROCESS_TYPE, ABORT_PROCESS_DATA,
            ref=f"recover:{CLIENT}:{other.transaction_number}",
        )  # fmt: skip
        assert _transaction(served, tx_id_for("order-2:start"))["state"] == "CANCELLED"
        assert backend.open_transactions(CLIENT) == []


def test_a_receipt_is_still_finished_and_a_real_type_change_still_refused(
    fiskaly_tss: Callable[[str], dict[str, str]],
) -> None:
    served = fiskaly_tss(CLIENT)
    with _backend(served) as backend:
        sale = backend.start(CLIENT, pd.PROCESS_TYPE_KASSENBELEG, ref="sale-1:start")
        backend.finish(
            CLIENT, sale.transaction_number, ABORT_PROCESS_TYPE, ABORT_PROCESS_DATA,
            ref="sale-1:finish",
        )  # fmt: skip
        assert _transaction(served, tx_id_for("sale-1:start"))["state"] == "FINISHED"
        order = backend.start(CLIENT, pd.PROCESS_TYPE_BESTELLUNG, ref="order-3:start")
        try:
            backend.finish(
                CLIENT, order.transaction_number, pd.PROCESS_TYPE_KASSENBELEG,
                "Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar", ref="order-3:finish",
            )  # fmt: skip
        except Exception as exc:  # not an abort: the service's refusal stands
            assert getattr(exc, "code", "") == "E_TX_ILLEGAL_TYPE_CHANGE"
        else:
            raise AssertionError("a receipt over an order's Start was signed")
        assert _transaction(served, tx_id_for("order-3:start"))["state"] == "ACTIVE"
