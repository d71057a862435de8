"""Per-log work of the verifier: decode (``verify.logshape``, else
``tr03151.fastdecode``), check the signature.

This is the hot loop (the target is >= 90% of raw ``cryptography`` verify throughput
per core; docs/performance.md, "Verifier"), so it keeps one ready verifier per key
and algorithm, hands plain r||s to OpenSSL as DER built by table and the digest as
``Prehashed``; anything unusual (DER signatures, ECSDSA, odd lengths) goes to the
core's ``verify_signature``, which is the authority. :class:`LogEntry` builds the
LogMessage and the parsed file name only when asked. Above ``PARALLEL_THRESHOLD``
logs the signatures are checked in chunks on every core (:class:`LogPipeline`:
forked processes on Linux, threads elsewhere); the results are the same either way.

TR-03151: serialNumber = SHA-256 of the public key point, so the key is found by the
serial, never by file names; the signature covers the decoder's ``signed_data``
exactly as stored (D-Trust's BER processData included).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate
from operator import itemgetter
from typing import Any

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
from opentse.verify import forked
from opentse.verify.logshape import decode as decode_log_fields
from opentse.verify.tarscan import Member

PARALLEL_THRESHOLD = 2000
SWITCH_INTERVAL = 1e-4  # seconds, while worker threads verify (see LogPipeline)
CHUNK = 500  # logs per task: small, so the workers finish close together

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

    def verifier(self, point: bytes, oid: str) -> _Verifier | None:
        """The ready verifier of ``point`` and ``oid``; None when the general path
        must decide (not plain ECDSA, or the key does not load)."""
        try:
            return self._verifiers[point, oid]
        except KeyError:
            pass
        verifier: _Verifier | None = None
        if ALGORITHM_BY_OID.get(oid, "").startswith("ecdsa-plain-"):
            try:
                verifier = _Verifier(public_key_from_point(point, None), hash_name(oid))
            except (OpenTSEError, ValueError, KeyError):
                verifier = None
        self._verifiers[point, oid] = verifier
        return verifier

    def verify(self, point: bytes, oid: str, data: bytes, signature: bytes) -> bool | None:
        """Whether the signature verifies; None for an algorithm the core does not
        know (it cannot be checked, which is not the same as wrong)."""
        verifier = self.verifier(point, oid)
        if verifier is not None and verifier.verify(data, signature):
            return True
        # anything unusual (DER signatures, ECSDSA, leading zeros, a failure): the
        # core's verify_signature is the authority
        try:
            verify_signature(point, oid, data, signature)
        except OpenTSEError as exc:
            return None if exc.code == "E_ALGORITHM_UNSUPPORTED" else False
        except ValueError:
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
    _message: LogMessage | None
    _name: ParsedLogName | None

    def __init__(
        self,
        file: str,  # the label findings use
        base_name: str,  # the member's file name without archive label or directories
        data: bytes,
        fields: LogFields | None,
        signature_ok: bool | None = None,  # None: no certificate holds its key
        problem: str | None = None,
    ) -> None:
        # _message and _name stay unset until asked for (one object per log: every
        # store counts)
        self.file = file
        self.base_name = base_name
        self.data = data
        self.fields = fields
        self.signature_ok = signature_ok
        self.problem = problem

    @property
    def message(self) -> LogMessage | None:
        try:
            return self._message
        except AttributeError:
            pass
        self._message = None if self.fields is None else to_message(self.fields)
        return self._message

    @property
    def name(self) -> ParsedLogName | None:
        try:
            return self._name
        except AttributeError:
            pass
        self._name = parse_log_filename(self.base_name)
        return self._name


def _decode_chunk(members: Sequence[Member]) -> list[LogEntry]:
    """Decode every log (``signature_ok`` stays None until ``_verify_chunk``).

    The entries of decoded logs are made as ``LogEntry.__init__`` makes them, its
    stores inlined (one Python call less per log: ~50 ns of ~5 us).
    """
    entries: list[LogEntry] = []
    append = entries.append
    new = object.__new__
    for label, base, data in members:
        try:
            fields = decode_log_fields(data)
        except (OpenTSEError, ValueError) as exc:
            append(LogEntry(label, base, data, None, None, str(exc)))
            continue
        entry = new(LogEntry)
        entry.file = label
        entry.base_name = base
        entry.data = data
        entry.fields = fields
        entry.signature_ok = None
        entry.problem = None
        append(entry)
    return entries


# (serial number, algorithm OID, signatureValue, signed data): what a signature
# check needs of a log (LogFields 2, 3, 8 and 9)
Item = tuple[bytes, str, bytes, bytes]
_ITEM: Callable[[Any], Item] = itemgetter(2, 3, 8, 9)


def _verify_chunk(entries: Sequence[LogEntry], points: Points) -> None:
    """Check the signature of every decoded entry whose key ``points`` holds."""
    decoded = [entry for entry in entries if entry.fields is not None]
    results = verify_items(map(_ITEM, [entry.fields for entry in decoded]), points)
    for entry, ok in zip(decoded, results, strict=True):
        entry.signature_ok = ok


def verify_items(items: Iterable[Item], points: Points) -> list[bool | None]:
    """Whether each item's signature verifies; None when ``points`` lacks its key or
    the algorithm is not one the core knows.

    The common case (plain r||s of a curve's size, both halves without a leading
    zero octet) is inlined: DER by table, digest by hashlib, ``Prehashed`` verify.
    Anything else, and every failure, goes through ``SignatureChecker.verify``.
    """
    check = _CHECKER.verify
    get = points.get
    join = b"".join
    last_serial: bytes | None = None
    last_oid: str | None = None
    point: bytes | None = None
    verifier: _Verifier | None = None
    double = 0  # 2 * the curve's size: the length of a plain r||s
    results: list[bool | None] = []
    append = results.append
    for serial, oid, signature, signed in items:
        # shapes hand out one serial and algorithm object per TSE: compare identity
        if serial is not last_serial or oid is not last_oid:
            last_serial, last_oid = serial, oid
            point = get(serial)
            verifier = None if point is None else _CHECKER.verifier(point, oid)
            if verifier is not None:
                size = verifier.size
                double = 2 * size
                key_verify = verifier.key.verify
                digest = verifier.digest
                prehashed = verifier.prehashed
                heads = verifier.heads
                mids = verifier.mids
            else:
                double = 0
        if point is None:
            append(None)
            continue
        if len(signature) == double:
            r_top = signature[0]
            s_top = signature[size]
            if r_top and s_top:
                s_top >>= 7
                try:
                    key_verify(
                        join(
                            (
                                heads[(r_top >> 6 & 2) | s_top],
                                signature[:size],
                                mids[s_top],
                                signature[size:],
                            )
                        ),
                        digest(signed).digest(),
                        prehashed,
                    )
                except InvalidSignature:
                    pass
                else:
                    append(True)
                    continue
        append(check(point, oid, signed, signature))
    return results


def default_workers(count: int) -> int:
    """One thread for small exports (a pool costs more than it saves), every core
    for large ones."""
    return (os.cpu_count() or 1) if count > PARALLEL_THRESHOLD else 1


_switching = threading.Lock()
_pipelines = 0  # alive with worker threads
_saved_interval = 0.0


def _short_switches(start: bool) -> None:
    """A short GIL switch interval while any pipeline has worker threads: this thread
    reads, decodes and checks in long pure-Python stretches, and a worker back from
    OpenSSL, needing the GIL for ~1 us before its next verify, would otherwise wait
    up to the default 5 ms for it (one core idle meanwhile)."""
    global _pipelines, _saved_interval
    with _switching:
        if start:
            if _pipelines == 0:
                _saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(_saved_interval, SWITCH_INTERVAL))
            _pipelines += 1
        else:
            _pipelines -= 1
            if _pipelines == 0:
                sys.setswitchinterval(_saved_interval)


class _Chunk:
    """One chunk of logs on its way through a worker: decoded first (``decoded``
    set), then its signatures checked (``done`` set)."""

    __slots__ = ("decoded", "done", "entries", "error")

    def __init__(self) -> None:
        self.decoded = threading.Event()
        self.done = threading.Event()
        self.entries: list[LogEntry] = []
        self.error: BaseException | None = None


class LogPipeline:
    """Decodes logs and verifies their signatures: inline when ``workers`` is 1,
    else with ``workers - 1`` forked processes beside this one (Linux, when no other
    thread runs: ``forked.alone``), or on a pool of ``workers`` threads (elsewhere,
    or ``processes=False``).

    Processes (``verify.forked``): this process reads, decodes and runs the other
    checks, which need every log anyway; a feeder thread sends the oldest decoded
    chunks' signed data and signatures to the children, and ``settle`` verifies
    the newest ones here until none is left. No GIL is shared, so the children
    verify at the full rate of a core.

    Threads: ``cryptography`` releases the GIL while OpenSSL verifies, so threads
    verify in parallel; each worker decodes its chunk and then verifies it, so every
    thread holds the GIL only for a few microseconds between two verifies. Each
    hand-off of the GIL still costs (bench_verify: ~10 us per log besides the
    signature, against ~6 us in one thread).

    ``entries`` waits for the decoding only (the other checks run meanwhile);
    ``settle`` waits for the signatures. ``points`` may grow while logs are checked
    (a certificate later in the archive): ``settle`` verifies what was checked
    before its key came. Entries keep the input order.
    """

    def __init__(
        self,
        points: Points,
        workers: int,
        progress: Progress | None,
        processes: bool | None = None,  # None: where forking is safe (Linux, no threads)
    ) -> None:
        self.points = points
        self.progress = progress
        self._entries: list[LogEntry] = []
        if processes is None:
            processes = forked.available() and forked.alone()
        self._forked: forked.ForkedPool[_Sent] | None = None
        self._pool: ThreadPoolExecutor | None = None
        if workers > 1 and processes:
            self._forked = forked.ForkedPool(workers - 1, _verify_payload, _payload, self._answered)
        elif workers > 1:
            self._pool = ThreadPoolExecutor(max_workers=workers)
            _short_switches(True)
        self._chunks: deque[tuple[int, _Chunk]] = deque()
        self._waiting: list[_Chunk] = []  # decoded by a worker, not yet in _entries
        self._keys = -1  # len(points) at the first chunk (-1: none yet)

    def __enter__(self) -> LogPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.close()

    def submit(self, members: Sequence[Member]) -> None:
        if self._keys < 0:
            self._keys = len(self.points)
        if self._pool is None:
            entries = _decode_chunk(members)
            self._entries += entries
            if self._forked is not None:  # verified by a child or in settle
                decoded = [entry for entry in entries if entry.fields is not None]
                self._forked.add((len(entries), decoded, dict(self.points)))
                return
            _verify_chunk(entries, self.points)
            if self.progress is not None:
                self.progress(len(entries))
            return
        chunk = _Chunk()
        self._waiting.append(chunk)
        self._chunks.append((len(members), chunk))
        self._pool.submit(_decode_and_verify, members, self.points, chunk)

    def _answered(self, sent: _Sent, results: list[bool | None]) -> None:
        """A child's answer (on the feeder thread)."""
        count, decoded, _ = sent
        for entry, ok in zip(decoded, results, strict=True):
            entry.signature_ok = ok
        if self.progress is not None:
            self.progress(count)

    @property
    def entries(self) -> list[LogEntry]:
        """Every entry handed in so far, decoded (signatures may still be running)."""
        for chunk in self._waiting:
            chunk.decoded.wait()
            if chunk.error is not None:
                raise chunk.error
            self._entries += chunk.entries
        self._waiting = []
        return self._entries

    def settle(self) -> list[LogEntry]:
        """Wait for every signature; the entries, each with its ``signature_ok``."""
        try:
            entries = self.entries
            while self._forked is not None:  # the newest chunks; children take the oldest
                sent = self._forked.take()
                if sent is None:
                    if self._forked.wait():
                        break
                    continue
                count, decoded, _ = sent
                _verify_chunk(decoded, self.points)
                if self.progress is not None:
                    self.progress(count)
            while self._chunks:
                count, chunk = self._chunks.popleft()
                chunk.done.wait()
                if chunk.error is not None:
                    raise chunk.error
                if self.progress is not None:
                    self.progress(count)
        finally:
            self.close()
        if len(self.points) != self._keys:  # a key came after the first chunk
            _verify_chunk(
                [e for e in entries if e.signature_ok is None and e.fields is not None],
                self.points,
            )
        return entries

    def close(self) -> None:
        if self._forked is not None:
            self._forked.close()
            self._forked = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            _short_switches(False)
            for _, chunk in self._chunks:  # cancelled ones never ran: nobody may wait
                chunk.decoded.set()
                chunk.done.set()


