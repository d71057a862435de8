"""The outage log of the procedure documentation (``opentse tse outage``): its rows and
their protocol entries are append-only, so a TSE id with a typo must be refused before
anything is written; it was recorded, for a TSE that does not exist, for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ready_tse
from opentse.errors import OpenTSEError
from opentse.ops import outages, protocol
from opentse.ops.store import OpsContext


def test_an_outage_of_an_unknown_tse_is_refused_and_nothing_is_written(ops: OpsContext) -> None:
    ready_tse(ops, "tse-backstube")
    before = len(protocol.entries(ops.db))
    at = ops.now()
    with pytest.raises(OpenTSEError) as refused:
        outages.record_outage(
            ops, started_at=at - 3600, ended_at=at, reason="Router defekt", tse_id="tse-bakstube"
        )
    assert refused.value.code == "E_TSS_NOT_FOUND"
    assert outages.outages(ops) == [] and len(protocol.entries(ops.db)) == before
    row = outages.record_outage(
        ops, started_at=at - 3600, ended_at=at, reason="Router defekt", tse_id="tse-backstube"
    )
    assert outages.outages(ops) == [row]
    outages.record_outage(ops, started_at=at - 60, ended_at=None, reason="Strom weg")  # no TSE
    assert len(outages.outages(ops)) == 2


def test_a_journal_that_does_not_exist_is_an_error_not_an_empty_file(
    ops: OpsContext, tmp_path: Path
) -> None:
    """`docs procedure --journal kasse-typo.db` created an empty journal of that name and
    listed no outage from it, as if the till had had none."""
    typo = tmp_path / "kasse-typo.db"
    with pytest.raises(OpenTSEError) as refused:
        outages.outages(ops, (typo,))
    assert refused.value.code == "E_JOURNAL_NOT_FOUND"
    assert not typo.exists()
