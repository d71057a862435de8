"""The Register facade: book a sale, sign it, print the receipt -- and never block.

Order of work for every sale: validate and derive the processData first (a bad sale
is the cashier's error and raises), then ask the TSE to start and finish the
transaction. Any failure of the TSE -- an exception or a call that takes longer than
``timeout`` seconds -- does not stop the sale: the receipt is issued marked "TSE
ausgefallen" without transaction number, and the journal (outage.py) records the
failure durably. Nothing is signed later; Germany has no re-signing.

Every TSE call carries an idempotency ref derived from the receipt's own id, so a
backend that retries after a lost answer gets the stored signature back. On
(re)connect, and at the first successful signing after an outage, transactions the
TSE still holds open for this register -- left by a crash or a timed-out call -- are
finished as aborted (``AVBelegabbruch``) and noted in the journal. One Register
serves one client (one till) at a time: it assumes no other open transaction of
its client is legitimately in progress.

With ``books`` (books.py) every Vorgang -- signed or not -- is also kept for the
Kassenabschluss and the DSFinV-K export.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, TypeVar

from opentse.errors import ProtocolError
from opentse.formats import processdata as pd
from opentse.register.backends import Backend, Signed, TSEUnavailable
from opentse.register.books import Books
from opentse.register.outage import Light, OutageLog, RegisterStatus
from opentse.register.receipt import Receipt, Seller
from opentse.register.render_text import render_text
from opentse.register.sale import CashBookEntry, Sale
from opentse.register.shoptime import DEFAULT_SHOP_TIMEZONE, local_day, shop_zone

T = TypeVar("T")

#: processData used to close a dangling transaction, by its processType.
ABORT_PROCESS_DATA: dict[str, str] = {
    pd.PROCESS_TYPE_KASSENBELEG: "AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^",
    pd.PROCESS_TYPE_BESTELLUNG: "",
    pd.PROCESS_TYPE_SONSTIGER: "",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RegisterConfig:
    """Who prints the receipts and how. ``client_id`` is the register's serial number
    as registered at the TSE (§6 Nr. 6); ``not_certified`` adds the notice line;
    ``timezone`` (IANA name) is the shop's: receipts print its local time and the
    journal's days are its calendar days (shoptime.py)."""

    seller: Seller
    client_id: str
    not_certified: bool = True
    qr_only: bool = False
    footer: tuple[str, ...] = ()
    timeout: float = 5.0
    text_width: int = 48
    timezone: str = DEFAULT_SHOP_TIMEZONE

    def __post_init__(self) -> None:
        shop_zone(self.timezone)  # E_TIMEZONE for an unknown zone, at configuration

    @property
    def zone(self) -> tzinfo:
        return shop_zone(self.timezone)


