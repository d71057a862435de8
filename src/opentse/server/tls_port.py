"""The TLS port answers a plain http:// request with a 400 that names https.

uvicorn leaves TLS to asyncio (``create_server(ssl=...)``): a request sent as plain
HTTP to ``serve --lan``'s port 4433 fails the handshake and the connection is
dropped, an empty reply that tells a POS operator who typed http:// nothing. nginx
answers "400 The plain HTTP request was sent to HTTPS port". Here the port listens
without TLS and every new connection is looked at before a byte of it is read: a TLS
connection starts with a handshake record, content type 22 (0x16; RFC 8446 section
5.1, the ClientHello), and is handed to asyncio's TLS as an accepted socket
(``loop.connect_accepted_socket(ssl=...)``), the same TLS server uvicorn would run,
its HTTP protocol unchanged. Anything else gets one HTTP/1.1 400 fiskaly problem
body, ``E_TLS_REQUIRED``, then the connection closes.

The connection's transport is given up at once (its reading never started; its
socket stays open through a duplicate of its descriptor), and the first byte is
peeked (``MSG_PEEK``), so the TLS layer reads the ClientHello whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import ssl
from typing import Any, ClassVar, cast

from opentse.server.hotpath import NOSNIFF, request_id

TLS_HANDSHAKE = 0x16  # TLS record content type "handshake" (RFC 8446 section 5.1)
FIRST_BYTE_WAIT = 60.0  # seconds for a first byte, and for the handshake (asyncio's default)
PLAIN_LINGER = 10.0  # seconds the plain answer waits for the client to close
HEAD_LIMIT = 16384  # bytes of a plain request read before it is answered anyway
CODE = "E_TLS_REQUIRED"

_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
_PATH = re.compile(r"/[!-~]{0,1000}")
_tasks: set[asyncio.Task[None]] = set()  # strong references while a connection is sorted


def tls_port_protocol(
    inner: type[asyncio.Protocol], context: ssl.SSLContext, wait: float = FIRST_BYTE_WAIT
) -> type:
    """uvicorn's ``http=`` class for a TLS port: ``inner`` (uvicorn's HTTP protocol,
    built with the same arguments) over TLS with ``context``; plain HTTP answered
    ``E_TLS_REQUIRED``. uvicorn itself then listens without ``ssl``. A connection's
    first byte and its TLS handshake each get ``wait`` seconds (``serve``: the
    request read timeout, server/protocol.py)."""
    attributes = {"inner": inner, "context": context, "wait": wait}
    return type("TlsPortProtocol", (TlsPortProtocol,), attributes)


class TlsPortProtocol(asyncio.Protocol):
    """A new connection on the TLS port, sorted by its first byte."""

    inner: ClassVar[type[asyncio.Protocol]]
    context: ClassVar[ssl.SSLContext]
    wait: ClassVar[float] = FIRST_BYTE_WAIT

    def __init__(self, **uvicorn_arguments: Any) -> None:
        self._arguments = uvicorn_arguments  # config, server_state, app_state, _loop
        loop = uvicorn_arguments.get("_loop")
        self._loop: asyncio.AbstractEventLoop = loop or asyncio.get_running_loop()

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # uvloop's is no subclass
        try:
            sock = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        except OSError:  # out of descriptors: as a refused connection
            transport.abort()
            return
        transport.abort()  # closes its descriptor only; the connection lives on in sock
        sock.setblocking(False)
        task = self._loop.create_task(self._sort(sock))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # the transport given up in connection_made

    async def _sort(self, sock: socket.socket) -> None:
        try:
            first = await _peek(self._loop, sock, self.wait)
        except (OSError, TimeoutError):
            first = b""
        except asyncio.CancelledError:  # the server stops
            sock.close()
            raise
        if not first:  # closed without a byte, reset, or silent too long
            sock.close()
            return
        try:
            if first[0] == TLS_HANDSHAKE:
                await self._loop.connect_accepted_socket(
                    lambda: self.inner(**self._arguments),
                    sock,
                    ssl=self.context,
                    ssl_handshake_timeout=self.wait,
                )
            else:
                await self._loop.connect_accepted_socket(PlainAnswer, sock)
        except (OSError, TimeoutError):  # a failed handshake: asyncio closed the socket
            pass


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket, wait: float) -> bytes:
    """The connection's first byte, left unread (b"": closed without one)."""
    while True:
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            pass
        readable = loop.create_future()
        loop.add_reader(sock.fileno(), _wake, readable)
        try:
            await asyncio.wait_for(readable, wait)
        finally:
            loop.remove_reader(sock.fileno())


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class PlainAnswer(asyncio.Protocol):
    """Reads a plain request's head, answers 400 ``E_TLS_REQUIRED`` and closes once
    the client has read it. The rest it sends (a body) is read and dropped: a socket
    closed with unread bytes sends a reset, which can destroy the answer before the
    client reads it."""

    def __init__(self) -> None:
        self._head = b""
        self._answered = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._timer = asyncio.get_running_loop().call_later(PLAIN_LINGER, self._transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return
        self._head += data
        if b"\r\n\r\n" in self._head or len(self._head) >= HEAD_LIMIT:
            self._answer()

    def eof_received(self) -> bool:
        if not self._answered:
            self._answer()
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _answer(self) -> None:
        assert self._transport is not None
        self._answered = True
        self._transport.write(plain_answer(self._head))
        with contextlib.suppress(OSError, NotImplementedError, RuntimeError):
            self._transport.write_eof()  # the client reads to the end, then closes


def plain_answer(head: bytes) -> bytes:
    """The HTTP/1.1 400 for a plain request whose head (or its start) is ``head``."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers.append((name.strip().lower(), value.strip()))
    host = dict(headers).get(b"host", b"").decode("latin-1")
    parts = lines[0].decode("latin-1").split(" ")
    path = parts[1].split("?", 1)[0] if len(parts) == 3 else ""
    if _HOST.fullmatch(host):
        where = f"https://{host}{path if _PATH.fullmatch(path) else '/'}"
    else:
        where = "the same address with https:// instead of http://"
    body = json.dumps(
        {
            "status_code": 400,
            "error": "Bad Request",
            "code": CODE,
            "message": f"this port speaks HTTPS (TLS) only and the request came as plain "
            f"HTTP: send it to {where}",
        },
        separators=(",", ":"),
    ).encode()
    rid = request_id(headers)
    return (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\nrequest-id: %s\r\n%s: %s\r\n\r\n%s"
        % (len(body), rid, *NOSNIFF, body)
    )
