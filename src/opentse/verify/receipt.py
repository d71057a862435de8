"""Verify a receipt from its QR code alone (digest tr03151.md, "Receipt QR code").

The Finish log's signed data is rebuilt here byte by byte from the QR fields, on
purpose WITHOUT the project's log-message encoder: a verifier that shares the
encoder with the signer would happily confirm the encoder's own mistakes. Layout:
``02 01 02 | 06 09 <tx OID> | 80 "FinishTransaction" | 81 clientId | 82 processData |
83 processType | 85 txn | 04 20 SHA256(pubkey) | 30 0C 06 0A <alg OID> | 02 counter |
<logTime>``. D-Trust writes processData BER constructed indefinite (``a2 80 04 .. 00
00``); that form is tried too. The signature is checked with the embedded public key
(plain r||s, DER as a fallback; the curve follows from the point).

A wrong signature cannot say which field was altered; the finding then lists every
signed field, and where another value of one field makes it verify (the other time
formats and algorithms; numbers and logTime off by one or two) names exactly that one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from opentse.errors import FormatError, OpenTSEError
from opentse.formats.qr import (
    QRFormatError,
    QRPayload,
    format_qr_time,
    line_end,
    parse_qr_payload,
)
from opentse.tr03151 import der
from opentse.tr03151.fastdecode import TRANSACTION, LogFields
from opentse.tr03151.logmessage import FINISH
from opentse.tr03151.logtime import TimeFormat
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS
from opentse.tr03151.signature import public_key_from_point, verify_signature
from opentse.verify.archive import LoadedExport
from opentse.verify.counters import logs_by_serial
from opentse.verify.findings import Finding, Severity, error, info, log_words, warning

_TX_LOG_OID = "0.4.0.127.0.7.3.7.1.1"  # TR-03151 5.1, written out again on purpose
SIGNED_FIELDS: tuple[str, ...] = (
    "clientId",
    "processType",
    "processData",
    "transactionNumber",
    "signatureCounter",
    "logTime",
    "signatureAlgorithm",
    "logTimeFormat",
    "signature",
    "publicKey",
)


# --- a tiny hand-written DER writer, independent of opentse.tr03151 -----------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _int_content(n: int) -> bytes:
    """Two's complement, minimal: a leading 00 when the high bit would be set."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def _oid_content(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def log_time_encodings(log_time: datetime, fmt: TimeFormat) -> list[bytes]:
    """The logTime CHOICE as a TSE would write it; whole seconds first, then (for
    GeneralizedTime with milliseconds) the fractional form DER allows."""
    utc = log_time.astimezone(UTC)
    whole = utc.replace(microsecond=0)
    if fmt is TimeFormat.UNIX:
        return [_tlv(0x02, _int_content(int(whole.timestamp())))]
    # f-strings, not strftime: glibc's %Y does not pad a year before 1000 to four digits
    clock = f"{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}"
    if fmt is TimeFormat.UTC:
        return [_tlv(0x17, f"{utc.year % 100:02d}{clock}Z".encode("ascii"))]
    out = [_tlv(0x18, f"{utc.year:04d}{clock}Z".encode("ascii"))]
    if utc.microsecond:
        frac = f"{utc.microsecond // 1000:03d}".rstrip("0")
        out.append(_tlv(0x18, f"{utc.year:04d}{clock}.{frac}Z".encode("ascii")))
    return out


def rebuild_signed_data(
    payload: QRPayload,
    *,
    time_format: TimeFormat | None = None,
    algorithm: str | None = None,
) -> Iterator[bytes]:
    """Every plausible byte string the Finish log's signature covers (DER first)."""
    fmt = time_format or payload.time_format
    alg_oid = SIGNATURE_ALGORITHMS[algorithm or payload.signature_algorithm][0]
    pd = payload.process_data.encode("utf-8")
    head = (
        _tlv(0x02, b"\x02")
        + _tlv(0x06, _oid_content(_TX_LOG_OID))
        + _tlv(0x80, b"FinishTransaction")
        + _tlv(0x81, payload.client_id.encode("ascii"))
    )
    process_data_forms = [_tlv(0x82, pd), b"\xa2\x80" + _tlv(0x04, pd) + b"\x00\x00"]
    tail = (
        _tlv(0x83, payload.process_type.encode("ascii"))
        + _tlv(0x85, _int_content(payload.transaction_number))
        + _tlv(0x04, hashlib.sha256(payload.public_key).digest())
        + _tlv(0x30, _tlv(0x06, _oid_content(alg_oid)))
        + _tlv(0x02, _int_content(payload.signature_counter))
    )
    for pd_form in process_data_forms:
        for time_form in log_time_encodings(payload.log_time, fmt):
            yield head + pd_form + tail + time_form


