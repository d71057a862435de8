"""MemoryStore passes the store conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opentse.testing.memory_store import MemoryStore
from opentse.testing.store_conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        store = MemoryStore()
        yield store
        store.close()
