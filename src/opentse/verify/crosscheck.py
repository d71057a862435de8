"""Cross-check a TSE's TAR export against a register's DSFinV-K export, as an
auditor does (Kassen-Nachschau, Außenprüfung): every TSE transaction of the
export's registers must be a Bon in ``transactions_tse.csv``, and every Bon's TSE
data must be a transaction of the TAR with the same signature, counter, times and
processData.

Matching (receipts-dsfinvk.md, "TSE data"; DSFinV-K Anhang I): a Bon names its TSE
by ``TSE_ID``, whose ``tse.csv`` row gives ``TSE_SERIAL`` = hex SHA-256 of the
public key = the logs' ``serialNumber``; the transaction is (serial, ``TSE_TANR``).
The TSE's client id is the register's ``KASSE_SERIENNR`` (cashregister.csv) or a
terminal's ``TERMINAL_SERIENNR`` (slaves.csv), the ids ``check.py`` verifies the
signatures with. The values compared are those of the Finish log (signature,
counter, logTime, processData) and the Start log's time.

Scope: only TAR transactions of a TSE named in tse.csv, of one of the export's
client ids, started inside the export's window (from the earliest Bon start to the
last closing's ``Z_ERSTELLUNG``) are expected in the DSFinV-K export; anything else
in the TAR belongs to other registers or other closings and is no finding.
Signatures of the logs themselves are not checked here: ``opentse verify`` does.

``cross_check`` is pure (records in, findings out); ``read_tar_transactions`` and
``read_dsfinvk`` are the two readers around it. The TAR reader streams: memory is one
small :class:`TseTransaction` per transaction (processData kept as its SHA-256).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opentse.errors import FormatError
from opentse.formats.dsfinvk.check import Finding, _Source
from opentse.formats.dsfinvk.csvwriter import parse_timestamp, read_records
from opentse.tr03151.fastdecode import TRANSACTION
from opentse.verify.archive import member_batches
from opentse.verify.logshape import decode

Row = dict[str, str]
ClosingKey = tuple[str, str, str]

NOT_IN_DSFINVK = "E_XC_TSE_NOT_IN_DSFINVK"
NOT_IN_TAR = "E_XC_BON_NOT_IN_TSE"
NOT_FINISHED = "E_XC_TSE_NOT_FINISHED"
TWICE = "E_XC_TSE_TX_TWICE"
SIGNATURE = "E_XC_SIGNATURE_DIFFERS"
COUNTER = "E_XC_COUNTER_DIFFERS"
START = "E_XC_START_DIFFERS"
END = "E_XC_END_DIFFERS"
PROCESS_DATA = "E_XC_PROCESSDATA_DIFFERS"
PROCESS_TYPE = "E_XC_PROCESSTYPE_DIFFERS"
CLIENT = "E_XC_CLIENT_DIFFERS"
BON_UNREADABLE = "E_XC_BON_TSE_UNREADABLE"
TSE_ABSENT = "W_XC_TSE_NOT_IN_TAR"
OPEN = "W_XC_TSE_OPEN"
TAR_SHORT = "W_XC_TAR_RANGE"

TSE_FILE = "transactions_tse.csv"


@dataclass(slots=True)
class TseTransaction:
    """One transaction of the TAR, small: times in Unix seconds, processData hashed."""

    serial: str  # hex, lower case
    number: int
    client_id: str = ""
    start: int | None = None  # the Start log's time
    end: int | None = None  # the Finish log's time
    counter: int | None = None  # the Finish log's signature counter
    signature: bytes | None = None  # the Finish log's signature
    process_type: str = ""
    process_hash: bytes | None = None  # SHA-256 of the Finish log's processData
    first_time: int | None = None  # earliest log time (a Start may be in an older export)


@dataclass(frozen=True, slots=True)
class BonTse:
    """One Bon's TSE data (a ``transactions_tse.csv`` row with a TSE_TANR)."""

    bon_id: str
    line: int
    serial: str  # from tse.csv via TSE_ID; "" when tse.csv has no such TSE
    number: int
    clients: tuple[str, ...]
    start: int | None
    end: int | None
    counter: int | None
    signature: bytes | None
    process_type: str
    process_hash: bytes | None  # None when TSE_VORGANGSDATEN is empty