# the LogFields positions qr_rebuilds and check_finish_logs read by index
assert [LogFields._fields[i] for i in (0, 9, 10, 12, 15, 16)] == [
    "kind", "signed_data", "operation_type", "process_data",
    "additional_external_data", "additional_internal_data",
]  # fmt: skip


def qr_rebuilds(fields: LogFields) -> bool:
    """Whether a Finish log signs what :func:`rebuild_signed_data` can rebuild from a
    QR code: no additionalExternalData [4] or additionalInternalData [6] (no QR field
    holds them), and processData as one primitive ``[2]`` or D-Trust's one-piece BER
    form (not absent, not in several pieces). Runs per Finish log (the TAR reader of
    ``--tse-export``, ``check_finish_logs``): a substring search, no encoding."""
    # by index (LogFields order), not by name: a NamedTuple's names cost a call each
    signed, data, external, internal = fields[9], fields[12], fields[15], fields[16]
    if external is not None or internal is not None:
        return False
    size = len(data)
    length = bytes((size,)) if size < 0x80 else _length(size)
    if b"\x82" + length + data in signed:
        return True
    return b"\xa2\x80\x04" + length + data + b"\x00\x00" in signed


def process_data_form(signed: bytes) -> str | None:
    """How a Finish log's signed part holds processData when a QR rebuild cannot
    write it so: absent, or a constructed string (not one BER indefinite piece);
    None when a rebuild writes it. FormatError when the signed part is no TLV run."""
    elements = der.read_elements(signed)
    found = [e for e in elements if e.is_context(2)]
    if not found:
        return "no processData element [2] (a QR rebuild writes an empty one)"
    element = found[0]
    if not element.constructed:
        return None
    pieces = element.children()
    if element.indefinite and len(pieces) == 1:
        return None
    form = "indefinite" if element.indefinite else "definite"
    sizes = " + ".join(str(len(p.content)) for p in pieces)
    return (
        f"processData [2] as a constructed string of {form} length in {len(pieces)} "
        f"piece(s) of {sizes} octets (a QR code holds the text only; a rebuild writes "
        "it as one piece)"
    )


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    """Outcome of a receipt check; ``ok`` means no finding is an error."""

    text: str
    payload: QRPayload | None
    findings: tuple[Finding, ...]
    curve: str | None = None
    signed_data: bytes | None = None
    serial_number: str | None = field(default=None)

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)


def _verifies(payload: QRPayload, **overrides: object) -> bytes | None:
    alg = str(overrides.get("algorithm") or payload.signature_algorithm)
    oid = SIGNATURE_ALGORITHMS[alg][0]
    fmt = overrides.get("time_format")
    for data in rebuild_signed_data(
        payload, time_format=fmt if isinstance(fmt, TimeFormat) else None, algorithm=alg
    ):
        try:
            verify_signature(payload.public_key, oid, data, payload.signature)
        except (OpenTSEError, ValueError):
            continue
        return data
    return None


_NEAR = (-2, -1, 1, 2)  # typing slips in hand-copied receipts


def _candidates(payload: QRPayload) -> Iterator[tuple[str, str, QRPayload, dict[str, object]]]:
    """(field, value that would verify, payload, overrides) to try when it fails."""
    for fmt in TimeFormat:
        if fmt is not payload.time_format:
            yield "logTimeFormat", fmt.value, payload, {"time_format": fmt}
    for alg in SIGNATURE_ALGORITHMS:
        if alg != payload.signature_algorithm:
            yield "signatureAlgorithm", alg, payload, {"algorithm": alg}
    for delta in _NEAR:
        txn = payload.transaction_number + delta
        if txn > 0:
            yield "transactionNumber", str(txn), replace(payload, transaction_number=txn), {}
        counter = payload.signature_counter + delta
        if counter > 0:
            yield "signatureCounter", str(counter), replace(payload, signature_counter=counter), {}
        when = payload.log_time + timedelta(seconds=delta)
        yield "logTime", format_qr_time(when), replace(payload, log_time=when), {}


def _diagnose(payload: QRPayload) -> list[Finding]:
    """Name the field when another value of it makes the signature verify: the other
    time formats and algorithms, and neighbours of the numbers and of logTime."""
    found: list[Finding] = []
    for name, value, candidate, overrides in _candidates(payload):
        if _verifies(candidate, **overrides):
            found.append(
                error(
                    "E_RECEIPT_FIELD",
                    f"{name} is wrong: the signature verifies with {name} = {value}",
                    fields=(name,),
                )
            )
    return found


