"""The Register facade: book a sale, sign it, print the receipt -- and never block.

Order of work for every sale: validate and derive the processData first (a bad sale
is the cashier's error and raises), then ask the TSE to start and finish the
transaction. Any failure of the TSE -- an exception or a call that takes longer than
``timeout`` seconds -- does not stop the sale: the receipt is issued marked "TSE
ausgefallen" without transaction number, and the journal (outage.py) records the
failure durably. Nothing is signed later; Germany has no re-signing.

Every TSE call carries an idempotency ref derived from the receipt's own id, so a
backend that retries after a lost answer gets the stored signature back. On
(re)connect, and at the first successful signing after an outage, transactions left
open by a crash or a timed-out call are finished as aborted (``AVBelegabbruch``) and
noted in the journal. Several tills may share one client id, so recovery claims only
what this register's journal says it started, plus open transactions of the client
older than ``RegisterConfig.abandoned_after`` (no live till holds a receipt open that
long); younger ones belong to a till at work and are only listed in the journal.

With ``books`` (books.py) every Vorgang -- signed or not -- is also kept for the
Kassenabschluss and the DSFinV-K export. Its books entry is first written with the
Start note and the receipt number, in one commit before the Start is sent, so a
crash between the TSE's Finish and the books' commit loses nothing: recovery books
the sale from the note (pending_booking.py). The note goes after the books commit.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar

from opentse.engine.rules import is_printable
from opentse.errors import ProtocolError
from opentse.formats import processdata as pd
from opentse.register.backends import (
    Backend,
    RegisterNotAccepted,
    Signed,
    SuccessorAmbiguous,
    TSEReplaced,
    issued_by_opentse,
    never_certified,
    not_accepted,
)
from opentse.register.books import Books
from opentse.register.outage import Light, OutageLog, RegisterStatus
from opentse.register.pending_booking import PendingBooking
from opentse.register.receipt import Receipt, Seller
from opentse.register.recovery import (
    DEFAULT_ABANDONED_AFTER,
    Recovery,
    journal_reason,
)
from opentse.register.sale import CashBookEntry, Sale
from opentse.register.sale_result import SaleResult as SaleResult
from opentse.register.shoptime import DEFAULT_SHOP_TIMEZONE, local_day, shop_zone
from opentse.register.text import check_text, check_texts
from opentse.tr03151.codec import MAX_PROCESS_DATA

T = TypeVar("T")


@contextlib.contextmanager
def single_attempts(backend: Any) -> Iterator[None]:
    """Meanwhile a backend that retries (RemoteBackend) tries each call once: a till
    in an outage stays fast. Other backends are unaffected."""
    single: Callable[[bool], None] | None = getattr(backend, "set_single_attempt", None)
    if single is None:
        yield
        return
    single(True)
    try:
        yield
    finally:
        single(False)


def call_within(fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` in a daemon thread; past ``timeout`` seconds give up with
    TimeoutError (it may finish later, which is why a timed-out transaction is looked
    for on reconnect)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name="opentse-register-tse", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"TSE did not answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RegisterConfig:
    """Who prints the receipts and how. ``client_id`` is the register's serial number
    as registered at the TSE (§6 Nr. 6); ``not_certified`` adds the notice line (an
    opentse TSE, embedded or served, prints it whatever this says: Register);
    ``timezone`` (IANA name) is the shop's: receipts print its local time and the
    journal's days are its calendar days (shoptime.py). ``abandoned_after``: an open
    transaction of this client that this register did not start is finished as
    aborted on recovery only once the TSE's Start is that old (another till sharing
    the client id may be in the middle of it before)."""

    seller: Seller
    client_id: str
    not_certified: bool = True
    qr_only: bool = False
    footer: tuple[str, ...] = ()
    timeout: float = 5.0
    text_width: int = 48
    timezone: str = DEFAULT_SHOP_TIMEZONE
    abandoned_after: timedelta = DEFAULT_ABANDONED_AFTER
    #: seconds after a TSE call that failed slowly (no answer within the deadline)
    #: during which a sale in the outage does not ask the TSE again: it is known down
    #: and the till stays fast. 0 (default): every sale tries once more (in an outage
    #: a retrying backend tries each call once); ``opentse pos`` sets it, so a sale
    #: after connect's failed probe is booked unsigned at once
    probe_interval: float = 0.0

    def __post_init__(self) -> None:
        shop_zone(self.timezone)  # E_TIMEZONE for an unknown zone, at configuration
        # printed on every receipt (an ESC is a printer command on ESC/POS)
        check_texts(
            [("seller name", self.seller.name), ("seller tax id", self.seller.tax_id)]
            + [(f"seller address line {n}", t) for n, t in enumerate(self.seller.address_lines, 1)]
            + [(f"footer line {n}", t) for n, t in enumerate(self.footer, 1)]
        )
        if not (
            isinstance(self.client_id, str) and self.client_id and is_printable(self.client_id)
        ):
            # TR-03151 clientId is a PrintableString: no TSE signs another one, so every
            # sale would be printed "TSE ausgefallen" with a working TSE
            raise ProtocolError(
                f"client_id {self.client_id!r} is not a TSE client id (the register's "
                "serial number: A-Z a-z 0-9 space ' ( ) + , - . / : = ?)",
                code="E_REGISTER_CONFIG",
            )
        if not (isinstance(self.timeout, int | float) and 0 < self.timeout < 86400):
            # 0, negative or NaN made every sale "TSE ausgefallen" with a working TSE
            raise ProtocolError(
                f"timeout must be a number of seconds above 0, not {self.timeout!r}",
                code="E_REGISTER_CONFIG",
            )
        if not (isinstance(self.probe_interval, int | float) and self.probe_interval >= 0):
            raise ProtocolError(
                f"probe_interval must be seconds, 0 or more, not {self.probe_interval!r}",
                code="E_REGISTER_CONFIG",
            )
        if self.abandoned_after <= timedelta(0):
            raise ProtocolError(
                "abandoned_after must be a positive duration", code="E_REGISTER_CONFIG"
            )

    @property
    def zone(self) -> tzinfo:
        return shop_zone(self.timezone)


@dataclass
class _Outcome:
    signed: Signed | None = None
    error: str | None = None
    started: list[int] = field(default_factory=list)
    #: the signing failed: its note stays for recovery (the Start may still arrive,
    #: the Finish may have been signed)
    keep_note: bool = False
    outage_ended: bool = False
    #: the TSE does not know this register as configured (backends.not_accepted)
    not_accepted: str | None = None


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
        #: the books' certificate of this TSE names an opentse CA (learnt at connect,
        #: also in an outage): never BSI-certified, see :attr:`not_certified`
        self._opentse = False
        #: (monotonic time, reason) of the last TSE call that failed slowly (a TSE
        #: that does not answer), until one works
        self._failed: tuple[float, str] | None = None

    # --- TSE calls with a deadline -----------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """``fn`` with the configured deadline (call_within)."""
        return call_within(fn, self.config.timeout)

    @contextlib.contextmanager
    def _attempts(self) -> Iterator[None]:
        """In an outage (the journal's light is not green) a backend that retries
        (RemoteBackend) tries each call once: a till in an outage stays fast, and the
        first sale after the TSE is back signs again."""
        if self.journal.status(self.config.zone).light is Light.GREEN:
            yield
            return
        with single_attempts(self.backend):
            yield

    def _failed_slowly(self, began: float, exc: BaseException) -> None:
        """Remember a failure that cost the till time (a TSE that does not answer, a
        call that ran into the deadline): within ``probe_interval`` the TSE is not
        asked again. A quick refusal is cheap to retry and is not remembered."""
        now = time.monotonic()
        if isinstance(exc, TimeoutError) or now - began >= min(1.0, self.config.timeout / 2):
            self._failed = (now, journal_reason(exc))

    def _known_down(self) -> str | None:
        """The reason of the last slow failure while it is younger than
        ``probe_interval`` seconds and the journal shows an outage: the TSE is not
        asked again."""
        if self._failed is None or self.journal.status(self.config.zone).light is Light.GREEN:
            return None
        at, reason = self._failed
        age = time.monotonic() - at
        if age >= self.config.probe_interval:
            return None
        return f"{reason} (not asked again: failed {age:.0f} s before)"

    # --- connection and recovery -------------------------------------------------------

    def connect(self) -> RegisterStatus:
        """Check the TSE at start: unusable -> red; usable -> finish dangling
        transactions and report the current light."""
        client, began = self.config.client_id, time.monotonic()
        try:
            with self._attempts():
                self._call(lambda: self.backend.check(client))
                self._tse_serial = self._call(self.backend.serial_number)
                if self.books is not None:
                    description = self._call(self.backend.describe)
                    self.books.remember_tse(self.backend.tse_id, description)
                    self._learn_issuer(description.certificate)
        except Exception as exc:
            code = not_accepted(exc)
            if code is not None:  # not an outage: the register must be set up first
                if isinstance(exc, RegisterNotAccepted):
                    raise
                raise RegisterNotAccepted(journal_reason(exc), code=code) from None
            self._failed_slowly(began, exc)
            if not self._tse_serial and self.books is not None:
                # the receipts printed "TSE ausgefallen" still name the TSE (§6 Nr. 6
                # KassenSichV) when the books described it before
                self._tse_serial = self.books.tse_serial(self.backend.tse_id) or ""
            if self.books is not None:  # the certificate the books know from before
                self._learn_issuer(self.books.tse_certificate(self.backend.tse_id))
            now = self.clock()
            kind = "running" if self._worked_today(now) else "start"
            if isinstance(exc, TSEReplaced | SuccessorAmbiguous):  # red: it will not pass
                kind = "replaced"
            self.journal.record_unreachable(at=now, reason=journal_reason(exc), kind=kind)
            self._ensure_daily_record()
            return self.journal.status(self.config.zone)
        self._failed = None
        self.journal.record_contact(at=self.clock())
        finished = self.recover()
        self._ensure_daily_record()
        status = self.journal.status(self.config.zone)
        if status.kind in ("start", "running", "replaced") or (
            finished and status.light is Light.YELLOW
        ):
            # reachable again: an outage a connect found ends; a signing outage ends
            # with the first signing that works, here recovery's; unsigned receipts
            # stay documented
            self.journal.record_success(at=self.clock())
            status = self.journal.status(self.config.zone)
        return status

    def _learn_issuer(self, certificate: bytes) -> None:
        """An opentse CA's certificate: this TSE is opentse's, never certified."""
        if issued_by_opentse(certificate):
            self._opentse = True

    @property
    def not_certified(self) -> bool:
        """Whether receipts say the TSE is not certified: as configured, and always
        for an opentse TSE (the brief: opentse says it is not BSI-certified wherever
        a certified TSE is required)."""
        return self.config.not_certified or self._opentse or never_certified(self.backend)

    def _worked_today(self, now: datetime) -> bool:
        """Whether the TSE worked for this register earlier on the shop day of
        ``now``: then an unreachable TSE went away while the till ran (yellow), not
        at its start (red); ``opentse pos`` connects at every command."""
        last, zone = self.journal.last_contact(), self.config.zone
        return last is not None and local_day(last, zone) == local_day(now, zone)

    def recover(self) -> list[int]:
        """Finish as aborted what this register left open, and what nobody finished
        (recovery.py: several tills may share one client id). Returns the numbers
        finished; failures stay for the next reconnect, as while the TSE is known
        down (``probe_interval``: not asked again)."""
        if self._known_down() is not None:
            return []
        return Recovery(
            self.backend, self.config, self.journal, self.clock, self._call, self.books
        ).run()

    def status(self) -> RegisterStatus:
        return self.journal.status(self.config.zone)

    def daily_record(self, day: date | None = None, note: str = "") -> None:
        """Write (or update) the journal record of a shop day (default today, local);
        works without any TSE."""
        check_text(note, "note")  # printed by pos journal, kept with the outage records
        now, zone = self.clock(), self.config.zone
        self.journal.write_daily_record(day or local_day(now, zone), at=now, note=note, zone=zone)

    def _ensure_daily_record(self) -> None:
        """The first event of a (local, shop calendar) day writes that day's record, TSE
        or not."""
        now = self.clock()
        if not self.journal.has_daily_record(local_day(now, self.config.zone)):
            self.daily_record(note="automatisch")

    # --- signing -------------------------------------------------------------------------

    def _note(
        self,
        ref: str,
        process_type: str,
        process_data: str,
        at: datetime,
        sale: Sale | None,
        references: Sequence[str] = (),
    ) -> str:
        """Before the Start is sent, in one commit: the receipt number, the Start
        note (a crash or timeout leaves a transaction this register can claim by ref
        on recovery; other tills may share the client id) and, with books, the
        sale's books entry (recovery books it should the TSE hold the Finish and the
        books not; pending_booking.py). Returns the receipt number."""
        tse_id, refs = self.backend.tse_id, tuple(references)

        def booking(number: int) -> str:
            assert sale is not None
            return PendingBooking(number, tse_id, sale, process_type, process_data, refs).to_json()

        number = self.journal.record_sale_start(
            tse_id=tse_id,
            client_id=self.config.client_id,
            receipt_ref=ref,
            process_type=process_type,
            at=at,
            booking=None if self.books is None or sale is None else booking,
        )
        return str(number)

    def _sign(self, process_type: str, process_data: str, ref: str) -> _Outcome:
        client, tse_id = self.config.client_id, self.backend.tse_id
        outcome = _Outcome()
        down, began = self._known_down(), time.monotonic()
        if down is not None:  # no Start sent: the note goes with the booking
            outcome.error = down
            return outcome
        try:
            with self._attempts():
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
            outcome.error = journal_reason(exc)
            outcome.not_accepted = not_accepted(exc)
            self._failed_slowly(began, exc)
            for number in outcome.started:
                self.journal.record_dangling(
                    tse_id=tse_id,
                    client_id=client,
                    transaction_number=number,
                    at=self.clock(),
                    receipt_ref=ref,
                    process_type=process_type,
                )
            # the note stays for recovery: a Start that may still arrive is asked for
            # by ref, and a Finish the TSE signed after all is matched against the
            # sale it carries (recovery_books.py: the unsigned receipt gets it)
            outcome.keep_note = True
        if outcome.signed is not None:
            self._failed = None
            outcome.outage_ended = self.journal.record_success(at=self.clock()) is not None
            self._tse_serial = outcome.signed.serial_number
        return outcome

    def _check_size(self, process_type: str, process_data: str) -> None:
        """processData the TSE cannot take is the sale's error, refused before anything
        is booked or started (else it was an outage and the Start stayed open): the
        TSE's limit (tr03151.codec.MAX_PROCESS_DATA), lower for a backend whose
        requests carry it base64-encoded (``max_process_data``)."""
        # the texts were checked where taken; this holds for anything signed
        check_text(process_data, f"{process_type} processData")
        limit = int(getattr(self.backend, "max_process_data", MAX_PROCESS_DATA))
        size = len(process_data.encode("utf-8"))
        if size > limit:
            raise ProtocolError(
                f"the {process_type} processData is {size:,} bytes, more than the "
                f"{limit:,} the TSE signs: split it (e.g. the order into several)",
                code="E_PROCESS_DATA_TOO_LARGE",
            )

    def _booked(self, ref: str, outcome: _Outcome) -> None:
        """The sale is in the books (durably): its note goes, without waiting for the
        disk -- a note a power loss brings back is answered by recovery with the
        stored signature and finds the sale booked (recovery_journal.forget_start).
        If the signing ended an outage, the TSE is back: finish what it left open."""
        if not outcome.keep_note:
            self.journal.forget_start(ref, durable=False)
        if outcome.outage_ended:
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
        self._check_size(process_type, process_data)
        self._ensure_daily_record()
        ref = str(uuid.uuid4())
        started_at = self.clock()
        booked = sale  # as Books.record keeps it: an order without payments
        if process_type == pd.PROCESS_TYPE_BESTELLUNG:
            booked = Sale("AVBestellung", list(sale.lines), [])
        number = self._note(ref, process_type, process_data, started_at, booked, references)
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
        receipt = Receipt.from_sale(
            sale,
            seller=self.config.seller,
            register_serial=self.config.client_id,
            issued_at=ended_at,
            tse=None if outcome.signed is None else outcome.signed.to_tse_signature(),
            tse_serial=self._tse_serial,
            start_time=started_at,
            end_time=ended_at,
            first_order_start=first_order_start,
            not_certified=self.not_certified,
            qr_only=self.config.qr_only and outcome.signed is not None,
            receipt_number=number,
            footer=self.config.footer,
            zone=self.config.zone,
            refers_to=self._numbers(references),
        )
        result = SaleResult(
            receipt,
            outcome.signed,
            ref,
            self.journal.status(self.config.zone),
            outcome.error,
            self.config.text_width,
            self.config.zone,
            process_type,
            outcome.not_accepted,
        )
        if self.books is not None:
            self.books.record(sale, result, tse_id=self.backend.tse_id, references=references)
        self._booked(ref, outcome)
        return result

    def order_start_at_tse(self, transaction_number: int) -> datetime | None:
        """The TSE start of the order (Bestellung-V1) with TSE transaction number
        ``transaction_number``, signed at any till of this TSE: the bill of a table
        moved from another till prints it as TSE-Erstbestellung (that till's books
        have the order, this one's do not). None when the TSE cannot be asked now
        (the bill is not held up for it); E_POS_FIRST_ORDER when it is no finished
        order of this TSE."""
        if self._known_down() is not None:
            return None
        try:
            with self._attempts():
                found = self._call(lambda: self.backend.finished_transaction(transaction_number))
        except Exception:
            return None
        if found is None or found[0] != pd.PROCESS_TYPE_BESTELLUNG:
            what = "not finished or not known" if found is None else f"a {found[0]}"
            raise ProtocolError(
                f"TSE transaction {transaction_number} is {what} at TSE "
                f"{self.backend.tse_id}, not an order (Bestellung-V1): check the "
                "TSE-Transaktion printed on the first order",
                code="E_POS_FIRST_ORDER",
            )
        return found[1]

    def _numbers(self, references: Sequence[str]) -> tuple[str, ...]:
        """The receipt numbers of the BON_IDs ``references`` (the books have them all:
        sell checks), printed on the receipt that points at them."""
        if self.books is None:
            return ()
        booked = [self.books.booked(ref) for ref in references]
        return tuple(str(b.bon_nr) for b in booked if b is not None)

    def sell(
        self,
        sale: Sale,
        *,
        first_order_start: datetime | None = None,
        references: Sequence[str] = (),
    ) -> SaleResult:
        """Sign a sale (Beleg, training, storno, abort ...) as Kassenbeleg-V1.

        ``first_order_start``: start of the first Bestellung-V1 of this bill, printed as
        TSE-Erstbestellung (DSFinV-K 2.7 relief for restaurants), also on a bill the
        TSE did not sign (the orders were). ``references``: BON_IDs
        this Vorgang points at (a cancellation's original; DSFinV-K references.csv),
        booked in the same books transaction as the Vorgang itself; they must be in the
        books already (``E_BOOKS_REFERENCE`` before any TSE call).
        """
        if not (sale.bon_typ == "AVBelegstorno" and references):
            # E_TEXT_CONTROL: a control character never reaches the books. A storno of
            # a receipt in the books (it names it) repeats that receipt's texts, which
            # may be older than this check: the correction must stay possible.
            sale.check_texts()
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
        sale.check_texts()
        order = sale.as_order()  # raises for the cashier's errors, before any TSE call
        return self._book(order, pd.PROCESS_TYPE_BESTELLUNG, order.order_process_data())

    def book(
        self, entry: CashBookEntry, *, bon_id: uuid.UUID | None = None
    ) -> tuple[Signed | None, RegisterStatus]:
        """Sign a cash-book entry (SonstigerVorgang); never raises for TSE failures.
        ``bon_id``: the entry's BON_ID (default a new one), for a caller that looks
        it up in the books afterwards (its receipt number, to cancel it)."""
        data, sale = entry.process_data(), None if self.books is None else entry.as_sale()
        self._check_size(entry.process_type, data)
        self._ensure_daily_record()
        ref = str(bon_id or uuid.uuid4())
        started_at = self.clock()
        number = self._note(ref, entry.process_type, data, started_at, sale)
        outcome = self._sign(entry.process_type, data, ref)
        now = self.clock()
        if self.books is not None:
            assert sale is not None
            self.books.record_raw(
                sale,
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
        self._booked(ref, outcome)
        return outcome.signed, self.journal.status(self.config.zone)
