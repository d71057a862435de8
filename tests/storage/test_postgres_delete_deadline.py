"""deleteStoredData of many logs on PostgreSQL is not cut by the signing deadline.

A signing batch must end within QUERY_DEADLINE (5 s, pg_deadline) or its connection
is dropped; a deletion runs inside one. Its three statements (keep the refs, flag the
transaction index, drop the logs) take time in proportion to the logs that go, so
every deletion of more than about 80,000 logs failed E_STORAGE_UNAVAILABLE, on every
retry: a TSE with millions of logs could never delete them. The batch's deadline now
grows by pg_deadline.DELETE_SECONDS_PER_LOG per log. The test shrinks the base
deadline (``PostgresStore.batch_deadline``) so that a deletion of 30,000 logs
crosses it, as 100,000 crossed the real one."""

from __future__ import annotations

import time

import psycopg

from opentse.engine.state import TSEState
from opentse.storage.pg_deadline import deletion_seconds
from opentse.storage.postgres import PostgresStore
from opentse.testing.store_conformance import make_record

N = 30_000
BASE = 0.2  # seconds: far less than the deletion of N logs takes


def _seed(url: str) -> None:
    """N logs of N/2 two-revision transactions and their index rows (as the
    reviewer's bench does: one INSERT, the counter trigger off in this schema)."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("ALTER TABLE logs DISABLE TRIGGER logs_counter_consecutive")
        c.execute(
            "INSERT INTO logs SELECT 't', g, 'Tra', 'x', 0, 'f', '\\x3082'::bytea"
            " || decode(repeat('ab', 300), 'hex'), g/2, 'c',"
            " 'tx:' || md5((g/2)::text)::uuid::text || ':' || (g%%2+1), '{}'"
            " FROM generate_series(1, %s) g",
            (N,),
        )
        c.execute("ALTER TABLE logs ENABLE TRIGGER logs_counter_consecutive")
        c.execute(
            "INSERT INTO svc_transactions (tss_id, tx_id, organization_id, number, client_id,"
            " latest_revision, state, process_type, time_start, metadata)"
            " SELECT 't', md5(g::text)::uuid::text, 'o', g, 'c', 2, 'FINISHED',"
            " 'Kassenbeleg-V1', g, '{}' FROM generate_series(0, %s) g",
            (N // 2,),
        )
        c.execute("UPDATE tses SET last_signature_counter = %s WHERE tse_id = 't'", (N,))
        c.execute("ANALYZE")


def test_deletion_longer_than_the_batch_deadline_is_not_refused(pg_url: str) -> None:
    with PostgresStore(pg_url) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        _seed(pg_url)
        store.batch_deadline = BASE
        started = time.monotonic()
        store.run_locked("t", lambda locked: locked.delete_logs(N))
        took = time.monotonic() - started
        assert took > BASE  # what the fixed deadline cut
        assert took < deletion_seconds(N, BASE)
        assert store.count_logs("t") == 0
        with psycopg.connect(pg_url) as c:
            refs = c.execute("SELECT count(*) FROM deleted_refs WHERE tse_id = 't'").fetchone()
            flagged = c.execute(
                "SELECT count(*) FROM svc_transactions WHERE log_deleted = 1"
            ).fetchone()
        assert refs == (N,)
        # the transactions whose revision 2 log went: all but the last, N/2 (rev 1 only)
        assert flagged == (N // 2,)
        assert store.run_locked("t", lambda locked: locked.find_ref("none")) is None