def verify_receipt_payload(payload: QRPayload, text: str = "") -> ReceiptResult:
    """Check an already parsed payload: key, rebuilt signed data, signature."""
    serial = hashlib.sha256(payload.public_key).hexdigest()
    try:
        key = public_key_from_point(payload.public_key, None)
    except (OpenTSEError, ValueError) as exc:
        finding = error(
            "E_RECEIPT_FIELD",
            f"publicKey is not a point on a supported curve ({exc})",
            fields=("publicKey",),
        )
        return ReceiptResult(text, payload, (finding,), serial_number=serial)
    curve = key.curve.name
    data = _verifies(payload)
    if data is not None:
        ok = info(
            "I_RECEIPT_OK",
            f"signature of transaction {payload.transaction_number} (counter "
            f"{payload.signature_counter}) verifies with the public key printed in the QR "
            f"code ({curve}, TSE serial {serial[:16]}...). Not proven by the receipt alone: "
            "that this key is the shop's TSE (find the transaction in the TSE's export with "
            "--tse-export, and check that export and its certificate with opentse verify), "
            "and its start time: the transaction's Start log signs that, this signature "
            "(the Finish log's) does not cover it; --tse-export compares it with the Start "
            "log",
        )
        return ReceiptResult(text, payload, (ok,), curve, data, serial)
    findings = _diagnose(payload)
    findings.append(
        error(
            "E_RECEIPT_SIGNATURE",
            "the signature does not verify over the rebuilt Finish log: one of "
            + ", ".join(SIGNED_FIELDS)
            + " was altered (not startTime: the Start log signs it, not this Finish log); "
            "or the Finish log signs more than a QR code holds (additionalExternalData [4], "
            "additionalInternalData [6], processData in several BER pieces): --tse-export "
            "says which when the TAR holds that Finish log",
            fields=SIGNED_FIELDS,
        )
    )
    return ReceiptResult(text, payload, tuple(findings), curve, None, serial)


def verify_receipt(text: str) -> ReceiptResult:
    """Parse and verify a receipt QR text; never raises for bad input, reports instead.

    A line end after the text (``echo``, a scanner) is taken as the end of the line,
    and a finding says so (I_QR_LINE_END): nothing is dropped silently."""
    try:
        payload = parse_qr_payload(text)
    except QRFormatError as exc:
        finding = error(exc.code, exc.message, fields=(exc.field,))
        return ReceiptResult(text, None, (finding,))
    result = verify_receipt_payload(payload, text)
    end = line_end(text)
    if not end:
        return result
    note = info(
        "I_QR_LINE_END",
        f"the text ends with a line end ({end!r}), as echo or a scanner adds after a QR "
        "text: taken as the end of the line, not as part of the QR payload, which ends "
        "with the public key",
        fields=("payload",),
    )
    return replace(result, findings=(*result.findings, note))


def _signed_extras(fields: LogFields) -> list[str]:
    """What a Finish log signs beyond what a QR code holds, in words."""
    out = []
    external, internal = fields.additional_external_data, fields.additional_internal_data
    if external is not None:
        out.append(f"additionalExternalData [4] ({len(external)} octets)")
    if internal is not None:
        out.append(
            f"additionalInternalData [6] ({len(internal)} octets; TR-03153 does not allow it)"
        )
    try:
        form = process_data_form(fields.signed_data)
    except FormatError:
        form = None
    if form is not None:
        out.append(form)
    return out


def check_finish_logs(export: LoadedExport) -> list[Finding]:
    """W_RECEIPT_NOT_VERIFIABLE for each Finish log that signs more than a receipt's
    QR code holds (:func:`qr_rebuilds`): the receipt of that transaction cannot be
    verified from its QR code by anyone (DSFinV-K Anhang I), whatever the TSE did
    right. One look per transaction log: a kind and name test, a substring search
    for the Finish logs."""
    findings: list[Finding] = []
    for entries in logs_by_serial(export).values():
        for entry in entries:
            fields = entry.fields
            # kind and operation by index, as in qr_rebuilds (names cost a call per log)
            if fields is None or fields[0] != TRANSACTION or fields[10] != FINISH:
                continue
            if qr_rebuilds(fields):
                continue
            extras = _signed_extras(fields)
            if not extras:
                continue
            what = log_words("transaction", fields.operation_type, fields.client_id,
                             fields.transaction_number, fields.signature_counter,
                             fields.serial_number)  # fmt: skip
            findings.append(
                warning(
                    "W_RECEIPT_NOT_VERIFIABLE",
                    f"{what} signs what a receipt's QR code cannot hold (DSFinV-K Anhang "
                    "I): " + "; ".join(extras) + ". The receipt of this transaction cannot "
                    "be verified from its QR code (opentse verify-receipt QR_TEXT "
                    "--tse-export with this TAR names it)",
                    entry.file,
                )
            )
    return findings
