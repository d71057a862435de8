"""opentse.testing: helpers shipped for tests (ours and integrators').

``FrozenClock``, ``DeterministicSigner`` (RFC 6979, seeded key), ``MemoryStore`` and
``ready_tse`` which builds an initialized TSE with a registered client in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentse.testing.clock import FrozenClock, SystemClock
from opentse.testing.memory_store import MemoryStore
from opentse.testing.signer import DeterministicSigner, deterministic_private_key

if TYPE_CHECKING:
    from opentse.engine.service import TSEService

__all__ = [
    "DeterministicSigner",
    "FrozenClock",
    "MemoryStore",
    "ReadyTSE",
    "SystemClock",
    "deterministic_private_key",
    "memory_service",
    "ready_tse",
]

TEST_SECRET = b"opentse-test-installation-secret"  # tests only: keys are not secret here
ADMIN_PIN = "123456"
ADMIN_PUK = "1234567890"
TIMEADMIN_PIN = "654321"
TIMEADMIN_PUK = "0987654321"


@dataclass(frozen=True, slots=True)
class ReadyTSE:
    tse_id: str
    client_id: str
    admin_pin: str
    admin_puk: str
    timeadmin_pin: str
    timeadmin_puk: str


def memory_service(now: int = 1_700_000_000, **kwargs: object) -> TSEService:
    """A TSEService over a MemoryStore and a FrozenClock (``service.clock``)."""
    from opentse.engine.keyring import Keyring
    from opentse.engine.service import TSEService

    return TSEService(MemoryStore(), Keyring(TEST_SECRET), FrozenClock(now), **kwargs)  # type: ignore[arg-type]


def ready_tse(
    service: TSEService,
    tse_id: str = "tse-1",
    *,
    client_id: str = "REGISTER-1",
    curve: str = "P-256",
    time_format: str = "unixTime",
    seed: bytes | str | None = None,
    timeadmin: bool = False,
    logout: bool = False,
) -> ReadyTSE:
    """Create, set PINs, initialize and register ``client_id``; admin stays logged in
    unless ``logout``. ``seed`` makes the key deterministic (DeterministicSigner)."""
    key = None if seed is None else deterministic_private_key(seed, curve)
    service.create_tse(
        tse_id,
        curve=curve,
        time_format=time_format,
        admin_puk=ADMIN_PUK,
        timeadmin_puk=TIMEADMIN_PUK,
        private_key=key,
    )
    service.set_state(tse_id, "UNINITIALIZED")
    service.set_admin_pin(tse_id, ADMIN_PUK, ADMIN_PIN)
    if timeadmin:
        service.set_admin_pin(tse_id, TIMEADMIN_PUK, TIMEADMIN_PIN, user_id="timeadmin")
    service.authenticate(tse_id, ADMIN_PIN)
    service.initialize(tse_id)
    service.register_client(tse_id, client_id)
    if logout:
        service.logout(tse_id)
    return ReadyTSE(tse_id, client_id, ADMIN_PIN, ADMIN_PUK, TIMEADMIN_PIN, TIMEADMIN_PUK)