@dataclass(slots=True)
class DsfinvkSide:
    """What the cross-check needs of a DSFinV-K export."""

    bons: list[BonTse] = field(default_factory=list)
    clients: set[str] = field(default_factory=set)
    serials: set[str] = field(default_factory=set)
    first: int | None = None  # window: earliest Bon start ..
    last: int | None = None  # .. last closing's Z_ERSTELLUNG
    findings: list[Finding] = field(default_factory=list)  # rows that cannot be read


@dataclass(slots=True)
class CrossCheckResult:
    findings: list[Finding]
    summary: dict[str, object]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


# --- the matcher (pure) ----------------------------------------------------------------


def _when(unix: int | None) -> str:
    return "?" if unix is None else datetime.fromtimestamp(unix, UTC).isoformat()


def _in_window(tx: TseTransaction, side: DsfinvkSide) -> bool:
    when = tx.start if tx.start is not None else tx.first_time
    if when is None or side.first is None or side.last is None:
        return False
    return side.first <= when <= side.last


def cross_check(
    transactions: Iterable[TseTransaction], side: DsfinvkSide, tar: str = "TAR"
) -> CrossCheckResult:
    """Findings of comparing the TAR's transactions with the Bons' TSE data."""
    findings = list(side.findings)
    by_key: dict[tuple[str, int], TseTransaction] = {}
    tar_serials: set[str] = set()
    tar_first: int | None = None
    tar_last: int | None = None
    for tx in transactions:
        by_key[tx.serial, tx.number] = tx
        tar_serials.add(tx.serial)
        for t in (tx.first_time, tx.end):
            if t is not None:
                tar_first = t if tar_first is None or t < tar_first else tar_first
                tar_last = t if tar_last is None or t > tar_last else tar_last
    bons_of: dict[tuple[str, int], list[BonTse]] = defaultdict(list)
    unchecked: dict[str, int] = defaultdict(int)
    for bon in side.bons:
        if bon.serial not in tar_serials:
            unchecked[bon.serial] += 1
            continue
        bons_of[bon.serial, bon.number].append(bon)
    for serial, count in sorted(unchecked.items()):
        findings.append(
            Finding(
                TSE_ABSENT,
                TSE_FILE,
                f"TSE {serial or '(unknown TSE_ID)'} has no transaction in {tar}: "
                f"{count} Bon(s) not compared",
                severity="warning",
            )
        )
    missing: list[BonTse] = []
    for key, bons in bons_of.items():
        found = by_key.get(key)
        if len(bons) > 1:
            ids = ", ".join(b.bon_id for b in bons)
            findings.append(
                Finding(
                    TWICE,
                    TSE_FILE,
                    f"TSE transaction {key[1]} is referenced by {len(bons)} Bons: {ids}",
                    bons[1].line,
                    "TSE_TANR",
                )
            )
        for bon in bons:
            if found is None:
                missing.append(bon)
                findings.append(
                    Finding(
                        NOT_IN_TAR,
                        TSE_FILE,
                        f"{bon.bon_id}: TSE transaction {bon.number} is not in {tar}",
                        bon.line,
                        "TSE_TANR",
                    )
                )
                continue
            findings.extend(_compare(bon, found, tar))
    in_scope = 0
    out_of_scope = 0
    for key, tx in sorted(by_key.items()):
        if tx.serial not in side.serials or tx.client_id not in side.clients:
            out_of_scope += 1
            continue
        if not _in_window(tx, side):
            out_of_scope += 1
            continue
        in_scope += 1
        if key in bons_of:
            continue
        if tx.end is None:
            findings.append(
                Finding(
                    OPEN,
                    tar,
                    f"TSE transaction {tx.number} of client {tx.client_id!r} (started "
                    f"{_when(tx.start)}) has no Finish log and no Bon",
                    severity="warning",
                )
            )
            continue
        findings.append(
            Finding(
                NOT_IN_DSFINVK,
                tar,
                f"TSE transaction {tx.number} of client {tx.client_id!r} "
                f"({_when(tx.start)} .. {_when(tx.end)}, {tx.process_type}) has no Bon "
                "in transactions_tse.csv",
            )
        )
    findings.extend(_range_note(tar_first, tar_last, missing, tar))
    summary: dict[str, object] = {
        "window": [_when(side.first), _when(side.last)],
        "clients": sorted(side.clients),
        "tse_serials": sorted(side.serials),
        "scope": "TSE transactions of the TSEs in tse.csv, of these client ids, started in "
        "the window (earliest Bon start .. last closing); others are not compared",
        "tar_transactions": len(by_key),
        "tar_transactions_in_scope": in_scope,
        "tar_transactions_out_of_scope": out_of_scope,
        "bons_with_tse_data": len(side.bons),
        "bons_matched": sum(len(b) for k, b in bons_of.items() if k in by_key),
        "tse_transactions_matched": sum(1 for k in bons_of if k in by_key),
    }
    return CrossCheckResult(findings, summary)


