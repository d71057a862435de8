"""Check every log's signature against the certificate whose key hash is its serial.

TR-03151: serialNumber = SHA-256 of the public key point, so the certificate is found
by hashing keys, never by trusting file names. The signature covers the decoder's
``signed_data`` exactly as stored (D-Trust's BER processData included).

Speed matters for big exports (the target is >= 90% of raw ``cryptography`` verify
throughput per core): the hot path keeps one key object per serial and hands plain
r||s to OpenSSL as DER directly; anything unusual (DER signatures, ECSDSA, odd
lengths) goes to the core's ``verify_signature``, which is the authority. Archives
above ``PARALLEL_THRESHOLD`` logs are verified in chunks on every core.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from opentse.errors import OpenTSEError
from opentse.tr03151.oids import ALGORITHM_BY_OID, hash_name
from opentse.tr03151.signature import public_key_from_point, verify_signature
from opentse.verify.archive import LoadedExport
from opentse.verify.findings import Finding, error

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

# (point, algorithm OID, signed data, signature)
Task = tuple[bytes, str, bytes, bytes]
Progress = Callable[[int], None]


class _Verifier:
    """Caches key objects and hash instances; one per process."""

    def __init__(self) -> None:
        self._keys: dict[bytes, ec.EllipticCurvePublicKey | None] = {}
        self._algs: dict[str, ec.ECDSA | None] = {}

    def _key(self, point: bytes) -> ec.EllipticCurvePublicKey | None:
        if point not in self._keys:
            try:
                self._keys[point] = public_key_from_point(point, None)
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

    def verify(self, task: Task) -> bool:
        point, oid, data, signature = task
        key = self._key(point)
        alg = self._alg(oid)
        if key is not None and alg is not None:
            size = (key.curve.key_size + 7) // 8
            if len(signature) == 2 * size:
                der = encode_dss_signature(
                    int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
                )
                try:
                    key.verify(der, data, alg)
                    return True
                except InvalidSignature:
                    pass
        try:
            verify_signature(point, oid, data, signature)
        except (OpenTSEError, ValueError):
            return False
        return True


_VERIFIER = _Verifier()


def verify_chunk(tasks: Sequence[Task]) -> list[bool]:
    """Verify a chunk in this process (also the worker entry point)."""
    return [_VERIFIER.verify(t) for t in tasks]


def verify_tasks(
    tasks: Sequence[Task], *, workers: int | None = None, progress: Progress | None = None
) -> list[bool]:
    """Verify all tasks, on every core when there are many; keeps the order."""
    if workers is None:
        workers = (os.cpu_count() or 1) if len(tasks) > PARALLEL_THRESHOLD else 1
    chunks = [tasks[i : i + CHUNK] for i in range(0, len(tasks), CHUNK)]
    results: list[bool] = []
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            results.extend(verify_chunk(chunk))
            if progress is not None:
                progress(len(chunk))
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for chunk, done in zip(chunks, pool.map(verify_chunk, chunks), strict=True):
            results.extend(done)
            if progress is not None:
                progress(len(chunk))
    return results


@dataclass(slots=True)
class SignatureResult:
    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def check_signatures(
    export: LoadedExport, *, workers: int | None = None, progress: Progress | None = None
) -> SignatureResult:
    """Every decodable log against the certificate holding its key."""
    result = SignatureResult()
    points = {c.key_hash: c.point for c in export.certificates if c.key_hash and c.point}
    files: list[str] = []
    tasks: list[Task] = []
    missing: dict[str, list[str]] = {}
    for entry in export.logs:
        msg = entry.message
        if msg is None:
            continue
        serial = msg.serial_number.hex()
        point = points.get(serial)
        if point is None or msg.signed_data is None:
            missing.setdefault(serial, []).append(entry.file)
            result.unverifiable.append(entry.file)
            if progress is not None:
                progress(1)
            continue
        files.append(entry.file)
        tasks.append((point, msg.signature_algorithm, msg.signed_data, msg.signature_value))
    for file, ok in zip(
        files, verify_tasks(tasks, workers=workers, progress=progress), strict=True
    ):
        if ok:
            result.valid.append(file)
        else:
            result.invalid.append(file)
            result.findings.append(
                error("E_SIGNATURE_INVALID", "signature does not verify over the log", file)
            )
    for serial, logs in missing.items():
        result.findings.append(
            error(
                "E_NO_CERTIFICATE",
                f"no certificate in the export holds the key of serial {serial}: "
                f"{len(logs)} log(s) cannot be verified",
                logs[0],
            )
        )
    return result
