"""SQLiteStore: the conformance suite plus what only a file-backed store can show."""

from __future__ import annotations

import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from opentse.engine.ports import LockedTSE, TSEStore
from opentse.engine.state import TSEState
from opentse.errors import StorageError
from opentse.storage import migrations
from opentse.storage.sqlite import SQLiteStore
from opentse.testing.store_conformance import (
    StoreConformance,
    append_and_save,
    make_log,
    make_record,
)


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "store.db")
        yield store
        store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_everything_survives_reopening(db: Path) -> None:
    store = SQLiteStore(db)
    store.create_tse(make_record("t"), TSEState("t", description="persisted"))
    append_and_save(store, "t", 3, ref=None)
    append_and_save(store, "t", 1, ref="r")
    store.close()
    again = SQLiteStore(db)
    try:
        assert again.get_record("t") == make_record("t")
        state = again.get_state("t")
        assert (state.description, state.signature_counter, state.version) == ("persisted", 4, 2)
        assert [log.signature_counter for log in again.iter_logs("t")] == [1, 2, 3, 4]
        assert append_and_save(again, "t") == [5]
        found = again.find_ref("t", "r")
        assert found is not None and found.signature_counter == 4
    finally:
        again.close()


def test_commit_is_visible_to_other_connections_when_run_locked_returns(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        other = _raw(db)
        for expected in range(1, 6):
            append_and_save(store, "t")
            row = other.execute(
                "SELECT MAX(signature_counter) FROM logs WHERE tse_id = 't'"
            ).fetchone()
            assert row[0] == expected
        other.close()


def test_pragmas_and_schema(db: Path) -> None:
    with SQLiteStore(db) as store:
        write = store._write  # the writer is idle between requests
        assert write.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert write.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert write.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert write.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    raw = _raw(db)
    names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert {"tses", "tse_states", "tse_counters", "logs", "logs_ref", "logs_counter"} <= names
    assert raw.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()[
        0
    ] == (
        1,
        "core",
    )
    raw.close()


def test_database_rejects_counter_gaps_even_without_the_store(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 2)
    raw = _raw(db)
    insert = (
        "INSERT INTO logs (tse_id, signature_counter, log_type, operation, log_time, "
        "filename, message) VALUES ('t', ?, 'Tra', '', 0, 'f', x'00')"
    )
    for counter in (2, 4, 1):
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute(insert, (counter,))
    raw.execute(insert, (3,))
    last = raw.execute(
        "SELECT last_signature_counter FROM tse_counters WHERE tse_id = 't'"
    ).fetchone()
    assert last[0] == 3
    raw.close()


def test_group_commit_batches_concurrent_callers(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        before = store.stats
        threads = [
            threading.Thread(target=lambda: [append_and_save(store, "t") for _ in range(25)])
            for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = store.stats
        requests = stats["requests"] - before["requests"]
        commits = stats["commits"] - before["commits"]
        assert requests == 400
        assert commits < requests  # several callers shared one fsync
        counters = [log.signature_counter for log in store.iter_logs("t")]
        assert counters == list(range(1, 401))


def test_two_stores_on_one_file_exclude_each_other(db: Path) -> None:
    """Two writers on one file (as two processes would be): the cached state of
    one must notice the other's commits through the version column."""
    first = SQLiteStore(db)
    second = SQLiteStore(db)
    try:
        first.create_tse(make_record("t"), TSEState("t"))
        errors: list[BaseException] = []

        def worker(store: TSEStore) -> None:
            try:
                for _ in range(40):
                    append_and_save(store, "t")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(s,)) for s in (first, second) * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        counters = [log.signature_counter for log in second.iter_logs("t")]
        assert counters == list(range(1, 241))
        assert first.get_state("t").signature_counter == 240
        assert first.get_state("t").version == 240
    finally:
        first.close()
        second.close()


def test_iter_logs_streams_with_bounded_memory(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        big = b"\xab" * 4096
        for batch in range(6):

            def fn(locked: LockedTSE, batch: int = batch) -> None:
                state = locked.load()
                first = state.signature_counter + 1
                logs = [make_log("t", c) for c in range(first, first + 500)]
                locked.append([log.__class__(**{**_as_dict(log), "message": big}) for log in logs])
                state.signature_counter = first + 499
                locked.save(state)

            store.run_locked("t", fn)
        tracemalloc.start()
        try:
            count = 0
            for log in store.iter_logs("t"):
                assert len(log.message) == 4096
                count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == 3000  # 12 MB of messages
        assert peak < 4 * 1024 * 1024


def _as_dict(log: object) -> dict[str, object]:
    return {name: getattr(log, name) for name in log.__dataclass_fields__}  # type: ignore[attr-defined]


def test_disk_full_writes_nothing_and_store_recovers(db: Path) -> None:
    with SQLiteStore(db) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 2)
        pages = store._write.execute("PRAGMA page_count").fetchone()[0]
        store._write.execute(f"PRAGMA max_page_count = {pages + 2}")
        huge = b"\x00" * 200_000

        def fn(locked: LockedTSE) -> None:
            state = locked.load()
            log = make_log("t", 3)
            locked.append([log.__class__(**{**_as_dict(log), "message": huge})])
            state.signature_counter = 3
            locked.save(state)

        with pytest.raises(StorageError):
            store.run_locked("t", fn)
        assert store.count_logs("t") == 2
        assert store.get_state("t").signature_counter == 2
        store._write.execute("PRAGMA max_page_count = 1073741823")
        assert append_and_save(store, "t") == [3]


def test_closed_store_refuses_work(db: Path) -> None:
    store = SQLiteStore(db)
    store.create_tse(make_record("t"), TSEState("t"))
    store.close()
    store.close()
    for call in (
        lambda: append_and_save(store, "t"),
        lambda: store.get_state("t"),
        lambda: store.create_tse(make_record("u"), TSEState("u")),
    ):
        with pytest.raises(StorageError) as exc_info:
            call()
        assert exc_info.value.code == "E_STORE_CLOSED"


def test_memory_database_is_refused() -> None:
    with pytest.raises(StorageError):
        SQLiteStore(":memory:")


def test_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "t.db")


# -- migrations ---------------------------------------------------------------------


def test_migrations_are_idempotent(db: Path) -> None:
    conn = _raw(db)
    packaged = [m.version for m in migrations.load("sqlite")]
    assert packaged[0] == 1
    assert migrations.apply(conn, "sqlite") == packaged
    assert migrations.apply(conn, "sqlite") == []
    assert migrations.applied_versions(conn) == set(packaged)
    conn.close()


def test_migrations_run_in_order_each_in_its_own_transaction(tmp_path: Path) -> None:
    folder = tmp_path / "sqlite"
    folder.mkdir()
    (folder / "0002_second.sql").write_text(
        "CREATE TABLE b (x INTEGER);\n"
        "CREATE TRIGGER b_t AFTER INSERT ON b BEGIN INSERT INTO a VALUES (NEW.x); END;\n"
        "-- trailing comment; with a semicolon\n"
    )
    (folder / "0001_first.sql").write_text("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);")
    (folder / "0003_broken.sql").write_text("CREATE TABLE c (x INTEGER);\nNOT SQL AT ALL;")
    (folder / "notes.txt").write_text("ignored")
    conn = _raw(tmp_path / "m.db")
    with pytest.raises(StorageError) as exc_info:
        migrations.apply(conn, "sqlite", folder)
    assert exc_info.value.code == "E_STORAGE_MIGRATION"
    assert migrations.applied_versions(conn) == {1, 2}
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"a", "b", "b_t"} <= tables
    assert "c" not in tables  # the broken file left nothing behind
    conn.execute("INSERT INTO b VALUES (7)")
    assert conn.execute("SELECT x FROM a ORDER BY x").fetchall() == [(1,), (7,)]
    (folder / "0003_broken.sql").write_text("CREATE TABLE c (x INTEGER);")
    assert migrations.apply(conn, "sqlite", folder) == [3]
    conn.close()


def test_duplicate_migration_numbers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0002_service.sql").write_text("SELECT 1;")
    (tmp_path / "0002_register.sql").write_text("SELECT 1;")
    with pytest.raises(StorageError) as exc_info:
        migrations.load("sqlite", tmp_path)
    assert "0002" in exc_info.value.message


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(StorageError):
        migrations.load("oracle")


def test_split_statements_keeps_trigger_bodies() -> None:
    script = (
        "CREATE TABLE a (x TEXT DEFAULT ';');\n"
        "-- a comment; still a comment\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2; END;\n"
    )
    statements = migrations.split_statements(script)
    assert len(statements) == 2
    assert statements[1].endswith("END;")
    assert all(sqlite3.complete_statement(s) for s in statements)
