"""exportData (TR-03151 1.0.1 SE API) on top of ``TSEStore.iter_logs``: selection
semantics here, TAR layout in ``formats.tar``, memory independent of the export size.

Selection (digest tr03151.md, "Filtered export"):
- no filter: every log; ``client_id`` alone: that client's transaction logs;
- a transaction number or a start/end number range: the transactions' logs (of the
  client, if given) plus every system and audit log whose signature counter lies
  between the first Start and the last log of the selected transactions. For one
  transaction this is exactly "between its Start and Finish"; for a range we take
  the span from the first Start to the last log of the range (documented choice);
- date range (inclusive) and signature-counter range: plain bounds, AND-ed;
- number and date filters together: ErrorParameterMismatch (``E_PARAMETER_MISMATCH``);
- more records than ``maximum_number_records``: ErrorTooManyRecords
  (``E_TOO_MANY_RECORDS``), counted before anything is written.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from opentse.engine.ports import LogFilter, StoredLog, TSERecord, TSEStore
from opentse.engine.results import ExportSummary
from opentse.errors import ProtocolError
from opentse.formats import tar
from opentse.tr03151.oids import LogType

MAX_RECORDS = 1_000_000


def _mismatch(message: str) -> ProtocolError:
    return ProtocolError(message, code="E_PARAMETER_MISMATCH", se_error="ErrorParameterMismatch")


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """The exportData parameters (fiskaly export query names)."""

    client_id: str | None = None
    transaction_number: int | None = None
    start_transaction_number: int | None = None
    end_transaction_number: int | None = None
    start_date: int | None = None  # unix seconds, inclusive
    end_date: int | None = None
    start_signature_counter: int | None = None
    end_signature_counter: int | None = None
    maximum_number_records: int = MAX_RECORDS

    def tx_range(self) -> tuple[int, int] | None:
        if self.transaction_number is not None:
            return self.transaction_number, self.transaction_number
        if self.start_transaction_number is None and self.end_transaction_number is None:
            return None
        return self.start_transaction_number or 1, self.end_transaction_number or (1 << 62)

    def describe(self) -> str:
        """PrintableString summary for the exportData log, e.g. ``transactionNumber=5-9``."""
        parts = []
        numbers = self.tx_range()
        if numbers is not None:
            parts.append(f"transactionNumber={numbers[0]}-{numbers[1]}")
        if self.client_id is not None:
            parts.append(f"clientId={self.client_id}")
        if self.start_date is not None or self.end_date is not None:
            parts.append(f"date={self.start_date or ''}-{self.end_date or ''}")
        if self.start_signature_counter is not None or self.end_signature_counter is not None:
            parts.append(
                f"signatureCounter={self.start_signature_counter or ''}-"
                f"{self.end_signature_counter or ''}"
            )
        return " ".join(parts)

    def is_unfiltered(self) -> bool:
        return (
            self.client_id is None
            and self.tx_range() is None
            and self.start_date is None
            and self.end_date is None
            and self.start_signature_counter is None
            and self.end_signature_counter is None
        )

    def validate(self) -> None:
        if self.transaction_number is not None and (
            self.start_transaction_number is not None or self.end_transaction_number is not None
        ):
            raise _mismatch("give a transaction number or a number range, not both")
        if self.tx_range() is not None and (
            self.start_date is not None or self.end_date is not None
        ):
            raise _mismatch("transaction number and date filters cannot be combined")
        for lo, hi, what in (
            (self.start_transaction_number, self.end_transaction_number, "transaction number"),
            (self.start_date, self.end_date, "date"),
            (self.start_signature_counter, self.end_signature_counter, "signature counter"),
        ):
            if lo is not None and hi is not None and lo > hi:
                raise _mismatch(f"{what} range starts after it ends")
        for value in (
            self.transaction_number,
            self.start_transaction_number,
            self.end_transaction_number,
            self.start_signature_counter,
            self.end_signature_counter,
        ):
            if value is not None and value < 0:
                raise _mismatch("numbers and counters must not be negative")
        if not (1 <= self.maximum_number_records <= MAX_RECORDS):
            raise ProtocolError(
                f"maximum_number_records must be 1 to {MAX_RECORDS}", code="E_PARAMETER_MISMATCH"
            )


@dataclass(frozen=True, slots=True)
class Selection:
    """A planned export: ``count`` records, produced in counter order by ``logs()``."""

    count: int
    logs: Callable[[], Iterator[StoredLog]]


def _clip(lo: int | None, hi: int | None, span: tuple[int, int]) -> tuple[int, int]:
    return max(lo or 0, span[0]), min(hi if hi is not None else span[1], span[1])


def plan(store: TSEStore, tse_id: str, flt: ExportFilter) -> Selection:
    """Decide what an export contains and count it, without holding it in memory."""
    flt.validate()
    # Logs are append-only and numbered: bounding every query by the counter at the
    # start makes count and stream agree while signing goes on (a snapshot).
    upper = store.get_state(tse_id).signature_counter
    end_counter = (
        upper if flt.end_signature_counter is None else min(upper, flt.end_signature_counter)
    )
    numbers = flt.tx_range()
    if numbers is None:
        base = LogFilter(
            client_id=flt.client_id,
            start_time=flt.start_date,
            end_time=flt.end_date,
            start_signature_counter=flt.start_signature_counter,
            end_signature_counter=end_counter,
        )
        return Selection(store.count_logs(tse_id, base), lambda: store.iter_logs(tse_id, base))
    tx_filter = LogFilter(
        client_id=flt.client_id,
        start_transaction_number=numbers[0],
        end_transaction_number=numbers[1],
        start_signature_counter=flt.start_signature_counter,
        end_signature_counter=end_counter,
        log_types=(LogType.TRANSACTION,),
    )
    tx_count = 0
    lo = hi = 0
    for log in store.iter_logs(tse_id, tx_filter):  # one streaming pass for the span
        if tx_count == 0:
            lo = log.signature_counter
        hi = log.signature_counter
        tx_count += 1
    if tx_count == 0:
        return Selection(0, lambda: iter(()))
    slo, shi = _clip(flt.start_signature_counter, end_counter, (lo, hi))
    sys_filter = LogFilter(
        start_signature_counter=slo,
        end_signature_counter=shi,
        log_types=(LogType.SYSTEM, LogType.AUDIT),
    )
    sys_count = store.count_logs(tse_id, sys_filter) if slo <= shi else 0

    def logs() -> Iterator[StoredLog]:
        parts = [store.iter_logs(tse_id, tx_filter)]
        if sys_count:
            parts.append(store.iter_logs(tse_id, sys_filter))
        return heapq.merge(*parts, key=lambda log: log.signature_counter)

    return Selection(tx_count + sys_count, logs)


class _Counting:
    """Counts the bytes written through to the caller's file object."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.written = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def write_export(
    store: TSEStore,
    record: TSERecord,
    out: IO[bytes],
    flt: ExportFilter,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Write the TAR: info.csv, the certificate chain, then the selected logs."""
    selection = plan(store, record.tse_id, flt)
    if selection.count > flt.maximum_number_records:
        raise ProtocolError(
            f"the selection has {selection.count} records, more than the maximum "
            f"{flt.maximum_number_records}",
            code="E_TOO_MANY_RECORDS",
            se_error="ErrorTooManyRecords",
        )
    counting = _Counting(out)
    writer = tar.TarWriter(counting)  # type: ignore[arg-type]
    mtime = record.created_at
    writer.add(
        "info.csv",
        tar.tse_info_csv(
            record.tse_id, record.serial_number, store.get_state(record.tse_id).description
        ),
        mtime,
    )
    cert_names: list[str] = []
    for cert in record.certificate_chain:
        name = tar.certificate_filename(cert)
        if name in cert_names:
            continue
        cert_names.append(name)
        writer.add(name, cert, mtime)
    done = 0
    first: int | None = None
    last: int | None = None
    if progress is not None:
        progress(0, selection.count)
    for log in selection.logs():
        writer.add(log.filename, log.message, log.log_time)
        done += 1
        if first is None:
            first = log.signature_counter
        last = log.signature_counter
        if progress is not None and (done % 1000 == 0 or done == selection.count):
            progress(done, selection.count)
    writer.close()
    return ExportSummary(
        tse_id=record.tse_id,
        records=done,
        first_signature_counter=first,
        last_signature_counter=last,
        bytes_written=counting.written,
        certificate_files=tuple(cert_names),
    )
