"""PostgresStore: the conformance suite plus what only a shared server can show.

Skips (with the reason) only when no PostgreSQL server is reachable; set
``OPENTSE_TEST_DATABASE=postgresql://...`` to point elsewhere. Every test gets its
own schema, so pytest-xdist workers never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from opentse.engine.state import TSEState
from opentse.storage.postgres import PostgresStore
from opentse.testing.store_conformance import StoreConformance, append_and_save, make_record

pytestmark = pytest.mark.postgres

# no PostgreSQL reachable: skipped by the pg_url / pg_server fixtures (tests/conftest.py),
# looked up when a test runs, never while the module is collected


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[PostgresStore]:
        store = PostgresStore(pg_url, pool_max=12)
        yield store
        store.close()


def test_schema_is_isolated(pg_url: str) -> None:
    with PostgresStore(pg_url) as store:
        assert store.list_tses() == []
        with psycopg.connect(pg_url) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None and schema[0].startswith("opentse_t_")


def test_connections_cut_by_the_server_are_replaced(pg_url: str, pg_server: str) -> None:
    """A PostgreSQL restart (here: every connection of this store terminated) costs
    the next request nothing: the pool checks a connection before handing it out."""
    name = "opentse-cut-" + os.urandom(4).hex()
    url = f"{pg_url}&application_name={name}"
    with PostgresStore(url, pool_max=4) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        assert append_and_save(store, "t", 2) == [1, 2]
        with psycopg.connect(pg_server, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (name,),
            ).fetchall()
        assert cut, "the store had no connection to cut"
        assert append_and_save(store, "t", 1) == [3]
        assert store.get_state("t").signature_counter == 3
