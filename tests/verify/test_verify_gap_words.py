"""A log deleted from a real export: E_COUNTER_GAP names the logs on either side of
the hole (which transaction, register and step, from their signed content) and says
what it means and what to ask for, and W_TX_OPEN what an open transaction means, so
the auditor can act on them without the docs."""

from __future__ import annotations

import tarfile
from pathlib import Path

from opentse.engine.service import TSEService
from opentse.installation import Installation
from opentse.testing import ready_tse
from opentse.verify.report import verify_exports


def _sale(service: TSEService, client: str) -> None:
    started = service.start_transaction("t", client, b"", "Kassenbeleg-V1")
    service.finish_transaction(
        "t", client, started.transaction_number, b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar",
        "Kassenbeleg-V1",
    )  # fmt: skip


def test_a_deleted_log_is_named_by_its_neighbours(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tar = tmp_path / "tse.tar"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id="KASSE-1", logout=True)
        for _ in range(3):
            _sale(inst.service, "KASSE-1")
        with tar.open("wb") as out:
            inst.service.export("t", out)
    cut = tmp_path / "cut.tar"
    with tarfile.open(tar) as source, tarfile.open(cut, "w") as target:
        for member in source.getmembers():
            if "_No-2_Finish" in member.name:  # the second sale's Finish log
                continue
            target.addfile(member, source.extractfile(member))
    report = verify_exports([cut]).to_json()
    (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
    message = gap["message"]
    assert "missing (1 log(s)) between the Start log of transaction 2 (client 'KASSE-1'" in message
    assert "and the Start log of transaction 3 (client 'KASSE-1'" in message
    assert "not in the export" in message and "complete export" in message
    (open_tx,) = [f for f in report["findings"] if f["code"] == "W_TX_OPEN"]
    assert "transaction 2" in open_tx["message"] and "no Finish log" in open_tx["message"]
    assert "E_COUNTER_GAP" in open_tx["message"]
