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
client ids (or the client id of a transaction a Bon names), started inside the
client's window (from the earliest Bon start of its closings to their last
``Z_ERSTELLUNG``) and not finished after it are expected in the DSFinV-K export;
anything else in the TAR belongs to other registers or other closings and is no
finding.
Signatures of the logs themselves are not checked here: ``opentse verify`` does.

``cross_check`` is pure (records in, findings out, no I/O); the readers around it,
``read_tar_transactions`` (streamed: one small :class:`TseTransaction` per
transaction) and ``read_dsfinvk``, are in ``verify.crosscheck_read``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentse.formats.dsfinvk.check import Finding
from opentse.verify.crosscheck_numbers import numbers_without_bon

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
KEY_DIFFERS = "E_XC_TSE_KEY_DIFFERS"
BON_UNREADABLE = "E_XC_BON_TSE_UNREADABLE"
TSE_ABSENT = "W_XC_TSE_NOT_IN_TAR"
OPEN = "W_XC_TSE_OPEN"
TAR_SHORT = "W_XC_TAR_RANGE"
LOG_UNREADABLE = "W_XC_LOG_UNREADABLE"

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
    # the Finish log whole, kept only when a receipt's QR code cannot rebuild what it
    # signs (additionalExternalData/-InternalData, processData in BER pieces), so that
    # verify-receipt can say why (``receipt_match``)
    finish_log: bytes | None = None


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
    #: how findings name the Bon: its BON_NR, BON_ID, register and Z_NR ("" -> BON_ID)
    label: str = ""


@dataclass(slots=True)
class DsfinvkSide:
    """What the cross-check needs of a DSFinV-K export."""

    bons: list[BonTse] = field(default_factory=list)
    clients: set[str] = field(default_factory=set)
    serials: set[str] = field(default_factory=set)
    first: int | None = None  # window: earliest Bon start ..
    last: int | None = None  # .. last closing's Z_ERSTELLUNG
    #: each client id's own window (its closings' earliest Bon start .. latest
    #: Z_ERSTELLUNG): registers close at different times; a client without one
    #: takes ``first`` .. ``last``
    windows: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    #: each client id's periods of closings the export leaves out (holds Z_NR 1 and 3,
    #: not 2): from the closing before to the first Bon start of the closing after;
    #: a transaction started in one belongs to the closing left out
    skipped: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
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


def _in_window(tx: TseTransaction, window: tuple[int | None, int | None]) -> bool:
    """Started (else first logged) at or after the window's start and finished (an
    open one: started) by the last closing: a transaction finished after the Z-Bon
    is a Bon of the next closing (a Bon belongs to the closing after its end)."""
    first, last = window
    begun = tx.start if tx.start is not None else tx.first_time
    if begun is None or first is None or last is None:
        return False
    ended = tx.end if tx.end is not None else begun
    return first <= begun and ended <= last


def _in_skipped(tx: TseTransaction, periods: Iterable[tuple[int, int]]) -> bool:
    """Started (else first logged) inside a period of closings the export leaves out
    (bounds included: times have whole seconds, and the closing before and the first
    Bon after may share a second with the left-out closing's transactions)."""
    begun = tx.start if tx.start is not None else tx.first_time
    return begun is not None and any(after <= begun <= before for after, before in periods)