# a chunk for the children: (logs in it, the decoded ones, the keys known when it came)
_Sent = tuple[int, list[LogEntry], Points]


# what a child gets of a chunk: the keys, then per log serial number and algorithm
# (mostly one object each: pickle sends it once), and the signatures and the signed
# data as two strings with their lengths (two C-level joins instead of pickling 10^3
# small strings; ~0.2 us per log less for the parent and for the child)
Payload = tuple[Points, tuple[bytes, ...], tuple[str, ...], bytes, bytes, bytes, bytes]


def _payload(sent: _Sent) -> Payload:
    """What a child gets of a chunk (on the feeder thread: ``points`` is a copy)."""
    _, decoded, points = sent
    if not decoded:
        return points, (), (), b"", b"", b"", b""
    columns = list(zip(*[entry.fields for entry in decoded], strict=True))
    signatures, signed = columns[8], columns[9]
    return (
        points,
        columns[2],
        columns[3],
        array("I", map(len, signatures)).tobytes(),
        b"".join(signatures),
        array("I", map(len, signed)).tobytes(),
        b"".join(signed),
    )


def _cut(lengths: bytes, joined: bytes) -> list[bytes]:
    ends = list(accumulate(array("I", lengths)))
    return list(map(joined.__getitem__, map(slice, [0, *ends], ends)))


