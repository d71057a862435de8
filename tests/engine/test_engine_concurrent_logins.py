"""Correct PINs sent at once all log in; wrong ones still block.

Every attempt counts its user's retry counter down before the PIN is checked
(TR-03151: a crash during the check counts as a failure) and a correct PIN restores
it. Six correct admin logins at once counted the counter to zero between them, and
the sixth was refused as blocked (423 E_ADMIN_PIN_BLOCKED over the API, found with a
real server). Attempts on one user's PIN now take turns in the service."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import ADMIN_PIN, TEST_SECRET, FrozenClock, ready_tse

ATTEMPTS = 8  # more than the 5 retries


def _at_once(service: TSEService, pins: list[str]) -> list[str]:
    """Each PIN from its own thread, released together; 'ok' or the error code."""
    outcomes = [""] * len(pins)
    start = threading.Barrier(len(pins))

    def attempt(i: int) -> None:
        start.wait()
        try:
            service.authenticate("tse-1", pins[i])
            outcomes[i] = "ok"
        except OpenTSEError as exc:
            outcomes[i] = exc.code

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(pins))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.fixture
def service(tmp_path: Path) -> TSEService:
    store = SQLiteStore(tmp_path / "t.db")
    service = TSEService(store, Keyring(TEST_SECRET), FrozenClock(1_700_000_000))
    ready_tse(service, "tse-1", logout=True)
    return service


def test_correct_pins_at_once_all_log_in(service: TSEService) -> None:
    try:
        assert _at_once(service, [ADMIN_PIN] * ATTEMPTS) == ["ok"] * ATTEMPTS
        admin = service.get("tse-1").state.users["admin"]
        assert admin.retries_left == admin.max_retries and not admin.blocked
    finally:
        service.store.close()


def test_wrong_pins_at_once_still_block(service: TSEService) -> None:
    try:
        outcomes = _at_once(service, ["00000000"] * ATTEMPTS)
        assert outcomes.count("E_PIN_INVALID") == 4, outcomes
        assert outcomes.count("E_ADMIN_PIN_BLOCKED") == ATTEMPTS - 4, outcomes
        admin = service.get("tse-1").state.users["admin"]
        assert admin.blocked and admin.retries_left == 0
        with pytest.raises(OpenTSEError) as blocked:
            service.authenticate("tse-1", ADMIN_PIN)
        assert blocked.value.code == "E_ADMIN_PIN_BLOCKED"
    finally:
        service.store.close()
