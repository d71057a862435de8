"""uvicorn's httptools protocol: each response's head and body sent together, and a
client that stops sending in a request's head or body is cut off.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start`` and the body with the next message: two ``send`` syscalls
and two TCP segments per response (with TCP_NODELAY), so the client wakes twice.
Here a head waits (at most until the loop's next step) and goes out with the body
in one write. Only a head waits, so a streamed body keeps its back-pressure.

uvicorn 0.54 has no read timeout: its keep-alive timer starts after a response, so
a connection that never completes a request head (slowloris), or stops in the middle
of a body the app waits for, was held for ever, one file descriptor each; on
``serve --lan`` any device of the LAN could use them all up. Here a connection gets
``READ_TIMEOUT`` seconds for its first request head and every later one (counted
from the head's first bytes), and a body may pause that long between two parts. A
silent connection is closed; one that sent part of a request is answered 408
``E_REQUEST_TIMEOUT`` first. One timer per connection, and one more only for a
request whose head or body comes in parts: a request read whole in one go (the
hot route's) arms none.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from opentse.errors import ProtocolError
from opentse.server.hotpath import NOSNIFF

# Seconds a client has for a request head, and at most between two parts of its body
# (nginx: client_header_timeout / client_body_timeout, 60 s each). Shorter than the
# keep-alive time: a till sends its request at once after connecting.
READ_TIMEOUT = 30.0
READ_TIMEOUT_ENV = "OPENTSE_READ_TIMEOUT_SECONDS"  # tests and operators who know why

_NONE, _HEAD, _BODY, _DONE = range(4)  # where the connection's current request is


def read_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``OPENTSE_READ_TIMEOUT_SECONDS`` (default ``READ_TIMEOUT``); a value that is no
    number of seconds from 0.1 to 3600 raises ProtocolError(E_SERVE_SETTING)."""
    raw = (os.environ if environ is None else environ).get(READ_TIMEOUT_ENV, "")
    if not raw.strip():
        return READ_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0.1 <= value <= 3600:
        raise ProtocolError(
            f"{READ_TIMEOUT_ENV}={raw!r} must be a number of seconds from 0.1 to 3600 "
            f"(default {READ_TIMEOUT:.0f})",
            code="E_SERVE_SETTING",
        )
    return value


def timeout_answer() -> bytes:
    """The HTTP/1.1 408 (fiskaly problem body) for a request that came too slowly."""
    body = json.dumps(
        {
            "status_code": 408,
            "error": "Request Timeout",
            "code": "E_REQUEST_TIMEOUT",
            "message": "the request did not arrive in time (its head within "
            "the read timeout, or its body paused that long); send it again",
        },
        separators=(",", ":"),
    ).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n%s: %s\r\n\r\n%s" % (len(body), *NOSNIFF, body)
    )


def _is_head(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n")


class CoalescingTransport:
    """The connection's transport; a response head is held for the body after it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + bytes(data))
        elif isinstance(data, bytes) and _is_head(data):
            self._head = data
            self._loop.call_soon(self.flush)  # a bodiless or streamed response
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def writelines(self, data: Any) -> None:
        self.flush()
        self._transport.writelines(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # everything else: the real transport
        return getattr(self._transport, name)


def with_read_timeout(seconds: float) -> type[CoalescingHttpToolsProtocol]:
    """``CoalescingHttpToolsProtocol`` reading with ``seconds`` instead of
    ``READ_TIMEOUT`` (``opentse serve`` passes ``read_timeout()``)."""
    name = "CoalescingHttpToolsProtocol"
    return type(name, (CoalescingHttpToolsProtocol,), {"read_timeout": seconds})


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.run(http=...)``: HttpToolsProtocol over a ``CoalescingTransport``,
    with the read timeout described above."""

    read_timeout: ClassVar[float] = READ_TIMEOUT
    _phase = _NONE
    _timer: asyncio.TimerHandle | None = None
    _progress = False  # bytes came since the timer was armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, wrapped))
        self._timer = self.loop.call_later(self.read_timeout, self._expired)

    def shutdown(self) -> None:
        """The server stops: an idle TLS connection is dropped at once. Closing it
        sends close_notify and waits for the peer's, which an idle client pool never
        sends; uvicorn then waited its whole grace time (3 s) and logged "Cancel 0
        running task(s), timeout graceful shutdown exceeded" on every stop. A request
        in flight is finished first, as before."""
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_extra_info("sslcontext") is not None:
            self.transport.abort()
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase == _DONE:  # the usual: the request came whole
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif self._timer is not None:
            self._progress = True
        elif self._phase != _NONE:
            self._arm()

    def _arm(self) -> None:
        self._progress = False
        self._timer = self.loop.call_later(self.read_timeout, self._expired)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = _BODY

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _DONE

    def _expired(self) -> None:
        self._timer = None
        transport = self.transport
        phase = self._phase
        if transport.is_closing() or phase == _DONE:
            return
        if phase == _BODY:
            cycle = self.cycle
            if self._progress or self.flow.read_paused or cycle.waiting_for_100_continue:
                self._arm()  # the body moves, or waits for the app: another round
                return
            cycle.disconnected = True  # the app waiting for the body reads a disconnect
            cycle.message_event.set()
            if not cycle.response_started:
                transport.write(timeout_answer())
        elif phase == _HEAD:
            if self.cycle is not None and not self.cycle.response_complete:
                self._arm()  # pipelined behind a request still answered: its turn later
                return
            transport.write(timeout_answer())
        transport.close()  # _NONE: a connection that never sent a byte
