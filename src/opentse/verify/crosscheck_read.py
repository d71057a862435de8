"""The two readers of the DSFinV-K cross-check (``verify.crosscheck``): the TAR's
transactions, streamed, and the Bons' TSE data of a DSFinV-K export.

The TAR of any vendor is read as ``opentse verify`` reads it (``archive.member_batches``:
windows by the scan, else ``tarfile`` as a stream) and each log decoded by the
verifier's decoder; what is kept is one :class:`~opentse.verify.crosscheck.TseTransaction`
per transaction (processData as its SHA-256), never the logs. The DSFinV-K export
(folder or ZIP) is read with the export checker's readers; rows it would reject are
taken as far as they can be read, the checker reports them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import math
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.check import Finding, _lenient_records, _Source
from opentse.formats.dsfinvk.csvwriter import parse_timestamp, read_records
from opentse.formats.tar import parse_log_filename
from opentse.tr03151.fastdecode import TRANSACTION
from opentse.verify.archive import member_batches
from opentse.verify.crosscheck import (
    BON_UNREADABLE,
    TSE_FILE,
    BonTse,
    CrossCheckResult,
    DsfinvkSide,
    TseTransaction,
    cross_check,
)
from opentse.verify.logshape import decode
from opentse.verify.receipt import qr_rebuilds
from opentse.verify.transactions import operation_kind

Row = dict[str, str]
ClosingKey = tuple[str, str, str]


# --- the TAR side -----------------------------------------------------------------------


def read_tar_transactions(
    path: Path | Sequence[Path],
    progress: Callable[[int], None] | None = None,
    damaged: dict[int | None, set[str]] | None = None,
) -> list[TseTransaction]:
    """The transactions of TR-03151 TAR exports of any vendor, streamed: one record
    per transaction, logs decoded by the verifier's decoder (logs it cannot decode
    are skipped: ``opentse verify`` reports them). Several archives (incremental
    exports) are read as one: a transaction started in one and finished in the next
    is one record. ``damaged``, when given, collects the names of log files that
    cannot be decoded, by the transaction number in the name (None for others): a
    finding about a missing log names them. Raises UnreadableExportError
    (``E_EXPORT_UNREADABLE`` / ``E_EXPORT_READ``) when an archive cannot be read."""
    txs: dict[tuple[str, int], TseTransaction] = {}
    serials: dict[bytes, str] = {}  # one hex string per TSE, shared by its records
    paths = [path] if isinstance(path, Path) else list(path)
    batches = ((p, batch) for p in paths for batch in member_batches(p))
    for archive, batch in batches:
        logs = 0
        for _label, name, data in batch:
            if not name.lower().endswith(".log"):
                continue
            logs += 1
            try:
                fields = decode(data)
            except FormatError:
                if damaged is not None:
                    parsed = parse_log_filename(name)
                    number = parsed.transaction_number if parsed is not None else None
                    where = f"{archive.name}:{name}" if len(paths) > 1 else name
                    damaged.setdefault(number, set()).add(where)
                continue
            if fields.kind != TRANSACTION:
                continue
            serial = serials.get(fields.serial_number)
            if serial is None:
                serial = serials[fields.serial_number] = fields.serial_number.hex()
            key = (serial, fields.transaction_number)
            tx = txs.get(key)
            if tx is None:
                tx = txs[key] = TseTransaction(serial, fields.transaction_number, fields.client_id)
            unix = fields.unix
            if tx.first_time is None or unix < tx.first_time:
                tx.first_time = unix
            kind = operation_kind(fields.operation_type)
            if kind == "start":
                tx.start = unix
                if tx.end is None:  # a till that took it over finished it (any TAR order)
                    tx.client_id = fields.client_id
                tx.process_type = tx.process_type or fields.process_type
            elif kind == "finish":
                tx.end = unix
                tx.counter = fields.signature_counter
                tx.signature = fields.signature_value
                tx.process_type = fields.process_type
                tx.client_id = fields.client_id
                tx.process_hash = hashlib.sha256(fields.process_data).digest()
                tx.finish_log = None if qr_rebuilds(fields) else data
        if progress is not None and logs:
            progress(logs)
    return list(txs.values())


# --- the DSFinV-K side ------------------------------------------------------------------


def _table(source: _Source, name: str, side: DsfinvkSide) -> list[tuple[int, Row]]:
    """The rows of one CSV file by its header (empty, with a finding, when missing)."""
    try:
        data = source.read(name)
        if data is None:
            side.findings.append(Finding(BON_UNREADABLE, name, "missing: not cross-checked"))
            return []
        records = list(read_records(data, name))
    except FormatError as exc:
        # LF line ends or a byte order mark: the check reports them (E_CSV_DIALECT)
        # and reads on; so does the cross-check
        lenient = None
        if exc.code == "E_CSV_DIALECT" and data is not None:
            lenient = _lenient_records(data, name)
        if lenient is None:
            side.findings.append(Finding(BON_UNREADABLE, name, f"unreadable: {exc.message}"))
            return []
        records = lenient
    if not records:
        return []
    header = _official_names(name, records[0][1])
    return [
        (line, dict(zip(header, fields, strict=True)))
        for line, fields in records[1:]
        if len(fields) == len(header)
    ]


def _official_names(file: str, header: list[str]) -> list[str]:
    """The names the rows are read by: DSFinV-K's columns of ``file`` when the header
    row has their number but other words (the data is read from line 2 in the
    declared order, as the export check and an auditor's tool read it; the check
    reports the header, E_CSV_HEADER), else the header's own."""
    table = T.TABLE_BY_FILE.get(file)
    if table is None:
        return header
    if file == T.TSE.file and len(header) > len(T.TSE.columns):
        try:
            table = T.tse_table(2 + len(header) - len(T.TSE.columns))
        except ValueError:
            return header
    names = list(table.column_names)
    return names if len(names) == len(header) else header


