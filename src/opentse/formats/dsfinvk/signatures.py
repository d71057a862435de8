"""Every Bon's TSE signature, verified from the CSV files alone.

The Finish log the TSE signed is rebuilt as DSFinV-K Anhang I describes the receipt
verification: serial = SHA-256 of tse.csv's public key, algorithm OID, TSE_TANR,
TSE_TA_SIGZ, the log time in the TSE's TSE_ZEITFORMAT, the client id (register or
terminal serial) and processData rebuilt from the rows (:mod:`.rebuild`). A signature
that cannot be tried (a field unreadable) is said so, not "invalid".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from opentse.errors import FormatError, OpenTSEError
from opentse.formats.dsfinvk.csvwriter import parse_timestamp
from opentse.formats.dsfinvk.findings import BonSigned, CheckState, Row, bon_key, closing_key
from opentse.formats.dsfinvk.rebuild import rebuild_process_data
from opentse.tr03151 import der, oids
from opentse.tr03151.codec import encode_signed_part
from opentse.tr03151.logmessage import FINISH, LogMessage, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.signature import verify_signature


def check_signatures(check: CheckState) -> None:
    tses = {}
    for line, row in check.get("tse.csv"):
        tse = _read_tse(check, line, row)
        if tse is not None:
            tses[(*closing_key(row), row["TSE_ID"])] = tse
    registers = {closing_key(r): r["KASSE_SERIENNR"] for _l, r in check.get("cashregister.csv")}
    terminals = {
        (*closing_key(r), r["TERMINAL_ID"]): r["TERMINAL_SERIENNR"]
        for _l, r in check.get("slaves.csv")
    }
    receipts = {bon_key(r): r for _l, r in check.get("transactions.csv")}
    vat_rows: dict[tuple[str, ...], list[tuple[int, Row]]] = defaultdict(list)
    for item in check.get("transactions_vat.csv"):
        vat_rows[bon_key(item[1])].append(item)
    pay_rows: dict[tuple[str, ...], list[tuple[int, Row]]] = defaultdict(list)
    for item in check.get("datapayment.csv"):
        pay_rows[bon_key(item[1])].append(item)
    line_rows: dict[tuple[str, ...], list[tuple[int, Row]]] = defaultdict(list)
    for item in check.get("lines.csv"):
        line_rows[bon_key(item[1])].append(item)
    f = "transactions_tse.csv"
    for line, row in check.get(f):
        if not row["TSE_TA_SIG"]:
            if not row["TSE_TA_FEHLER"]:
                check.add(
                    "E_TSE_NO_SIGNATURE",
                    f,
                    f"{check.bon(row)}: neither a signature nor TSE_TA_FEHLER",
                    line,
                )
            continue
        tse = tses.get((*closing_key(row), row["TSE_ID"]))
        receipt = receipts.get(bon_key(row))
        if tse is None or receipt is None:
            continue  # reported as a missing key
        process_type = row["TSE_TA_VORGANGSART"]
        rebuilt = rebuild_process_data(
            check,
            process_type,
            receipt,
            vat_rows[bon_key(row)],
            pay_rows[bon_key(row)],
            line_rows[bon_key(row)],
            line,
            row["TSE_VORGANGSDATEN"],
        )
        written = row["TSE_VORGANGSDATEN"]
        if rebuilt is not None and written and written != rebuilt:
            check.add(
                "E_PROCESSDATA_MISMATCH",
                f,
                f"{check.bon(row)}: TSE_VORGANGSDATEN {written!r} but the rows give {rebuilt!r}",
                line,
                "TSE_VORGANGSDATEN",
            )
        process_data = rebuilt if rebuilt is not None else written
        if process_data is None or (rebuilt is None and not written):
            check.add(
                "E_PROCESSDATA_UNKNOWN",
                f,
                f"{check.bon(row)}: processData of {process_type!r} cannot be rebuilt",
                line,
            )
            continue
        clients = []
        terminal = terminals.get((*closing_key(row), receipt["TERMINAL_ID"]))
        if terminal:
            clients.append(terminal)
        clients.append(registers.get(closing_key(row), ""))
        unreadable = _unreadable_tse_field(row, tse[2], tse[3], process_data)
        error = unreadable or _verify(check, tse, row, process_data, clients)
        check.bons.append(
            BonSigned(
                check.bon(row),
                hashlib.sha256(tse[0]).hexdigest(),
                row["TSE_TANR"],
                row["TSE_TA_SIG"],
                row["TSE_TA_SIGZ"],
                process_type,
                process_data,
                error is None,
                receipt["BON_TYP"],
            )
        )
        if error is None:
            check.signatures_verified += 1
        elif unreadable:  # not "does not verify": it could not be tried
            check.add(
                "E_SIGNATURE_UNCHECKED",
                f,
                f"{check.bon(row)}: TSE_TA_SIG cannot be verified: {unreadable}",
                line,
                "TSE_TA_SIG",
            )
        else:
            check.add(
                "E_SIGNATURE_INVALID",
                f,
                f"{check.bon(row)}: TSE_TA_SIG does not verify over the Finish log rebuilt "
                f"from the rows ({error}): an amount, payment or Bon type, or a TSE field "
                "(TSE_TANR, TSE_TA_SIGZ, TSE_TA_ENDE, TSE_TA_VORGANGSART) differs from what "
                "the TSE signed, or TSE_PUBLIC_KEY is not the key that signed it",
                line,
                "TSE_TA_SIG",
            )


def _read_tse(check: CheckState, line: int, row: Row) -> tuple[bytes, str, str, str] | None:
    """(public key point, algorithm OID, time format, encoding) of a tse.csv row."""
    f = "tse.csv"
    try:
        key = base64.b64decode(row["TSE_PUBLIC_KEY"], validate=True)
    except binascii.Error:
        check.add("E_TSE_KEY", f, "TSE_PUBLIC_KEY is not base64", line, "TSE_PUBLIC_KEY")
        return None
    if key[:1] == b"\x30":  # SubjectPublicKeyInfo instead of the point
        try:
            spki = serialization.load_der_public_key(key)
        except (ValueError, UnsupportedAlgorithm):
            spki = None
        if not isinstance(spki, ec.EllipticCurvePublicKey):
            check.add("E_TSE_KEY", f, "TSE_PUBLIC_KEY is no EC key", line, "TSE_PUBLIC_KEY")
            return None
        key = spki.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if hashlib.sha256(key).hexdigest() != row["TSE_SERIAL"].lower():
        check.add(
            "E_TSE_SERIAL",
            f,
            "TSE_SERIAL is not the SHA-256 of TSE_PUBLIC_KEY",
            line,
            "TSE_SERIAL",
        )
    cert_text = "".join(v for k, v in row.items() if k.startswith("TSE_ZERTIFIKAT_"))
    if cert_text:
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(cert_text, validate=True))
            cert_key = cert.public_key()
            if (
                not isinstance(cert_key, ec.EllipticCurvePublicKey)
                or cert_key.public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
                != key
            ):
                check.add(
                    "E_TSE_CERTIFICATE",
                    f,
                    "the certificate's key is not TSE_PUBLIC_KEY",
                    line,
                    "TSE_ZERTIFIKAT_I",
                )
        except (ValueError, binascii.Error, UnsupportedAlgorithm):
            check.add(
                "E_TSE_CERTIFICATE",
                f,
                "TSE_ZERTIFIKAT_* is no base64 DER certificate",
                line,
                "TSE_ZERTIFIKAT_I",
            )
    try:
        alg = oids.algorithm_oid(row["TSE_SIG_ALGO"])
    except ValueError:
        check.add(
            "E_TSE_ALGORITHM",
            f,
            f"unknown TSE_SIG_ALGO {row['TSE_SIG_ALGO']!r} (known: ecdsa-plain-SHA256 and "
            "the other ecdsa-plain- and ecsdsa-plain- names of BSI TR-03111): the Bons of "
            "this TSE cannot be verified",
            line,
            "TSE_SIG_ALGO",
        )
        return None
    return key, alg, row["TSE_ZEITFORMAT"], row["TSE_PD_ENCODING"]


def _verify(
    check: CheckState,
    tse: tuple[bytes, str, str, str],
    row: Row,
    process_data: str,
    clients: list[str],
) -> str | None:
    """None if the signature verifies for one of the client ids, else why not."""
    point, alg, time_format, encoding = tse
    try:
        signature = base64.b64decode(row["TSE_TA_SIG"], validate=True)
        end = parse_timestamp(row["TSE_TA_ENDE"])
        number = int(row["TSE_TANR"])
        counter = int(row["TSE_TA_SIGZ"])
        log_times = _log_times(time_format, end)
        data = process_data.encode("ascii" if encoding == "ASCII" else "utf-8")
    except (ValueError, binascii.Error, FormatError, UnicodeEncodeError) as exc:
        return f"TSE fields unreadable ({exc})"
    serial = hashlib.sha256(point).digest()
    last = "no client id"
    for client, log_time in itertools.product(clients, log_times):
        message = LogMessage(
            certified=TransactionLogData(FINISH, client, data, row["TSE_TA_VORGANGSART"], number),
            serial_number=serial,
            signature_algorithm=alg,
            signature_counter=counter,
            log_time=log_time,
        )
        try:
            signed = encode_signed_part(message)
        except OpenTSEError as exc:
            return exc.message
        for variant in (signed, _ber_process_data(signed, data)):
            try:
                verify_signature(point, alg, variant, signature)
                return None
            except OpenTSEError as exc:
                last = exc.message
    return last


def _unreadable_tse_field(
    row: Row, time_format: str, encoding: str, process_data: str
) -> str | None:
    """Why a Bon's signature cannot be verified at all (a TSE field or the TSE's
    format unreadable), in the auditor's words; None when every field reads."""
    checks: list[tuple[str, str, Any]] = [
        ("TSE_TANR", "is not a whole number", int),
        ("TSE_TA_SIGZ", "is not a whole number", int),
        ("TSE_TA_SIG", "is not base64", lambda v: base64.b64decode(v, validate=True)),
        ("TSE_TA_ENDE", "is not a DSFinV-K time stamp", parse_timestamp),
    ]
    for column, why, read in checks:
        value = row[column]
        try:
            read(value)
        except (ValueError, binascii.Error, FormatError):
            shown = value if len(value) <= 40 else value[:40] + "..."
            return f"{column} {shown!r} {why}"
    if time_format not in _TIME_FORMATS:
        return f"tse.csv TSE_ZEITFORMAT {time_format!r} is none of {', '.join(_TIME_FORMATS)}"
    if encoding == "ASCII" and not process_data.isascii():
        return "the processData is not ASCII, as tse.csv TSE_PD_ENCODING says"
    return None


