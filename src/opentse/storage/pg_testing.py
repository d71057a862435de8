"""Throw-away PostgreSQL schemas for tests and benchmarks.

Each test run gets its own schema (``opentse_t_<random>``) selected through the
connection URL's ``options=-c search_path=...``, so parallel test workers and
several server processes of one test share a database without colliding, and
dropping the schema removes everything. The server is found through
``OPENTSE_TEST_DATABASE`` or, by default, the local trust-auth server.
"""

from __future__ import annotations

import getpass
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

DEFAULT_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    f"postgresql://{quote(getpass.getuser())}@127.0.0.1:5432/test",
)


def server_url(env_value: str | None = None) -> str | None:
    """The first reachable candidate URL (``env_value`` first), or None."""
    candidates = [env_value] if env_value else list(DEFAULT_CANDIDATES)
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            continue
        return url
    return None


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` first (libpq ``options`` parameter)."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-c search_path={schema}', safe='')}"


@contextmanager
def temporary_schema(url: str, prefix: str = "opentse_t_") -> Iterator[str]:
    """Create a fresh schema, yield a URL that uses it, drop it (CASCADE) after."""
    schema = prefix + secrets.token_hex(6)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def service_stores(
    kind: str, folder: Path, server: str | None, nodes: int = 1
) -> Iterator[list[Any]]:
    """``nodes`` HTTP service stores (``server.service_store``) on one fresh database,
    as several API nodes share it: a SQLite file in ``folder`` (``kind`` "sqlite") or
    a throw-away schema on the PostgreSQL ``server`` ("postgresql"; the first store
    migrates it). Closed after."""
    from opentse.server.service_store import ServiceStore
    from opentse.storage.pg_service import PgServiceStore

    if kind == "sqlite":
        stores: list[Any] = [ServiceStore(folder / "svc.db") for _ in range(nodes)]
        try:
            yield stores
        finally:
            for store in stores:
                store.close()
        return
    if server is None:
        raise LookupError("no PostgreSQL server")
    with temporary_schema(server) as url:
        stores = [PgServiceStore(url, apply_migrations=n == 0) for n in range(nodes)]
        try:
            yield stores
        finally:
            for store in stores:
                store.close()
