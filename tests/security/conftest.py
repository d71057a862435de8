"""One real ``opentse serve`` (SQLite) for the security tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_server import LiveServer


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("security")
    server = LiveServer(folder / "data", folder / "server.log")
    server.new_key_cli("bootstrap")  # creates the installation before the server starts
    server.start()
    try:
        yield server
    finally:
        server.stop()
