"""CI version of the crash test (tests/chaos/chaos.py): 10 SIGKILLs of a real
``opentse serve`` on SQLite under POS load, then zero lost or duplicated signatures.
With PostgreSQL reachable, also two nodes on one database with 3 kills.
``OPENTSE_CHAOS_KILLS`` raises the count (the long run: see docs/proof.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos import _postgres_schema, run

KILLS = int(os.environ.get("OPENTSE_CHAOS_KILLS", "10"))


@pytest.mark.timeout(600)
def test_sigkill_sqlite_no_signature_lost(tmp_path: Path) -> None:
    result = run(tmp_path, kills=KILLS, workers=4, tss_count=2, seed=KILLS)
    print(result.to_json())
    assert result.kills == KILLS
    assert result.finished > 0 and result.signatures >= 2 * result.finished
    assert sum(result.logs.values()) >= result.signatures


@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_sigkill_postgres_two_nodes_no_signature_lost(tmp_path: Path) -> None:
    from opentse.storage.pg_testing import server_url

    if server_url(os.environ.get("OPENTSE_TEST_DATABASE")) is None:
        pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432 (set OPENTSE_TEST_DATABASE)")
    kills = max(3, KILLS // 3)
    with _postgres_schema(os.environ.get("OPENTSE_TEST_DATABASE")) as url:
        result = run(tmp_path, kills=kills, database=url, nodes=2, workers=4, seed=kills)
    print(result.to_json())
    assert result.kills == kills and result.finished > 0