def _range_note(
    tar_first: int | None,
    tar_last: int | None,
    missing: list[BonTse],
    tar: str,
) -> list[Finding]:
    """A warning when Bons missing in the TAR lie before its first or after its last
    transaction: a TAR exported for a shorter period (or an incremental export)
    explains them."""
    times = [t for b in missing for t in (b.start, b.end) if t is not None]
    if not times or tar_first is None or tar_last is None:
        return []
    first, last = min(times), max(times)
    if tar_first <= first and tar_last >= last:
        return []
    return [
        Finding(
            TAR_SHORT,
            tar,
            f"the TAR's transactions span {_when(tar_first)} .. {_when(tar_last)}, the "
            f"the Bons missing in it {_when(first)} .. {_when(last)}: Bons outside the "
            "TAR's span cannot be found in it (a TAR of a shorter period?)",
            severity="warning",
        )
    ]


def _compare(bon: BonTse, tx: TseTransaction, tar: str) -> Iterator[Finding]:
    """The differences between one Bon's TSE data and its transaction in the TAR."""

    def differs(code: str, column: str, what: str) -> Finding:
        return Finding(code, TSE_FILE, f"{bon.bon_id}: {what}", bon.line, column)

    if tx.end is None:
        yield differs(
            NOT_FINISHED, "TSE_TANR", f"TSE transaction {tx.number} has no Finish log in {tar}"
        )
        return
    if bon.clients and tx.client_id not in bon.clients:
        yield differs(
            CLIENT,
            "TSE_TANR",
            f"the TSE transaction is client {tx.client_id!r}, the Bon's register is "
            f"{' / '.join(repr(c) for c in bon.clients)}",
        )
    if bon.signature != tx.signature:
        yield differs(SIGNATURE, "TSE_TA_SIG", "TSE_TA_SIG is not the Finish log's signature")
    if bon.counter != tx.counter:
        yield differs(
            COUNTER, "TSE_TA_SIGZ", f"TSE_TA_SIGZ {bon.counter}, the Finish log's is {tx.counter}"
        )
    if tx.start is not None and bon.start != tx.start:
        yield differs(
            START,
            "TSE_TA_START",
            f"TSE_TA_START {_when(bon.start)}, the Start log's time is {_when(tx.start)}",
        )
    if bon.end != tx.end:
        yield differs(
            END,
            "TSE_TA_ENDE",
            f"TSE_TA_ENDE {_when(bon.end)}, the Finish log's time is {_when(tx.end)}",
        )
    if bon.process_type != tx.process_type:
        yield differs(
            PROCESS_TYPE,
            "TSE_TA_VORGANGSART",
            f"TSE_TA_VORGANGSART {bon.process_type!r}, the TSE's {tx.process_type!r}",
        )
    if bon.process_hash is not None and bon.process_hash != tx.process_hash:
        yield differs(
            PROCESS_DATA,
            "TSE_VORGANGSDATEN",
            "TSE_VORGANGSDATEN is not the Finish log's processData",
        )


# --- the TAR side -----------------------------------------------------------------------


