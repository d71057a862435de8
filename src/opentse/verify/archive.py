"""Read one or more TR-03151 TAR exports into a model the checks work on.

Readers never trust member order (digest tr03151.md, "TAR export"): members are
classified by name (case-insensitive, ``./`` stripped), logs decoded with the core's
reader, certificates parsed as DER or PEM. Nothing here raises for bad content: what
cannot be read becomes a parse error and a finding, so the other checks still run.

``load_exports`` works in one pass: the archive is read in windows and scanned in
batches (``tarscan.scan``), each batch decoded here while the workers verify the
batches before it (``logcheck.LogPipeline``). A compressed archive (gzip, bzip2,
xz) is scanned decompressed as it is read (``verify.decompress``: streams checked
to their end, a cap against bombs). An archive the scan does not handle (links,
odd headers) is read by ``tarfile`` in stream mode instead,
member by member into the same batches (``_full_batches``): memory is bounded by
the decoded logs and one batch, never the archive (before 2026-11-21 such an
archive was read whole into memory, and every member listed; the tests keep that
reader as the reference, ``verify_data.collect_members``). A file that fails or
changes while it is read is UnreadableExportError with code ``E_EXPORT_READ``
(``verify.reading``: no memory map, so no SIGBUS when a file shrinks).
"""

from __future__ import annotations

import gc
import hashlib
import io
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from opentse.errors import OpenTSEError
from opentse.formats.tar import iter_members, parse_info_csv, parse_log_filename
from opentse.verify.decompress import Decompressed, compression_of
from opentse.verify.findings import Finding, error, warning
from opentse.verify.logcheck import (
    CHUNK,
    LogPipeline,
    Points,
    Progress,
    check_logs,
    default_workers,
)
from opentse.verify.logcheck import LogEntry as LogEntry  # re-exported: the checks' type
from opentse.verify.reading import ArchiveFile
from opentse.verify.reading import UnreadableExportError as UnreadableExportError
from opentse.verify.tarscan import (
    Damaged,
    Member,
    Refused,
    Truncated,
    Unusual,
    refuse_after_end,
    scan,
)

_CERT_NAME = re.compile(r"(?i)^([0-9a-f]+)_x509\.(cer|der|crt|pem)$")


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
        except ValueError:  # extensions are parsed lazily: one that does not parse
            return False  # makes no CA (its chain, names and key are checked as before)
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
    #: every readable info.csv with its member label: archives of several TSEs
    #: verified together each name their own (``info`` is the last one read)
    infos: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # decoded logs per serial (hex) in counter order; computed once by the checks
    by_serial: dict[str, list[LogEntry]] | None = None
    # signatures still being checked in the background (load_exports(settle=False))
    pending: LogPipeline | None = None

    def settle(self) -> None:
        """Wait until every log's ``signature_ok`` is known."""
        if self.pending is not None:
            pipeline, self.pending = self.pending, None
            pipeline.settle()


def member_label(source: Path, name: str, several: bool) -> str:
    """The file name findings use: the member name, prefixed by the archive when the
    run covers several archives."""
    return f"{source.name}:{name}" if several else name


