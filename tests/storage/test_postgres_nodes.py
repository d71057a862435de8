"""PostgresStore as several nodes see it: other processes, killed processes, the
database's own counter check, concurrent migrations, the state cache, group commit.

Skips only when no PostgreSQL server is reachable (``OPENTSE_TEST_DATABASE``).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from opentse.engine.ports import LockedTSE
from opentse.engine.state import TSEState
from opentse.errors import StorageError
from opentse.storage import migrations
from opentse.storage.postgres import PostgresStore, migrate
from opentse.testing.store_conformance import append_and_save, make_log, make_record

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


# A second "node": appends ``rounds`` logs to TSE "t", one run_locked each, and
# prints the counters it got back as JSON.
_WORKER = """
import json, sys
from opentse.storage.postgres import PostgresStore
from opentse.testing.store_conformance import append_and_save
store = PostgresStore(sys.argv[1], apply_migrations=False)
got = []
for _ in range(int(sys.argv[2])):
    got += append_and_save(store, "t", 1)
store.close()
print(json.dumps(got))
"""

# Takes the lock of TSE "t", appends counter 1 and then waits forever (to be killed).
_HOLDER = """
import sys, time
from opentse.storage.postgres import PostgresStore
from opentse.testing.store_conformance import make_log
store = PostgresStore(sys.argv[1], apply_migrations=False)
def fn(locked):
    state = locked.load()
    locked.append([make_log("t", state.signature_counter + 1, ref="doomed")])
    print("locked", flush=True)
    time.sleep(600)
