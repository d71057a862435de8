"""TR-03151 TAR exports: member names, info.csv, a streaming writer and a safe reader.

Spec (digest tr03151.md, "TAR export"; TR-03151 v1.0.1 5.1.2): POSIX ustar, regular
files only, no directories. Members: ``info.csv``, ``<serial hex>_X509.<ext>``
certificates and one ``.log`` file per log message, named

    <Unixt|Utc|Gent>_<time>_Sig-<ctr>_Log-Tra_No-<txn>_<Start|Update|Finish>_Client-<id>[_Fc-<n>].log
    <Unixt|Utc|Gent>_<time>_Sig-<ctr>_Log-Sys_<operationType>[_Fc-<n>].log
    <Unixt|Utc|Gent>_<time>_Sig-<ctr>_Log-Aud[_Fc-<n>].log

Client ids (and system operation types) go into names as they are when they consist of
PrintableString characters other than ``/``; any other character (``/`` would make a
path, ``_`` would make names ambiguous, ``%``, non-ASCII) is written as ``%XX`` (UTF-8,
upper-case hex) and ``parse_log_filename`` undoes it. Real client ids (UUIDs, register
serial numbers) never need it. ``_Fc-<n>`` is only needed when two names collide; the
signature counter in every name makes that impossible within one TSE's export.

Writer: ustar headers; a member whose name does not fit the 100-byte ustar name field
gets a POSIX.1-2001 pax extended header (``path``) in front of it, which every
POSIX reader understands (the ustar prefix field cannot help: our names hold no ``/``).
Headers are written by hand around ``TarInfo.tobuf`` so memory does not grow with the
number of members (``tarfile.TarFile`` keeps a list of all members).

Reader: streams any tar ``tarfile`` reads (ustar, pax, GNU, gzip-compressed), never
writes to disk, tolerates ``./`` prefixes, directory entries (skipped) and any member
order, and refuses links, devices, FIFOs, sparse files, absolute names and ``..``
(``FormatError`` E_TAR_UNSAFE_MEMBER). Members larger than ``MAX_MEMBER_SIZE``
(16 MiB; a log message is at most a few KiB) raise E_TAR_MEMBER_TOO_LARGE.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Protocol
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from opentse.errors import FormatError
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import LogType

BLOCK = 512
RECORD = 20 * BLOCK  # blocking factor 20, as tar and tarfile write
MAX_MEMBER_SIZE = 16 * 1024 * 1024
INFO_CSV = "info.csv"

# ASN.1 PrintableString minus "/": written into names literally.
_NAME_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-.:=?")

_TX_NAME_PART = {
    "starttransaction": "Start",
    "updatetransaction": "Update",
    "finishtransaction": "Finish",
    "start": "Start",
    "update": "Update",
    "finish": "Finish",
}
_TX_OPERATION = {
    "start": "StartTransaction",
    "update": "UpdateTransaction",
    "finish": "FinishTransaction",
}

_LOG_NAME_RE = re.compile(
    r"(?P<prefix>unixt|utc|gent)_(?P<time>[^_/]+)_sig-(?P<sig>[0-9]+)_log-"
    r"(?:tra_no-(?P<txn>[0-9]+)_(?P<op>start|update|finish)_client-(?P<client>[^/]*?)"
    r"|sys_(?P<sysop>[^/]+?)"
    r"|(?P<aud>aud))"
    r"(?:_fc-(?P<fc>[0-9]+))?\.log",
    re.IGNORECASE,
)
_CERT_NAME_RE = re.compile(r"(?P<hex>[0-9a-f]+)_x509\.(?P<ext>cer|der|crt|pem)", re.IGNORECASE)


# --------------------------------------------------------------------------- names


@functools.lru_cache(maxsize=4096)  # client ids repeat on every log of a register
def _escape(text: str) -> str:
    return "".join(
        ch if ch in _NAME_SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in text
    )


def log_filename(
    log_type: LogType,
    log_time: LogTime,
    signature_counter: int,
    *,
    operation: str = "",
    transaction_number: int | None = None,
    client_id: str | None = None,
    fc: int | None = None,
) -> str:
    """The TAR member name of a log message (TR-03151 5.1.2; module docstring).

    ``operation``: for transaction logs ``StartTransaction``/``UpdateTransaction``/
    ``FinishTransaction`` (or ``Start``/``Update``/``Finish``, any case); for system
    logs the operationType. Raises ValueError when a field the type needs is missing.
    """
    if signature_counter < 0:
        raise ValueError("signature counter must not be negative")
    name = f"{log_time.format.tar_prefix}_{log_time.tar_time()}_Sig-{signature_counter}_Log-"
    if log_type is LogType.TRANSACTION:
        part = _TX_NAME_PART.get(operation.lower())
        if part is None:
            raise ValueError(f"not a transaction operation: {operation!r}")
        if transaction_number is None or transaction_number < 0:
            raise ValueError("transaction logs need a transaction number")
        if not client_id:
            raise ValueError("transaction logs need a client id")
        name += f"Tra_No-{transaction_number}_{part}_Client-{_escape(client_id)}"
    elif log_type is LogType.SYSTEM:
        if not operation:
            raise ValueError("system logs need an operation type")
        name += f"Sys_{_escape(operation)}"
    else:
        name += "Aud"
    if fc is not None:
        if fc < 0:
            raise ValueError("file counter must not be negative")
        name += f"_Fc-{fc}"
    return name + ".log"


@dataclass(frozen=True, slots=True)
class ParsedLogName:
    """The fields of a log file name. ``operation`` is the full operationType for
    transaction logs (``StartTransaction`` ...), as written for system logs, "" for
    audit logs; ``client_id`` is unescaped."""

    time_format: TimeFormat
    time_text: str
    signature_counter: int
    log_type: LogType
    operation: str = ""
    transaction_number: int | None = None
    client_id: str | None = None
    fc: int | None = None

    @property
    def time_prefix(self) -> str:
        return self.time_format.tar_prefix

    def unix_time(self) -> int | None:
        """The time in the name as unix seconds, None if it cannot be read."""
        text = self.time_text
        try:
            if self.time_format is TimeFormat.UNIX:
                return int(text)
            digits = text.upper().removesuffix("Z").split(".")[0]
            fmt = "%y%m%d%H%M%S" if self.time_format is TimeFormat.UTC else "%Y%m%d%H%M%S"
            if self.time_format is TimeFormat.UTC and len(digits) == 10:
                fmt = "%y%m%d%H%M"  # UTCTime may omit seconds
            return int(datetime.strptime(digits, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            return None


def parse_log_filename(name: str) -> ParsedLogName | None:
    """Parse a log member name (case-insensitive; directories before the last ``/`` are
    ignored); None if it is not a log file name."""
    base = name.rsplit("/", 1)[-1]
    m = _LOG_NAME_RE.fullmatch(base)
    if m is None:
        return None
    if m["txn"] is not None:
        log_type, operation = LogType.TRANSACTION, _TX_OPERATION[m["op"].lower()]
    elif m["sysop"] is not None:
        log_type, operation = LogType.SYSTEM, unquote(m["sysop"])
    else:
        log_type, operation = LogType.AUDIT, ""
    return ParsedLogName(
        time_format=TimeFormat.from_tar_prefix(m["prefix"]),
        time_text=m["time"],
        signature_counter=int(m["sig"]),
        log_type=log_type,
        operation=operation,
        transaction_number=int(m["txn"]) if m["txn"] is not None else None,
        client_id=unquote(m["client"]) if m["client"] is not None else None,
        fc=int(m["fc"]) if m["fc"] is not None else None,
    )


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate member's content: DER, or PEM (D-Trust's ``.crt``, fiskaly's ``.pem``)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def certificate_filename(cert_der: bytes) -> str:
    """``<SHA-256 of the certificate's public key point, upper hex>_X509.cer``, the
    naming every vendor archive uses (uncompressed point, as for the serial number).
    PEM input is accepted too."""
    public = load_certificate(cert_der).public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("TSE certificates carry elliptic-curve keys")
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return f"{hashlib.sha256(point).hexdigest().upper()}_X509.cer"


def parse_certificate_filename(name: str) -> str | None:
    """The hex part (lower case) of a certificate member name, None if it is not one."""
    m = _CERT_NAME_RE.fullmatch(name.rsplit("/", 1)[-1])
    return m["hex"].lower() if m else None


# --------------------------------------------------------------------------- info.csv


def info_csv(description: str, manufacturer: str, version: str) -> bytes:
    """``"description:","<d>","manufacturer:","<m>","version:","<v>"`` (quoted dialect)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(
        ["description:", description, "manufacturer:", manufacturer, "version:", version]
    )
    return out.getvalue().encode("utf-8")


