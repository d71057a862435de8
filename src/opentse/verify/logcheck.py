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

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from opentse.errors import OpenTSEError
from opentse.formats.tar import ParsedLogName, parse_log_filename
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import LogMessage
from opentse.tr03151.oids import ALGORITHM_BY_OID, hash_name
from opentse.tr03151.signature import public_key_from_point, verify_signature

PARALLEL_THRESHOLD = 2000
CHUNK = 1000

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}

Progress = Callable[[int], None]
# serial number (raw 32 bytes) -> public key point of the certificate holding it
Points = dict[bytes, bytes]


@dataclass(slots=True)
class LogResult:
    """What one log yields. ``signature_ok`` is None when no certificate holds the key
    (or the log could not be decoded); ``problem`` is the decoder's complaint."""

    message: LogMessage | None
    name: ParsedLogName | None
    problem: str | None
    signature_ok: bool | None


class SignatureChecker:
    """Caches key objects and hash instances; one per process."""

    def __init__(self) -> None:
        self._keys: dict[bytes, tuple[ec.EllipticCurvePublicKey, int] | None] = {}
        self._algs: dict[str, ec.ECDSA | None] = {}

    def _key(self, point: bytes) -> tuple[ec.EllipticCurvePublicKey, int] | None:
        if point not in self._keys:
            try:
                key = public_key_from_point(point, None)
                self._keys[point] = (key, (key.curve.key_size + 7) // 8)
            except (OpenTSEError, ValueError):
                self._keys[point] = None
        return self._keys[point]

    def _alg(self, oid: str) -> ec.ECDSA | None:
        if oid not in self._algs:
            name = ALGORITHM_BY_OID.get(oid, "")
            if name.startswith("ecdsa-plain-"):
                self._algs[oid] = ec.ECDSA(_HASHES[hash_name(oid)]())
            else:
                self._algs[oid] = None
        return self._algs[oid]

    def verify(self, point: bytes, oid: str, data: bytes, signature: bytes) -> bool:
        key = self._key(point)
        alg = self._alg(oid)
        if key is not None and alg is not None and len(signature) == 2 * key[1]:
            size = key[1]
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            try:
                key[0].verify(der, data, alg)
                return True
            except InvalidSignature:
                pass
        try:
            verify_signature(point, oid, data, signature)
        except (OpenTSEError, ValueError):
            return False
        return True


_CHECKER = SignatureChecker()


# (point, algorithm OID, signed data, signature): all a worker needs, cheap to pickle
Task = tuple[bytes, str, bytes, bytes]


def decode_log(name: str, data: bytes, points: Points) -> tuple[LogResult, Task | None]:
    """Decode one log member and parse its name; the signature task if its key is
    known (``signature_ok`` of the result is filled in by whoever runs the task)."""
    parsed = parse_log_filename(name)
    try:
        msg = decode_log_message(data)
    except (OpenTSEError, ValueError) as exc:
        return LogResult(None, parsed, str(exc), None), None
    point = points.get(msg.serial_number)
    if point is None or msg.signed_data is None:
        return LogResult(msg, parsed, None, None), None
    task = (point, msg.signature_algorithm, msg.signed_data, msg.signature_value)
    return LogResult(msg, parsed, None, None), task


def verify_chunk(tasks: Sequence[Task]) -> list[bool]:
    """Signature checks of one chunk (the worker entry point)."""
    return [_CHECKER.verify(*task) for task in tasks]


def _decode_chunk(
    items: Sequence[tuple[str, bytes]], points: Points
) -> tuple[list[LogResult], list[int], list[Task]]:
    results: list[LogResult] = []
    positions: list[int] = []
    tasks: list[Task] = []
    for name, data in items:
        result, task = decode_log(name, data, points)
        if task is not None:
            positions.append(len(results))
            tasks.append(task)
        results.append(result)
    return results, positions, tasks


def _with_signatures(
    results: list[LogResult], positions: list[int], oks: list[bool]
) -> list[LogResult]:
    for position, ok in zip(positions, oks, strict=True):
        results[position].signature_ok = ok
    return results


def check_logs(
    items: Sequence[tuple[str, bytes]],
    points: Points,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[LogResult]:
    """Every log; results keep the input order and do not depend on ``workers``.

    With several workers this process decodes chunk after chunk while the workers
    verify the chunks already decoded: only bytes cross the process boundary
    (pickling decoded log objects would cost more than decoding them again).
    """
    if workers is None:
        workers = (os.cpu_count() or 1) if len(items) > PARALLEL_THRESHOLD else 1
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    out: list[LogResult] = []
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            results, positions, tasks = _decode_chunk(chunk, points)
            out.extend(_with_signatures(results, positions, verify_chunk(tasks)))
            if progress is not None:
                progress(len(chunk))
        return out
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
        for chunk in chunks:
            results, positions, tasks = _decode_chunk(chunk, points)
            pending.append((results, positions, pool.submit(verify_chunk, tasks)))
            collect(block=False)
        collect(block=True)
    return out