def _widest(windows: Iterable[tuple[int | None, int | None]]) -> tuple[int | None, int | None]:
    firsts = [w[0] for w in windows if w[0] is not None]
    lasts = [w[1] for w in windows if w[1] is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def cross_check(
    transactions: Iterable[TseTransaction],
    side: DsfinvkSide,
    tar: str = "TAR",
    archives: int = 1,
    damaged: Mapping[int | None, set[str]] | None = None,
) -> CrossCheckResult:
    """Findings of comparing the TAR's transactions with the Bons' TSE data
    (``archives``: how many TARs ``tar`` names, read as one; ``damaged``: the TAR's
    log files that cannot be decoded, by the transaction number in their names, as
    ``read_tar_transactions`` collects them)."""
    damaged = damaged or {}
    findings = list(side.findings)
    if damaged:
        findings.append(_damaged_note(damaged, tar))
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
    numbers_of: dict[str, list[int]] = defaultdict(list)  # each serial's numbers
    for serial, number in by_key:
        numbers_of[serial].append(number)
    for numbers in numbers_of.values():
        numbers.sort()
    missing: list[BonTse] = []
    for key, bons in bons_of.items():
        found = by_key.get(key)
        if len(bons) > 1:
            ids = ", ".join(b.label or b.bon_id for b in bons)
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
                        f"{bon.label or bon.bon_id}: TSE transaction {bon.number} is not in "
                        f"{tar}{_held_words(bon.number, numbers_of[bon.serial], archives)}"
                        f"{damaged_words(bon.number, damaged, tar)}",
                        bon.line,
                        "TSE_TANR",
                    )
                )
                continue
            findings.extend(_compare(bon, found, tar, damaged))
    # the export's client ids, and those of the transactions its Bons name: a TSE
    # client id other than KASSE_SERIENNR (E_XC_CLIENT_DIFFERS on each Bon) must not
    # take that client's transactions without a Bon out of scope
    clients = set(side.clients)
    windows = dict(side.windows)
    named: dict[str, set[str]] = defaultdict(set)  # such a client id -> the Bons' registers
    for key, bons in bons_of.items():
        if key in by_key and by_key[key].client_id not in side.clients:
            named[by_key[key].client_id].update(c for b in bons for c in b.clients)
    for client, registers in named.items():
        clients.add(client)
        own = [windows[c] for c in registers if c in windows]
        if own:
            windows[client] = _widest(own)
    everywhere = (side.first, side.last)
    latest = _latest_bons(bons_of, by_key)
    in_scope = 0
    out_of_scope = 0
    for key, tx in sorted(by_key.items()):
        if tx.serial not in side.serials or tx.client_id not in clients:
            out_of_scope += 1
            continue
        if not _in_window(tx, windows.get(tx.client_id, everywhere)):
            out_of_scope += 1
            continue
        if key not in bons_of and _in_skipped(tx, side.skipped.get(tx.client_id, ())):
            out_of_scope += 1  # a transaction of a closing the export leaves out
            continue
        in_scope += 1
        if key in bons_of:
            continue
        if tx.end is None:
            findings.append(
                Finding(
                    OPEN,
                    tar,
                    f"TSE transaction {tx.number} of client {tx.client_id!r} of TSE "
                    f"{tx.serial[:16]}... (started {_when(tx.start)}) has no Finish log "
                    "and no Bon",
                    severity="warning",
                )
            )
            continue
        window_end = windows.get(tx.client_id, everywhere)[1]
        at_closing = tx.end == window_end and tx.number > latest.get((tx.serial, tx.client_id), -1)
        findings.append(
            Finding(
                NOT_IN_DSFINVK,
                tar,
                f"TSE transaction {tx.number} of client {tx.client_id!r} of TSE "
                f"{tx.serial[:16]}... ({_when(tx.start)} .. {_when(tx.end)}, "
                f"{tx.process_type}) has no Bon in transactions_tse.csv (its Finish log in "
                f"{tar}: signature counter {tx.counter}){_AT_CLOSING if at_closing else ''}",
            )
        )
    findings.extend(_range_note(tar_first, tar_last, missing, tar))
    findings.extend(_substituted_keys(by_key.values(), side, tar_serials, windows, tar))
    without_bon, unexplained = numbers_without_bon(by_key, side.bons, clients, tar)
    findings.extend(unexplained)
    summary: dict[str, object] = {
        "window": [_when(side.first), _when(side.last)],
        "clients": sorted(clients),
        "windows": {c: [_when(w[0]), _when(w[1])] for c, w in sorted(windows.items())},
        "tse_serials": sorted(side.serials),
        "scope": "TSE transactions of the TSEs in tse.csv, of these client ids, started in "
        "the client's window (earliest Bon start .. last closing) and not finished after "
        "it; others are not compared",
        "tar_transactions": len(by_key),
        "tar_transactions_in_scope": in_scope,
        "tar_transactions_out_of_scope": out_of_scope,
        "bons_with_tse_data": len(side.bons),
        "bons_matched": sum(len(b) for k, b in bons_of.items() if k in by_key),
        "tse_transactions_matched": sum(1 for k in bons_of if k in by_key),
        #: per TSE serial, the numbers between its Bons that no Bon has: other
        #: registers' (client ids not in the export), those the TAR does not hold and
        #: those outside the TAR's range of the TSE
        "numbers_without_bon": without_bon,
    }
    return CrossCheckResult(findings, summary)


