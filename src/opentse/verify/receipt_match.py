"""A paper receipt against the shop's exports, as at a Kassen-Nachschau (§146b AO).

The QR code alone proves only that its key signed its data (``receipt.py``). The
auditor also needs: is it a transaction of the shop's TSE, the one in its TAR export
(same serial, number, client, signature, counter, Finish time and processData; and
the start time its Start log signed, which the receipt's own signature does not
cover), and is it a Bon of the DSFinV-K export with the same TSE data and amounts
(the Bon's processData rebuilt from its rows by ``dsfinvk check``, compared byte for
byte with the receipt's: DSFinV-K Anhang I, digest receipts-dsfinvk.md). Pure:
records in, findings out; the readers are the cross-check's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from opentse.errors import FormatError, OpenTSEError
from opentse.formats import processdata as pd
from opentse.formats.dsfinvk.check import BonSigned
from opentse.formats.qr import QRPayload, format_qr_time
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import TransactionLogData
from opentse.tr03151.signature import verify_signature
from opentse.verify.crosscheck import TseTransaction, damaged_words
from opentse.verify.findings import Finding, error, info
from opentse.verify.receipt import process_data_form

NOT_IN_TAR = "E_RECEIPT_NOT_IN_TSE_EXPORT"
TSE_NOT_IN_TAR = "E_RECEIPT_TSE_NOT_IN_EXPORT"
TAR_DIFFERS = "E_RECEIPT_TSE_EXPORT_DIFFERS"
IN_TAR = "I_RECEIPT_IN_TSE_EXPORT"
NOT_IN_DSFINVK = "E_RECEIPT_NOT_IN_DSFINVK"
DSFINVK_DIFFERS = "E_RECEIPT_DSFINVK_DIFFERS"
IN_DSFINVK = "I_RECEIPT_IN_DSFINVK"


def _unix(when: datetime) -> int:
    return int(when.timestamp())


def _time(unix: int) -> str:
    """A log time of the TAR (whole seconds) as the receipt writes its times, by the
    QR code's own formatter (``.000Z``; years before 1000 padded to four digits,
    which strftime on glibc does not do), so both times of a message read alike."""
    return format_qr_time(datetime.fromtimestamp(unix, UTC))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _start_differs(payload: QRPayload, tx: TseTransaction, where: str, tar: str) -> list[Finding]:
    """The receipt's start time against its transaction's Start log: that log signs
    it (its logTime), the Finish log whose signature the receipt carries does not."""
    if tx.start is None or tx.start == _unix(payload.start_time):
        return []
    return [
        error(
            TAR_DIFFERS,
            f"{where} in {tar}: the receipt's start time {format_qr_time(payload.start_time)} "
            f"is not the logTime of the transaction's Start log in the TAR, {_time(tx.start)} "
            "(compared to the second): the Start log signs the start time, the receipt's "
            "own signature (the Finish log's) does not cover it, so the receipt shows "
            "another start than the TSE signed",
            fields=("startTime",),
        )
    ]


EXTRA_SIGNED = "E_RECEIPT_EXTRA_SIGNED_DATA"
_SHOWN = 48  # octets of an element shown in a message


def _octets(data: bytes) -> str:
    """Signed octets as a message shows them: their count, the text when printable
    ASCII, and the hex (the first ``_SHOWN`` octets)."""
    text = data.decode("ascii", "replace")
    shown = f" {text!r}," if data.isascii() and text.isprintable() and len(data) <= _SHOWN else ""
    more = "..." if len(data) > _SHOWN else ""
    return f"{len(data)} octets,{shown} hex {data[:_SHOWN].hex()}{more}"


def _unrebuildable(
    payload: QRPayload, tx: TseTransaction, where: str, tar: str, *, same: bool
) -> list[Finding]:
    """The TAR's Finish log signs what no receipt's QR code can hold (TseTransaction
    keeps such a log whole): additionalExternalData [4], additionalInternalData [6]
    (registers do not send [4], TR-03153 forbids [6]; no QR field for either, DSFinV-K
    Anhang I), processData absent or in pieces. Say which, with the octets, and
    whether the receipt's signature verifies over that log as the TAR holds it; what
    that proves depends on ``same``: whether the receipt's other fields are the log's
    (compared by ``against_tse_export``)."""
    if tx.finish_log is None:
        return []
    try:
        msg = decode_log_message(tx.finish_log)
        signed = msg.signed_data
        form = None if signed is None else process_data_form(signed)
    except FormatError:
        return []  # read by the fast reader before, so not expected; opentse verify says
    data = msg.certified
    if signed is None or not isinstance(data, TransactionLogData):
        return []
    held = [
        f"{name}: {_octets(value)}"
        for name, value in (
            ("additionalExternalData [4]", data.additional_external_data),
            ("additionalInternalData [6]", data.additional_internal_data),
        )
        if value is not None
    ]
    if form is not None:
        held.append(form)
    if not held:
        return []
    try:
        verify_signature(payload.public_key, msg.signature_algorithm, signed, payload.signature)
        verified = True
    except (OpenTSEError, ValueError):
        verified = False
    if not verified:
        outcome = (
            "the receipt's signature does not verify over that Finish log as the TAR "
            "holds it either"
        )
    elif same:
        outcome = (
            "the receipt's signature verifies over that Finish log as the TAR holds it, "
            "with the QR code's public key, and the receipt's other fields are that log's: "
            "the receipt shows what the TSE signed, but no one can check that from the "
            "receipt alone"
        )
    else:
        outcome = (
            "the receipt's signature verifies over that Finish log as the TAR holds it, "
            "but the receipt shows other values than that log (the finding above): it "
            "carries the signature of another content than it shows"
        )
    return [
        error(
            EXTRA_SIGNED,
            f"the Finish log of {where} in {tar} (signature counter {tx.counter}) signs "
            f"what a receipt's QR code cannot hold (DSFinV-K Anhang I): "
            + "; ".join(held)
            + ". So the Finish log rebuilt from the QR code's fields is not the one signed, "
            f"and the receipt's signature cannot verify from its QR code "
            f"(E_RECEIPT_SIGNATURE); {outcome}",
            fields=("signature",),
        )
    ]


def _start_words(payload: QRPayload, tx: TseTransaction, tar: str) -> str:
    """What the info finding says about the start time."""
    if tx.start is None:
        return (
            f"; the start time is not compared: the transaction's Start log is not in {tar} "
            "(it may be in an earlier export: give that one too with another --tse-export)"
        )
    if tx.start != _unix(payload.start_time):
        return "; but not its start time (next finding)"
    return ", and its Start log's logTime is the receipt's start time"


def rebuilt_from(process_type: str) -> str:
    """Which rows of a DSFinV-K Bon ``dsfinvk check`` made its processData from
    (``formats.dsfinvk.rebuild.rebuild_process_data``): a Kassenbeleg-V1 from the Bon
    type, the amounts per VAT rate and the payments, a Bestellung-V1 from the order
    lines; other processTypes (SonstigerVorgang ...) are taken as TSE_VORGANGSDATEN
    writes them."""
    if process_type == pd.PROCESS_TYPE_KASSENBELEG:
        return (
            "its rows (BON_TYP, amounts per VAT rate in transactions_vat.csv, payments in "
            "datapayment.csv)"
        )
    if process_type == pd.PROCESS_TYPE_BESTELLUNG:
        return "its order lines (lines.csv: MENGE, ARTIKELTEXT, STK_BR)"
    return f"its TSE_VORGANGSDATEN as written (a {process_type} is not rebuilt from rows)"


def _hole(numbers: list[int], number: int) -> str:
    """The run of transaction numbers around ``number`` that ``numbers`` lack, when
    ``number`` lies between two of them (the TAR lacks logs there)."""
    below = max((n for n in numbers if n < number), default=None)
    above = min((n for n in numbers if n > number), default=None)
    if below is None or above is None:
        return ""
    low, high = below + 1, above - 1
    return f" but none of {low}..{high}" if low != high else f" but not {low}"


def against_tse_export(
    payload: QRPayload,
    transactions: Iterable[TseTransaction],
    tar: str,
    damaged: Mapping[int | None, set[str]] | None = None,
) -> list[Finding]:
    """The receipt's transaction in the TAR: a finding saying it is there with the
    same signed values, else what is missing or differs and where (naming the TAR's
    log files of its number that cannot be decoded, ``damaged``); and an error when
    the receipt's start time is not its Start log's logTime."""
    broken = damaged_words(payload.transaction_number, damaged or {}, tar)
    serial = hashlib.sha256(payload.public_key).hexdigest()
    number = payload.transaction_number
    found: TseTransaction | None = None
    numbers: list[int] = []
    others: set[str] = set()
    for tx in transactions:
        if tx.serial != serial:
            others.add(tx.serial)
            continue
        numbers.append(tx.number)
        if tx.number == number:
            found = tx
    where = f"transaction {number} of TSE {serial[:16]}..."
    if found is None and not numbers:
        tses = ", ".join(f"{s[:16]}..." for s in sorted(others)) or "none"
        return [
            error(
                TSE_NOT_IN_TAR,
                f"the receipt's TSE (serial {serial[:16]}..., the SHA-256 of the QR code's "
                f"public key) has no transaction in {tar} (its TSEs: {tses}): a receipt "
                "signed by another TSE than the one exported, or the TAR of another TSE: "
                "ask for the export of the TSE this receipt names",
                fields=("publicKey",),
            )
        ]
    if found is None:
        return [
            error(
                NOT_IN_TAR,
                f"{where} is not in {tar} (it holds transactions {min(numbers)}.."
                f"{max(numbers)} of that TSE{_hole(numbers, number)}): a receipt the TSE "
                "did not sign as printed, a TAR with logs missing (opentse verify shows "
                "counter gaps), "
                "or a TAR of another period (compare its period with the receipt's date "
                f"{payload.log_time.date().isoformat()}){broken}",
                fields=("transactionNumber",),
            )
        ]
    start_differs = _start_differs(payload, found, where, tar)
    if found.end is None:
        return [
            *start_differs,
            error(
                TAR_DIFFERS,
                f"{where} has no Finish log in {tar}, only its Start: the receipt's "
                "signature is a Finish log's, so either the Finish log is missing from the "
                f"TAR (opentse verify {tar} shows counter gaps) or the TAR was made before "
                f"the sale was finished (ask for a later export){broken}",
                fields=("signature",),
            ),
        ]
    differs: list[tuple[str, str]] = []
    if found.client_id != payload.client_id:
        differs.append(("clientId", f"client {found.client_id!r}, the receipt "
                                    f"{payload.client_id!r}"))  # fmt: skip
    if found.signature != payload.signature:
        theirs = _b64(found.signature or b"")
        differs.append(("signature", f"signature {theirs}, the receipt "
                                     f"{_b64(payload.signature)}"))  # fmt: skip
    if found.counter != payload.signature_counter:
        differs.append(("signatureCounter", f"signature counter {found.counter}, the "
                                            f"receipt {payload.signature_counter}"))  # fmt: skip
    if found.end != _unix(payload.log_time):
        differs.append(("logTime", f"logTime {_time(found.end)}, the receipt "
                                   f"{format_qr_time(payload.log_time)} (compared to the "
                                   "second)"))  # fmt: skip
    if found.process_type != payload.process_type:
        differs.append(("processType", f"processType {found.process_type!r}, the "
                                       f"receipt {payload.process_type!r}"))  # fmt: skip
    if found.process_hash != hashlib.sha256(payload.process_data.encode("utf-8")).digest():
        differs.append(("processData", f"other processData than the receipt's "
                                       f"{payload.process_data!r} (compared by SHA-256; "
                                       "its own is in the TAR's Finish log of signature "
                                       f"counter {found.counter})"))  # fmt: skip
    extra = _unrebuildable(payload, found, where, tar, same=not differs)
    if differs:
        return [
            error(
                TAR_DIFFERS,
                f"{where} in {tar} differs from the receipt: its Finish log has "
                + "; ".join(what for _f, what in differs)
                + ": the receipt does not show what the TSE signed",
                fields=tuple(name for name, _w in differs),
            ),
            *start_differs,
            *extra,
        ]
    return [
        info(
            IN_TAR,
            f"{where} is in {tar}: its Finish log has the receipt's client, signature, "
            f"counter, time, processType and processData{_start_words(payload, found, tar)}"
            f". Whether the TAR's logs and certificate are genuine: opentse verify {tar}",
        ),
        *start_differs,
        *extra,
    ]


def _not_in_dsfinvk(serial: str, where: str, bons: list[BonSigned], export: str) -> Finding:
    """No Bon has the receipt's transaction: say which TSEs and numbers the export's
    Bons do have, so the auditor tells another register's export from a gap."""
    numbers = sorted(int(b.number) for b in bons if b.serial == serial and b.number.isdigit())
    if numbers:
        held = (
            f"its {len(numbers)} Bons of that TSE have TSE_TANR {numbers[0]} to {numbers[-1]}"
            if len(numbers) > 1
            else f"its one Bon of that TSE has TSE_TANR {numbers[0]}"
        )
        why = "a sale left out of the books, or an export of another period or register"
    else:
        others = sorted({b.serial for b in bons})
        named = ", ".join(f"{s[:16]}..." for s in others) or "none"
        held = f"none of its Bons is of that TSE, their TSE_SERIAL: {named}"
        why = "an export of another register or TSE, or a sale left out of the books"
    return error(
        NOT_IN_DSFINVK,
        f"no Bon of {export} has {where} (transactions_tse.csv TSE_TANR with tse.csv's "
        f"TSE_SERIAL; {held}): {why}",
        fields=("transactionNumber",),
    )


