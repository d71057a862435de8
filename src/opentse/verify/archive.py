"""Read one or more TR-03151 TAR exports into a model the checks work on.

Readers never trust member order (digest tr03151.md, "TAR export"): members are
classified by name (case-insensitive, ``./`` stripped), logs decoded with the core's
reader, certificates parsed as DER or PEM. Nothing here raises for bad content: what
cannot be read becomes a parse error and a finding, so the other checks still run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from opentse.errors import OpenTSEError
from opentse.formats.tar import ParsedLogName, iter_members, parse_info_csv, parse_log_filename
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import LogMessage
from opentse.verify.findings import Finding, error, warning

_CERT_NAME = re.compile(r"(?i)^([0-9a-f]+)_x509\.(cer|der|crt|pem)$")


class UnreadableExportError(OpenTSEError):
    """The input is not a TAR archive at all (CLI exit status 2)."""

    code = "E_EXPORT_UNREADABLE"


@dataclass(slots=True)
class LogEntry:
    """One ``.log`` member; ``message`` is None when it could not be decoded."""

    file: str
    data: bytes
    message: LogMessage | None
    name: ParsedLogName | None


@dataclass(slots=True)
class CertEntry:
    """One certificate member; ``key_hash`` is the hex SHA-256 of 04||X||Y."""

    file: str
    data: bytes
    certificate: x509.Certificate | None
    point: bytes | None
    key_hash: str | None
    name_hash: str | None

    @property
    def is_ca(self) -> bool:
        if self.certificate is None:
            return False
        try:
            bc = self.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            return False
        return bool(bc.value.ca)


@dataclass(slots=True)
class LoadedExport:
    """Everything read from the given archives, in one pool (an export may continue in
    the next one: a transaction started in one export can finish in another)."""

    sources: list[str]
    logs: list[LogEntry] = field(default_factory=list)
    certificates: list[CertEntry] = field(default_factory=list)
    info: dict[str, str] | None = None
    info_files: list[str] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def member_label(source: Path, name: str, several: bool) -> str:
    """The file name findings use: the member name, prefixed by the archive when the
    run covers several archives."""
    return f"{source.name}:{name}" if several else name


def _normalise(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def load_certificate(file: str, data: bytes) -> CertEntry:
    """Parse a certificate file (DER or PEM) and hash its public key point."""
    match = _CERT_NAME.match(file.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    name_hash = match.group(1).lower() if match else None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        return CertEntry(file, data, None, None, None, name_hash)
    key = cert.public_key()
    point: bytes | None = None
    key_hash: str | None = None
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        key_hash = hashlib.sha256(point).hexdigest()
    return CertEntry(file, data, cert, point, key_hash, name_hash)


def decode_log(file: str, data: bytes) -> tuple[LogMessage | None, str | None]:
    """Decode one log with the core reader; the error text instead of raising."""
    try:
        return decode_log_message(data), None
    except (OpenTSEError, ValueError) as exc:
        return None, str(exc)


def add_member(export: LoadedExport, label: str, base: str, data: bytes) -> None:
    """Classify one member by its file name and add it to the export."""
    base = base.rsplit("/", 1)[-1]
    lower = base.lower()
    if lower.endswith(".log"):
        message, problem = decode_log(label, data)
        export.logs.append(LogEntry(label, data, message, parse_log_filename(base)))
        if problem is not None:
            export.parse_errors.append(label)
            export.findings.append(error("E_LOG_FORMAT", f"cannot decode: {problem}", label))
    elif _CERT_NAME.match(base) or lower.endswith((".cer", ".der", ".crt", ".pem")):
        entry = load_certificate(label, data)
        export.certificates.append(entry)
        if entry.certificate is None:
            export.parse_errors.append(label)
            export.findings.append(error("E_CERT_FORMAT", "not a DER or PEM certificate", label))
    elif lower == "info.csv":
        export.info_files.append(label)
        try:
            export.info = parse_info_csv(data)
        except (OpenTSEError, ValueError, UnicodeDecodeError) as exc:
            export.parse_errors.append(label)
            export.findings.append(error("E_INFO_FORMAT", f"info.csv unreadable: {exc}", label))
    else:
        export.findings.append(
            warning(
                "W_UNKNOWN_MEMBER", "member is neither a log, a certificate nor info.csv", label
            )
        )


def load_exports(paths: Iterable[Path]) -> LoadedExport:
    """Read every archive; raises UnreadableExportError only when a file is no TAR."""
    sources = [Path(p) for p in paths]
    export = LoadedExport([str(p) for p in sources])
    several = len(sources) > 1
    for source in sources:
        try:
            members = list(iter_members(source))
        except (OSError, OpenTSEError, ValueError, EOFError) as exc:
            raise UnreadableExportError(f"{source}: not a readable TAR archive ({exc})") from exc
        for member in members:
            base = _normalise(member.name)
            if not base or base.endswith("/"):
                continue
            add_member(export, member_label(source, base, several), base, member.data)
    return export
