"""A signed transaction leaves no reference cycles behind.

Every object of a cycle waits for the cyclic garbage collector, which runs while
holding the GIL: a store that left ~20 of them per transaction (a batch's log
entry pointing back at the view that appended it) spent about a tenth of the
engine benchmark's CPU in the collector. Here the collector keeps whatever it
would have freed (``DEBUG_SAVEALL``), so a new cycle shows up by type.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

import pytest

from opentse.engine.service import TSEService

PROCESS_DATA = b"Beleg^10.00_0.00_0.00_0.00_0.00^10.00:Bar"


def _cyclic_garbage(run: object) -> Counter[str]:
    """The objects of opentse's own types that only the cyclic collector would have
    freed after ``run()``, by type."""
    assert callable(run)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        found = Counter(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.startswith("opentse")
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    return found


def test_blocking_transactions_leave_no_cycles(service: TSEService) -> None:
    def run() -> None:
        for _ in range(20):
            started = service.start_transaction("t", "C1")
            service.finish_transaction(
                "t", "C1", started.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
            )

    assert _cyclic_garbage(run) == Counter()


def test_asyncio_transactions_leave_no_cycles(service: TSEService) -> None:
    async def receipts() -> None:
        async def one() -> None:
            started = await service.transaction_async("start", "t", "C1")
            await service.transaction_async(
                "finish", "t", "C1", started.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
            )

        await asyncio.gather(*(one() for _ in range(20)))

    assert _cyclic_garbage(lambda: asyncio.run(receipts())) == Counter()


def test_a_failing_request_leaves_no_cycles(service: TSEService) -> None:
    """An engine error travels as an exception (traceback frames hold locals): the
    store must not keep the view or the batch alive through it."""

    def run() -> None:
        for _ in range(10):
            with pytest.raises(Exception):  # noqa: B017 - an unknown client, any error
                service.start_transaction("t", "NO-SUCH-CLIENT")

    found = _cyclic_garbage(run)
    assert not {k: v for k, v in found.items() if "storage" in k}, found
