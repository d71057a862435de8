"""``opentse serve --lan`` stops at once although a till keeps an idle TLS connection
open. Closing a TLS connection sends close_notify and waits for the peer's, which an
idle client pool never sends: uvicorn waited its whole grace time (3 s) and logged
"ERROR: Cancel 0 running task(s), timeout graceful shutdown exceeded" on every stop
(review A). Against a real process."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from opentse.testing.serving import serve_process


def test_an_idle_tls_connection_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with serve_process(tmp_path / "data", lan=True, output=log) as origin:
        port = int(urlsplit(origin).port or 0)
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        idle = context.wrap_socket(raw)
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
        # the connection stays open and idle while the server is stopped (SIGTERM)
    idle.close()
    text = log.read_text()
    assert "timeout graceful shutdown exceeded" not in text, text
    assert "Traceback" not in text, text
