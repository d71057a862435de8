"""A transaction another till took over (started by C1, finished by C2: certified
TSEs and opentse accept it) belongs to the till that finished it when the TSE side
of the cross-check is read, in whatever order incremental TARs are given: the Start
log read after the Finish log gave it back to C1 (a false E_XC_CLIENT_DIFFERS or a
clientId difference in ``verify-receipt --tse-export``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentse.engine.export import ExportFilter
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.testing import TEST_SECRET, FrozenClock, MemoryStore, ready_tse
from opentse.verify.crosscheck_read import read_tar_transactions


@pytest.mark.parametrize("order", [("old", "new"), ("new", "old"), ("all",)])
def test_a_moved_transaction_is_the_finishing_tills(tmp_path: Path, order: tuple[str]) -> None:
    store = MemoryStore()
    clock = FrozenClock(1_700_000_000)
    svc = TSEService(store, Keyring(TEST_SECRET), clock)
    ready_tse(svc, "t", client_id="C1", seed="moved")
    svc.register_client("t", "C2")
    started = svc.start_transaction("t", "C1", b"", "Kassenbeleg-V1")
    cut = store.get_state("t").signature_counter
    clock.advance(5)
    data = b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar"
    svc.finish_transaction("t", "C2", started.transaction_number, data, "Kassenbeleg-V1")
    filters = {
        "old": ExportFilter(end_signature_counter=cut),
        "new": ExportFilter(start_signature_counter=cut + 1),
        "all": ExportFilter(),
    }
    for name in order:
        with open(tmp_path / f"{name}.tar", "wb") as out:
            svc.export("t", out, filters[name], log_export=False)

    (tx,) = read_tar_transactions([tmp_path / f"{name}.tar" for name in order])
    assert tx.number == started.transaction_number
    assert tx.client_id == "C2"
    assert tx.start is not None and tx.end is not None and tx.start < tx.end
