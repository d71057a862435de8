"""The outage tests' counting port counts a connection once the till made it, not
once its accept thread ran: a count read right after a command was short by the
connections the thread had not taken yet (on a loaded machine it lagged)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from counting_ports import counting_port


@pytest.mark.parametrize("hang", [True, False], ids=["hung", "dropping"])
def test_connections_made_are_counted_at_once(hang: bool) -> None:
    with counting_port(hang=hang) as port:
        address = urlsplit(port.url)
        made = [socket.create_connection((address.hostname, address.port)) for _ in range(3)]
        try:
            assert port.connections == 3  # read before the accept thread could run
            assert port.connections == 3  # and counted once
        finally:
            for sock in made:
                sock.close()