def _latest_bons(
    bons_of: dict[tuple[str, int], list[BonTse]], by_key: dict[tuple[str, int], TseTransaction]
) -> dict[tuple[str, str], int]:
    """Each (serial, client id)'s highest transaction number that a Bon has (the
    client of the TAR's transaction, else the Bon's register or terminal)."""
    latest: dict[tuple[str, str], int] = {}
    for (serial, number), bons in bons_of.items():
        found = by_key.get((serial, number))
        owners = {found.client_id} if found else {c for b in bons for c in b.clients}
        for client in owners:
            latest[serial, client] = max(latest.get((serial, client), number), number)
    return latest


#: said of a transaction without a Bon, after the client's last Bon, that finished in
#: the very second of its last closing in the export: whole seconds cannot tell
#: whether it came before the closing (a Bon left out: a drawer opened or a cash
#: difference signed for the closing, say) or after it (the next closing's first Bon).
#: Still an error: the transactions signed for a closing are in that second most.
_AT_CLOSING = (
    "; it finished in the same second as the client's last closing in the export "
    "(Z_ERSTELLUNG), after its last Bon: if the till sold on at once after the "
    "closing, it is a Bon of the next closing, which that closing's export shows"
)


def _substituted_keys(
    transactions: Iterable[TseTransaction],
    side: DsfinvkSide,
    tar_serials: set[str],
    windows: dict[str, tuple[int | None, int | None]],
    tar: str,
) -> Iterator[Finding]:
    """An error per register whose transactions in its window the TAR's TSE signed
    while its Bons name a TSE (tse.csv TSE_SERIAL, TSE_PUBLIC_KEY) that is not in the
    TAR and not that TSE: the Bons' signatures are another key's, so the receipts are
    not protected by the TSE that exported the TAR (KassenSichV: every record by the
    certified TSE). A TAR of another shop's TSE has no transaction of the register
    and stays the warning W_XC_TSE_NOT_IN_TAR."""
    everywhere = (side.first, side.last)
    signed_by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for tx in transactions:
        if tx.client_id not in side.clients or tx.serial in side.serials:
            continue
        if _in_window(tx, windows.get(tx.client_id, everywhere)) and not _in_skipped(
            tx, side.skipped.get(tx.client_id, ())
        ):
            signed_by[tx.client_id][tx.serial] += 1
    named: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bon in side.bons:
        if bon.serial not in tar_serials:
            for client in bon.clients:
                named[client][bon.serial] += 1
    for client in sorted(signed_by):
        if not named.get(client):
            continue
        tar_tses = ", ".join(
            f"{serial[:16]}... ({count} transaction(s))"
            for serial, count in sorted(signed_by[client].items())
        )
        bon_tses = ", ".join(
            f"{serial[:16] or '(unknown TSE_ID)'}... ({count} Bon(s))"
            for serial, count in sorted(named[client].items())
        )
        yield Finding(
            KEY_DIFFERS,
            TSE_FILE,
            f"register {client!r}: in the export's period the TSE of {tar} signed the "
            f"register's transactions with its key, TSE {tar_tses}, but the Bons name "
            f"another TSE in tse.csv, TSE {bon_tses}, that is not in {tar}: their "
            "signatures do not verify against the key of the TSE that exported the TAR "
            "(one side's key substituted: tse.csv's TSE_SERIAL / TSE_PUBLIC_KEY, or the "
            "TAR's logs re-signed with another key and certificate; or the register used a "
            "TSE the export does not name): check the TAR's chain with opentse verify "
            "--trust, ask for the TAR of the TSE the Bons name and for the Bons of the "
            "TAR's transactions",
        )


