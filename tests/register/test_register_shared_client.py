"""Two tills sharing one client id on one real TSE: a till's recovery (connect after a
restart, or the end of an outage) finishes its own dangling transactions and the
client's abandoned ones (older than ``abandoned_after``), never the other till's
receipt in progress, which is listed in the journal instead.

Timing is injected by a gate around the real backend (the TSE call itself is real);
the TSE's clock is a FrozenClock and both registers read the same time from it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import ProtocolError
from opentse.register.backends import EmbeddedBackend, Signed, Started
from opentse.register.outage import OutageLog
from opentse.register.receipt import Seller
from opentse.register.recovery import ABORT_PROCESS_DATA, DEFAULT_ABANDONED_AFTER
from opentse.register.register import Register, RegisterConfig, SaleResult
from opentse.register.remote import RemoteBackend
from opentse.register.sale import Sale
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, FrozenClock, ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData
from opentse.verify.receipt import verify_receipt

NOW = 1_700_000_000
TSE = "tse-1"
CLIENT = "KASSE-SHARED"
SELLER = Seller("Imbiss am Ring", ("Ring 1", "04109 Leipzig"))
ABORT = ABORT_PROCESS_DATA.encode()
BELEG = b"Beleg^4.80_0.00_0.00_0.00_0.00^4.80:Bar"
HOURS_6 = int(DEFAULT_ABANDONED_AFTER.total_seconds())


class Crash(BaseException):
    """The till's process dies here (not an Exception: the register cannot note it)."""


class GatedBackend(EmbeddedBackend):
    """The real embedded backend; a Start or Finish can be held at a gate (the till is
    busy, or its call is stuck on the way) or end in a crash before reaching the TSE."""

    def __init__(self, service: TSEService, tse_id: str) -> None:
        super().__init__(service, tse_id)
        self.hold: str | None = None  # "start" or "finish"
        self.crash = False
        self.reached = threading.Event()
        self.release = threading.Event()
        self.started = threading.Event()  # a Start's call has returned from the TSE

    def _gate(self, operation: str) -> None:
        if self.hold != operation:
            return
        self.reached.set()
        if self.crash:
            raise Crash(operation)
        assert self.release.wait(30), "gate never released"

    def start(self, client_id: str, process_type: str, *, ref: str) -> Started:
        self._gate("start")
        try:
            return super().start(client_id, process_type, ref=ref)
        finally:
            self.started.set()

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        self._gate("finish")
        return super().finish(client_id, number, process_type, process_data, ref=ref)


@pytest.fixture
def tse_clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def service(tmp_path: Path, tse_clock: FrozenClock) -> Iterator[TSEService]:
    store = SQLiteStore(tmp_path / "tse.db", busy_timeout=20.0)
    svc = TSEService(store, Keyring(TEST_SECRET), tse_clock)
    ready_tse(svc, TSE, client_id=CLIENT, logout=True)
    yield svc
    store.close()


@pytest.fixture
def journals(tmp_path: Path) -> Iterator[Callable[[str], OutageLog]]:
    """Open a till's journal (again, after a restart) by the till's name."""
    opened: list[OutageLog] = []

    def open_journal(till: str) -> OutageLog:
        opened.append(OutageLog(tmp_path / till / "journal.db"))
        return opened[-1]

    yield open_journal
    for journal in opened:
        journal.close()


def clock_of(tse_clock: FrozenClock) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(tse_clock.now(), UTC)


def till(
    backend: EmbeddedBackend,
    journal: OutageLog,
    tse_clock: FrozenClock,
    timeout: float = 20.0,
) -> Register:
    config = RegisterConfig(SELLER, CLIENT, timeout=timeout)
    return Register(backend, config, journal, clock=clock_of(tse_clock))


def coffee() -> Sale:
    sale = Sale()
    sale.add_line("Kaffee", 2, "2.40", 1)
    sale.add_payment("cash", "5.00")
    assert sale.total == Decimal("4.80")
    return sale


def finishes(service: TSEService) -> dict[int, tuple[str, bytes]]:
    """Transaction number -> (processType, processData) of every signed Finish."""
    out = {}
    for log in service.logs(TSE):
        tx = codec.decode_log_message(log.message).certified
        if isinstance(tx, TransactionLogData) and tx.operation_type == "FinishTransaction":
            out[tx.transaction_number] = (tx.process_type, tx.process_data)
    return out


