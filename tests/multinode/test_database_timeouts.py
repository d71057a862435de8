"""The waits a node sets on its PostgreSQL sessions, and that the database URL's own
settings win (docs/scaling.md, "How long a node waits for PostgreSQL")."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from opentse.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def _lock_timeout(store: PostgresStore) -> str:
    with store._connection("test") as conn:  # the pool's own session
        row = conn.execute("SHOW lock_timeout").fetchone()
    assert row is not None
    return str(row[0])


def test_a_node_bounds_lock_waits_unless_its_url_says_otherwise(pg_url: str) -> None:
    with PostgresStore(pg_url) as store:
        assert _lock_timeout(store) == "3s"
    url = pg_url + quote(" -c lock_timeout=250", safe="")
    with PostgresStore(url) as store:
        assert _lock_timeout(store) == "250ms"
