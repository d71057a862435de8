"""The dashboard's receipt of a transaction that is no Kassenbeleg-V1 (a cash movement,
an order) keeps the 48 columns of a printed receipt: the TSE serial number, signature
and public key were single lines of up to 88 characters, wider than the receipt's box."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from opentse.dashboard.receipts import receipt_for
from opentse.server.service_store import TssRow
from opentse.testing import memory_service, ready_tse

TSS = TssRow("tss", "org", "TEST", {"address": "Hauptstr. 1, Berlin"}, None, 0)


@pytest.mark.parametrize(
    ("process_type", "process_data"),
    [
        ("SonstigerVorgang", "Einzahlung^50.00:Bar^Wechselgeld für die Kasse im Obergeschoss"),
        ("Bestellung-V1", '2;"Tasse Kaffee mit Hafermilch und Zimt";2.50\r1;"Brezel";0.90'),
        ("Kassenbeleg-V1", "Beleg^5.00_0.90_0.00_0.00_0.00^5.90:Bar"),
    ],
)
def test_rebuilt_receipt_keeps_48_columns(process_type: str, process_data: str) -> None:
    service = memory_service(int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()))
    ready = ready_tse(service)
    started = service.start_transaction(ready.tse_id, ready.client_id, b"", process_type)
    result = service.finish_transaction(
        ready.tse_id, ready.client_id, started.transaction_number,
        process_data.encode(), process_type,
    )  # fmt: skip
    text, _ = receipt_for(None, "Bäckerei Müller GmbH", TSS, result)
    lines = text.split("\n")
    assert all(len(line) <= 48 for line in lines), [ln for ln in lines if len(ln) > 48]
    joined = "".join(lines)
    assert base64.b64encode(result.signature).decode() in joined
    assert result.serial_number.hex() in joined
    assert "Keine zertifizierte TSE (opentse)" in lines
    if process_type != "Kassenbeleg-V1":  # its raw process data, every character of it
        squashed = re.sub(r"\s", "", process_data)
        assert squashed in re.sub(r"\s", "", text)


def test_rebuilt_receipt_invents_no_receipt_number() -> None:
    """The register's receipt number (Beleg-Nr.) is not in the TSE's log; the rebuilt
    receipt printed the TSE transaction number under that label, so it disagreed with
    the paper receipt (register receipt 2 was signed as TSE transaction 3)."""
    service = memory_service(int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()))
    ready = ready_tse(service)
    for _ in range(3):
        started = service.start_transaction(ready.tse_id, ready.client_id, b"", "Kassenbeleg-V1")
        result = service.finish_transaction(
            ready.tse_id, ready.client_id, started.transaction_number,
            b"Beleg^5.00_0.00_0.00_0.00_0.00^5.00:Bar", "Kassenbeleg-V1",
        )  # fmt: skip
    text, _ = receipt_for(None, "Bäckerei Müller GmbH", TSS, result)
    assert "Beleg-Nr." not in text
    assert "TSE-Transaktion: 3" in text.split("\n")
