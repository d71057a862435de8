"""The PostgreSQL deadline watchdog's thread lives while a store is open and ends with
the last store's close: it polled for ever after the first statement, so a process
that had used PostgreSQL once (a test run, an embedder) kept a thread, and the
verifier, which forks its workers only where no other thread runs, fell back to
threads. A deadline still cuts a statement that does not answer in time."""

from __future__ import annotations

import threading

import psycopg
import pytest

from opentse.server.service_store import ServiceStore
from opentse.storage.pg_deadline import WATCHDOG
from opentse.storage.pg_service import PgServiceStore
from opentse.storage.postgres import PostgresStore


def _watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "opentse-pg-deadline"]


def test_the_watchdog_thread_ends_with_the_last_store(pg_url: str) -> None:
    engine = PostgresStore(pg_url)
    service: ServiceStore = PgServiceStore(pg_url)
    engine.list_tses()
    service.list_api_keys()
    assert len(_watchdogs()) == 1
    engine.close()
    assert len(_watchdogs()) == 1, "another store is still open"
    service.close()
    assert _watchdogs() == []


def test_a_deadline_still_cuts_a_statement_after_a_restart_of_the_thread(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.close()
    assert _watchdogs() == []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.OperationalError), WATCHDOG.watch(conn, 0.3) as watch:
            conn.execute("SELECT pg_sleep(5)")
        assert watch.expired
    for thread in _watchdogs():  # no store open: it ends once nothing is watched
        thread.join(timeout=2.0)
    assert _watchdogs() == []
