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

from opentse.storage.pg_testing import server_url, temporary_schema
from opentse.storage.postgres import PostgresStore
from opentse.testing.store_conformance import StoreConformance

pytestmark = pytest.mark.postgres

_SERVER = server_url(os.environ.get("OPENTSE_TEST_DATABASE"))
_SKIP = pytest.mark.skipif(
    _SERVER is None,
    reason="no PostgreSQL reachable (tried OPENTSE_TEST_DATABASE or 127.0.0.1:5432/test)",
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    if _SERVER is None:
        pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432 (set OPENTSE_TEST_DATABASE)")
    with temporary_schema(_SERVER) as url:
        yield url


@_SKIP
class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[PostgresStore]:
        store = PostgresStore(pg_url, pool_max=12)
        yield store
        store.close()


@_SKIP
def test_schema_is_isolated(pg_url: str) -> None:
    with PostgresStore(pg_url) as store:
        assert store.list_tses() == []
        with psycopg.connect(pg_url) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None and schema[0].startswith("opentse_t_")
