"""Per-log work of the verifier: decode, parse the file name, check the signature.

This is the hot loop (the target is >= 90% of raw ``cryptography`` verify throughput
per core), so it keeps one key object per serial and hands plain r||s to OpenSSL as
DER directly; anything unusual (DER signatures, ECSDSA, odd lengths) goes to the
core's ``verify_signature``, which is the authority. Above ``PARALLEL_THRESHOLD``
logs the work runs in chunks on every core (``ProcessPoolExecutor``); the results are
the same either way.

TR-03151: serialNumber = SHA-256 of the public key point, so the key is found by the
serial, never by file names; the signature covers the decoder's ``signed_data``
exactly as stored (D-Trust's BER processData included).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from opentse.errors import OpenTSEError
from opentse.tr03151.fastdecode import LogFields, decode_log_fields
from opentse.tr03151.oids import ALGORITHM_BY_OID, hash_name
from opentse.tr03151.signature import public_key_from_point, verify_signature

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
# what one log yields: decoded fields (None: undecodable), the decoder's complaint,
# signature verdict (None: no certificate holds the key, or undecodable)
LogResult = tuple[LogFields | None, str | None, bool | None]


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
        size = self.size
        if len(signature) != 2 * size or not signature[0] or not signature[size]:
            return False  # odd lengths, leading zero octets: the general path decides
        r_high = signature[0] >> 7
        s_high = signature[size] >> 7
        der = (
            self.heads[2 * r_high + s_high]
            + signature[:size]
            + self.mids[s_high]
            + signature[size:]
        )
        try:
            self.key.verify(der, self.digest(data).digest(), self.prehashed)
        except InvalidSignature:
            return False
        return True


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


# (point, algorithm OID, signed data, signature): all a worker needs, cheap to pickle
Task = tuple[bytes, str, bytes, bytes]


def verify_chunk(tasks: Sequence[Task]) -> list[bool]:
    """Signature checks of one chunk (the worker entry point)."""
    verify = _CHECKER.verify
    return [verify(*task) for task in tasks]


def _decode_chunk(
    items: Sequence[bytes], points: Points
) -> tuple[list[LogResult], list[int], list[Task]]:
    """Decode every log; the signature task of each log whose key is known."""
    results: list[LogResult] = []
    positions: list[int] = []
    tasks: list[Task] = []
    get = points.get
    for data in items:
        try:
            fields = decode_log_fields(data)
        except (OpenTSEError, ValueError) as exc:
            results.append((None, str(exc), None))
            continue
        point = get(fields.serial_number)
        if point is not None:
            positions.append(len(results))
            tasks.append(
                (point, fields.signature_algorithm, fields.signed_data, fields.signature_value)
            )
        results.append((fields, None, None))
    return results, positions, tasks


def _with_signatures(
    results: list[LogResult], positions: list[int], oks: list[bool]
) -> list[LogResult]:
    for position, ok in zip(positions, oks, strict=True):
        results[position] = (results[position][0], None, ok)
    return results


def _single(items: Sequence[bytes], points: Points, progress: Progress | None) -> list[LogResult]:
    """Decode and verify in this process, without building task lists."""
    out: list[LogResult] = []
    get = points.get
    verify = _CHECKER.verify
    for begin in range(0, len(items), CHUNK):
        for data in items[begin : begin + CHUNK]:
            try:
                fields = decode_log_fields(data)
            except (OpenTSEError, ValueError) as exc:
                out.append((None, str(exc), None))
                continue
            point = get(fields.serial_number)
            if point is None:
                out.append((fields, None, None))
            else:
                ok = verify(
                    point, fields.signature_algorithm, fields.signed_data, fields.signature_value
                )
                out.append((fields, None, ok))
        if progress is not None:
            progress(min(CHUNK, len(items) - begin))
    return out


def default_workers(count: int) -> int:
    """One process for small exports (a pool costs more than it saves), every core
    for large ones."""
    return (os.cpu_count() or 1) if count > PARALLEL_THRESHOLD else 1


def check_logs(
    items: Sequence[bytes],
    points: Points,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[LogResult]:
    """Every log; results keep the input order and do not depend on ``workers``.

    With several workers this process decodes chunk after chunk while the workers
    verify the chunks already decoded: only bytes cross the process boundary
    (pickling decoded logs would cost more than decoding them).
    """
    if workers is None:
        workers = default_workers(len(items))
    if workers <= 1 or len(items) <= CHUNK:
        return _single(items, points, progress)
    out: list[LogResult] = []
    pending: list[tuple[list[LogResult], list[int], Future[list[bool]]]] = []

    def collect(block: bool) -> None:
        """Take finished chunks in order (all of them when ``block``)."""
        while pending:
            results, positions, future = pending[0]
            if not block and not future.done():
                return
            out.extend(_with_signatures(results, positions, future.result()))
            pending.pop(0)
            if progress is not None:
                progress(len(results))

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for begin in range(0, len(items), CHUNK):
            results, positions, tasks = _decode_chunk(items[begin : begin + CHUNK], points)
            pending.append((results, positions, pool.submit(verify_chunk, tasks)))
            collect(block=False)
        collect(block=True)
    return out