store.run_locked("t", fn)
"""


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_url, pool_max=12)
    yield s
    s.close()


def test_processes_and_threads_share_one_gapless_counter(store: PostgresStore, pg_url: str) -> None:
    store.create_tse(make_record("t"), TSEState("t"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, pg_url, "40"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    mine: list[int] = []
    lock = threading.Lock()

    def local() -> None:
        for _ in range(20):
            got = append_and_save(store, "t", 1)
            with lock:
                mine.extend(got)

    threads = [threading.Thread(target=local) for _ in range(3)]
    for t in threads:
        t.start()
    outputs = [p.communicate(timeout=90)[0] for p in procs]
    for t in threads:
        t.join()
    assert all(p.returncode == 0 for p in procs)
    returned = sorted(mine + [c for out in outputs for c in json.loads(out)])
    assert returned == list(range(1, 2 * 40 + 3 * 20 + 1))  # no counter twice, none skipped
    stored = [log.signature_counter for log in store.iter_logs("t")]
    assert stored == returned
    assert store.get_state("t").signature_counter == len(stored)


def test_a_killed_lock_holder_loses_its_work_and_frees_the_tse(
    store: PostgresStore, pg_url: str
) -> None:
    store.create_tse(make_record("t"), TSEState("t"))
    append_and_save(store, "t", 2)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, pg_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        blocked = threading.Thread(target=lambda: append_and_save(store, "t", 1))
        blocked.start()
        blocked.join(timeout=1.0)
        assert blocked.is_alive(), "the row lock did not exclude the second writer"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        blocked.join(timeout=20)
        assert not blocked.is_alive()
        assert time.monotonic() - started < 10
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert store.find_ref("t", "doomed") is None
    assert [log.signature_counter for log in store.iter_logs("t")] == [1, 2, 3]


def test_the_database_itself_refuses_counter_gaps(store: PostgresStore, pg_url: str) -> None:
    store.create_tse(make_record("t"), TSEState("t", signature_counter=5))
    sql = (
        "INSERT INTO logs (tse_id, signature_counter, log_type, operation, log_time,"
        " filename, message) VALUES ('t', %s, 'Tra', '', 0, 'f', '\\x00')"
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for bad in (5, 7, 1):
            with pytest.raises(psycopg.errors.CheckViolation, match="E_COUNTER_GAP"):
                conn.execute(sql, (bad,))
        conn.execute(sql, (6,))
        row = conn.execute("SELECT last_signature_counter FROM tses WHERE tse_id='t'").fetchone()
        assert row == (6,)
        with pytest.raises(psycopg.errors.IntegrityError):  # repeat: primary key
            conn.execute(sql, (6,))
    with pytest.raises(StorageError) as exc_info:
        append_and_save(store, "t", 1)  # the state still says 5: store and trigger refuse
    assert exc_info.value.code == "E_COUNTER_GAP"


def test_concurrent_migrations_apply_each_file_once(pg_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = [m.version for m in migrations.load("postgresql")]
    assert sorted(v for r in results for v in r) == expected
    assert migrate(pg_url) == []
    with psycopg.connect(pg_url) as conn:
        assert migrations.applied_versions(conn) == set(expected)


def test_commit_is_visible_elsewhere_when_run_locked_returns(
    store: PostgresStore, pg_url: str
) -> None:
    store.create_tse(make_record("t"), TSEState("t"))
    with psycopg.connect(pg_url, autocommit=True) as other:
        for expected in range(1, 6):
            append_and_save(store, "t")
            row = other.execute(
                "SELECT max(signature_counter), (SELECT version FROM tses WHERE tse_id = 't')"
                " FROM logs WHERE tse_id = 't'"
            ).fetchone()
            assert row == (expected, expected)


def test_state_cache_never_serves_another_nodes_stale_state(pg_url: str) -> None:
    with (
        PostgresStore(pg_url) as node_a,
        PostgresStore(pg_url, apply_migrations=False) as node_b,
    ):
        node_a.create_tse(make_record("t"), TSEState("t"))

        def describe(text: str) -> Callable[[LockedTSE], None]:
            def fn(locked: LockedTSE) -> None:
                state = locked.load()
                state.description = text
                locked.save(state)

            return fn

        for n in range(6):
            node = node_a if n % 2 == 0 else node_b
            seen = node.run_locked("t", lambda locked: locked.load().description)
            assert seen == ("" if n == 0 else f"write {n - 1}")
            node.run_locked("t", describe(f"write {n}"))
        parsed_before = node_a.stats["state_parsed"]
        for _ in range(5):  # only node_a writes now: its cache serves every load
            append_and_save(node_a, "t", 1)
        assert node_a.stats["state_parsed"] == parsed_before + 1
        assert node_b.get_state("t").signature_counter == 5


def test_group_commit_shares_transactions_on_a_hot_tse(store: PostgresStore) -> None:
    store.create_tse(make_record("t"), TSEState("t"))
    before = store.stats
    threads = [
        threading.Thread(target=lambda: [append_and_save(store, "t", 1) for _ in range(15)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = store.stats
    requests = stats["requests"] - before["requests"]
    commits = stats["commits"] - before["commits"]
    assert requests == 120
    assert commits < requests  # several callers per transaction
    assert [log.signature_counter for log in store.iter_logs("t")] == list(range(1, 121))


def test_iter_logs_memory_is_bounded(store: PostgresStore) -> None:
    store.create_tse(make_record("t"), TSEState("t"))
    big = b"\x30" * 4000

    def fill(locked: LockedTSE) -> None:
        state = locked.load()
        first = state.signature_counter + 1
        logs = [make_log("t", c) for c in range(first, first + 1000)]
        locked.append([dataclasses.replace(log, message=big) for log in logs])
        state.signature_counter = first + 999
        locked.save(state)

    for _ in range(6):
        store.run_locked("t", fill)  # 6000 logs, 24 MB of messages
    tracemalloc.start()
    try:
        count = 0
        for log in store.iter_logs("t"):
            count += 1
            assert len(log.message) == 4000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 6000
    assert peak < 6_000_000, peak  # a few fetch batches, not the 24 MB


def test_unreachable_server_is_a_storage_error() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as exc_info:
        PostgresStore("postgresql://nobody@127.0.0.1:1/none", timeout=2)
    assert exc_info.value.code == "E_STORAGE_UNAVAILABLE"
    assert time.monotonic() - started < 10


def test_installation_opens_postgres_from_url_and_env(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentse.installation import Installation

    with Installation.open(tmp_path / "a", database_url=pg_url) as inst:
        assert isinstance(inst.store, PostgresStore)
        inst.store.create_tse(make_record("t"), TSEState("t"))
    monkeypatch.setenv("OPENTSE_DATABASE", pg_url)
    with Installation.open(tmp_path / "a") as inst:
        assert isinstance(inst.store, PostgresStore)
        assert [r.tse_id for r in inst.store.list_tses()] == ["t"]
    assert not (tmp_path / "a" / "opentse.db").exists()


def test_a_node_with_another_secret_or_ca_is_refused(pg_url: str, tmp_path: Path) -> None:
    import shutil

    from opentse.errors import ProtocolError
    from opentse.installation import CA_FILE, Installation

    with Installation.open(tmp_path / "first", database_url=pg_url) as first:
        first.store.create_tse(make_record("t"), TSEState("t"))
    # a copy of the data folder (secret + CA) is the same installation: accepted
    shutil.copytree(tmp_path / "first", tmp_path / "copy")
    with Installation.open(tmp_path / "copy", database_url=pg_url) as copy:
        assert [r.tse_id for r in copy.store.list_tses()] == ["t"]
    # a fresh data folder has its own secret: refused before it can create a TSE
    with pytest.raises(ProtocolError) as exc_info:
        Installation.open(tmp_path / "fresh", database_url=pg_url)
    assert exc_info.value.code == "E_INSTALLATION_MISMATCH"
    assert "installation.key" in str(exc_info.value)
    # same secret, other CA: refused too
    (tmp_path / "copy" / CA_FILE).unlink()
    with pytest.raises(ProtocolError) as exc_info:
        Installation.open(tmp_path / "copy", database_url=pg_url)
    assert "ca.json" in str(exc_info.value)
