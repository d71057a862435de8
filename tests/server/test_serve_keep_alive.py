"""``opentse serve`` keeps an idle keep-alive connection open longer than the pools
of POS clients keep theirs idle. uvicorn's default closed it after 5 s, so a till
whose HTTP client reused a connection after a pause of a few seconds (.NET keeps
them ~60-90 s) met a reset instead of its answer. Against a real process."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from opentse.testing.serving import serve_process

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _answer(s: socket.socket) -> bytes:
    """One whole HTTP answer (head and the body its content-length names), or what
    came before the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_idle_connection_still_answers_after_a_pause_of_seconds(tmp_path: Path) -> None:
    with serve_process(tmp_path / "data") as origin:
        port = int(urlsplit(origin).port or 0)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(REQUEST)
            first = _answer(s)
            assert first.startswith(b"HTTP/1.1 200 "), first
            assert b"connection: close" not in first.lower()
            time.sleep(7)  # longer than uvicorn's default keep-alive of 5 s
            s.sendall(REQUEST)
            again = _answer(s)
    assert again.startswith(b"HTTP/1.1 200 "), again