def _normalise(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def load_certificates(file: str, data: bytes) -> list[CertEntry]:
    """Every certificate of a certificate file: one DER certificate, or each block of
    a PEM file (a bundle such as the TSE certificate with its CA chain, in any order;
    text between the blocks, as OpenSSL writes it, is skipped). One entry without a
    certificate when the file cannot be read.

    The file name (``<key hash>_X509.<ext>``) is the name of one certificate: the
    bundled one whose key it names, else the first, which the name check then
    reports; the others carry no name of their own."""
    match = _CERT_NAME.match(file.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    name_hash = match.group(1).lower() if match else None
    try:
        if data[:1] == b"\x30":  # DER: a SEQUENCE; PEM starts with text
            certs = [x509.load_der_x509_certificate(data)]
        else:
            certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return [CertEntry(file, data, None, None, None, name_hash)]
    read = [_cert_entry(file, data, cert) for cert in certs]
    entries = [entry for entry in read if entry is not None]
    if len(entries) < len(read):
        return [CertEntry(file, data, None, None, None, name_hash)]
    named = next((e for e in entries if e.key_hash == name_hash), entries[0])
    named.name_hash = name_hash
    return entries


def _cert_entry(file: str, data: bytes, cert: x509.Certificate) -> CertEntry | None:
    """The entry of one parsed certificate, its public key point hashed (none for a
    key type or curve ``cryptography`` cannot load: no log can be checked with it).
    None when a part the checks read does not parse: cryptography loads a
    certificate before it decodes its names and key, so a name that is no valid
    UTF-8 or a point off the curve raises ValueError only when read (found by
    fuzz/fuzz_verify.py)."""
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        key: object = cert.public_key()
    except UnsupportedAlgorithm:
        key = None
    except ValueError:
        return None
    point: bytes | None = None
    key_hash: str | None = None
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        key_hash = hashlib.sha256(point).hexdigest()
    return CertEntry(file, data, cert, point, key_hash, None)


def _sort_members(export: LoadedExport, members: Iterable[Member], points: Points) -> list[Member]:
    """The logs among ``members``; certificates (their keys into ``points``), info.csv
    and unknown members go into ``export`` as they come."""
    logs: list[Member] = []
    append = logs.append
    for member in members:
        label, base, data = member
        if base.endswith(".log"):
            append(member)
            continue
        lower = base.lower()
        if lower.endswith(".log"):
            append(member)
        elif _CERT_NAME.match(base) or lower.endswith((".cer", ".der", ".crt", ".pem")):
            for entry in load_certificates(label, data):
                export.certificates.append(entry)
                if entry.certificate is None:
                    export.parse_errors.append(label)
                    export.findings.append(
                        error("E_CERT_FORMAT", "not a readable DER or PEM certificate", label)
                    )
                elif entry.key_hash and entry.point:
                    points[bytes.fromhex(entry.key_hash)] = entry.point
        elif lower == "info.csv":
            export.info_files.append(label)
            try:
                export.info = parse_info_csv(data)
                export.infos.append((label, export.info))
            except (OpenTSEError, ValueError, UnicodeDecodeError) as exc:
                export.parse_errors.append(label)
                export.findings.append(error("E_INFO_FORMAT", f"info.csv unreadable: {exc}", label))
        else:
            export.findings.append(warning("W_UNKNOWN_MEMBER", _unknown_words(base), label))
    return logs


def _unknown_words(base: str) -> str:
    """What an unknown member is; one named like a log but for its extension is a log
    renamed, and the checks miss its signature counter (E_COUNTER_GAP)."""
    parsed = parse_log_filename(base.rsplit(".", 1)[0] + ".log")
    if parsed is None:
        return "member is neither a log, a certificate nor info.csv"
    return (
        f"member is named like the log of signature counter {parsed.signature_counter} "
        "but does not end in .log, so it is not read as a log: a log renamed? (TR-03151 "
        "names logs *.log; its counter shows as missing)"
    )


def _log_problems(export: LoadedExport) -> None:
    for log in export.logs:
        if log.problem is not None:
            export.parse_errors.append(log.file)
            why = log.problem.removeprefix("E_LOG_FORMAT: ")  # the code is the finding's
            export.findings.append(
                error(
                    "E_LOG_FORMAT",
                    f"the log cannot be decoded (cut short or altered), so its signature "
                    f"and counter cannot be checked: {why}",
                    log.file,
                )
            )


def decode_members(
    sources: list[str],
    members: Sequence[Member],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> LoadedExport:
    """Classify members; certificates first, so every log is verified as it is decoded."""
    export = LoadedExport(sources)
    points: Points = {}
    logs = _sort_members(export, members, points)
    export.logs = check_logs(logs, points, workers=workers, progress=progress)
    _log_problems(export)
    return export


_BASE = itemgetter(1)  # a member's file name


def _not_tar(source: Path, exc: BaseException) -> UnreadableExportError:
    """Why ``source`` cannot be verified, in words a user can act on: a path that is
    no file says so (not an OS error text), a ZIP (a DSFinV-K export given by
    mistake) names the command that checks it."""
    if isinstance(exc, FileNotFoundError):
        why = "no such file"
    elif isinstance(exc, IsADirectoryError):
        why = "a folder, not a TAR archive: name the export's .tar file(s)"
    elif isinstance(exc, PermissionError):
        why = "cannot be read: permission denied"
    else:
        why = f"not a readable TAR archive ({exc})"
        if _starts_with(source, b"PK\x03\x04"):
            why += (
                "; it is a ZIP file: unpack the TSE's .tar from it, or, for a DSFinV-K "
                "export, use `opentse dsfinvk check`"
            )
    return UnreadableExportError(f"{source}: {why}")


def _starts_with(source: Path, magic: bytes) -> bool:
    """Whether the regular file ``source`` begins with ``magic`` (False if unreadable)."""
    try:
        if not source.is_file():
            return False
        with source.open("rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


Scanned = bytes | ArchiveFile | Decompressed  # what ``scan`` reads an archive from


@contextmanager
def _opened(source: Path) -> Iterator[tuple[ArchiveFile, Scanned]]:
    """``source`` open, and what the scan reads: the windows of a regular file, or a
    pipe's or /proc file's octets read whole; a compressed one (gzip, bzip2, xz)
    decompressed as the scan reads it. UnreadableExportError if it won't open."""
    try:
        archive = ArchiveFile(source)
    except OSError as exc:
        raise _not_tar(source, exc) from exc
    with archive:
        data = archive if archive.size is not None else archive.read_all()
        head = data[:10] if isinstance(data, bytes) else data.read_at(0, 10)
        kind = compression_of(head)
        yield archive, (data if kind is None else Decompressed(source, kind, data))


def _cut_short(
    source: Path, archive: ArchiveFile, exc: Refused, data: Scanned
) -> UnreadableExportError:
    """The scan found the archive ends inside a member (tarfile would read it all to
    say so), a damaged header or data after the end (tarfile would end the archive
    there, silently). A
    file that shrank while it was read says that instead (E_EXPORT_READ): it is not
    a copy cut short but one still being written or replaced."""
    archive.check_unchanged()
    _stream_first(data)
    where = ""
    if isinstance(data, Decompressed):  # the scan's octets are the decompressed TAR's
        where = f"in the {data.kind}-decompressed TAR: "
    if isinstance(exc, Truncated):
        return UnreadableExportError(
            f"{source}: not a readable TAR archive ({where}{exc}: cut short, a copy not finished?)"
        )
    why = ": a damaged copy?" if isinstance(exc, Damaged) else ""
    return UnreadableExportError(f"{source}: not a readable TAR archive ({where}{exc}{why})")


def _stream_first(data: Scanned) -> None:
    """Before the TAR inside a compressed archive is judged (the scan refused it or
    leaves it to ``tarfile``): decompress the rest, so that a corrupt stream is
    named as the cause (bzip2, for one, hands out a block's octets before its CRC
    says they are wrong: they read as a damaged header)."""
    if isinstance(data, Decompressed):
        data.drain()


COMPRESSION_RATIO = 8  # a TSE export's TAR over its gzip/bzip2/xz (6-9 for vendors')


def tar_size(path: Path) -> int:
    """About how many octets of TAR ``path`` holds: its size, or for a compressed
    archive (its first octets, not its name) ``COMPRESSION_RATIO`` times that. What the
    worker count and the progress bar are decided on; the archive itself is read later.
    A file that cannot be read counts nothing here."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return 0
    return size * COMPRESSION_RATIO if compression_of(head) else size


def _estimated_logs(sources: list[Path]) -> int:
    """About one log per KiB of TAR, what ``default_workers`` decides on."""
    return sum(tar_size(path) for path in sources) // 1024


class _StartOver(Exception):
    """The scan refused archive ``index`` after handing out batches of it: read
    everything again, that archive with ``tarfile``."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _full_batches(
    source: Path, archive: ArchiveFile, data: Scanned, label: str
) -> Iterator[list[Member]]:
    """The regular files of an archive the scan refused, read by ``tarfile`` in
    stream mode (``iter_members``: links and odd members refused with its codes),
    ``CHUNK`` at a time, named as the scan's batches are (``label`` and the name
    without a leading ``./``). A compressed archive is decompressed here as for the
    scan (its checks and caps), to its end: ``tarfile`` stops reading at the
    end-of-archive blocks, before the last stream's check. Where ``tarfile``
    stopped, only zeros may be (``_tarfile_stops``)."""
    fresh = data.again() if isinstance(data, Decompressed) else None
    if isinstance(data, bytes):
        stream: BinaryIO = io.BytesIO(data)
    else:
        stream = (fresh or data).stream()
    with stream:
        members = iter_members(stream)
        batch: list[Member] = []
        append = batch.append
        while True:
            try:
                member = next(members, None)
            except UnreadableExportError:
                raise
            except (OSError, OpenTSEError, ValueError, EOFError) as exc:
                raise _not_tar(source, exc) from exc
            if member is None:
                break
            name = member.name
            base = _normalise(name) if name.startswith(("./", "/")) else name
            if base and not base.endswith("/"):
                short = base.rsplit("/", 1)[-1] if "/" in base else base
                append((label + base, short, member.data))
                if len(batch) >= CHUNK:
                    yield batch
                    batch = []
                    append = batch.append
        if fresh is not None:
            fresh.drain()
    _tarfile_stops(source, archive, data)
    yield batch


def _tarfile_stops(source: Path, archive: ArchiveFile, data: Scanned) -> None:
    """Refuse what ``tarfile`` read as a whole archive, but which goes on where it
    stopped: a header it could not read after the first (it takes it for the end
    without a word) or data after the end-of-archive blocks (two exports joined
    with ``cat``): the rest would go unverified, as the scan refuses for the
    archives it reads (``tarscan.Damaged``, ``Appended``). ``tarfile`` (the
    authority on these archives) reads it once more to say where it stops."""
    fresh = data.again() if isinstance(data, Decompressed) else None
    if isinstance(data, bytes):
        stream: BinaryIO = io.BytesIO(data)
    else:
        stream = (fresh or data).stream()
    try:
        with stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            while tar.next() is not None:
                tar.members.clear()  # type: ignore[attr-defined]  # it keeps each
            end = tar.offset  # type: ignore[attr-defined]
    except UnreadableExportError:
        raise
    except (OSError, tarfile.TarError, ValueError, EOFError) as exc:
        raise _not_tar(source, exc) from exc
    try:
        refuse_after_end(data.again() if isinstance(data, Decompressed) else data, end)
    except Refused as exc:
        raise _cut_short(source, archive, exc, data) from None


def _stream(
    sources: list[Path],
    workers: int | None,
    progress: Progress | None,
    full: set[int],
) -> LoadedExport:
    """Read and decode in one pass, the signatures checked by the workers meanwhile
    (``export.pending`` until settled). Archives the scan refuses before handing
    out a batch of them, and those in ``full``, are read by ``tarfile`` into the
    same pipeline; raises _StartOver when the scan refuses one later, and
    UnreadableExportError when an archive cannot be opened or read, is no TAR
    archive, or fails or changes while it is read."""
    export = LoadedExport([str(p) for p in sources])
    points: Points = {}
    several = len(sources) > 1
    if workers is None:
        workers = default_workers(_estimated_logs(sources))
    with LogPipeline(points, workers, progress) as pipeline:
        for index, source in enumerate(sources):
            label = f"{source.name}:" if several else ""
            with _opened(source) as (archive, data):
                batches = _full_batches(source, archive, data, label) if index in full else None
                if batches is None:
                    handed_out = False
                    try:
                        for batch in scan(data, label, CHUNK):
                            handed_out = True
                            # most batches hold nothing but logs: one C-level test
                            # instead of sorting member by member
                            if not all(map(str.endswith, map(_BASE, batch), repeat(".log"))):
                                batch = _sort_members(export, batch, points)
                            if batch:
                                pipeline.submit(batch)
                    except Refused as exc:
                        raise _cut_short(source, archive, exc, data) from None
                    except Unusual:
                        _stream_first(data)
                        if handed_out:
                            raise _StartOver(index) from None
                        batches = _full_batches(source, archive, data, label)
                for batch in batches or ():
                    batch = _sort_members(export, batch, points)
                    if batch:
                        pipeline.submit(batch)
                archive.check_unchanged()  # the verdict is about what is there now
    export.logs = pipeline.entries
    export.pending = pipeline
    _log_problems(export)
    return export


def member_batches(source: Path) -> Iterator[list[Member]]:
    """Every regular member of one archive, ``CHUNK`` at a time, read as
    ``load_exports`` reads it (windows by the scan, else ``tarfile`` as a stream),
    for readers that keep less than the verifier does (the DSFinV-K cross-check
    keeps one record per transaction). When the scan refuses the archive after
    handing out batches, the whole archive is read again by ``tarfile``: a consumer
    sees those members twice, so what it does with a member must be idempotent.
    Raises UnreadableExportError like ``load_exports``."""
    with _opened(source) as (archive, data):
        try:
            yield from scan(data, "", CHUNK)
        except Refused as exc:
            raise _cut_short(source, archive, exc, data) from None
        except Unusual:
            _stream_first(data)
            yield from _full_batches(source, archive, data, "")
        archive.check_unchanged()


def load_exports(
    paths: Iterable[Path],
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    settle: bool = True,
) -> LoadedExport:
    """Read, decode and signature-check every archive as one pool of logs.

    With ``settle=False`` it returns once every log is decoded, the signatures still
    being checked by the workers (``verify_loaded`` runs the other checks
    meanwhile, then calls ``export.settle()``). Raises UnreadableExportError when
    an input is not a TAR archive at all (code ``E_EXPORT_UNREADABLE``) or when a
    file fails or changes while it is read (``E_EXPORT_READ``: a read error, a file
    truncated or still being written), never SIGBUS.

    Memory: the decoded logs, one window or batch, never a whole archive (also
    compressed ones, or those with links, which ``tarfile`` reads as a stream).
    """
    sources = [Path(p) for p in paths]
    full: set[int] = set()
    with bulk():
        while True:
            try:
                export = _stream(sources, workers, progress, full)
            except _StartOver as again:  # rare: an odd member after the first batch
                full.add(again.index)
                continue
            if settle:
                export.settle()
            return export


@contextmanager
def bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while 10^5+ objects are made that form no
    cycles: its generation scans would otherwise cost ~10% of a verification run.

    On the way out everything tracked moves to the oldest generation
    (``gc.freeze()`` + ``gc.unfreeze()``, two list splices): otherwise the first
    young-generation collection after re-enabling walks every object made here
    (~0.5 us per log of a 10^5-log export, twice: once per young generation). They
    are scanned again at the next full collection, like any long-lived object.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()
