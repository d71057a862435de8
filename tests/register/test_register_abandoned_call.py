"""A TSE call the register gave up on (its deadline passed) asks the service no more.

call_within leaves the call running in a thread nobody waits for. That call went on
retrying: in an outage single_attempts had ended meanwhile and given it back its
three retries, and a retrying call started attempts after the deadline. A hung
service was asked four times a sale instead of once, and whether `pos sell` let those
attempts out depended on how fast it closed its backend after the deadline (the
hung-service test of test_register_refusals failed once on a loaded machine)."""

from __future__ import annotations

import contextlib
import threading

import pytest
from counting_ports import counting_port

from opentse.register.backends import TSEUnavailable
from opentse.register.register import call_within, single_attempts
from opentse.register.remote import RemoteBackend

TSS, CLIENT_UUID = "0b3c5a4e-3f3e-4c4e-9a59-0d6c8f1b2a10", "5f0f4e8a-9a35-4f43-8c34-5b8a1d2c3e4f"
DEADLINE = 0.5  # the register's and the backend's, as pos gives both its --timeout


@pytest.mark.parametrize("outage", [True, False], ids=["single-attempt", "retrying"])
def test_a_call_given_up_on_asks_a_hung_service_once(outage: bool) -> None:
    with counting_port(hang=True) as hung:
        backend = RemoteBackend(hung.url, "k", "s", TSS, CLIENT_UUID, timeout=DEADLINE)
        others = set(threading.enumerate())
        attempts = single_attempts(backend) if outage else contextlib.nullcontext()
        # TimeoutError: the register gave up; TSEUnavailable only if this thread was
        # not scheduled until the call had ended by itself
        with pytest.raises((TimeoutError, TSEUnavailable)), attempts:
            call_within(lambda: backend.check("KASSE-1"), DEADLINE)
        # the call ends by itself: its one attempt reads for DEADLINE (hung service),
        # before the fix its retries did too (4 attempts, 3.4 s with the backoff); it
        # may have ended already (the TSEUnavailable case above)
        for call in [t for t in threading.enumerate() if t not in others]:
            call.join(timeout=30)
            assert not call.is_alive()
        assert backend.requests == 1, f"the abandoned call sent {backend.requests} requests"
        backend.close()
