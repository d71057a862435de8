"""A server start that fails leaves no thread of the app running.

``create_app`` opens the service store, whose index writer is a thread
(``opentse-svc-index``); an error later in the start (E_TIMEZONE from the dashboard,
an exports folder it cannot create, a failing first export sweep in the lifespan)
used to leave that thread running in a caller that handled the error. In the test
suite it was still alive when ``opentse verify`` wanted to fork (which it only does
with no other thread running: tests/verify/test_verify_fork_threads.py failed)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opentse.errors import OpenTSEError
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.context import ServerConfig, db_path_of


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Any]:
    installation = Installation.open(tmp_path / "data")
    try:
        yield installation
    finally:
        installation.close()


def _threads() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate())


def test_an_unknown_zone_stops_the_start_without_a_thread_left(
    inst: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENTSE_TIMEZONE", "Mars/Olympus_Mons")
    before = _threads()
    with pytest.raises(OpenTSEError) as caught:
        create_app(inst, ServerConfig(data_dir=tmp_path / "data"))
    assert caught.value.code == "E_TIMEZONE"
    assert _threads() == before  # no opentse-svc-index left behind


def test_an_exports_folder_it_cannot_create_leaves_no_thread(inst: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "exports").write_bytes(b"a file where the exports folder belongs")
    before = _threads()
    with pytest.raises(FileExistsError):
        create_app(inst, ServerConfig(data_dir=data))
    assert _threads() == before


def test_a_failed_lifespan_start_closes_the_context(inst: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    before = _threads()
    app = create_app(inst, ServerConfig(data_dir=data))
    assert "opentse-svc-index" in _threads()
    # the first export sweep of the start-up fails: the database lost a table
    with sqlite3.connect(db_path_of(inst, data)) as conn:
        conn.execute("DROP TABLE svc_exports")

    async def start() -> None:
        async with app.router.lifespan_context(app):
            raise AssertionError("the start-up did not fail")

    with pytest.raises(sqlite3.OperationalError, match="svc_exports"):
        asyncio.run(start())
    assert _threads() == before