@dataclass(frozen=True)
class SaleResult:
    """Outcome of one booking: the receipt always, the signature when there was one."""

    receipt: Receipt
    signed: Signed | None
    receipt_ref: str
    status: RegisterStatus
    error: str | None = None
    text_width: int = 48
    zone: tzinfo | None = None  # the shop's, for the receipt text (default Europe/Berlin)
    #: the processType signed, or meant to be signed when the TSE failed (books, export)
    process_type: str = pd.PROCESS_TYPE_KASSENBELEG

    @property
    def tse_failed(self) -> bool:
        return self.signed is None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape ``opentse pos sell --json`` prints."""
        signed = self.signed
        return {
            "receipt_ref": self.receipt_ref,
            "receipt_number": self.receipt.receipt_number,
            "tse_failed": self.tse_failed,
            "transaction_number": None if signed is None else signed.transaction_number,
            "signature_counter": None if signed is None else signed.signature_counter,
            "qr_code_data": self.receipt.qr_payload,
            "process_type": None if signed is None else signed.process_type,
            "process_data": None if signed is None else signed.process_data,
            "total": str(self.receipt.total),
            "status": self.status.light.value,
            "consecutive_failures": self.status.consecutive_failures,
            "error": self.error,
            "receipt_text": render_text(self.receipt, width=self.text_width, tz=self.zone),
        }


@dataclass
class _Outcome:
    signed: Signed | None = None
    error: str | None = None
    started: list[int] = field(default_factory=list)


class Register:
    """One register (one TSE client) over one backend, with its own journal."""

    def __init__(
        self,
        backend: Backend,
        config: RegisterConfig,
        journal: OutageLog,
        *,
        clock: Callable[[], datetime] = utc_now,
        books: Books | None = None,
    ) -> None:
        self.backend = backend
        self.config = config
        self.journal = journal
        self.clock = clock
        self.books = books
        self._tse_serial = ""

    # --- TSE calls with a deadline -----------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a daemon thread; past ``timeout`` give up (it may finish later,
        which is why a timed-out transaction is looked for on reconnect)."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=run, name="opentse-register-tse", daemon=True)
        worker.start()
        worker.join(self.config.timeout)
        if worker.is_alive():
            raise TimeoutError(f"TSE did not answer within {self.config.timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    # --- connection and recovery -------------------------------------------------------

    def connect(self) -> RegisterStatus:
        """Check the TSE at start: unusable -> red; usable -> finish dangling
        transactions and report the current light."""
        client = self.config.client_id
        try:
            self._call(lambda: self.backend.check(client))
            self._tse_serial = self._call(self.backend.serial_number)
            if self.books is not None:
                self.books.remember_tse(self.backend.tse_id, self._call(self.backend.describe))
        except Exception as exc:
            self.journal.record_unreachable(at=self.clock(), reason=_reason(exc))
            self._ensure_daily_record()
            return self.journal.status()
        self.recover()
        self._ensure_daily_record()
        status = self.journal.status()
        if status.light is Light.RED:
            # reachable again: the start outage ends; unsigned receipts stay documented
            self.journal.record_success(at=self.clock())
            status = self.journal.status()
        return status

    def recover(self) -> list[int]:
        """Finish every transaction left open for this register as aborted.

        Candidates are what the TSE lists as open for this client plus what the journal
        knows started without a Finish. A journal entry carries its receipt ref, so the
        Finish reuses that receipt's own finish ref: if the original Finish did reach
        the TSE, the TSE answers with the stored signature instead of signing again
        (the journal then says so), and a remote service finds the transaction by its
        id even if it lost its index. Returns the numbers finished; failures stay for
        the next reconnect.
        """
        client, tse_id = self.config.client_id, self.backend.tse_id
        try:
            listed = self._call(lambda: self.backend.open_transactions(client))
        except Exception:
            return []
        known = {
            d.transaction_number: d
            for d in self.journal.dangling()
            if d.tse_id == tse_id and d.client_id == client and d.resolved_at is None
        }
        candidates: dict[int, tuple[str, str]] = {
            n: (d.process_type, d.receipt_ref) for n, d in known.items()
        }
        for tx in listed:
            ref = known[tx.transaction_number].receipt_ref if tx.transaction_number in known else ""
            candidates[tx.transaction_number] = (tx.process_type, ref)
        open_numbers = {tx.transaction_number for tx in listed}
        finished: list[int] = []
        for number, (process_type, receipt_ref) in sorted(candidates.items()):
            ptype = process_type or pd.PROCESS_TYPE_KASSENBELEG
            self.journal.record_dangling(
                tse_id=tse_id,
                client_id=client,
                transaction_number=number,
                at=self.clock(),
                receipt_ref=receipt_ref,
                process_type=ptype,
            )
            data = ABORT_PROCESS_DATA.get(ptype, "")
            ref = f"{receipt_ref}:finish" if receipt_ref else f"recover:{client}:{number}"
            try:
                signed = self._call(functools.partial(self._finish_open, number, ptype, data, ref))
            except Exception as exc:
                if number not in open_numbers and _is_not_found(exc):
                    self._resolve(number, f"not open at the TSE ({_reason(exc)})")
                continue
            if signed.process_data == data:
                self._resolve(number, f"finished as aborted ({ptype})")
            else:
                self._resolve(number, f"had been signed by its own Finish ({ptype})")
            finished.append(number)
        return finished

    def _resolve(self, number: int, resolution: str) -> None:
        self.journal.resolve_dangling(
            tse_id=self.backend.tse_id,
            transaction_number=number,
            at=self.clock(),
            resolution=resolution,
        )

    def _finish_open(self, number: int, process_type: str, process_data: str, ref: str) -> Signed:
        return self.backend.finish(
            self.config.client_id, number, process_type, process_data, ref=ref
        )

    def status(self) -> RegisterStatus:
        return self.journal.status()

    def daily_record(self, day: date | None = None, note: str = "") -> None:
        """Write (or update) the journal record of a shop day (default today, local);
        works without any TSE."""
        now, zone = self.clock(), self.config.zone
        self.journal.write_daily_record(day or local_day(now, zone), at=now, note=note, zone=zone)

    def _ensure_daily_record(self) -> None:
        """The first event of a (local, shop calendar) day writes that day's record, TSE
        or not."""
        now = self.clock()
        if not self.journal.has_daily_record(local_day(now, self.config.zone)):
            self.daily_record(note="automatisch")

    # --- signing -------------------------------------------------------------------------

    def _sign(self, process_type: str, process_data: str, ref: str) -> _Outcome:
        client = self.config.client_id
        outcome = _Outcome()
        try:
            started = self._call(
                lambda: self.backend.start(client, process_type, ref=f"{ref}:start")
            )
            outcome.started.append(started.transaction_number)
            outcome.signed = self._call(
                lambda: self.backend.finish(
                    client,
                    started.transaction_number,
                    process_type,
                    process_data,
                    ref=f"{ref}:finish",
                )
            )
        except Exception as exc:
            outcome.error = _reason(exc)
            for number in outcome.started:
                self.journal.record_dangling(
                    tse_id=self.backend.tse_id,
                    client_id=client,
                    transaction_number=number,
                    at=self.clock(),
                    receipt_ref=ref,
                    process_type=process_type,
                )
        return outcome

    def _signed_again(self, at: datetime) -> None:
        """A signing worked: end the open outage; if there was one, the TSE is back, so
        finish what the outage left open (a late-completing Start, a lost Finish)."""
        if self.journal.record_success(at=at) is not None:
            self.recover()

    def _book(
        self,
        sale: Sale,
        process_type: str,
        process_data: str,
        *,
        first_order_start: datetime | None = None,
        references: Sequence[str] = (),
    ) -> SaleResult:
        self._ensure_daily_record()
        ref = str(uuid.uuid4())
        number = str(self.journal.next_number("receipt"))
        started_at = self.clock()
        outcome = self._sign(process_type, process_data, ref)
        ended_at = self.clock()
        if outcome.signed is None:
            self.journal.record_failure(
                at=ended_at,
                reason=outcome.error or "unknown",
                receipt_ref=ref,
                receipt_number=number,
                bon_typ=sale.bon_typ,
                total=sale.total,
            )
        else:
            self._signed_again(ended_at)
            self._tse_serial = outcome.signed.serial_number
        receipt = Receipt.from_sale(
            sale,
            seller=self.config.seller,
            register_serial=self.config.client_id,
            issued_at=ended_at,
            tse=None
            if outcome.signed is None
            else outcome.signed.to_tse_signature(first_order_start),
            tse_serial=self._tse_serial,
            start_time=started_at,
            end_time=ended_at,
            not_certified=self.config.not_certified,
            qr_only=self.config.qr_only and outcome.signed is not None,
            receipt_number=number,
            footer=self.config.footer,
            zone=self.config.zone,
        )
        result = SaleResult(
            receipt,
            outcome.signed,
            ref,
            self.journal.status(),
            outcome.error,
            self.config.text_width,
            self.config.zone,
            process_type,
        )
        if self.books is not None:
            self.books.record(sale, result, tse_id=self.backend.tse_id, references=references)
        return result

    def sell(
        self,
        sale: Sale,
        *,
        first_order_start: datetime | None = None,
        references: Sequence[str] = (),
    ) -> SaleResult:
        """Sign a sale (Beleg, training, storno, abort ...) as Kassenbeleg-V1.

        ``first_order_start``: start of the first Bestellung-V1 of this bill, printed as
        TSE-Erstbestellung (DSFinV-K 2.7 relief for restaurants). ``references``: BON_IDs
        this Vorgang points at (a cancellation's original; DSFinV-K references.csv),
        booked in the same books transaction as the Vorgang itself; they must be in the
        books already (``E_BOOKS_REFERENCE`` before any TSE call).
        """
        data = sale.process_data()  # raises for the cashier's errors, before any TSE call
        if references:
            missing = ["(no books)"] if self.books is None else self.books.missing(references)
            if missing:
                raise ProtocolError(
                    f"reference to receipts not in the books: {', '.join(missing)}",
                    code="E_BOOKS_REFERENCE",
                )
        return self._book(
            sale,
            sale.process_type,
            data,
            first_order_start=first_order_start,
            references=references,
        )

    def order(self, sale: Sale) -> SaleResult:
        """Sign a restaurant order as Bestellung-V1 (its start time is kept on the result
        for the final receipt's TSE-Erstbestellung). A plain ``Sale()`` is booked and
        printed as AVBestellung (:meth:`Sale.as_order`), signed or not."""
        order = sale.as_order()  # raises for the cashier's errors, before any TSE call
        return self._book(order, pd.PROCESS_TYPE_BESTELLUNG, order.order_process_data())

    def book(self, entry: CashBookEntry) -> tuple[Signed | None, RegisterStatus]:
        """Sign a cash-book entry (SonstigerVorgang); never raises for TSE failures."""
        self._ensure_daily_record()
        ref = str(uuid.uuid4())
        number = str(self.journal.next_number("receipt"))
        started_at = self.clock()
        outcome = self._sign(entry.process_type, entry.process_data(), ref)
        now = self.clock()
        if self.books is not None:
            self.books.record_raw(
                entry.as_sale(),
                bon_nr=int(number),
                bon_id=ref,
                tse_id=self.backend.tse_id,
                start=started_at if outcome.signed is None else outcome.signed.start_time,
                end=now if outcome.signed is None else outcome.signed.log_time,
                signed=outcome.signed,
                error=outcome.error or "",
                process_type=entry.process_type,
            )
        if outcome.signed is None:
            self.journal.record_failure(
                at=now,
                reason=outcome.error or "unknown",
                receipt_ref=ref,
                receipt_number=number,
                bon_typ=entry.gv_typ,
                total=entry.amount,
            )
        else:
            self._signed_again(now)
        return outcome.signed, self.journal.status()


def _is_not_found(exc: BaseException) -> bool:
    """The TSE says the transaction is not open (unknown, or closed already)."""
    code = str(getattr(exc, "code", ""))
    return code in ("E_TX_NOT_FOUND", "E_TX_UPSERT", "E_TX_REVISION_NOT_FOUND")


def _reason(exc: BaseException) -> str:
    """A short reason for the journal: the error code if ours, else the type and text."""
    code = getattr(exc, "code", None)
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TSEUnavailable) or isinstance(code, str):
        return text
    return f"{type(exc).__name__}: {text}"
