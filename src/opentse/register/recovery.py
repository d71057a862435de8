"""Recovery of open transactions: what a register finishes as aborted on
(re)connect and after an outage.

Several tills may share one client id (fiskaly allows it, and the TSE cannot tell
them apart), so a register does not simply abort every open transaction of its
client: it claims what its journal says it started (a Start is noted before it is
sent and forgotten once its Finish is confirmed) and, of the rest, only what has
been open longer than ``RegisterConfig.abandoned_after``. Younger ones are another
till's receipts in progress; they are listed for the operator
(``OutageLog.foreign_open``). The rule is described in docs/register.md.

A Start note of a sale carries its books entry (pending_booking.py): when the TSE
answers the receipt's own finish ref with a stored Finish that the books lack (the
till died between the TSE's signature and the books' commit), recovery books it;
a receipt printed unsigned gets the Finish the TSE did sign, and every abort
recovery signs is booked as an AVBelegabbruch (recovery_books.py), so each TSE
transaction of the register is in the books once. The note goes only once that
is done, so a recovery that fails half-way is redone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from opentse.formats import processdata as pd
from opentse.register.backends import (
    Backend,
    OpenTransaction,
    Signed,
    TakenOver,
    TSEUnavailable,
)
from opentse.register.outage import OutageLog
from opentse.register.recovery_books import RecoveredTransaction, account
from opentse.register.recovery_journal import PendingStart
from opentse.register.text import plain

if TYPE_CHECKING:
    from opentse.register.books import Books
    from opentse.register.register import RegisterConfig

#: processType and processData that close a dangling transaction, whatever its Start
#: was: an aborted receipt (DSFinV-K BON_TYP AVBelegabbruch, zero amounts, no
#: payments), as fiskaly signs a CANCELLED transaction. An order or other process
#: finished with empty data instead could not be rebuilt from the DSFinV-K rows
#: that book the abort (a Bon needs a line), so an auditor's check would refuse it.
ABORT_PROCESS_TYPE = pd.PROCESS_TYPE_KASSENBELEG
ABORT_PROCESS_DATA = pd.ABORTED_RECEIPT


#: An open transaction of the client this register did not start counts as abandoned
#: once its Start is this old: longer than any table stays open, shorter than the
#: night between two business days, so the next morning's start clears yesterday.
DEFAULT_ABANDONED_AFTER = timedelta(hours=6)


class Recovery:
    """One recovery run of a register: its backend, configuration, journal, clock
    and ``call`` (runs a TSE call with the register's deadline)."""

    def __init__(
        self,
        backend: Backend,
        config: RegisterConfig,
        journal: OutageLog,
        clock: Callable[[], datetime],
        call: Callable[[Callable[[], Any]], Any],
        books: Books | None = None,
    ) -> None:
        self.backend = backend
        self.config = config
        self.journal = journal
        self.clock = clock
        self._call = call
        self.books = books

    def run(self) -> list[int]:
        """Finish as aborted what this register left open, and what nobody finished.

        Candidates (several tills may share one client id, so not simply every open
        transaction of the client):

        * the journal's own: Starts it sent whose Finish was never confirmed (the
          TSE is asked by the Start's ref which transaction each began) and dangling
          transactions it recorded;
        * open transactions of the client whose Start is older than
          ``config.abandoned_after``: no live till holds a receipt open that long.

        Younger open transactions it did not start are another till's work in
        progress: left alone and listed in ``journal.foreign_open()``. A journal
        entry carries its receipt ref, so the Finish reuses that receipt's own
        finish ref: if the original Finish did reach the TSE, the TSE answers with
        the stored signature instead of signing again (the journal then says so),
        and a remote service finds the transaction by its id even if it lost its
        index. Returns the numbers finished; failures stay for the next reconnect.
        """
        client, tse_id = self.config.client_id, self.backend.tse_id
        try:
            listed = self._call(lambda: self.backend.open_transactions(client))
        except Exception:
            return []
        now = self.clock()
        known = {
            d.transaction_number: d
            for d in self.journal.dangling()
            if d.tse_id == tse_id and d.client_id == client and d.resolved_at is None
        }
        candidates: dict[int, tuple[str, str]] = {
            n: (d.process_type, d.receipt_ref) for n, d in known.items()
        }
        claimed = self._claim_pending_starts(now)
        for number, pending in claimed.items():
            candidates.setdefault(number, (pending.process_type, pending.receipt_ref))
        foreign: list[OpenTransaction] = []
        for tx in listed:
            if tx.transaction_number in candidates:
                ref = candidates[tx.transaction_number][1]
            elif self._abandoned(tx, now):
                ref = ""
            else:
                foreign.append(tx)
                continue
            candidates[tx.transaction_number] = (tx.process_type, ref)
        self.journal.note_foreign_open(
            tse_id=tse_id,
            client_id=client,
            transactions=[(t.transaction_number, t.process_type, t.start_time) for t in foreign],
            at=now,
        )
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
            ref = f"{receipt_ref}:finish" if receipt_ref else f"recover:{client}:{number}"
            try:
                if number not in open_numbers:  # not held by this client (any more)
                    self._left_to_holder(number, receipt_ref)
                signed = self._call(
                    functools.partial(
                        self._finish_open, number, ABORT_PROCESS_TYPE, ABORT_PROCESS_DATA, ref
                    )
                )
            except TakenOver as exc:
                # another till took it over (a table moved to it): its receipt now, so
                # not aborted here, and not booked by this register
                self._resolve(number, f"taken over by till {exc.holder}: left to it")
                self._forget(claimed.get(number))
                continue
            except Exception as exc:
                if number not in open_numbers and is_not_found(exc):
                    self._resolve(number, f"not open at the TSE ({journal_reason(exc)})")
                    self._forget(claimed.get(number))
                continue
            abort = (ABORT_PROCESS_TYPE, ABORT_PROCESS_DATA)
            aborted = (signed.process_type, signed.process_data) == abort
            try:
                booked = self._book(receipt_ref, claimed.get(number), signed, aborted)
            except Exception:
                continue  # note and dangling record stay: tried again next time
            how = "finished as aborted" if aborted else "had been signed by its own Finish"
            self._resolve(number, f"{how} ({ptype}){booked}")
            # the dangling record carries the ref (and the books the sale): the note goes
            self._forget(claimed.get(number))
            finished.append(number)
        return finished

    def _book(
        self,
        receipt_ref: str,
        pending: PendingStart | None,
        signed: Signed,
        aborted: bool,
    ) -> str:
        """Account for a transaction just finished in the books (recovery_books.py:
        the sale's own Finish, a late signature, or recovery's abort); what to add
        to the journal's resolution."""
        if self.books is None:
            return ""
        tx = RecoveredTransaction(self.backend.tse_id, receipt_ref, pending, signed, aborted)
        return account(self.books, self.journal, tx)

    def _forget(self, pending: PendingStart | None) -> None:
        if pending is not None:
            self.journal.forget_start(pending.receipt_ref)

    def _claim_pending_starts(self, now: datetime) -> dict[int, PendingStart]:
        """Ask the TSE which transaction each unconfirmed Start of this register began:
        number -> its note. A Start the TSE never saw may still be
        on its way (a timed-out call), so it is kept until ``abandoned_after``."""
        client, tse_id = self.config.client_id, self.backend.tse_id
        claimed: dict[int, PendingStart] = {}
        for pending in self.journal.pending_starts():
            if pending.tse_id != tse_id or pending.client_id != client:
                continue
            ref = pending.receipt_ref
            try:
                number = self._call(
                    functools.partial(self.backend.started_number, client, f"{ref}:start")
                )
            except Exception:
                continue  # asked again at the next recovery
            if number is not None:
                claimed[number] = pending
            elif now - pending.sent_at >= self.config.abandoned_after:
                self.journal.forget_start(ref)  # the Start never reached the TSE
        return claimed

    def _left_to_holder(self, number: int, receipt_ref: str) -> None:
        """Raise :class:`TakenOver` when another till holds transaction ``number`` now
        (it signed it last): the engine and fiskaly let any registered client finish
        it, so an abort signed here would close that till's table under it."""
        holder = self._call(
            functools.partial(self.backend.holder, self.config.client_id, number, receipt_ref)
        )
        if holder is not None:
            raise TakenOver(number, holder)

    def _abandoned(self, tx: OpenTransaction, now: datetime) -> bool:
        """Another till's open transaction counts as abandoned once its last signing
        (its Start, or the update that moved it to this client) is
        ``abandoned_after`` old; one whose start time the TSE does not report never
        does (left to its till, listed for the operator)."""
        if tx.start_time is None:
            return False
        last = max(tx.start_time, tx.last_signed or tx.start_time)
        return now - last >= self.config.abandoned_after

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


def is_not_found(exc: BaseException) -> bool:
    """The TSE says the transaction is not open (unknown, or closed already)."""
    code = str(getattr(exc, "code", ""))
    return code in ("E_TX_NOT_FOUND", "E_TX_UPSERT", "E_TX_REVISION_NOT_FOUND")


def journal_reason(exc: BaseException) -> str:
    """A short reason for the journal: the error code if ours, else the type and text.
    Plain text (text.plain): it is kept in the books as the export's TSE_TA_FEHLER, and
    a remote service's message may hold anything."""
    code = getattr(exc, "code", None)
    text = plain(str(exc)) or type(exc).__name__
    if isinstance(exc, TSEUnavailable) or isinstance(code, str):
        return text
    return f"{type(exc).__name__}: {text}"
