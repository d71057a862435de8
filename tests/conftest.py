"""Fixtures shared by several test folders: PostgreSQL, where one is reachable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from opentse.server.service_store import ServiceStore
from opentse.storage.pg_testing import server_url, service_stores, temporary_schema


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server URL (OPENTSE_TEST_DATABASE, else 127.0.0.1:5432), looked
    up once per session; the test is skipped when none answers."""
    url = server_url(os.environ.get("OPENTSE_TEST_DATABASE"))
    if url is None:
        pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432 (set OPENTSE_TEST_DATABASE)")
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    with temporary_schema(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def service_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceStore]:
    """A ServiceStore on a fresh SQLite file, then on a fresh PostgreSQL schema."""
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    with service_stores(request.param, tmp_path, server) as (store,):
        yield store