def open_numbers(service: TSEService) -> list[int]:
    return sorted(service.get(TSE).state.open_transactions)


class SellingInBackground:
    """Till A rings up a sale in a thread; it stops at the gate of its Finish."""

    def __init__(self, register: Register, gate: GatedBackend) -> None:
        self.box: dict[str, Any] = {}
        gate.hold = "finish"
        self.gate = gate
        self.thread = threading.Thread(target=self._run, args=(register,), daemon=True)
        self.thread.start()
        assert gate.reached.wait(20), "till A never reached its Finish"

    def _run(self, register: Register) -> None:
        try:
            self.box["result"] = register.sell(coffee())
        except BaseException as exc:  # reported by result()
            self.box["error"] = exc

    def result(self) -> SaleResult:
        self.gate.release.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert "error" not in self.box, self.box.get("error")
        result = self.box["result"]
        assert isinstance(result, SaleResult)
        return result


def test_restart_of_one_till_leaves_the_other_tills_receipt_open(
    service: TSEService, journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    gate_a = GatedBackend(service, TSE)
    till_a = till(gate_a, journals("a"), tse_clock)
    till_a.connect()
    selling = SellingInBackground(till_a, gate_a)
    [number_a] = open_numbers(service)
    tse_clock.advance(120)  # a cashier's two minutes later, till B restarts
    till_b = till(EmbeddedBackend(service, TSE), journals("b"), tse_clock)
    till_b.connect()
    assert open_numbers(service) == [number_a]  # left to till A
    [listed] = till_b.journal.foreign_open()
    assert (listed.transaction_number, listed.client_id) == (number_a, CLIENT)
    assert listed.started_at == datetime.fromtimestamp(NOW, UTC)
    assert till_b.journal.dangling() == []
    result = selling.result()
    assert not result.tse_failed and result.signed is not None
    assert result.signed.transaction_number == number_a
    assert result.signed.process_data == BELEG.decode()
    assert verify_receipt(result.to_json()["qr_code_data"]).ok
    assert finishes(service)[number_a] == ("Kassenbeleg-V1", BELEG)
    assert till_a.journal.pending_starts() == [] and till_a.journal.dangling() == []
    till_b.connect()  # A's receipt is done: nothing left to report
    assert till_b.journal.foreign_open() == []


def test_restarted_till_aborts_its_own_dangling_not_the_other_tills(
    service: TSEService, journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    gate_a = GatedBackend(service, TSE)
    till_a = till(gate_a, journals("a"), tse_clock)
    selling = SellingInBackground(till_a, gate_a)
    gate_b = GatedBackend(service, TSE)
    gate_b.hold, gate_b.crash = "finish", True
    till_b = till(gate_b, journals("b"), tse_clock)
    with pytest.raises(Crash):
        till_b.sell(coffee())  # B's process dies between its Start and its Finish
    [pending] = till_b.journal.pending_starts()
    number_b = max(open_numbers(service))
    assert len(open_numbers(service)) == 2  # A's receipt in progress and B's
    till_b.journal.close()

    restarted = till(EmbeddedBackend(service, TSE), journals("b"), tse_clock)
    assert restarted.recover() == [number_b]
    assert finishes(service)[number_b] == ("Kassenbeleg-V1", ABORT)
    [dangling] = restarted.journal.dangling()
    assert dangling.transaction_number == number_b
    assert dangling.receipt_ref == pending.receipt_ref  # claimed by its own ref
    assert dangling.resolution == "finished as aborted (Kassenbeleg-V1)"
    assert restarted.journal.pending_starts() == []
    number_a = selling_number(service, number_b)
    assert [f.transaction_number for f in restarted.journal.foreign_open()] == [number_a]
    result = selling.result()
    assert result.signed is not None and result.signed.transaction_number == number_a
    assert finishes(service)[number_a] == ("Kassenbeleg-V1", BELEG)


def selling_number(service: TSEService, other: int) -> int:
    """The open transaction that is not ``other`` (till A's receipt in progress)."""
    rest = [n for n in open_numbers(service) if n != other]
    assert len(rest) == 1, open_numbers(service)
    return rest[0]


def test_abandoned_foreign_transaction_is_aborted_young_ones_are_listed(
    service: TSEService, journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    """Another till that died (or a register without journal) left transactions of the
    shared client open: the one started ``abandoned_after`` ago is finished as aborted
    by this till; one a second younger, and one an hour old, are not."""
    started = service.start_transaction(TSE, CLIENT, b"", "Kassenbeleg-V1")
    old = started.transaction_number
    tse_clock.advance(1)
    almost = service.start_transaction(TSE, CLIENT, b"", "Kassenbeleg-V1").transaction_number
    tse_clock.advance(HOURS_6 - 3601)
    young = service.start_transaction(TSE, CLIENT, b"", "Bestellung-V1").transaction_number
    tse_clock.set(NOW + HOURS_6)
    register = till(EmbeddedBackend(service, TSE), journals("b"), tse_clock)
    register.connect()
    assert finishes(service)[old] == ("Kassenbeleg-V1", ABORT)
    assert open_numbers(service) == [almost, young]
    [dangling] = register.journal.dangling()
    assert (dangling.transaction_number, dangling.receipt_ref) == (old, "")
    assert dangling.resolution == "finished as aborted (Kassenbeleg-V1)"
    listed = {f.transaction_number: f for f in register.journal.foreign_open()}
    assert sorted(listed) == [almost, young]
    assert listed[young].process_type == "Bestellung-V1"
    assert listed[young].started_at == datetime.fromtimestamp(NOW + HOURS_6 - 3600, UTC)
    first_seen = listed[young].first_seen_at

    tse_clock.advance(HOURS_6 - 3600)  # the young one is now six hours old, too
    assert register.recover() == [almost, young]
    assert finishes(service)[young] == ("Kassenbeleg-V1", ABORT)  # an order aborts as a receipt
    assert open_numbers(service) == [] and register.journal.foreign_open() == []
    assert first_seen < datetime.fromtimestamp(tse_clock.now(), UTC)


def test_abandoned_after_is_configurable_and_positive(
    service: TSEService, journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    with pytest.raises(ProtocolError) as info:
        RegisterConfig(SELLER, CLIENT, abandoned_after=timedelta(0))
    assert info.value.code == "E_REGISTER_CONFIG"
    number = service.start_transaction(TSE, CLIENT, b"", "Kassenbeleg-V1").transaction_number
    tse_clock.advance(600)
    config = RegisterConfig(SELLER, CLIENT, abandoned_after=timedelta(minutes=10))
    register = Register(
        EmbeddedBackend(service, TSE), config, journals("b"), clock=clock_of(tse_clock)
    )
    assert register.recover() == [number]
    assert finishes(service)[number] == ("Kassenbeleg-V1", ABORT)


def test_start_that_timed_out_is_claimed_by_its_ref(
    service: TSEService, journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    """A Start stuck past the timeout (no number known) that reaches the TSE later is
    this till's own: once the TSE works again it is aborted, young as it is."""
    gate = GatedBackend(service, TSE)
    gate.hold = "start"
    register = till(gate, journals("b"), tse_clock, timeout=0.3)
    failed = register.sell(coffee())
    assert failed.tse_failed and "TimeoutError" in (failed.error or "")
    [pending] = register.journal.pending_starts()
    assert pending.receipt_ref == failed.receipt_ref
    assert register.recover() == []  # still on its way: kept, not forgotten
    assert register.journal.pending_starts() == [pending]
    gate.hold = None
    gate.release.set()  # the stuck Start arrives late
    assert gate.started.wait(30), "the stuck Start never reached the TSE"
    [late] = open_numbers(service)
    back = register.sell(coffee())  # signed: the outage ends and recovery runs
    assert not back.tse_failed
    assert finishes(service)[late] == ("Kassenbeleg-V1", ABORT)
    [dangling] = register.journal.dangling()
    assert (dangling.transaction_number, dangling.receipt_ref) == (late, failed.receipt_ref)
    assert register.journal.pending_starts() == []


def test_start_that_never_arrived_is_forgotten_after_the_age(
    service: TSEService, journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    gate = GatedBackend(service, TSE)
    gate.hold, gate.crash = "start", True
    register = till(gate, journals("b"), tse_clock)
    with pytest.raises(Crash):
        register.sell(coffee())
    assert len(register.journal.pending_starts()) == 1
    assert register.recover() == []
    assert len(register.journal.pending_starts()) == 1  # it may still arrive
    tse_clock.advance(HOURS_6)
    assert register.recover() == []
    assert register.journal.pending_starts() == []
    assert open_numbers(service) == [] and register.journal.dangling() == []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 2 * HOURS_6), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_recovery_claims_exactly_its_own_and_the_abandoned(
    service: TSEService, tse_clock: FrozenClock, opened: list[tuple[bool, int, bool]]
) -> None:
    """Open transactions of the shared client, each (started by this till?, age at
    recovery in seconds, Kassenbeleg or Bestellung): recovery finishes exactly this
    till's own and those at least ``abandoned_after`` old, and lists the rest."""
    journal = OutageLog(":memory:")
    backend = EmbeddedBackend(service, TSE)
    register = till(backend, journal, tse_clock)
    base = tse_clock.now()
    oldest = max(age for _, age, _ in opened)
    own, foreign = set(), {}
    for index, (mine, age, beleg) in enumerate(sorted(opened, key=lambda o: -o[1])):
        tse_clock.set(base + oldest - age)
        ptype = "Kassenbeleg-V1" if beleg else "Bestellung-V1"
        if mine:  # what Register._sign does before its Finish
            ref = f"{base}-{index}"
            at = datetime.fromtimestamp(tse_clock.now(), UTC)
            journal.record_start(
                tse_id=TSE, client_id=CLIENT, receipt_ref=ref, process_type=ptype, at=at
            )
            own.add(backend.start(CLIENT, ptype, ref=f"{ref}:start").transaction_number)
        else:
            number = service.start_transaction(TSE, CLIENT, b"", ptype).transaction_number
            foreign[number] = age
    tse_clock.set(base + oldest)
    abandoned = {n for n, age in foreign.items() if age >= HOURS_6}
    young = sorted(set(foreign) - abandoned)
    try:
        assert register.recover() == sorted(own | abandoned)
        assert open_numbers(service) == young
        assert [f.transaction_number for f in journal.foreign_open()] == young
        assert journal.pending_starts() == []
        signed = finishes(service)
        assert all(signed[n][1] in (ABORT, b"") for n in own | abandoned)
    finally:
        for number in open_numbers(service):  # the other tills finish theirs
            service.finish_transaction(TSE, CLIENT, number, BELEG, "Kassenbeleg-V1")
        tse_clock.advance(1)
        journal.close()


# --- the same over HTTP: a fiskaly-compatible service, two tills on one client -----


@pytest.fixture
def served(fiskaly_tss: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return fiskaly_tss(CLIENT)


def test_remote_tills_sharing_a_client(
    served: dict[str, str], journals: Callable[[str], OutageLog], tse_clock: FrozenClock
) -> None:
    """fiskaly's transaction list carries time_start: till B leaves till A's young
    receipt alone (A then signs it normally), finds its own Start by its ref, and
    aborts A's receipt once it is abandoned."""
    backends = []
    for _ in range(2):
        backend = RemoteBackend(
            served["origin"],
            served["api_key"],
            served["api_secret"],
            served["tss"],
            served["client"],
            retries=0,
        )
        backends.append(backend)
    remote_a, remote_b = backends
    try:
        started = remote_a.start(CLIENT, "Kassenbeleg-V1", ref="a-1:start")  # A: receipt open
        [listed] = remote_b.open_transactions(CLIENT)
        assert listed.transaction_number == started.transaction_number
        assert listed.start_time == datetime.fromtimestamp(NOW, UTC)
        assert remote_b.started_number(CLIENT, "a-1:start") == started.transaction_number
        assert remote_b.started_number(CLIENT, "never-sent:start") is None
        config = RegisterConfig(SELLER, CLIENT)
        till_b = Register(remote_b, config, journals("b"), clock=clock_of(tse_clock))
        tse_clock.advance(60)
        till_b.connect()
        assert [f.transaction_number for f in till_b.journal.foreign_open()] == [
            started.transaction_number
        ]
        signed = remote_a.finish(
            CLIENT, started.transaction_number, "Kassenbeleg-V1", BELEG.decode(), ref="a-1:finish"
        )
        assert signed.process_data == BELEG.decode()
        assert not till_b.sell(coffee()).tse_failed

        stale = remote_a.start(CLIENT, "Kassenbeleg-V1", ref="a-2:start")  # A dies here
        tse_clock.advance(HOURS_6)
        assert till_b.recover() == [stale.transaction_number]
        assert remote_b.open_transactions(CLIENT) == []
        aborted = remote_a.finish(
            CLIENT, stale.transaction_number, "Kassenbeleg-V1", "", ref="a-2:check"
        )
        assert aborted.process_data == ABORT.decode()  # already finished, as aborted
    finally:
        for backend in backends:
            backend.close()
