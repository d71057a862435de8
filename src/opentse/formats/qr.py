"""The receipt QR code of DSFinV-K Anhang I (digest: tr03151.md, "Receipt QR code").

``V0;<clientId>;<processType>;<processData>;<txn>;<sigCounter>;<start>;<logTime>;
<sigAlg>;<timeFormat>;<signature b64>;<public key b64>``

clientId and processType are PrintableStrings in the log message and so cannot hold
``;``; processData can (Bestellung-V1 order lines use it). The parser therefore takes a
fixed number of fields from both ends and leaves the rest, semicolons included, to
processData. Every field is validated and a failure names the field, because the
whole point of reading a receipt is telling a person what is wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from opentse.errors import FormatError
from opentse.tr03151.logtime import TimeFormat
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS

QR_VERSION = "V0"

# Field names as this module reports them, in QR order (German names of Anhang I in
# the comments): qr-code-version, kassen-seriennummer, processType, processData,
# transaktions-nummer, signatur-zaehler, start-zeit, log-time, sig-alg,
# log-time-format, signatur, public-key.
FIELD_NAMES: tuple[str, ...] = (
    "version",
    "clientId",
    "processType",
    "processData",
    "transactionNumber",
    "signatureCounter",
    "startTime",
    "logTime",
    "signatureAlgorithm",
    "logTimeFormat",
    "signature",
    "publicKey",
)
_HEAD = 3  # version, clientId, processType
_TAIL = 8  # transactionNumber .. publicKey

# X.680 PrintableString: letters, digits, space and ' ( ) + , - . / : = ?
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z")
_DIGITS = re.compile(r"[0-9]+")
_PROCESS_TYPE_MAX = 100  # TR-03151: processType PrintableString (SIZE(0..100))


class QRFormatError(FormatError):
    """A QR payload field is malformed; ``field`` is its name from ``FIELD_NAMES``."""

    code = "E_QR_FORMAT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", code="E_QR_FORMAT")
        self.field = field


@dataclass(frozen=True, slots=True)
class QRPayload:
    """The twelve fields of a receipt QR code, typed."""

    client_id: str
    process_type: str
    process_data: str
    transaction_number: int
    signature_counter: int
    start_time: datetime
    log_time: datetime
    signature_algorithm: str  # name, e.g. "ecdsa-plain-SHA256"
    time_format: TimeFormat
    signature: bytes
    public_key: bytes  # uncompressed point 04||X||Y
    version: str = QR_VERSION

    def to_text(self) -> str:
        return build_qr_payload(
            client_id=self.client_id,
            process_type=self.process_type,
            process_data=self.process_data,
            transaction_number=self.transaction_number,
            signature_counter=self.signature_counter,
            start_time=self.start_time,
            log_time=self.log_time,
            signature_algorithm=self.signature_algorithm,
            time_format=self.time_format,
            signature=self.signature,
            public_key=self.public_key,
        )


def format_qr_time(value: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.fffZ`` in UTC (Anhang I); naive datetimes are refused."""
    if value.tzinfo is None:
        raise ValueError("QR times must be timezone-aware")
    utc = value.astimezone(UTC)
    # f-string, not strftime: glibc's %Y does not pad years before 1000 to four digits,
    # so a payload the parser accepts (year 0024) would not print back
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def build_qr_payload(
    *,
    client_id: str,
    process_type: str,
    process_data: str,
    transaction_number: int,
    signature_counter: int,
    start_time: datetime,
    log_time: datetime,
    signature_algorithm: str,
    time_format: TimeFormat | str,
    signature: bytes,
    public_key: bytes,
) -> str:
    """The QR text for a finished transaction (signature and counter of the Finish log)."""
    fmt = TimeFormat(time_format)
    text = ";".join(
        (
            QR_VERSION,
            client_id,
            process_type,
            process_data,
            str(transaction_number),
            str(signature_counter),
            format_qr_time(start_time),
            format_qr_time(log_time),
            signature_algorithm,
            fmt.value,
            base64.b64encode(signature).decode("ascii"),
            base64.b64encode(public_key).decode("ascii"),
        )
    )
    parse_qr_payload(text)  # never hand out a payload our own parser would refuse
    return text


def _printable(field: str, value: str, *, max_len: int | None = None) -> str:
    if not value:
        raise QRFormatError(field, "is empty")
    if _PRINTABLE.fullmatch(value) is None:
        raise QRFormatError(field, "has characters outside PrintableString")
    if max_len is not None and len(value) > max_len:
        raise QRFormatError(field, f"is longer than {max_len} characters")
    return value


def _number(field: str, value: str) -> int:
    if _DIGITS.fullmatch(value) is None:
        raise QRFormatError(field, f"{value!r} is not a decimal number")
    number = int(value)
    if number < 1 or (len(value) > 1 and value[0] == "0"):
        raise QRFormatError(field, f"{value!r} is not a positive number without leading zeros")
    return number


def parse_qr_time(field: str, value: str) -> datetime:
    match = _TIME.fullmatch(value)
    if match is None:
        raise QRFormatError(field, f"{value!r} is not YYYY-MM-DDThh:mm:ss.fffZ")
    year, month, day, hour, minute, second, millis = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
    except ValueError as exc:
        raise QRFormatError(field, f"{value!r} is not a valid time ({exc})") from None