def _held_words(number: int, numbers: list[int], archives: int = 1) -> str:
    """What a TAR that lacks transaction ``number`` holds of the TSE (``numbers``,
    sorted): inside its range the logs are missing from it (the run of numbers it
    lacks is named: with several TARs read as one, an export between them left out
    is the first thing to ask about), or a client filter left them out; before or
    after it, the TAR starts too late or ends too early (exported for a shorter range
    or period, or cut off)."""
    first, last = numbers[0], numbers[-1]
    span = f"{first}..{last}" if first != last else str(first)
    if first <= number <= last:
        at = bisect.bisect_left(numbers, number)  # numbers[at - 1] < number < numbers[at]
        low, high = numbers[at - 1] + 1, numbers[at] - 1
        hole = f"{low}..{high}" if low != high else str(low)
        between = "an export between the TARs left out, " if archives > 1 else ""
        return (
            f", which holds transactions {span} of this TSE but none of {hole}: their "
            f"logs are missing from the TAR ({between}logs removed, or the TAR exported "
            "for some client ids only: a TSE shared by registers; opentse verify names "
            "the missing signature counters, E_COUNTER_GAP)"
        )
    why = (
        f"the TAR {'ends before' if number > last else 'starts after'} it (exported for "
        "a shorter range or period, or cut off): ask for the TSE's export that holds it"
    )
    return f", which holds transactions {span} of this TSE: {why}"


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
            f"the TAR's transactions span {_when(tar_first)} .. {_when(tar_last)}, "
            f"the Bons missing in it {_when(first)} .. {_when(last)}: Bons outside the "
            "TAR's span cannot be found in it (a TAR of a shorter period?)",
            severity="warning",
        )
    ]


def _damaged_note(damaged: Mapping[int | None, set[str]], tar: str) -> Finding:
    """One warning for the TAR's log files that cannot be decoded: their content is
    not compared (``opentse verify`` reports each, E_LOG_FORMAT)."""
    names = sorted(n for group in damaged.values() for n in group)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return Finding(
        LOG_UNREADABLE,
        tar,
        f"{len(names)} log file(s) of {tar} cannot be decoded (damaged or cut short): "
        f"{shown}; what they hold is not compared (opentse verify {tar}: E_LOG_FORMAT)",
        severity="warning",
    )


def damaged_words(number: int, damaged: Mapping[int | None, set[str]], tar: str) -> str:
    """For a transaction the TAR lacks a log of: the log files named with its number
    that cannot be decoded, where the missing log most likely is (file names carry
    no TSE serial: with several TSEs in the TAR it may be another's)."""
    names = sorted(damaged.get(number, ()))
    if not names:
        return ""
    return (
        f"; {tar} has {len(names)} log file(s) named with transaction number {number} "
        f"that cannot be decoded: {', '.join(names[:3])} (damaged: opentse verify "
        f"{tar} reports E_LOG_FORMAT)"
    )


def _compare(
    bon: BonTse,
    tx: TseTransaction,
    tar: str,
    damaged: Mapping[int | None, set[str]] | None = None,
) -> Iterator[Finding]:
    """The differences between one Bon's TSE data and its transaction in the TAR."""

    def differs(code: str, column: str, what: str) -> Finding:
        return Finding(code, TSE_FILE, f"{bon.label or bon.bon_id}: {what}", bon.line, column)

    if tx.end is None:
        yield differs(
            NOT_FINISHED,
            "TSE_TANR",
            f"TSE transaction {tx.number} has no Finish log in {tar}"
            f"{damaged_words(tx.number, damaged or {}, tar)}",
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