_TIME_FORMATS = (
    "utcTime",
    "utcTimeWithSeconds",
    "unixTime",
    "generalizedTime",
    "generalizedTimeWithMilliseconds",
)


def _ber_process_data(signed: bytes, data: bytes) -> bytes:
    """The same Finish log with processData as BER constructed indefinite length
    (``a2 80 04 LL <data> 00 00``), as D-Trust TSEs sign it (tr03151.md): an auditor
    cannot know the encoding from the CSV files, so both are tried."""
    definite = der.context(2, data)
    ber = b"\xa2\x80" + der.octet_string(data) + b"\x00\x00"
    return signed.replace(definite, ber, 1)


def _log_times(time_format: str, end: datetime) -> list[LogTime]:
    """The Finish log's logTime as the TSE may have written it: ``utcTime`` names
    ASN.1 UTCTime, which TSEs write without seconds (DSFinV-K's ``utcTime``) or with
    them (``utcTimeWithSeconds``, as DER requires and opentse writes; opentse's exports
    before 2026-11-22 called it ``utcTime``): both are tried, the format's own first."""
    first = _log_time(time_format, end)
    if time_format == "utcTime":
        return [first, _log_time("utcTimeWithSeconds", end)]
    return [first]


def _log_time(time_format: str, end: datetime) -> LogTime:
    """The Finish log's logTime in the TSE's format (DSFinV-K 4.7 TSE_ZEITFORMAT)."""
    unix = int(end.timestamp())
    if time_format == "unixTime":
        return LogTime(TimeFormat.UNIX, unix)
    t = end.astimezone(UTC)
    if time_format == "utcTimeWithSeconds":
        return LogTime(TimeFormat.UTC, unix)
    if time_format == "utcTime":
        return LogTime(TimeFormat.UTC, unix - t.second, t.strftime("%y%m%d%H%MZ"))
    if time_format == "generalizedTime":
        return LogTime(TimeFormat.GENERALIZED, unix)
    if time_format == "generalizedTimeWithMilliseconds":
        text = t.strftime("%Y%m%d%H%M%S") + f".{t.microsecond // 1000:03d}Z"
        return LogTime(TimeFormat.GENERALIZED, unix, text)
    raise ValueError(f"unknown TSE_ZEITFORMAT {time_format!r}")