def _closing(row: Row) -> ClosingKey:
    return (row.get("Z_KASSE_ID", ""), row.get("Z_ERSTELLUNG", ""), row.get("Z_NR", ""))


def _unix(text: str) -> int | None:
    """An ISO 8601 time stamp of the CSV as Unix seconds (None when empty/unreadable:
    the export check reports those)."""
    if not text:
        return None
    try:
        return math.floor(parse_timestamp(text).timestamp())
    except FormatError:
        return None


def _earliest(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def read_dsfinvk(path: Path) -> DsfinvkSide:
    """The Bons' TSE data, client ids, TSE serials and window of a DSFinV-K export
    (folder or ZIP), read with the export checker's readers. Rows the checker
    would reject are taken as far as they can be read: it reports them."""
    side = DsfinvkSide()
    try:
        source = _Source(Path(path))
    except (OSError, zipfile.BadZipFile) as exc:
        side.findings.append(Finding(BON_UNREADABLE, str(path), f"cannot be read: {exc}"))
        return side
    try:
        _read_side(source, side)
    finally:
        source.close()
    return side


def _read_side(source: _Source, side: DsfinvkSide) -> None:
    registers: dict[ClosingKey, str] = {}
    members: dict[ClosingKey, set[str]] = {}  # each closing's client ids
    for _line, row in _table(source, "cashregister.csv", side):
        registers[_closing(row)] = row.get("KASSE_SERIENNR", "")
        members.setdefault(_closing(row), set()).add(registers[_closing(row)])
    terminals: dict[tuple[str, str, str, str], str] = {}
    for _line, row in _table(source, "slaves.csv", side):
        terminals[(*_closing(row), row.get("TERMINAL_ID", ""))] = row.get("TERMINAL_SERIENNR", "")
        members.setdefault(_closing(row), set()).add(row.get("TERMINAL_SERIENNR", ""))
    begun: dict[ClosingKey, int | None] = {}  # each closing's earliest Bon start
    created: dict[ClosingKey, int | None] = {}
    side.clients = {c for c in (*registers.values(), *terminals.values()) if c}
    tses: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    for _line, row in _table(source, "tse.csv", side):
        serial = row.get("TSE_SERIAL", "").lower()
        tses[(*_closing(row), row.get("TSE_ID", ""))] = (serial, row.get("TSE_PD_ENCODING", ""))
        if serial:
            side.serials.add(serial)
    for _line, row in _table(source, "cashpointclosing.csv", side):
        when = created[_closing(row)] = _unix(row.get("Z_ERSTELLUNG", ""))
        if when is not None and (side.last is None or when > side.last):
            side.last = when
    receipts: dict[tuple[str, ...], Row] = {}
    for _line, row in _table(source, "transactions.csv", side):
        receipts[(*_closing(row), row.get("BON_ID", ""))] = row
        start = _unix(row.get("BON_START", ""))
        side.first = _earliest(side.first, start)
        begun[_closing(row)] = _earliest(begun.get(_closing(row)), start)
    for line, row in _table(source, TSE_FILE, side):
        start = _unix(row.get("TSE_TA_START", ""))
        side.first = _earliest(side.first, start)
        begun[_closing(row)] = _earliest(begun.get(_closing(row)), start)
        bon = _bon(line, row, registers, terminals, tses, receipts, side)
        if bon is not None:
            side.bons.append(bon)
    _windows(side, members, begun, created)
    _skipped(side, members, begun, created)


def _skipped(
    side: DsfinvkSide,
    members: dict[ClosingKey, set[str]],
    begun: dict[ClosingKey, int | None],
    created: dict[ClosingKey, int | None],
) -> None:
    """Each client id's periods of closings left out: between two exported closings
    of a register whose Z_NR are not consecutive, from the earlier's Z_ERSTELLUNG to
    the later's earliest Bon start."""
    by_register: dict[str, list[tuple[int, ClosingKey]]] = defaultdict(list)
    for closing in members:
        text = closing[2]
        if text.isascii() and text.isdigit() and len(text) <= 18:
            by_register[closing[0]].append((int(text), closing))
    for closings in by_register.values():
        closings.sort()
        for (low, before), (high, after) in itertools.pairwise(closings):
            start, end = created.get(before), begun.get(after)
            if high == low + 1 or start is None or end is None or end < start:
                continue
            for client in (members[before] | members[after]) - {""}:
                side.skipped.setdefault(client, []).append((start, end))


def _windows(
    side: DsfinvkSide,
    members: dict[ClosingKey, set[str]],
    begun: dict[ClosingKey, int | None],
    created: dict[ClosingKey, int | None],
) -> None:
    """Each client id's window: from the earliest Bon start of its closings to the
    latest of their Z_ERSTELLUNG (registers close at different times). A closing
    without a Bon starts where the export's earliest Bon does."""
    for closing, clients in members.items():
        first, last = begun.get(closing), created.get(closing)
        first = side.first if first is None else first
        for client in clients - {""}:
            was_first, was_last = side.windows.get(client, (None, None))
            side.windows[client] = (
                _earliest(was_first, first),
                last if was_last is None or (last is not None and last > was_last) else was_last,
            )


def _bon(
    line: int,
    row: Row,
    registers: dict[ClosingKey, str],
    terminals: dict[tuple[str, str, str, str], str],
    tses: dict[tuple[str, str, str, str], tuple[str, str]],
    receipts: dict[tuple[str, ...], Row],
    side: DsfinvkSide,
) -> BonTse | None:
    """One row's TSE data; None for a Bon without a TSE transaction (TSE failure)."""
    number_text = row.get("TSE_TANR", "")
    if not number_text:
        return None
    bon_id = row.get("BON_ID", "")
    closing = _closing(row)
    serial, encoding = tses.get((*closing, row.get("TSE_ID", "")), ("", ""))
    clients: list[str] = []
    receipt = receipts.get((*closing, bon_id))
    if receipt is not None and receipt.get("TERMINAL_ID"):
        terminal = terminals.get((*closing, receipt["TERMINAL_ID"]))
        if terminal:
            clients.append(terminal)
    if registers.get(closing):
        clients.append(registers[closing])
    label = _label(bon_id, closing, receipt)
    column, why = "TSE_TANR", "is not a whole number"
    try:
        number = int(number_text)
        column = "TSE_TA_SIGZ"
        counter = int(row["TSE_TA_SIGZ"]) if row.get("TSE_TA_SIGZ") else None
        column, why = "TSE_TA_SIG", "is not base64"
        signature = (
            base64.b64decode(row["TSE_TA_SIG"], validate=True) if row.get("TSE_TA_SIG") else None
        )
        column, why = "TSE_VORGANGSDATEN", f"is not {encoding or 'UTF-8'} (tse.csv TSE_PD_ENCODING)"
        written = row.get("TSE_VORGANGSDATEN", "")
        data = written.encode("ascii" if encoding == "ASCII" else "utf-8") if written else None
    except (ValueError, binascii.Error, UnicodeEncodeError):
        # which field and why, in the auditor's words (not Python's int() message)
        value = row.get(column, "")
        shown = repr(value if len(value) <= 40 else value[:40] + "...")
        side.findings.append(
            Finding(
                BON_UNREADABLE,
                TSE_FILE,
                f"{label}: {column} {shown} {why}: this Bon is not cross-checked",
                line,
                column,
            )
        )
        return None
    return BonTse(
        bon_id=bon_id,
        line=line,
        serial=serial,
        number=number,
        clients=tuple(clients),
        start=_unix(row.get("TSE_TA_START", "")),
        end=_unix(row.get("TSE_TA_ENDE", "")),
        counter=counter,
        signature=signature,
        process_type=row.get("TSE_TA_VORGANGSART", ""),
        process_hash=None if data is None else hashlib.sha256(data).digest(),
        label=label,
    )


def _label(bon_id: str, closing: ClosingKey, receipt: Row | None) -> str:
    """A Bon as the export check names it: number, BON_ID, register and closing."""
    number = receipt.get("BON_NR", "") if receipt is not None else ""
    return (
        f"Bon {number + ' ' if number else ''}(BON_ID {bon_id}, register {closing[0]}, "
        f"Z_NR {closing[2]})"
    )


def cross_check_files(
    dsfinvk: Path, tar: Path | Sequence[Path], progress: Callable[[int], None] | None = None
) -> CrossCheckResult:
    """Read both exports and cross-check them (the CLI's entry point); ``tar`` may
    be several TARs of the TSE(s), read as one."""
    side = read_dsfinvk(dsfinvk)
    tars = [tar] if isinstance(tar, Path) else list(tar)
    damaged: dict[int | None, set[str]] = {}
    transactions = read_tar_transactions(tars, progress, damaged)
    label = " + ".join(t.name for t in tars)
    return cross_check(transactions, side, label, len(tars), damaged)
