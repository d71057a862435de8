"""Transactions per serial: numbering, start/update/finish sequence, clients.

TR-03151 (digest "Counters and time"): the first transaction is 1, a failed start
still consumes its number (so a gap is suspicious, not proof); one transaction is
Start, any Updates, one Finish, all from the same client. A transaction may have
been started in an earlier export, so a missing Start is an error only when this
export starts at signature counter 1. The same log twice (byte for byte: overlapping
exports checked together) is one log (``W_LOG_REPEATED``), not a second Start.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from dataclasses import dataclass, field

from opentse.tr03151.fastdecode import TRANSACTION
from opentse.tr03151.logmessage import FINISH, START, UPDATE
from opentse.verify.archive import LoadedExport, LogEntry
from opentse.verify.counters import logs_by_serial
from opentse.verify.findings import Finding, error, span_text, warning


@dataclass(slots=True)
class TransactionRow:
    """One transaction as the HTML report lists it."""

    serial: str
    number: int
    client_id: str
    client_file: str
    start: LogEntry | None = None
    updates: list[LogEntry] = field(default_factory=list)
    finish: LogEntry | None = None
    process_type: str = ""

    @property
    def state(self) -> str:
        if self.finish is not None:
            return "finished" if self.start is not None else "finished (no start)"
        return "open" if self.start is not None else "updated (no start)"


@dataclass(slots=True)
class TransactionResult:
    started: int = 0
    finished: int = 0
    open: list[int] = field(default_factory=list)
    rows: list[TransactionRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


_KINDS = {START: "start", UPDATE: "update", FINISH: "finish"}  # the decoder's spellings


def _tx(row: TransactionRow) -> str:
    """A transaction as an auditor names it: number, register (client id) and TSE."""
    return f"transaction {row.number} (client {row.client_id!r}, TSE {row.serial[:16]}...)"


def operation_kind(operation: str) -> str:
    """start/update/finish for v2 (StartTransaction) and v3 (startTransaction) names
    (anything else for an unknown operation)."""
    return _KINDS.get(operation) or operation.lower().removesuffix("transaction")


def _counter_gaps(counters: list[int]) -> list[tuple[int, int]]:
    """The missing signature counter ranges of sorted ``counters`` (none: no look)."""
    if not counters or counters[-1] - counters[0] + 1 == len(counters):
        return []
    return [(a + 1, b - 1) for a, b in itertools.pairwise(counters) if b > a + 1]


def _start_elsewhere(
    gaps: list[tuple[int, int]], first: LogEntry | None, complete: bool = False
) -> str:
    """Where a transaction's missing Start may be: an earlier export (not for an
    export from counter 1), or -- when signature counters are missing before the
    transaction's first log -- the nearest such gap (E_COUNTER_GAP), where a deleted
    Start, or one in an export left out between those checked together, would be."""
    words = "" if complete else " (it may have started in an earlier export"
    index = -1
    if first is not None and first.fields is not None:
        # gaps are sorted and hold no present counter: those starting below it end
        # below it
        index = bisect.bisect_left(gaps, (first.fields.signature_counter, 0)) - 1
    if index < 0:
        return words + ")" if words else ""
    where = f"be among the missing signature counter(s) {span_text(*gaps[index])}"
    if complete:
        return f" (it may {where}: see E_COUNTER_GAP)"
    return f"{words}, or {where}: see E_COUNTER_GAP)"


def check_transactions(export: LoadedExport) -> TransactionResult:
    result = TransactionResult()
    for serial, entries in logs_by_serial(export).items():
        complete = (
            bool(entries)
            and entries[0].fields is not None
            and (entries[0].fields.signature_counter == 1)
        )
        rows: dict[int, TransactionRow] = {}
        # the same log twice can only be where a counter repeats (entries are sorted
        # by counter): without that, no copy is looked for among a row's updates
        counters = [e.fields.signature_counter for e in entries if e.fields is not None]
        repeats = any(map(operator.ge, counters, counters[1:]))
        # with repeats: each transaction's update logs seen, to find a copy in one look
        # (a look through the row's updates per update was quadratic: two copies of a
        # transaction with 20,000 updates took 11 s)
        updates_seen: dict[int, set[bytes]] = {}
        for entry in entries:
            data = entry.fields
            if data is None:
                continue
            # one unpacking instead of five attribute lookups: this runs once per log
            (
                log_kind,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                _,
                operation,
                client,
                _,
                process_type,
                number,
                _,
                _,
            ) = data
            if log_kind != TRANSACTION:
                continue
            kind = operation_kind(operation)
            if kind not in ("start", "update", "finish"):
                # no row for it: a transaction known only by such a log has no
                # Start, Update or Finish to list, and this finding says all there is
                result.findings.append(
                    error("E_TX_OPERATION", f"unknown operation {operation!r}", entry.file)
                )
                continue
            row = rows.get(number)
            if row is None:
                row = rows[number] = TransactionRow(serial, number, client, entry.file)
            if process_type:
                row.process_type = process_type
            if kind == "start":
                if row.start is not None and row.start.data == entry.data:
                    continue  # the same log twice (overlapping exports): W_LOG_REPEATED
                if row.start is not None:
                    result.findings.append(
                        error(
                            "E_TX_DUPLICATE",
                            f"{_tx(row)} started twice (also {row.start.file})",
                            entry.file,
                        )
                    )
                    continue
                row.start = entry
            elif kind == "update":
                if repeats:
                    seen = updates_seen.setdefault(number, set())
                    if entry.data in seen:
                        continue  # the same log twice: W_LOG_REPEATED, not a second update
                    seen.add(entry.data)
                if row.finish is not None:
                    result.findings.append(
                        error(
                            "E_TX_AFTER_FINISH",
                            f"update of finished {_tx(row)}",
                            entry.file,
                        )
                    )
                row.updates.append(entry)
            else:  # finish
                if row.finish is not None and row.finish.data == entry.data:
                    continue  # the same log twice (overlapping exports): W_LOG_REPEATED
                if row.finish is not None:
                    result.findings.append(
                        error(
                            "E_TX_DUPLICATE",
                            f"{_tx(row)} finished twice (also {row.finish.file})",
                            entry.file,
                        )
                    )
                    continue
                row.finish = entry
            if client != row.client_id:
                # certified TSEs accept it (fiskaly export 685e1812: table moved to
                # another till), so it is worth a warning, not an error
                result.findings.append(
                    warning(
                        "W_TX_CLIENT_MISMATCH",
                        f"transaction {row.number} (TSE {serial[:16]}...): client {client!r} "
                        "here but "
                        f"{row.client_id!r} in {row.client_file}",
                        entry.file,
                    )
                )
        numbers = sorted(rows)
        gaps = _counter_gaps(counters)
        for number in numbers:
            row = rows[number]
            result.rows.append(row)
            if row.start is not None:
                result.started += 1
            if row.finish is not None:
                result.finished += 1
            if row.start is None:
                first = row.updates[0] if row.updates else row.finish
                file = first.file  # type: ignore[union-attr]
                make = error if complete else warning
                result.findings.append(
                    make(
                        "E_TX_NO_START" if complete else "W_TX_NO_START",
                        f"{_tx(row)} has no Start log in this export"
                        + _start_elsewhere(gaps, first, complete),
                        file,
                    )
                )
            elif row.finish is None:
                result.open.append(number)
                result.findings.append(
                    warning(
                        "W_TX_OPEN",
                        f"{_tx(row)} is still open at the end of the export: a Start log "
                        "and no Finish log, so no receipt of it carries a TSE signature "
                        "(a sale interrupted that the register must finish or cancel, one "
                        "finished after the export was made, or its Finish log missing "
                        "from the export: E_COUNTER_GAP then shows where)",
                        row.start.file,
                    )
                )
        # no gap (the common case) needs no look at each pair
        gapless = not numbers or numbers[-1] - numbers[0] + 1 == len(numbers)
        for before, after in () if gapless else itertools.pairwise(numbers):
            if after > before + 1:
                result.findings.append(
                    warning(
                        "W_TX_GAP",
                        f"transaction number(s) {span_text(before + 1, after - 1)} of TSE "
                        f"{serial[:16]}... do not occur "
                        "(failed starts consume numbers; filtered exports skip them)",
                        (rows[after].start or rows[after].finish or rows[after].updates[0]).file,
                    )
                )
    return result
