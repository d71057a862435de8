"""Fixtures for the pure engine tests: a deterministic key, fake (fast) secret hashes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from opentse.crypto.keys import serial_number
from opentse.engine import tse, users
from opentse.engine.ports import StoredLog, TSERecord
from opentse.engine.signing import Outcome, TSEContext
from opentse.engine.state import Lifecycle, TSEState
from opentse.testing import DeterministicSigner
from opentse.tr03151 import codec
from opentse.tr03151.oids import algorithm_name
from opentse.tr03151.signature import verify_signature

NOW = 1_700_000_000
PUK_HASH = "puk-hash"  # the pure engine only compares hashes; the service makes real ones
PIN_HASH = "pin-hash"


def make_ctx(
    curve: str = "P-256", time_format: str = "unixTime", not_after: int | None = None
) -> TSEContext:
    signer = DeterministicSigner("engine-tests", curve)
    record = TSERecord(
        tse_id="tse-1",
        serial_number=serial_number(signer.public_key_point),
        curve=curve,
        signature_algorithm=algorithm_name(signer.algorithm_oid),
        time_format=time_format,
        public_key_point=signer.public_key_point,
        encrypted_private_key=b"",
        certificate_chain=(),
        created_at=NOW,
    )
    return TSEContext.build(record, signer, not_after)


@dataclass
class Driver:
    """Runs engine steps, keeps the state and every log (like a store would)."""

    ctx: TSEContext
    state: TSEState
    now: int = NOW
    logs: list[StoredLog] = field(default_factory=list)

    def run(self, out: Outcome[object]) -> object:
        self.state = out.state
        self.logs.extend(out.logs)
        if out.error is not None:
            raise out.error
        return out.result

    def login(self, user_id: str = users.ADMIN) -> None:
        checked = self.run(users.begin_check(self.state, user_id, "pin"))
        assert isinstance(checked, str)
        self.run(users.finish_authenticate(self.ctx, self.state, self.now, user_id, True, checked))

    def set_pin(self, user_id: str = users.ADMIN) -> None:
        checked = self.run(users.begin_check(self.state, user_id, "puk"))
        assert isinstance(checked, str)
        self.run(
            users.finish_unblock(self.ctx, self.state, self.now, user_id, True, checked, PIN_HASH)
        )

    def verify_all(self) -> None:
        """Counters 1..N, every log decodes and its signature verifies."""
        rec = self.ctx.record
        for expected, log in enumerate(self.logs, start=1):
            assert log.signature_counter == expected
            msg = codec.decode_log_message(log.message)
            assert msg.signature_counter == expected
            assert msg.serial_number == rec.serial_number
            assert msg.signed_data is not None
            verify_signature(
                rec.public_key_point,
                msg.signature_algorithm,
                msg.signed_data,
                msg.signature_value,
                rec.curve,
            )


def new_driver(ctx: TSEContext | None = None) -> Driver:
    ctx = ctx or make_ctx()
    state = TSEState("tse-1", users=users.new_users(PUK_HASH, PUK_HASH), created_at=NOW)
    return Driver(ctx, state)


def initialized_driver(ctx: TSEContext | None = None, client: str = "C1") -> Driver:
    d = new_driver(ctx)
    d.run(tse.set_lifecycle(d.ctx, d.state, d.now, Lifecycle.UNINITIALIZED))
    d.run(tse.update_time(d.ctx, d.state, d.now))
    d.set_pin()
    d.login()
    d.run(tse.initialize(d.ctx, d.state, d.now, "test TSE"))
    d.run(tse.register_client(d.ctx, d.state, d.now, client))
    return d


@pytest.fixture
def driver() -> Driver:
    return initialized_driver()


@pytest.fixture
def fresh() -> Driver:
    return new_driver()


@pytest.fixture
def build() -> object:
    """Factories: ``build.ctx(...)``, ``build.initialized(ctx)``, ``build.new(ctx)``."""

    class _Build:
        ctx = staticmethod(make_ctx)
        initialized = staticmethod(initialized_driver)
        new = staticmethod(new_driver)

    return _Build
