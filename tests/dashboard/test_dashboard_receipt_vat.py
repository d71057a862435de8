"""The dashboard's receipt of a finished transaction prints the VAT rates in force
on the receipt's shop-local day (Europe/Berlin), as the register printed them: a
receipt of August 2020 was taxed at 16 %, not today's 19 %, and key 3 changed at
New Year's midnight Berlin time (8.4 % in 2024, 7.8 % from 2025-01-01)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opentse.dashboard.receipts import receipt_day, receipt_for
from opentse.server.service_store import TssRow
from opentse.testing import memory_service, ready_tse

TSS = TssRow("tss", "org", "TEST", {"address": "Hauptstr. 1, Berlin"}, None, 0)


def _receipt_at(when: datetime, process_data: str) -> str:
    service = memory_service(int(when.timestamp()))
    ready = ready_tse(service)
    started = service.start_transaction(ready.tse_id, ready.client_id, b"", "Kassenbeleg-V1")
    result = service.finish_transaction(
        ready.tse_id,
        ready.client_id,
        started.transaction_number,
        process_data.encode(),
        "Kassenbeleg-V1",
    )
    text, qr = receipt_for(None, "Muster GmbH", TSS, result)
    assert qr is not None
    return text


@pytest.mark.parametrize(
    ("when", "percent"),
    [
        (datetime(2020, 8, 1, 12, 0, tzinfo=UTC), "16 %"),
        (datetime(2021, 8, 1, 12, 0, tzinfo=UTC), "19 %"),
    ],
)
def test_key_1_at_the_rate_of_the_receipts_day(when: datetime, percent: str) -> None:
    text = _receipt_at(when, "Beleg^11.60_0.00_0.00_0.00_0.00^11.60:Bar")
    assert f"A {percent}" in text
    other = "19 %" if percent == "16 %" else "16 %"
    assert other not in text
    net = "10,00" if percent == "16 %" else "9,75"
    assert net in text


def test_key_3_changes_at_midnight_in_berlin_not_in_utc() -> None:
    before = datetime(2024, 12, 31, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    after = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 2025-01-01 in Berlin
    data = "Beleg^0.00_0.00_10.84_0.00_0.00^10.84:Bar"
    assert "8,4 %" in _receipt_at(before, data)
    assert "7,8 %" in _receipt_at(after, data)
    assert str(receipt_day_of(after)) == "2025-01-01"


def receipt_day_of(when: datetime) -> object:
    service = memory_service(int(when.timestamp()))
    ready = ready_tse(service)
    started = service.start_transaction(ready.tse_id, ready.client_id, b"", "Kassenbeleg-V1")
    return receipt_day(started)
