"""A paper receipt against the shop's exports, as at a Kassen-Nachschau (§146b AO).

The QR code alone proves only that its key signed its data (``receipt.py``). The
auditor also needs: is it a transaction of the shop's TSE, the one in its TAR export
(same serial, number, client, signature, counter, Finish time and processData), and
is it a Bon of the DSFinV-K export with the same TSE data and amounts (the Bon's
processData rebuilt from its rows by ``dsfinvk check``, compared byte for byte with
the receipt's: DSFinV-K Anhang I, digest receipts-dsfinvk.md). Pure: records in,
findings out; the readers are the cross-check's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from datetime import datetime

from opentse.formats.dsfinvk.check import BonSigned
from opentse.formats.qr import QRPayload
from opentse.verify.crosscheck import TseTransaction
from opentse.verify.findings import Finding, error, info

NOT_IN_TAR = "E_RECEIPT_NOT_IN_TSE_EXPORT"
TSE_NOT_IN_TAR = "E_RECEIPT_TSE_NOT_IN_EXPORT"
TAR_DIFFERS = "E_RECEIPT_TSE_EXPORT_DIFFERS"
IN_TAR = "I_RECEIPT_IN_TSE_EXPORT"
NOT_IN_DSFINVK = "E_RECEIPT_NOT_IN_DSFINVK"
DSFINVK_DIFFERS = "E_RECEIPT_DSFINVK_DIFFERS"
IN_DSFINVK = "I_RECEIPT_IN_DSFINVK"


def _unix(when: datetime) -> int:
    return int(when.timestamp())


def against_tse_export(
    payload: QRPayload, transactions: Iterable[TseTransaction], tar: str
) -> list[Finding]:
    """The receipt's transaction in the TAR: one finding saying it is there with the
    same signed values, else what is missing or differs and where."""
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
                f"{max(numbers)} of that TSE): a receipt the TSE did not sign as printed, "
                "or a TAR of another period (compare its period with the receipt's date "
                f"{payload.log_time.date().isoformat()})",
                fields=("transactionNumber",),
            )
        ]
    if found.end is None:
        return [
            error(
                TAR_DIFFERS,
                f"{where} has no Finish log in {tar}, only its Start: the receipt's "
                "signature is a Finish log's, so either the Finish log is missing from the "
                f"TAR (opentse verify {tar} shows counter gaps) or the TAR was made before "
                "the sale was finished (ask for a later export)",
                fields=("signature",),
            )
        ]
    differs: list[tuple[str, str]] = []
    if found.client_id != payload.client_id:
        differs.append(("clientId", f"client {found.client_id!r}, the receipt's "
                                    f"{payload.client_id!r}"))  # fmt: skip
    if found.signature != payload.signature:
        differs.append(("signature", "another signature"))
    if found.counter != payload.signature_counter:
        differs.append(("signatureCounter", f"signature counter {found.counter}, the "
                                            f"receipt's {payload.signature_counter}"))  # fmt: skip
    if found.end != _unix(payload.log_time):
        differs.append(("logTime", "another Finish time"))
    if found.process_type != payload.process_type:
        differs.append(("processType", f"processType {found.process_type!r}"))
    if found.process_hash != hashlib.sha256(payload.process_data.encode("utf-8")).digest():
        differs.append(("processData", "other processData (amounts, payments, Bon type)"))
    if differs:
        return [
            error(
                TAR_DIFFERS,
                f"{where} in {tar} differs from the receipt: its Finish log has "
                + "; ".join(what for _f, what in differs)
                + ": the receipt does not show what the TSE signed",
                fields=tuple(name for name, _w in differs),
            )
        ]
    start = ""
    if found.start is not None and found.start != _unix(payload.start_time):
        start = " (the receipt's start time differs from the Start log's: it is not signed)"
    return [
        info(
            IN_TAR,
            f"{where} is in {tar}: its Finish log has the receipt's client, signature, "
            f"counter, time, processType and processData{start}. Whether the TAR's logs and "
            f"certificate are genuine: opentse verify {tar}",
        )
    ]


def against_dsfinvk(payload: QRPayload, bons: Iterable[BonSigned], export: str) -> list[Finding]:
    """The receipt's Bon in the DSFinV-K export (by TSE serial and TSE_TANR): one
    finding saying its TSE data and the processData rebuilt from its rows are the
    receipt's, else what differs."""
    serial = hashlib.sha256(payload.public_key).hexdigest()
    number = str(payload.transaction_number)
    mine = [b for b in bons if b.serial == serial and b.number.lstrip("0") == number]
    where = f"transaction {number} of TSE {serial[:16]}..."
    if not mine:
        return [
            error(
                NOT_IN_DSFINVK,
                f"no Bon of {export} has {where} (transactions_tse.csv TSE_TANR with "
                "tse.csv's TSE_SERIAL): a sale left out of the books, or an export of "
                "another register or period",
                fields=("transactionNumber",),
            )
        ]
    findings: list[Finding] = []
    for bon in mine:
        differs: list[tuple[str, str]] = []
        try:
            signature = base64.b64decode(bon.signature, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if signature != payload.signature:
            differs.append(("signature", "another TSE_TA_SIG"))
        if bon.counter != str(payload.signature_counter):
            differs.append(("signatureCounter", f"TSE_TA_SIGZ {bon.counter}"))
        if bon.process_type != payload.process_type:
            differs.append(("processType", f"TSE_TA_VORGANGSART {bon.process_type!r}"))
        if bon.process_data != payload.process_data:
            differs.append(
                (
                    "processData",
                    f"its rows give {bon.process_data!r}, the receipt has "
                    f"{payload.process_data!r} (amounts, payments or Bon type differ)",
                )
            )
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
            "its TSE_TA_SIG verifies over them"
            if bon.verified
            else "but its TSE_TA_SIG does NOT verify over them (dsfinvk check says why)"
        )
        findings.append(
            (info if bon.verified else error)(
                IN_DSFINVK if bon.verified else DSFINVK_DIFFERS,
                f"{where} is {bon.label} in {export} ({bon.bon_type}): same signature, "
                f"counter and processType, and its rows (amounts per VAT rate, payments) "
                f"give the receipt's processData; {verified}",
            )
        )
    return findings
