"""The Register facade over the embedded TSE (TSEService on SQLite): signed sales whose
QR codes verify, outages (TSE refusing, TSE blocked past the timeout, TSE absent at
start) with the journal and the traffic light, crash recovery, idempotent retries."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import ProtocolError
from opentse.formats.processdata import parse_kassenbeleg
from opentse.register.backends import EmbeddedBackend, RegisterNotAccepted, Started
from opentse.register.outage import RESTART_ADVICE, Light, OutageLog
from opentse.register.receipt import Seller
from opentse.register.register import Register, RegisterConfig
from opentse.register.render_text import render_text
from opentse.register.sale import CashBookEntry, Sale
from opentse.register.shoptime import shop_zone
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import ADMIN_PIN, ADMIN_PUK, TEST_SECRET, FrozenClock, ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData
from opentse.verify.receipt import verify_receipt

NOW = 1_700_000_000
SELLER = Seller("Kiosk am Markt", ("Marktplatz 2", "04109 Leipzig"))
CLIENT = "KASSE-01"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TSEService]:
    store = SQLiteStore(tmp_path / "tse.db", busy_timeout=20.0)
    svc = TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW))
    ready_tse(svc, "tse-1", client_id=CLIENT, logout=True)
    yield svc
    store.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[OutageLog]:
    log = OutageLog(tmp_path / "register" / "journal.db")
    yield log
    log.close()


def make_register(
    service: TSEService, journal: OutageLog, timeout: float = 5.0, backend: Any = None
) -> Register:
    config = RegisterConfig(SELLER, CLIENT, timeout=timeout)
    return Register(backend or EmbeddedBackend(service, "tse-1"), config, journal)


class WatchedStarts(EmbeddedBackend):
    """The real embedded backend; ``answered`` is set when a Start's call has
    returned (in the register's worker thread, however late)."""

    def __init__(self, service: TSEService) -> None:
        super().__init__(service, "tse-1")
        self.answered = threading.Event()

    def start(self, client_id: str, process_type: str, *, ref: str) -> Started:
        try:
            return super().start(client_id, process_type, ref=ref)
        finally:
            self.answered.set()


def coffee(total: str = "4.80") -> Sale:
    sale = Sale()
    sale.add_line("Kaffee", 2, "2.40", 1)
    sale.add_payment("cash", "5.00")
    assert sale.total == Decimal(total)
    return sale


def transaction_logs(service: TSEService) -> list[tuple[int, str, str, bytes]]:
    """(transaction number, operation, processType, processData) from the TSE's logs."""
    out = []
    for log in service.logs("tse-1"):
        tx = codec.decode_log_message(log.message).certified
        if isinstance(tx, TransactionLogData):
            out.append((tx.transaction_number, tx.operation_type, tx.process_type, tx.process_data))
    return out


def test_signed_sale_receipt_verifies(service: TSEService, journal: OutageLog) -> None:
    register = make_register(service, journal)
    assert register.connect().light is Light.GREEN
    result = register.sell(coffee())
    assert not result.tse_failed
    assert result.signed is not None
    data = result.to_json()
    assert data["process_data"] == "Beleg^4.80_0.00_0.00_0.00_0.00^4.80:Bar"
    assert data["transaction_number"] == result.signed.transaction_number
    assert verify_receipt(data["qr_code_data"]).ok
    assert "Keine zertifizierte TSE (opentse)" in data["receipt_text"]
    assert f"TSE-Transaktion: {result.signed.transaction_number}" in data["receipt_text"]
    assert result.status.light is Light.GREEN
    assert result.receipt.receipt_number == "1"
    signed_logs = transaction_logs(service)
    finish = [t for t in signed_logs if t[1] == "FinishTransaction"]
    assert finish[-1][2:] == ("Kassenbeleg-V1", b"Beleg^4.80_0.00_0.00_0.00_0.00^4.80:Bar")


def test_cashier_errors_raise_before_any_signature(service: TSEService, journal: OutageLog) -> None:
    register = make_register(service, journal)
    sale = Sale()
    sale.add_line("Kaffee", 1, "2.40", 1)
    before = len(transaction_logs(service))
    with pytest.raises(ProtocolError) as info:
        register.sell(sale)  # no payment
    assert info.value.code == "E_PAYMENT_SHORT"
    assert len(transaction_logs(service)) == before


def test_refusing_tse_gives_marked_receipts_yellow_and_advice(
    service: TSEService, journal: OutageLog
) -> None:
    register = make_register(service, journal)
    register.connect()
    service.authenticate("tse-1", ADMIN_PIN)
    service.deregister_client("tse-1", CLIENT)  # the TSE now refuses this register
    results = [register.sell(coffee()) for _ in range(3)]
    for count, result in enumerate(results, start=1):
        assert result.tse_failed and result.receipt.transaction_number is None
        assert result.status.light is Light.YELLOW
        assert result.status.consecutive_failures == count
        text = render_text(result.receipt)
        assert "TSE ausgefallen" in text and "TSE-Transaktion" not in text
    assert RESTART_ADVICE not in results[1].status.message
    assert RESTART_ADVICE in results[2].status.message
    outage = journal.outages()[-1]
    assert outage.ended_at is None and len(outage.receipt_refs) == 3
    assert outage.reason  # the TSE's refusal is recorded
    # back: the next sale is signed, the outage ends, the light is green
    service.register_client("tse-1", CLIENT)
    back = register.sell(coffee())
    assert not back.tse_failed and back.status.light is Light.GREEN
    closed = journal.outages()[-1]
    assert closed.ended_at is not None and closed.receipt_refs == outage.receipt_refs


def test_blocked_tse_times_out_then_dangling_transaction_is_finished(
    service: TSEService, journal: OutageLog, tmp_path: Path
) -> None:
    backend = WatchedStarts(service)
    register = make_register(service, journal, timeout=0.5, backend=backend)
    register.connect()
    blocker = sqlite3.connect(tmp_path / "tse.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the TSE store
    result = register.sell(coffee())
    # the sale came back while its Start was still waiting for the store: not blocked
    assert not backend.answered.is_set()
    assert result.tse_failed
    assert "TimeoutError" in (result.error or "")
    assert result.status.light is Light.YELLOW
    blocker.execute("ROLLBACK")  # the TSE recovers; the stuck Start completes late
    blocker.close()
    assert backend.answered.wait(30), "the stuck Start never completed"
    dangling = sorted(service.get("tse-1").state.open_transactions)
    assert len(dangling) == 1
    assert register.status().light is Light.YELLOW  # yellow until a signing works again
    back = register.sell(coffee())  # the TSE is back: the outage ends, recovery runs
    assert not back.tse_failed and back.status.light is Light.GREEN
    assert service.get("tse-1").state.open_transactions == {}
    finished = [t for t in transaction_logs(service) if t[0] == dangling[0]]
    assert finished[-1][1:] == (
        "FinishTransaction",
        "Kassenbeleg-V1",
        b"AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^",
    )
    recorded = journal.dangling()
    assert [d.transaction_number for d in recorded] == dangling
    assert recorded[0].resolved_at is not None
    assert register.connect().light is Light.GREEN
    assert [d.transaction_number for d in journal.dangling()] == dangling  # nothing new


def test_reconnect_whose_recovery_signs_ends_the_signing_outage(
    service: TSEService, journal: OutageLog, tmp_path: Path
) -> None:
    """A sale's Start reached the TSE, its Finish did not (yellow). On reconnect
    recovery signs the abort: a signing that works, so the outage ends (docs: "the
    first signing that works ends the outage"). pos status still said YELLOW "TSE
    ausgefallen" after the TSE was back, until the next sale."""
    backend = WatchedStarts(service)
    register = make_register(service, journal, timeout=0.5, backend=backend)
    register.connect()
    blocker = sqlite3.connect(tmp_path / "tse.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    assert register.sell(coffee()).status.light is Light.YELLOW
    assert not backend.answered.is_set()
    blocker.execute("ROLLBACK")  # the stuck Start completes late
    blocker.close()
    assert backend.answered.wait(30), "the stuck Start never completed"
    assert len(service.get("tse-1").state.open_transactions) == 1
    status = register.connect()
    assert service.get("tse-1").state.open_transactions == {}  # the abort was signed
    assert status.light is Light.GREEN and status.message == "TSE in Ordnung"
    assert journal.outages()[-1].ended_at is not None
    assert len(journal.outages()[-1].receipt_refs) == 1  # the unsigned receipt stays


def test_crash_after_start_is_recovered_on_connect(service: TSEService, journal: OutageLog) -> None:
    number = service.start_transaction("tse-1", CLIENT, b"", "Bestellung-V1").transaction_number
    register = make_register(service, journal)
    assert register.connect().light is Light.GREEN
    assert service.get("tse-1").state.open_transactions == {}
    # aborted as a receipt (AVBelegabbruch), whatever the Start was: DSFinV-K can book it
    abort = b"AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^"
    assert transaction_logs(service)[-1] == (number, "FinishTransaction", "Kassenbeleg-V1", abort)
    assert journal.dangling()[0].resolution == "finished as aborted (Bestellung-V1)"


def test_unreachable_tse_at_start_is_red_and_journal_survives_restart(
    tmp_path: Path, journal: OutageLog
) -> None:
    store = SQLiteStore(tmp_path / "other.db")
    service = TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW))
    service.create_tse("tse-1", admin_puk=ADMIN_PUK)  # created, not usable yet
    register = make_register(service, journal)
    status = register.connect()
    assert status.light is Light.RED and status.consecutive_failures == 0
    result = register.sell(coffee())
    assert result.tse_failed and result.status.light is Light.RED
    today = datetime.now(shop_zone()).date().isoformat()  # the shop's day
    assert journal.daily_records() == [(today, "red", 0, "automatisch")]  # written at start
    register.daily_record(date(2020, 1, 2), note="ohne TSE")
    assert journal.daily_records()[0] == ("2020-01-02", "red", 0, "ohne TSE")
    register.daily_record(note="Abschluss")
    assert journal.daily_records()[-1] == (today, "red", 1, "Abschluss")  # upserted, counted
    journal.close()
    reopened = OutageLog(tmp_path / "register" / "journal.db")
    assert reopened.status().light is Light.RED
    assert reopened.status().consecutive_failures == 1
    service.set_state("tse-1", "UNINITIALIZED")
    service.set_admin_pin("tse-1", ADMIN_PUK, ADMIN_PIN)
    service.authenticate("tse-1", ADMIN_PIN)
    service.initialize("tse-1")
    service.register_client("tse-1", CLIENT)
    service.logout("tse-1")
    again = Register(EmbeddedBackend(service, "tse-1"), RegisterConfig(SELLER, CLIENT), reopened)
    assert again.connect().light is Light.GREEN
    assert reopened.outages()[0].ended_at is not None
    assert again.sell(coffee()).receipt.receipt_number == "2"  # numbering is durable
    reopened.close()
    store.close()


def test_embedded_backend_check_and_idempotent_refs(service: TSEService) -> None:
    backend = EmbeddedBackend(service, "tse-1")
    backend.check(CLIENT)
    with pytest.raises(RegisterNotAccepted) as unknown:  # a configuration error
        backend.check("UNKNOWN")
    assert unknown.value.code == "E_REGISTER_CLIENT_UNKNOWN"
    started = backend.start(CLIENT, "Kassenbeleg-V1", ref="r1:start")
    again = backend.start(CLIENT, "Kassenbeleg-V1", ref="r1:start")
    assert again.transaction_number == started.transaction_number
    data = "Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar"
    first = backend.finish(CLIENT, started.transaction_number, "Kassenbeleg-V1", data, ref="r1:f")
    retry = backend.finish(CLIENT, started.transaction_number, "Kassenbeleg-V1", data, ref="r1:f")
    assert retry.replayed and not first.replayed
    assert retry.signature == first.signature
    assert retry.signature_counter == first.signature_counter
    finishes = [t for t in transaction_logs(service) if t[1] == "FinishTransaction"]
    assert len(finishes) == 1  # the retry signed nothing


def test_orders_cash_book_and_first_order_line(service: TSEService, journal: OutageLog) -> None:
    register = make_register(service, journal)
    register.connect()
    order = Sale("AVBestellung")
    order.add_line("Schnitzel", 1, "14.90", 1)
    ordered = register.order(order)
    assert ordered.signed is not None
    assert ordered.signed.process_data == '1;"Schnitzel";14.90'
    bill = Sale()
    bill.add_line("Schnitzel", 1, "14.90", 1)
    bill.add_payment("card", "14.90")
    paid = register.sell(bill, first_order_start=ordered.signed.start_time)
    assert "TSE-Erstbestellung" in render_text(paid.receipt)
    assert parse_kassenbeleg(paid.signed.process_data if paid.signed else "").total == Decimal(
        "14.90"
    )
    signed, status = register.book(CashBookEntry("Privatentnahme", Decimal("-20.00"), "Inhaber"))
    assert signed is not None and status.light is Light.GREEN
    assert signed.process_type == "SonstigerVorgang"
    assert signed.process_data == "Privatentnahme^-20.00:Bar^Inhaber"


def test_concurrent_registers_share_one_tse(service: TSEService, tmp_path: Path) -> None:
    journals = [OutageLog(tmp_path / f"j{i}.db") for i in range(2)]
    service.authenticate("tse-1", ADMIN_PIN)
    service.register_client("tse-1", "KASSE-02")
    registers = [
        Register(EmbeddedBackend(service, "tse-1"), RegisterConfig(SELLER, cid), j)
        for cid, j in zip((CLIENT, "KASSE-02"), journals, strict=True)
    ]
    results: list[bool] = []

    def work(register: Register) -> None:
        for _ in range(5):
            results.append(register.sell(coffee()).tse_failed)

    threads = [threading.Thread(target=work, args=(r,)) for r in registers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [False] * 10
    counters = [log.signature_counter for log in service.logs("tse-1")]
    assert counters == list(range(1, len(counters) + 1))
    for j in journals:
        j.close()


def test_training_storno_and_abort_are_signed_and_verify(
    service: TSEService, journal: OutageLog
) -> None:
    register = make_register(service, journal)
    register.connect()
    training = Sale("AVTraining")
    training.add_line("Kaffee", 1, "2.40", 1)
    training.add_payment("cash", "2.40")
    original = coffee()
    aborted = coffee().aborted()
    expected = {
        "AVTraining": "AVTraining^2.40_0.00_0.00_0.00_0.00^2.40:Bar",
        "AVBelegstorno": "AVBelegstorno^-4.80_0.00_0.00_0.00_0.00^-4.80:Bar",
        "AVBelegabbruch": "AVBelegabbruch^4.80_0.00_0.00_0.00_0.00^",
    }
    for sale in (training, original.storno(), aborted):
        result = register.sell(sale)
        assert result.signed is not None
        assert result.signed.process_data == expected[sale.bon_typ]
        assert verify_receipt(result.to_json()["qr_code_data"]).ok
    assert "TRAININGSBELEG" in render_text(register.sell(training).receipt)


def test_recovery_uses_the_journal_refs(service: TSEService, journal: OutageLog) -> None:
    """A Finish that reached the TSE although the register never got the answer is
    answered from the TSE's store (no second signature); a journal entry for a
    transaction the TSE does not hold open is closed as such."""
    data = "Beleg^4.80_0.00_0.00_0.00_0.00^4.80:Bar"
    number = service.start_transaction(
        "tse-1", CLIENT, b"", "Kassenbeleg-V1", ref="lost-1:start"
    ).transaction_number
    service.finish_transaction(
        "tse-1", CLIENT, number, data.encode(), "Kassenbeleg-V1", ref="lost-1:finish"
    )
    at = datetime.now(UTC)
    for n, ref in ((number, "lost-1"), (4711, "")):
        journal.record_dangling(
            tse_id="tse-1",
            client_id=CLIENT,
            transaction_number=n,
            at=at,
            receipt_ref=ref,
            process_type="Kassenbeleg-V1",
        )
    before = len(transaction_logs(service))
    register = make_register(service, journal)
    assert register.connect().light is Light.GREEN
    assert len(transaction_logs(service)) == before  # nothing was signed again
    resolutions = {d.transaction_number: d.resolution for d in journal.dangling()}
    assert resolutions[number] == "had been signed by its own Finish (Kassenbeleg-V1)"
    assert (resolutions[4711] or "").startswith("not open at the TSE")