def read_tar_transactions(
    path: Path, progress: Callable[[int], None] | None = None
) -> list[TseTransaction]:
    """The transactions of a TR-03151 TAR export of any vendor, streamed: one record
    per transaction, logs decoded by the verifier's decoder (logs it cannot decode
    are skipped: ``opentse verify`` reports them). Raises UnreadableExportError
    (``E_EXPORT_UNREADABLE`` / ``E_EXPORT_READ``) when the archive cannot be read."""
    txs: dict[tuple[str, int], TseTransaction] = {}
    serials: dict[bytes, str] = {}  # one hex string per TSE, shared by its records
    for batch in member_batches(path):
        logs = 0
        for _label, name, data in batch:
            if not name.lower().endswith(".log"):
                continue
            logs += 1
            try:
                fields = decode(data)
            except FormatError:
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
            kind = fields.operation_type.lower().removesuffix("transaction")
            if kind == "start":
                tx.start = unix
                tx.client_id = fields.client_id
                tx.process_type = tx.process_type or fields.process_type
            elif kind == "finish":
                tx.end = unix
                tx.counter = fields.signature_counter
                tx.signature = fields.signature_value
                tx.process_type = fields.process_type
                tx.client_id = fields.client_id
                tx.process_hash = hashlib.sha256(fields.process_data).digest()
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
        side.findings.append(Finding(BON_UNREADABLE, name, f"unreadable: {exc.message}"))
        return []
    if not records:
        return []
    header = records[0][1]
    return [
        (line, dict(zip(header, fields, strict=True)))
        for line, fields in records[1:]
        if len(fields) == len(header)
    ]


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
    for _line, row in _table(source, "cashregister.csv", side):
        registers[_closing(row)] = row.get("KASSE_SERIENNR", "")
    terminals: dict[tuple[str, str, str, str], str] = {}
    for _line, row in _table(source, "slaves.csv", side):
        terminals[(*_closing(row), row.get("TERMINAL_ID", ""))] = row.get("TERMINAL_SERIENNR", "")
    side.clients = {c for c in (*registers.values(), *terminals.values()) if c}
    tses: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    for _line, row in _table(source, "tse.csv", side):
        serial = row.get("TSE_SERIAL", "").lower()
        tses[(*_closing(row), row.get("TSE_ID", ""))] = (serial, row.get("TSE_PD_ENCODING", ""))
        if serial:
            side.serials.add(serial)
    for _line, row in _table(source, "cashpointclosing.csv", side):
        created = _unix(row.get("Z_ERSTELLUNG", ""))
        if created is not None and (side.last is None or created > side.last):
            side.last = created
    receipts: dict[tuple[str, ...], Row] = {}
    for _line, row in _table(source, "transactions.csv", side):
        receipts[(*_closing(row), row.get("BON_ID", ""))] = row
        side.first = _earliest(side.first, _unix(row.get("BON_START", "")))
    for line, row in _table(source, TSE_FILE, side):
        side.first = _earliest(side.first, _unix(row.get("TSE_TA_START", "")))
        bon = _bon(line, row, registers, terminals, tses, receipts, side)
        if bon is not None:
            side.bons.append(bon)


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
    try:
        number = int(number_text)
        counter = int(row["TSE_TA_SIGZ"]) if row.get("TSE_TA_SIGZ") else None
        signature = (
            base64.b64decode(row["TSE_TA_SIG"], validate=True) if row.get("TSE_TA_SIG") else None
        )
        written = row.get("TSE_VORGANGSDATEN", "")
        data = written.encode("ascii" if encoding == "ASCII" else "utf-8") if written else None
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        side.findings.append(
            Finding(BON_UNREADABLE, TSE_FILE, f"{bon_id}: TSE fields unreadable ({exc})", line)
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
    )


def cross_check_files(
    dsfinvk: Path, tar: Path, progress: Callable[[int], None] | None = None
) -> CrossCheckResult:
    """Read both exports and cross-check them (the CLI's entry point)."""
    side = read_dsfinvk(dsfinvk)
    transactions = read_tar_transactions(tar, progress)
    return cross_check(transactions, side, tar.name)
