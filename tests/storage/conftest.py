"""Fixtures shared by the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, SystemClock, ready_tse


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TSEService]:
    """The engine on a fresh SQLite store with TSE "t" ready and client "C1"
    registered (admin logged out)."""
    store = SQLiteStore(tmp_path / "service.db")
    svc = TSEService(store, Keyring(TEST_SECRET), SystemClock())
    ready_tse(svc, "t", client_id="C1", logout=True)
    yield svc
    store.close()