def _base64(field: str, value: str) -> bytes:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise QRFormatError(field, "is not valid base64") from None
    if not data:
        raise QRFormatError(field, "is empty")
    return data


_NAMES = {" ": "a space", "\t": "a tab", "\r": "a carriage return", "\n": "a line end",
          "\ufeff": "a byte order mark", "\u00a0": "a no-break space"}  # fmt: skip


def _blank(char: str) -> bool:
    return char.isspace() or char == "\ufeff"


def _spaces(chars: str) -> str:
    """White space as a person names it: ``a space``, ``2 characters ('\\t\\n')``."""
    if len(chars) == 1:
        return _NAMES.get(chars, f"the white space {chars!r}")
    return f"{len(chars)} white-space characters ({chars!r})"


def line_end(text: str) -> str:
    """The one line end (``\\n`` or ``\\r\\n``) that ``text`` ends with, else "": what
    ``echo`` or a scanner typing into a terminal adds after a QR text. It ends the
    line, it is not part of the payload (which ends with the public key's base64),
    so :func:`parse_qr_payload` takes the text without it; callers say they did."""
    for end in ("\r\n", "\n"):
        if text.endswith(end) and not (len(text) > len(end) and _blank(text[-len(end) - 1])):
            return end
    return ""


def _blank_run(text: str, *, at_end: bool) -> str:
    """The white space ``text`` starts (or ends) with."""
    chars = reversed(text) if at_end else iter(text)
    count = 0
    for char in chars:
        if not _blank(char):
            break
        count += 1
    return text[len(text) - count :] if at_end else text[:count]


def _check_ends(text: str) -> str:
    """``text`` without its line end; QRFormatError for any other white space around
    it (a payload begins with ``V0`` and ends with base64, DSFinV-K Anhang I: white
    space there was copied with it, and is never dropped silently)."""
    body = text[: len(text) - len(line_end(text))]
    lead = _blank_run(body, at_end=False)
    if lead:
        after = body[len(lead) : len(lead) + 3]
        raise QRFormatError(
            "payload",
            f"starts with {_spaces(lead)} before {after!r}: a receipt's QR text begins "
            f"with '{QR_VERSION};' (DSFinV-K Anhang I): what stands before it was copied "
            "with the text and is no part of it: remove it",
        )
    tail = _blank_run(body, at_end=True)
    if tail:
        raise QRFormatError(
            "payload",
            f"ends with {_spaces(tail)} after the public key: a receipt's QR text ends with "
            "the public key's base64 (DSFinV-K Anhang I); only one line end after it, as "
            "echo or a scanner adds, is taken as the end of the line: remove the rest",
        )
    return body


def parse_qr_payload(text: str) -> QRPayload:
    """Parse and validate a receipt QR text; raises QRFormatError naming the field.

    One line end after the text (:func:`line_end`) is taken as the end of the line;
    any other white space before or after it is an error naming it."""
    text = _check_ends(text)
    parts = text.split(";")
    if len(parts) < _HEAD + 1 + _TAIL:
        raise QRFormatError(
            "payload", f"has {len(parts)} fields separated by ';', expected at least 12"
        )
    head = parts[:_HEAD]
    tail = parts[-_TAIL:]
    process_data = ";".join(parts[_HEAD:-_TAIL])
    version, client_id, process_type = head
    txn, counter, start, log_time, alg, fmt, sig_b64, key_b64 = tail
    if version != QR_VERSION:
        raise QRFormatError("version", f"{version!r} is not {QR_VERSION}")
    _printable("clientId", client_id)
    _printable("processType", process_type, max_len=_PROCESS_TYPE_MAX)
    transaction_number = _number("transactionNumber", txn)
    signature_counter = _number("signatureCounter", counter)
    start_time = parse_qr_time("startTime", start)
    log_dt = parse_qr_time("logTime", log_time)
    if start_time > log_dt:
        raise QRFormatError("startTime", "lies after logTime (the Finish log's time)")
    if alg not in SIGNATURE_ALGORITHMS:
        raise QRFormatError("signatureAlgorithm", f"{alg!r} is not a TR-03116-5 algorithm")
    try:
        time_format = TimeFormat(fmt)
    except ValueError:
        raise QRFormatError(
            "logTimeFormat", f"{fmt!r} is not unixTime, utcTime or generalizedTime"
        ) from None
    signature = _base64("signature", sig_b64)
    public_key = _base64("publicKey", key_b64)
    if public_key[0] != 0x04 or len(public_key) % 2 != 1 or len(public_key) < 65:
        raise QRFormatError("publicKey", "is not an uncompressed EC point 04||X||Y")
    return QRPayload(
        client_id=client_id,
        process_type=process_type,
        process_data=process_data,
        transaction_number=transaction_number,
        signature_counter=signature_counter,
        start_time=start_time,
        log_time=log_dt,
        signature_algorithm=alg,
        time_format=time_format,
        signature=signature,
        public_key=public_key,
        version=version,
    )
