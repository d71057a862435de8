"""CoalescingTransport (server/protocol.py): a response head goes out with its body."""

from __future__ import annotations

import asyncio
from typing import Any

from opentse.server.protocol import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """A stand-in socket transport: keeps every write (asyncio's, not ours)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def writelines(self, data: Any) -> None:
        for item in data:
            self.write(item)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_head_and_body_are_one_write() -> None:
    async def run() -> list[bytes]:
        real = RecordingTransport()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(HEAD)
        assert real.writes == []
        t.write(b"{}")
        t.write(HEAD)
        t.write(b"[]")
        await asyncio.sleep(0)
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # forwarded
        return real.writes

    assert asyncio.run(run()) == [HEAD + b"{}", HEAD + b"[]"]


def test_a_lone_head_goes_out_on_the_next_loop_step() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        real = RecordingTransport()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(HEAD)  # e.g. a 204, or a streamed body still being produced
        before = list(real.writes)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return before, real.writes

    before, after = asyncio.run(run())
    assert before == [] and after == [HEAD]


def test_body_chunks_are_not_held_and_close_flushes() -> None:
    async def run() -> RecordingTransport:
        real = RecordingTransport()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(b"chunk-1")
        t.write(b"chunk-2")
        assert real.writes == [b"chunk-1", b"chunk-2"]
        t.write(HEAD)
        t.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        return real

    real = asyncio.run(run())
    assert real.writes == [b"chunk-1", b"chunk-2", HEAD] and real.closed


def test_writelines_keeps_the_order() -> None:
    async def run() -> list[bytes]:
        real = RecordingTransport()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(HEAD)
        t.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(run()) == [HEAD, b"a", b"b"]
