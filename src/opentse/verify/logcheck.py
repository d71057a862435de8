"""Per-log work of the verifier: decode (``tr03151.fastdecode``), check the signature.

This is the hot loop (the target is >= 90% of raw ``cryptography`` verify throughput
per core; docs/performance.md, "Verifier"), so it keeps one ready verifier per key
and algorithm, hands plain r||s to OpenSSL as DER built by table and the digest as
``Prehashed``; anything unusual (DER signatures, ECSDSA, odd lengths) goes to the
core's ``verify_signature``, which is the authority. :class:`LogEntry` builds the
LogMessage and the parsed file name only when asked. Above ``PARALLEL_THRESHOLD``
logs the work runs in chunks on every core (``ProcessPoolExecutor``); the results are
the same either way.

TR-03151: serialNumber = SHA-256 of the public key point, so the key is found by the
serial, never by file names; the signature covers the decoder's ``signed_data``
exactly as stored (D-Trust's BER processData included).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from opentse.errors import OpenTSEError
from opentse.formats.tar import ParsedLogName, parse_log_filename
from opentse.tr03151.fastdecode import LogFields, to_message
from opentse.tr03151.logmessage import LogMessage
from opentse.tr03151.oids import ALGORITHM_BY_OID, hash_name
from opentse.tr03151.signature import public_key_from_point, verify_signature
from opentse.verify.logshape import decode as decode_log_fields

PARALLEL_THRESHOLD = 2000
CHUNK = 2000

# hash name -> (hashlib constructor, cryptography algorithm): the digest is computed
# with hashlib and handed over as Prehashed (about 1 us less per log than letting
# cryptography hash; same OpenSSL underneath)
_HASHES: dict[str, tuple[Callable[[bytes], hashlib._Hash], hashes.HashAlgorithm]] = {
    "sha224": (hashlib.sha224, hashes.SHA224()),
    "sha256": (hashlib.sha256, hashes.SHA256()),
    "sha384": (hashlib.sha384, hashes.SHA384()),
    "sha512": (hashlib.sha512, hashes.SHA512()),
    "sha3_224": (hashlib.sha3_224, hashes.SHA3_224()),
    "sha3_256": (hashlib.sha3_256, hashes.SHA3_256()),
    "sha3_384": (hashlib.sha3_384, hashes.SHA3_384()),
    "sha3_512": (hashlib.sha3_512, hashes.SHA3_512()),
}

Progress = Callable[[int], None]
# serial number (raw 32 bytes) -> public key point of the certificate holding it
Points = dict[bytes, bytes]


def _der_heads(size: int) -> tuple[list[bytes], list[bytes]]:
    """DER prefixes of ``SEQUENCE { INTEGER r, INTEGER s }`` for r, s of ``size``
    octets without a leading zero octet, by whether their top bit is set."""
    heads = []
    for r_high in (0, 1):
        for s_high in (0, 1):
            total = 4 + 2 * size + r_high + s_high
            head = bytes((0x30, total)) if total < 128 else bytes((0x30, 0x81, total))
            heads.append(head + bytes((0x02, size + r_high)) + b"\0" * r_high)
    mids = [bytes((0x02, size)), bytes((0x02, size + 1, 0))]
    return heads, mids


class _Verifier:
    """One key and algorithm, ready: plain r||s -> DER, digest -> Prehashed verify."""

    __slots__ = ("digest", "heads", "key", "mids", "prehashed", "size")

    def __init__(self, key: ec.EllipticCurvePublicKey, hash_name: str) -> None:
        self.key = key
        self.size = (key.curve.key_size + 7) // 8
        self.digest, algorithm = _HASHES[hash_name]
        self.prehashed = ec.ECDSA(Prehashed(algorithm))
        self.heads, self.mids = _der_heads(self.size)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * self.size:
            return False  # odd lengths (DER signatures?): the general path decides
        try:
            self.key.verify(self.der(signature), self.digest(data).digest(), self.prehashed)
        except InvalidSignature:
            return False
        return True

    def der(self, signature: bytes) -> bytes:
        """Plain r||s (two ``size``-octet halves) as DER ``SEQUENCE { r, s }``."""
        size = self.size
        if signature[0] and signature[size]:
            r_high = signature[0] >> 7
            s_high = signature[size] >> 7
            return (
                self.heads[2 * r_high + s_high]
                + signature[:size]
                + self.mids[s_high]
                + signature[size:]
            )
        # r or s shorter than the curve (1 in 128 logs): minimal DER the slow way
        return encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )


class SignatureChecker:
    """Caches one ready verifier per (key, algorithm); one per process."""

    def __init__(self) -> None:
        self._verifiers: dict[tuple[bytes, str], _Verifier | None] = {}

    def _verifier(self, point: bytes, oid: str) -> _Verifier | None:
        verifier: _Verifier | None = None
        if ALGORITHM_BY_OID.get(oid, "").startswith("ecdsa-plain-"):
            try:
                verifier = _Verifier(public_key_from_point(point, None), hash_name(oid))
            except (OpenTSEError, ValueError, KeyError):
                verifier = None
        self._verifiers[point, oid] = verifier
        return verifier

    def verify(self, point: bytes, oid: str, data: bytes, signature: bytes) -> bool:
        try:
            verifier = self._verifiers[point, oid]
        except KeyError:
            verifier = self._verifier(point, oid)
        if verifier is not None and verifier.verify(data, signature):
            return True
        # anything unusual (DER signatures, ECSDSA, leading zeros, a failure): the
        # core's verify_signature is the authority
        try:
            verify_signature(point, oid, data, signature)
        except (OpenTSEError, ValueError):
            return False
        return True


_CHECKER = SignatureChecker()


class LogEntry:
    """One ``.log`` member. ``fields`` is None when it could not be decoded
    (``problem`` says why); the LogMessage and the parsed file name are built on first
    use (an export has 10^5+ logs and most checks need neither)."""

    __slots__ = (
        "_message",
        "_name",
        "base_name",
        "data",
        "fields",
        "file",
        "problem",
        "signature_ok",
    )

    def __init__(
        self,
        file: str,  # the label findings use
        base_name: str,  # the member's file name without archive label or directories
        data: bytes,
        fields: LogFields | None,
        signature_ok: bool | None = None,  # None: no certificate holds its key
        problem: str | None = None,
    ) -> None:
        self.file = file
        self.base_name = base_name
        self.data = data
        self.fields = fields
        self.signature_ok = signature_ok
        self.problem = problem
        self._message: LogMessage | None = None
        self._name: ParsedLogName | bool | None = False  # False: not parsed yet

    @property
    def message(self) -> LogMessage | None:
        if self._message is None and self.fields is not None:
            self._message = to_message(self.fields)
        return self._message

    @property
    def name(self) -> ParsedLogName | None:
        if self._name is False:
            self._name = parse_log_filename(self.base_name)
        assert self._name is not True
        return self._name


Member = tuple[str, str, bytes]  # (label for findings, file name, data)


def _check_chunk(members: Sequence[Member], points: Points) -> list[LogEntry]:
    """Decode every log and verify each whose key is known."""
    entries: list[LogEntry] = []
    append = entries.append
    get = points.get
    check = _CHECKER.verify
    for label, base, data in members:
        try:
            fields = decode_log_fields(data)
        except (OpenTSEError, ValueError) as exc:
            append(LogEntry(label, base, data, None, None, str(exc)))
            continue
        point = get(fields.serial_number)
        if point is None:
            append(LogEntry(label, base, data, fields))
        else:
            ok = check(
                point, fields.signature_algorithm, fields.signed_data, fields.signature_value
            )
            append(LogEntry(label, base, data, fields, ok))
    return entries


def default_workers(count: int) -> int:
    """One process for small exports (a pool costs more than it saves), every core
    for large ones."""
    return (os.cpu_count() or 1) if count > PARALLEL_THRESHOLD else 1


def check_logs(
    members: Sequence[Member],
    points: Points,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[LogEntry]:
    """Every log; entries keep the input order and do not depend on ``workers``.

    With several workers, chunks are decoded and verified on a pool of threads:
    ``cryptography`` releases the GIL while OpenSSL verifies (~95% of a log's cost),
    so threads run the signatures in parallel with no process start-up, no pickling
    and no copies of the logs.
    """
    if workers is None:
        workers = default_workers(len(members))
    check = partial(_check_chunk, points=points)
    chunks = [members[begin : begin + CHUNK] for begin in range(0, len(members), CHUNK)]
    out: list[LogEntry] = []
    if workers <= 1 or len(chunks) <= 1:
        results: Iterable[list[LogEntry]] = map(check, chunks)
        for entries in results:
            out += entries
            if progress is not None:
                progress(len(entries))
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for entries in pool.map(check, chunks):
            out += entries
            if progress is not None:
                progress(len(entries))
    return out