def _verify_payload(payload: Payload) -> list[bool | None]:
    """A child's work (``verify.forked``): one chunk's signatures."""
    points, serials, oids, signature_lengths, signatures, signed_lengths, signed = payload
    return verify_items(
        zip(
            serials,
            oids,
            _cut(signature_lengths, signatures),
            _cut(signed_lengths, signed),
            strict=True,
        ),
        points,
    )


def _decode_and_verify(members: Sequence[Member], points: Points, chunk: _Chunk) -> None:
    """A worker's chunk: decode (then tell the reader), verify."""
    try:
        try:
            chunk.entries = _decode_chunk(members)
        finally:
            chunk.decoded.set()
        _verify_chunk(chunk.entries, points)
    except BaseException as exc:  # handed to whoever waits for this chunk
        chunk.error = exc
    finally:
        chunk.decoded.set()
        chunk.done.set()


def check_logs(
    members: Sequence[Member],
    points: Points,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[LogEntry]:
    """Every log, decoded and verified; entries keep the input order and do not
    depend on ``workers``."""
    if workers is None:
        workers = default_workers(len(members))
    if len(members) <= CHUNK:
        workers = 1
    with LogPipeline(points, workers, progress) as pipeline:
        for begin in range(0, len(members), CHUNK):
            pipeline.submit(members[begin : begin + CHUNK])
        return pipeline.settle()
