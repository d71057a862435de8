"""Random SE API call sequences against TSEService (MemoryStore), checked against a
simple model and the invariants TR-03151 demands: signature counters 1..N without
gaps, transaction numbers 1..N without gaps, every log decodes and verifies, log
times never go back except through updateTime, refused calls change nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.testing import ADMIN_PIN, TEST_SECRET, FrozenClock, MemoryStore, ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData
from opentse.tr03151.signature import verify_signature

CLIENTS = st.sampled_from(["C1", "C2", "C3", "bad_id"])
DATA = st.binary(max_size=40)
PTYPES = st.sampled_from(["Kassenbeleg-V1", "Bestellung-V1", "", "bad_type", "x" * 101])


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.clock = FrozenClock(1_700_000_000)
        self.svc = TSEService(self.store, Keyring(TEST_SECRET), self.clock)
        ready_tse(self.svc, "t", client_id="C1", seed="stateful")
        self.registered = {"C1"}
        self.open: dict[int, str] = {}
        self.tx_counter = 0
        self.logged_in = True
        self.verified = 0

    # -- helpers ----------------------------------------------------------------

    def call(self, fn: Any, *args: Any, expect_ok: bool, codes: set[str] | None = None) -> Any:
        before = self.store.get_state("t").signature_counter
        try:
            result = fn(*args)
        except OpenTSEError as exc:
            assert not expect_ok, exc
            if codes is not None:
                assert exc.code in codes, exc
            after = self.store.get_state("t").signature_counter
            # a refused call signs at most an automatic updateTime and an auth log
            assert before <= after <= before + 2
            return None
        assert expect_ok, f"{fn.__name__}{args} succeeded unexpectedly"
        return result

    # -- rules ------------------------------------------------------------------

    @rule(client=CLIENTS, data=DATA, ptype=PTYPES)
    def start(self, client: str, data: bytes, ptype: str) -> None:
        ok = client in self.registered and ptype not in ("bad_type", "x" * 101)
        r = self.call(self.svc.start_transaction, "t", client, data, ptype, expect_ok=ok)
        if r is not None:
            self.tx_counter += 1
            assert r.transaction_number == self.tx_counter
            self.open[r.transaction_number] = client

    @rule(client=CLIENTS, pick=st.integers(0, 10), data=DATA, finish=st.booleans())
    def update_or_finish(self, client: str, pick: int, data: bytes, finish: bool) -> None:
        numbers = sorted(self.open) or [1]
        number = numbers[pick % len(numbers)] if pick < 8 else self.tx_counter + pick
        starter = self.open.get(number)
        # the client that started it, or another registered one (a table moved)
        ok = starter is not None and (starter == client or client in self.registered)
        fn = self.svc.finish_transaction if finish else self.svc.update_transaction
        codes = {
            "E_TX_NOT_FOUND",
            "E_CLIENT_NOT_FOUND",
            "E_CLIENT_DEREGISTERED",
            "E_CLIENT_ID_INVALID",
        }
        r = self.call(fn, "t", client, number, data, "Kassenbeleg-V1", expect_ok=ok, codes=codes)
        if r is not None:
            assert r.transaction_number == number and r.process_data == data
            if finish:
                del self.open[number]
            else:
                self.open[number] = client  # the client that signed last holds it

    @rule(client=CLIENTS)
    def register(self, client: str) -> None:
        ok = self.logged_in and client not in self.registered and client != "bad_id"
        if self.call(self.svc.register_client, "t", client, expect_ok=ok) is not None:
            self.registered.add(client)

    @rule(client=CLIENTS)
    def deregister(self, client: str) -> None:
        ok = self.logged_in and client in self.registered and client not in self.open.values()
        if self.call(self.svc.deregister_client, "t", client, expect_ok=ok) is not None:
            self.registered.discard(client)

    @precondition(lambda self: not self.logged_in)
    @rule(right=st.booleans())
    def login(self, right: bool) -> None:
        left = self.store.get_state("t").users["admin"].retries_left
        if not right and left <= 2:
            right = True  # never block the admin here; blocking is tested elsewhere
        pin = ADMIN_PIN if right else "wrong-pin"
        before = self.store.count_logs("t")
        self.call(self.svc.authenticate, "t", pin, expect_ok=right, codes={"E_PIN_INVALID"})
        assert self.store.count_logs("t") >= before + 1  # every attempt is logged
        self.logged_in = right

    @precondition(lambda self: self.logged_in)
    @rule()
    def logout(self) -> None:
        self.call(self.svc.logout, "t", expect_ok=True)
        self.logged_in = False

    @rule(seconds=st.integers(-30, 1000))
    def tick(self, seconds: int) -> None:
        self.clock.advance(seconds)
        if self.logged_in and not self.svc.get("t").state.users["admin"].logged_in_until:
            self.logged_in = False
        until = self.store.get_state("t").users["admin"].logged_in_until
        if until is not None and self.clock.now() >= until:
            self.logged_in = False

    @rule()
    def restart(self) -> None:
        """A process restart: time is no longer set, the key is decrypted again."""
        self.svc = TSEService(self.store, Keyring(TEST_SECRET), self.clock)

    @rule()
    def self_test(self) -> None:
        self.call(self.svc.self_test, "t", expect_ok=True)

    # -- invariants -------------------------------------------------------------

    @invariant()
    def counters_gapless_and_logs_verify(self) -> None:
        state = self.store.get_state("t")
        record = self.store.get_record("t")
        logs = list(self.store.iter_logs("t"))
        assert [log.signature_counter for log in logs] == list(range(1, len(logs) + 1))
        assert state.signature_counter == len(logs)
        assert state.transaction_counter == self.tx_counter
        assert {n: t.client_id for n, t in state.open_transactions.items()} == self.open
        starts = []
        last_time = 0
        for log in logs:
            if log.operation == "updateTime":
                last_time = log.log_time
            assert log.log_time >= last_time
            last_time = log.log_time
            if log.signature_counter <= self.verified:
                continue
            msg = codec.decode_log_message(log.message)
            verify_signature(
                record.public_key_point,
                msg.signature_algorithm,
                msg.signed_data or b"",
                msg.signature_value,
                record.curve,
            )
            if isinstance(msg.certified, TransactionLogData):
                assert msg.certified.transaction_number == log.transaction_number
        starts = [log.transaction_number for log in logs if log.operation == "StartTransaction"]
        assert starts == list(range(1, self.tx_counter + 1))
        self.verified = len(logs)


EngineMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineStateful = EngineMachine.TestCase
