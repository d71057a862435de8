"""An open transaction whose latest revision's log was deleted after an export.

deleteStoredData drops every exported log, the Start (or Update) of a transaction
still open included. That transaction is still open at the TSE (the TSS counts it
in ``number_active_transactions``, it holds one of its 2000 places) and a register
finishes it as aborted on recovery: it lists its client's ACTIVE transactions, reads
the one it means by number and signs the revision after ``latest_revision``. Left
out of the lists and answered 400 by number, the transaction stayed open for good.

fiskaly keeps every log, so its Transaction always has ``log`` and ``signature``.
Here the signature value and any data of the deleted revision are gone; what is
still known is answered, nothing is made up: the index row (number, client, start
time, revisions, metadata), the TSS's serial, key and algorithm, the operation
(revision 1 is the Start, whose log time is ``time_start``; a later open revision an
Update, whose time is not kept) and the deleted log's signature counter
(deleted_refs). ``schema`` and ``signature.value`` are left out, ``log.timestamp``
too for an Update. A closed transaction is not answered so: it needs nothing more,
and its receipt (QR code, signature) cannot be shown without the log.
"""

from __future__ import annotations

import base64
from typing import Any

from opentse.server.context import API_VERSION, ServerContext
from opentse.server.service_store import TxRow
from opentse.server.tx_index import tx_ref


def open_tx_body(ctx: ServerContext, row: TxRow, env: str) -> dict[str, Any] | None:
    """The Transaction of ``row`` (ACTIVE) whose latest revision's log was deleted;
    None when the row is not open or that log was not deleted (not in store: another
    cause, answered as before)."""
    if row.state != "ACTIVE":
        return None
    counter = ctx.svc.deleted_log_counter(row.tss_id, tx_ref(row.tx_id, row.latest_revision))
    if counter is None:
        return None
    record = ctx.service.context(row.tss_id).record
    client = ctx.svc.get_client(row.client_id)
    log: dict[str, Any] = {
        "operation": "Start" if row.latest_revision == 1 else "Update",
        "timestamp_format": record.time_format,
    }
    if row.latest_revision == 1:
        log["timestamp"] = row.time_start
    return {
        "number": row.number,
        "time_start": row.time_start,
        "client_serial_number": client.serial_number if client else "",
        "tss_serial_number": record.serial_number.hex(),
        "state": "ACTIVE",
        "client_id": row.client_id,
        "revision": row.latest_revision,
        "latest_revision": row.latest_revision,
        "tss_id": row.tss_id,
        "metadata": row.metadata,
        "log": log,
        "signature": {
            "algorithm": record.signature_algorithm,
            "counter": str(counter),
            "public_key": base64.b64encode(record.public_key_point).decode(),
        },
        "_type": "TRANSACTION",
        "_id": row.tx_id,
        "_env": env,
        "_version": API_VERSION,
    }
