"""PgServiceStore: the service tables behave alike on SQLite and PostgreSQL.

The same scenario runs against ``ServiceStore`` (SQLite file) and ``PgServiceStore``
(fresh schema); both must give the same answers.
"""

from __future__ import annotations

import sqlite3

import pytest

from opentse.errors import ConflictError
from opentse.server.service_store import ClientRow, ExportRow, Page, ServiceStore, TxRow
from opentse.storage.pg_service import translate

# ServiceStore turns some integrity errors into ConflictError; either is fine here
_DUPLICATE = (sqlite3.IntegrityError, ConflictError)


def test_translate_placeholders_outside_literals() -> None:
    assert translate("SELECT a FROM t WHERE x=? AND y IN ('?','a''?') LIMIT ?") == (
        "SELECT a FROM t WHERE x=%s AND y IN ('?','a''?') LIMIT %s"
    )
    assert translate("BEGIN IMMEDIATE") == "BEGIN"
    assert translate("SELECT count(*) FROM (SELECT a FROM t WHERE b=?)") == (
        "SELECT count(*) FROM (SELECT a FROM t WHERE b=%s) AS page"
    )
    assert translate("SELECT '100%' || ?") == "SELECT '100%' || %s"
    assert translate("SELECT 5 % ?") == "SELECT 5 %% %s"
    assert translate("SELECT 5 % 2", with_params=False) == "SELECT 5 % 2"


def test_percent_signs_reach_the_database_unchanged(service_store: ServiceStore) -> None:
    service_store.create_organization("org-%", "100% shop", "TEST", 1)
    assert service_store.find_organization("100% shop", "TEST") == "org-%"
    assert service_store._conn().execute("SELECT 7 % 4").fetchone()[0] == 3


def test_organizations_and_keys(service_store: ServiceStore) -> None:
    service_store.create_organization("org-1", "shop", "TEST", 10)
    assert service_store.find_organization("shop", "TEST") == "org-1"
    assert service_store.find_organization("shop", "LIVE") is None
    service_store.add_api_key("key-1", "hash$x", "org-1", "TEST", 11)
    key = service_store.get_api_key("key-1")
    assert key is not None
    assert (key.organization_id, key.secret_hash, key.disabled) == ("org-1", "hash$x", False)
    assert service_store.get_api_key("nope") is None
    assert service_store.count_api_keys() == 1
    with pytest.raises(_DUPLICATE):
        service_store.add_api_key("key-1", "hash$y", "org-1", "TEST", 12)
    assert service_store.count_api_keys() == 1


def test_tss_clients_and_pages(service_store: ServiceStore) -> None:
    service_store.add_tss("tss-b", "org", "TEST", {"a": "1"}, b"\x00sealed\xff", 20)
    service_store.add_tss("tss-a", "org", "TEST", {}, None, 20)
    row = service_store.get_tss("tss-b")
    assert row is not None and row.puk_sealed == b"\x00sealed\xff" and row.metadata == {"a": "1"}
    service_store.drop_puk("tss-b")
    service_store.set_tss_metadata("tss-b", {"b": "2"})
    row = service_store.get_tss("tss-b")
    assert row is not None and row.puk_sealed is None and row.metadata == {"b": "2"}
    assert service_store.list_tss_ids("org") == ["tss-a", "tss-b"]
    for n in range(5):
        service_store.add_client(
            ClientRow(f"c{n}", "tss-a", "org", f"KASSE-{n}", "REGISTERED", {}, 100 - n % 2, 100)
        )
    with pytest.raises(_DUPLICATE):
        service_store.add_client(ClientRow("cx", "tss-a", "org", "KASSE-1", "REGISTERED", {}, 1, 1))
    found = service_store.client_by_serial("tss-a", "KASSE-3")
    assert found is not None and found.client_id == "c3"
    service_store.update_client("c3", "DEREGISTERED", {"k": "v"}, 200)
    got = service_store.get_client("c3")
    assert got is not None and (got.state, got.metadata, got.time_update) == (
        "DEREGISTERED",
        {"k": "v"},
        200,
    )
    rows, total = service_store.list_clients("org", "tss-a", Page(limit=2, offset=1))
    assert total == 5
    # time_creation 99 (c1, c3) then 100 (c0, c2, c4), ties in insertion order
    assert [r.client_id for r in rows] == ["c3", "c0"]
    rows, total = service_store.list_clients("org", None, Page(order="desc"), state="REGISTERED")
    assert total == 4 and [r.client_id for r in rows] == ["c4", "c2", "c0", "c1"]


def test_transaction_index_never_moves_backwards(service_store: ServiceStore) -> None:
    def tx(rev: int, state: str) -> TxRow:
        return TxRow("t", "x1", "org", 7, "c", rev, state, "Kassenbeleg-V1", 5, None, {})

    service_store.upsert_tx(tx(2, "ACTIVE"))
    service_store.upsert_tx(tx(1, "ACTIVE"))
    row = service_store.get_tx("t", "x1")
    assert row is not None and row.latest_revision == 2
    service_store.upsert_tx(tx(3, "FINISHED"))
    by_number = service_store.get_tx_by_number("t", 7)
    assert by_number is not None and (by_number.latest_revision, by_number.state) == (
        3,
        "FINISHED",
    )
    service_store.set_tx_metadata("t", "x1", {"m": "1"})
    rows, total = service_store.list_txs("org", Page(), tss_id="t", states=["FINISHED"])
    assert total == 1 and rows[0].metadata == {"m": "1"}
    assert service_store.list_txs("org", Page(), states=["ACTIVE"]) == ([], 0)


def test_exports_limit_and_conditional_update(service_store: ServiceStore) -> None:
    def export(n: int) -> ExportRow:
        return ExportRow(
            f"e{n}", "t", "org", "PENDING", {"a": n}, None, n, None, None, None, None, {}
        )

    assert service_store.add_export(export(1), max_running=2)
    assert service_store.add_export(export(2), max_running=2)
    assert not service_store.add_export(export(3), max_running=2)
    assert service_store.update_export("e1", only_from=("PENDING",), state="WORKING", time_start=5)
    assert not service_store.update_export("e1", only_from=("PENDING",), state="WORKING")
    assert service_store.update_export(
        "e1", state="COMPLETED", file_path="/x.tar", metadata={"z": "1"}
    )
    row = service_store.get_export("e1")
    assert row is not None and (row.state, row.file_path, row.params, row.metadata) == (
        "COMPLETED",
        "/x.tar",
        {"a": 1},
        {"z": "1"},
    )
    assert [r.export_id for r in service_store.running_exports()] == ["e2"]
    rows, total = service_store.list_exports("org", Page(order="desc"), tss_id="t")
    assert total == 2 and [r.export_id for r in rows] == ["e2", "e1"]
