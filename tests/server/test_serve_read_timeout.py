"""``opentse serve`` cuts off a client that stops sending a request (server/protocol.py).

uvicorn 0.54 has no read timeout: its keep-alive timer starts after a response, so a
connection that never finished its request head, or stopped in the middle of a body,
stayed open for ever (slowloris: on ``serve --lan`` any device of the LAN could use
up the server's file descriptors). Now a head must come within the read timeout, a
body may pause at most that long; a connection that sent part of a request is
answered 408 ``E_REQUEST_TIMEOUT``, a silent one closed. The TLS port's first byte
and handshake are bounded the same way. Against real processes, with raw sockets;
``OPENTSE_READ_TIMEOUT_SECONDS`` makes the timeout short (default 30 s)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from opentse.server.protocol import READ_TIMEOUT, READ_TIMEOUT_ENV, read_timeout
from opentse.testing.serving import serve_process

SECONDS = 1.5  # the servers' read timeout here
ENV = {**os.environ, READ_TIMEOUT_ENV: str(SECONDS)}
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _until_closed(s: socket.socket | ssl.SSLSocket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took (the
    socket's timeout of 15 s fails the test first: a connection held open)."""
    start = time.monotonic()
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - start


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=15)


def _assert_408(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"content-type: application/json" in head.lower()
    assert b"connection: close" in head.lower()
    assert b"x-content-type-options: nosniff" in head.lower()
    assert json.loads(body) == {
        "status_code": 408,
        "error": "Request Timeout",
        "code": "E_REQUEST_TIMEOUT",
        "message": json.loads(body)["message"],
    }


def _one_answer(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    folder = tmp_path_factory.mktemp("read-timeout")
    log = folder / "serve.log"
    with serve_process(folder / "data", env=ENV, output=log) as origin:
        yield int(urlsplit(origin).port or 0), log  # type: ignore[misc]


def test_a_silent_connection_is_closed(plain: tuple[int, Path]) -> None:
    with _connect(plain[0]) as s:
        answer, took = _until_closed(s)
    assert answer == b""
    assert SECONDS - 0.2 < took < SECONDS + 5


def test_a_head_that_stops_is_answered_408(plain: tuple[int, Path]) -> None:
    with _connect(plain[0]) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer, took = _until_closed(s)
    _assert_408(answer)
    assert took < SECONDS + 5


def test_a_head_sent_a_byte_at_a_time_is_cut_off(plain: tuple[int, Path]) -> None:
    """Slowloris keeps a connection busy with a byte now and then: the head's time
    counts from its first byte, not from the last one."""
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    start = time.monotonic()
    with _connect(plain[0]) as s:
        s.settimeout(SECONDS / 5)
        for byte in head:
            try:
                s.sendall(bytes([byte]))
                answer = s.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                answer = b""
            break
        else:
            pytest.fail("the server read the whole slow head")
    assert time.monotonic() - start < SECONDS + 5
    assert answer.startswith(b"HTTP/1.1 408 "), answer


@pytest.mark.parametrize(
    "head",
    [
        # the hot route (upsertTransaction) and a Starlette route
        b"PUT /api/v2/tss/a/tx/b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
        b"POST /api/v2/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
    ],
)
def test_a_body_that_stops_is_answered_408(plain: tuple[int, Path], head: bytes) -> None:
    with _connect(plain[0]) as s:
        s.sendall(head + b'Content-Length: 100\r\n\r\n{"api_key":')
        answer, took = _until_closed(s)
    _assert_408(answer)
    assert took < SECONDS + 5
    with _connect(plain[0]) as s:  # and the server serves on, without a traceback
        s.sendall(HEALTH)
        assert _one_answer(s).startswith(b"HTTP/1.1 200 ")
    assert "Traceback" not in plain[1].read_text(errors="replace")


def test_a_slow_body_that_keeps_coming_is_read(plain: tuple[int, Path]) -> None:
    """The body's limit is a pause, not its whole time: parts every SECONDS/2 for
    three times the timeout reach the app, which answers (401: no token)."""
    body = json.dumps({"api_key": "k" * 10, "api_secret": "s" * 10}).encode()
    with _connect(plain[0]) as s:
        s.sendall(b"POST /api/v2/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        s.sendall(b"Content-Length: %d\r\n\r\n" % len(body))
        parts = [body[i : i + 6] for i in range(0, len(body), 6)]
        pause = 3 * SECONDS / len(parts)
        assert pause < SECONDS / 2
        for part in parts:
            time.sleep(pause)
            s.sendall(part)
        answer = _one_answer(s)
    assert answer.startswith(b"HTTP/1.1 401 "), answer


def test_a_kept_alive_connection_waits_longer_but_its_next_head_does_not(
    plain: tuple[int, Path],
) -> None:
    with _connect(plain[0]) as s:
        s.sendall(HEALTH)
        assert _one_answer(s).startswith(b"HTTP/1.1 200 ")
        time.sleep(SECONDS + 1)  # idle between requests: the keep-alive time (75 s)
        s.sendall(HEALTH)
        assert _one_answer(s).startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /health HTTP/1.1\r\n")  # the next head stops
        answer, took = _until_closed(s)
    _assert_408(answer)
    assert took < SECONDS + 5


def test_the_lan_tls_port_bounds_first_byte_handshake_and_head(tmp_path: Path) -> None:
    with serve_process(tmp_path / "data", lan=True, env=ENV) as origin:
        port = int(urlsplit(origin).port or 0)
        with _connect(port) as s:  # no byte at all
            assert _until_closed(s)[0] == b""
        with _connect(port) as s:  # a TLS record begins, the handshake never ends
            s.sendall(b"\x16\x03\x01")
            answer, took = _until_closed(s)
        assert took < SECONDS + 5
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(_connect(port)) as tls:  # after it, a head that stops
            tls.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            answer, took = _until_closed(tls)
        _assert_408(answer)
        assert took < SECONDS + 5


def test_the_setting_is_checked() -> None:
    assert read_timeout({}) == READ_TIMEOUT == 30.0
    assert read_timeout({READ_TIMEOUT_ENV: "2.5"}) == 2.5
    for bad in ("ten", "0", "-1", "nan", "1e9"):
        with pytest.raises(Exception, match=READ_TIMEOUT_ENV) as caught:
            read_timeout({READ_TIMEOUT_ENV: bad})
        assert getattr(caught.value, "code", "") == "E_SERVE_SETTING"