def against_dsfinvk(payload: QRPayload, bons: Iterable[BonSigned], export: str) -> list[Finding]:
    """The receipt's Bon in the DSFinV-K export (by TSE serial and TSE_TANR): one
    finding saying its TSE data and its processData (from the rows that
    ``rebuilt_from`` names) are the receipt's, else what differs, with both values."""
    serial = hashlib.sha256(payload.public_key).hexdigest()
    number = str(payload.transaction_number)
    bons = list(bons)
    mine = [b for b in bons if b.serial == serial and b.number.lstrip("0") == number]
    where = f"transaction {number} of TSE {serial[:16]}..."
    if not mine:
        return [_not_in_dsfinvk(serial, where, bons, export)]
    findings: list[Finding] = []
    for bon in mine:
        differs: list[tuple[str, str]] = []
        try:
            signature = base64.b64decode(bon.signature, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if signature != payload.signature:
            differs.append(("signature", f"TSE_TA_SIG {bon.signature}, the receipt's "
                                         f"signature {_b64(payload.signature)}"))  # fmt: skip
        if bon.counter != str(payload.signature_counter):
            differs.append(("signatureCounter", f"TSE_TA_SIGZ {bon.counter}, the receipt's "
                                                "signature counter "
                                                f"{payload.signature_counter}"))  # fmt: skip
        if bon.process_type != payload.process_type:
            differs.append(("processType", f"TSE_TA_VORGANGSART {bon.process_type!r}, the "
                                           f"receipt's processType "
                                           f"{payload.process_type!r}"))  # fmt: skip
        source = rebuilt_from(bon.process_type)
        if bon.process_data != payload.process_data:
            differs.append(("processData", f"the Bon's processData, from {source}, is "
                                           f"{bon.process_data!r}, the receipt's "
                                           f"{payload.process_data!r}"))  # fmt: skip
        if differs:
            findings.append(
                error(
                    DSFINVK_DIFFERS,
                    f"{bon.label} in {export} ({where}) differs from the receipt: "
                    + "; ".join(what for _f, what in differs),
                    fields=tuple(name for name, _w in differs),
                )
            )
            continue
        verified = (
            "its TSE_TA_SIG verifies over that processData"
            if bon.verified
            else "but its TSE_TA_SIG does NOT verify over that processData (dsfinvk check says why)"
        )
        findings.append(
            (info if bon.verified else error)(
                IN_DSFINVK if bon.verified else DSFINVK_DIFFERS,
                f"{where} is {bon.label} in {export} ({bon.bon_type}): same signature, "
                f"counter and processType, and the processData from {source} is the "
                f"receipt's; "
                f"{verified}",
            )
        )
    return findings
