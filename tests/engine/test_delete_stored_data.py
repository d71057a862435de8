"""deleteStoredData (TR-03151 SE API, "only exported data", ErrorUnexportedStoredData)
through TSEService on SQLite: nothing goes before a complete export, exactly the
exported logs go after one, the deleteStoredData system log names the mark, and
the next export (starting above counter 1) verifies with our verifier."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opentse.crypto.ca import LocalCA
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import ADMIN_PIN, TEST_SECRET, SystemClock, ready_tse
from opentse.tr03151 import codec
from opentse.verify.report import verify_exports

PROCESS_DATA = b"Beleg^5.00_0.00_0.00_0.00_0.00^5.00:Bar"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TSEService]:
    store = SQLiteStore(tmp_path / "d.db")
    ca = LocalCA.create(TEST_SECRET, int(time.time()) - 3600)  # exports carry a chain
    svc = TSEService(store, Keyring(TEST_SECRET), SystemClock(), ca=ca)
    ready_tse(svc, "t", client_id="C1", logout=True)
    yield svc
    store.close()


def _receipts(service: TSEService, count: int) -> None:
    for _ in range(count):
        start = service.start_transaction("t", "C1", b"", "")
        service.finish_transaction(
            "t", "C1", start.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
        )


def _refused(service: TSEService) -> str:
    with pytest.raises(OpenTSEError) as exc_info:
        service.delete_stored_data("t")
    assert exc_info.value.se_error == "ErrorUnexportedStoredData"
    return exc_info.value.code


def test_only_exported_logs_are_deleted(service: TSEService, tmp_path: Path) -> None:
    _receipts(service, 3)
    service.authenticate("t", ADMIN_PIN)
    before = service.store.count_logs("t")
    assert _refused(service) == "E_UNEXPORTED_STORED_DATA"  # nothing exported yet
    assert service.store.count_logs("t") == before

    summary = service.export("t", io.BytesIO())
    mark = summary.last_signature_counter
    _receipts(service, 1)  # after the export: must stay
    deleted = service.delete_stored_data("t")
    assert deleted.signature_counter > mark

    counters = [log.signature_counter for log in service.store.iter_logs("t")]
    assert counters[0] == mark + 1
    assert counters == list(range(mark + 1, deleted.signature_counter + 1))
    log = service.store.get_log("t", deleted.signature_counter)
    assert log is not None and log.operation == "deleteStoredData"
    system = codec.decode_log_message(log.message).certified
    assert getattr(system, "operation_type", None) == "deleteStoredData"
    assert _refused(service) == "E_UNEXPORTED_STORED_DATA"  # the same mark twice

    _receipts(service, 2)  # counters go on where they were
    path = tmp_path / "after.tar"
    stored = service.store.count_logs("t")  # the export's own exportData log comes after
    with path.open("wb") as out:
        service.export("t", out)
    report = verify_exports([path])
    assert report.ok, [f.to_json() for f in report.findings]
    assert report.log_messages == stored
    first = min(s["first_counter"] for s in report.to_json()["serial_numbers"].values())
    assert first == mark + 1


def test_a_late_retry_of_a_deleted_request_is_not_signed_again(service: TSEService) -> None:
    first = service.start_transaction("t", "C1", b"", "", ref="tx-a:1")
    service.export("t", io.BytesIO())
    service.authenticate("t", ADMIN_PIN)
    service.delete_stored_data("t")
    counter = service.store.get_state("t").signature_counter
    with pytest.raises(OpenTSEError) as exc_info:
        service.start_transaction("t", "C1", b"", "", ref="tx-a:1")
    assert exc_info.value.code == "E_REF_DELETED"
    assert str(first.signature_counter) in str(exc_info.value)
    assert service.store.get_state("t").signature_counter == counter


def test_needs_the_admin(service: TSEService) -> None:
    service.export("t", io.BytesIO())
    with pytest.raises(OpenTSEError) as exc_info:
        service.delete_stored_data("t")
    assert exc_info.value.code != "E_UNEXPORTED_STORED_DATA"
    assert service.store.get_log("t", 1) is not None


def test_refs_looked_up_together_answer_as_one_by_one(service: TSEService) -> None:
    """Requests reaching the SQLite writer together have their refs looked up in one
    query: a deleted ref, a stored one, a new one and a new one twice must still get
    E_REF_DELETED, the stored result, one signature and one replay."""
    gone = service.start_transaction("t", "C1", b"", "", ref="gone:1")
    service.export("t", io.BytesIO())
    service.authenticate("t", ADMIN_PIN)
    service.delete_stored_data("t")
    kept = service.start_transaction("t", "C1", b"", "", ref="kept:1")
    before = service.store.get_state("t").signature_counter

    async def together() -> list[Any]:
        calls = [
            service.transaction_async("start", "t", "C1", ref=ref)
            for ref in ("gone:1", "kept:1", "new:1", "twice:1", "twice:1")
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    deleted, stored, new, twice_a, twice_b = asyncio.run(together())
    assert isinstance(deleted, OpenTSEError) and deleted.code == "E_REF_DELETED"
    assert str(gone.signature_counter) in str(deleted)
    assert stored.replayed and stored.signature == kept.signature
    assert not new.replayed
    assert {twice_a.replayed, twice_b.replayed} == {False, True}
    assert twice_a.signature == twice_b.signature
    assert service.store.get_state("t").signature_counter == before + 2  # new, twice
