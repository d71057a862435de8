"""/health's store read failing after the poll stopped waiting leaves no traceback.

With the database stalled, the read fails only when the store's own deadline cuts it
(5 s), after ``/health`` answered 503 "Timeout" (3.5 s). asyncio.shield drops its
retrieval of the read's error once the waiter is cancelled, and asyncio logged
"Future exception was never retrieved" with a traceback for every such poll: one per
load-balancer check in the node's log during an outage (seen with a real node through
a stalled relay), where docs/scaling.md promises one line.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from opentse.server.health import HealthProbe


def _failing_after(seconds: float) -> Any:
    def check() -> None:
        time.sleep(seconds)
        raise ConnectionError("the database did not answer")

    return check


async def _polls(check: Any, timeout: float, waiters: int) -> tuple[list[str | None], list[str]]:
    logged: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: logged.append(str(context["message"])))
    probe = HealthProbe(check, timeout=timeout)
    answers = await asyncio.gather(*(probe.failure() for _ in range(waiters)))
    await asyncio.sleep(0.5)  # the read ends after the waiters gave up
    del probe  # it holds the read, and the read its waiters' futures
    gc.collect()  # an unretrieved error is reported when its future is collected
    await asyncio.sleep(0.05)
    return answers, logged


def test_a_read_failing_after_the_wait_logs_nothing() -> None:
    answers, logged = asyncio.run(_polls(_failing_after(0.3), 0.1, 3))
    assert answers == ["Timeout"] * 3
    assert logged == []


def test_a_read_failing_in_time_is_the_answer() -> None:
    answers, logged = asyncio.run(_polls(_failing_after(0.05), 2.0, 2))
    assert answers == ["ConnectionError", "ConnectionError"]
    assert logged == []