def tse_info_csv(tse_id: str, serial: bytes, description: str = "", version: str = "") -> bytes:
    """opentse's info.csv for one TSE: what identifies it, as the vendors' do
    (fiskaly writes the TSS's description and id, D-Trust its TSE's id): the TSE's
    own description (``initialize``/``configure``), its id and serial (hex SHA-256
    of the public key, the certificate file's name), and that it is not certified."""
    who = f"opentse software TSE {tse_id} serial {serial.hex()} (not BSI-certified)"
    own = " ".join(description.split())  # one line, as the vendors' files have
    text = f"{own} - {who}" if own else who
    return info_csv(text, "opentse", version or _package_version())


def _package_version() -> str:
    from opentse import __version__

    return __version__


def parse_info_csv(data: bytes) -> dict[str, str]:
    """Read info.csv in both dialects (quoted; unquoted with spaces after the commas).

    Cells come in pairs ``key:`` / value on each line; keys are returned lower-case
    without the colon, values stripped. The first occurrence of a key wins.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    result: dict[str, str] = {}
    try:
        rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    except csv.Error as exc:  # e.g. a bare CR inside a cell
        raise FormatError(f"info.csv is no CSV: {exc}", code="E_INFO_CSV") from None
    for row in rows:
        for i in range(0, len(row) - 1, 2):
            key = row[i].strip()
            if not key.endswith(":"):
                raise FormatError(
                    f"info.csv: expected 'key:' but found {key[:40]!r}", code="E_INFO_CSV"
                )
            result.setdefault(key[:-1].strip().lower(), row[i + 1].strip())
    if not result:
        raise FormatError("info.csv holds no 'key:','value' pairs", code="E_INFO_CSV")
    return result


# --------------------------------------------------------------------------- writer


def _check_name(name: str) -> str:
    """Normalized member name (leading ``./`` removed) or FormatError if unsafe."""
    while name.startswith("./"):
        name = name[2:]
    parts = re.split(r"[/\\]", name)
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or re.match(r"[A-Za-z]:", name)
        or ".." in parts
    ):
        raise FormatError(f"unsafe TAR member name {name[:120]!r}", code="E_TAR_UNSAFE_MEMBER")
    return name


class Sink(Protocol):
    """Anything with ``write(bytes)``: a file, a pipe, a socket wrapper, a response body."""

    def write(self, data: bytes, /) -> object: ...


class TarWriter:
    """Streams a TR-03151 TAR to ``fileobj`` (needs only ``write``; pipes and sockets
    work). Memory use does not depend on the size of the archive. Leaving a ``with``
    block by an exception writes no end-of-archive blocks, so a broken export is
    recognisably truncated."""

    def __init__(self, fileobj: Sink) -> None:
        self._out = fileobj
        self._written = 0
        self._closed = False

    def __enter__(self) -> TarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def add(self, name: str, data: bytes, mtime: int) -> None:
        """Append one regular file (mode 0644, owner 0/0)."""
        if self._closed:
            raise ValueError("TarWriter is closed")
        info = tarfile.TarInfo(_check_name(name))
        info.size = len(data)
        info.mtime = int(mtime)
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self._write(data)
        pad = -len(data) % BLOCK
        if pad:
            self._write(b"\x00" * pad)

    def close(self) -> None:
        """Two zero blocks end the archive; pad to a whole record. Does not close
        ``fileobj``."""
        if self._closed:
            return
        self._closed = True
        end = 2 * BLOCK
        end += -(self._written + end) % RECORD
        self._write(b"\x00" * end)
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()


# --------------------------------------------------------------------------- reader


@dataclass(frozen=True, slots=True)
class TarMember:
    name: str  # normalized: no leading "./"
    data: bytes
    mtime: int = 0


def _iter_tar(tar: tarfile.TarFile, max_member_size: int) -> Iterator[TarMember]:
    while True:
        info = tar.next()
        tar.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every member
        if info is None:
            return
        if info.isdir():
            continue
        name = _check_name(info.name)
        if not info.isreg() or info.issparse():
            raise FormatError(
                f"TAR member {name[:120]!r} is not a regular file", code="E_TAR_UNSAFE_MEMBER"
            )
        if info.size > max_member_size:
            raise FormatError(
                f"TAR member {name[:120]!r} is larger than {max_member_size} bytes",
                code="E_TAR_MEMBER_TOO_LARGE",
            )
        fh = tar.extractfile(info)
        data = fh.read() if fh is not None else b""
        if len(data) != info.size:
            raise FormatError(f"TAR member {name[:120]!r} is truncated", code="E_TAR_FORMAT")
        yield TarMember(name, data, int(info.mtime))


def iter_members(
    source: str | os.PathLike[str] | BinaryIO, *, max_member_size: int = MAX_MEMBER_SIZE
) -> Iterator[TarMember]:
    """Yield the regular files of a TAR (path or readable binary file object), in
    archive order, streaming. Raises FormatError (E_TAR_FORMAT, E_TAR_UNSAFE_MEMBER,
    E_TAR_MEMBER_TOO_LARGE)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fileobj:
            yield from _iter_fileobj(fileobj, max_member_size)
    else:
        yield from _iter_fileobj(source, max_member_size)


def _iter_fileobj(fileobj: BinaryIO, max_member_size: int) -> Iterator[TarMember]:
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            yield from _iter_tar(tar, max_member_size)
            # tarfile ends quietly where the data ends; an end-of-archive block read
            # leaves the stream one block past the header it tried (POSIX ustar ends
            # with zero blocks, every vendor's export has them): fewer octets there
            # is a copy cut short, whose cut-off logs would otherwise go unnoticed
            if tar.fileobj.tell() - tar.offset != BLOCK:
                raise FormatError(
                    "not a readable TAR archive: it ends without its end-of-archive"
                    " blocks (cut short, a copy not finished?)",
                    code="E_TAR_FORMAT",
                )
    except (tarfile.TarError, EOFError) as exc:
        raise FormatError(f"not a readable TAR archive: {exc}", code="E_TAR_FORMAT") from None
