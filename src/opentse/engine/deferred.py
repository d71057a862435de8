"""Signatures made after the engine step, so one group commit signs on several cores.

A plain ECDSA signature (TR-03111 5.2.1: r||s, each zero-padded to the curve size)
has a fixed length and is the last element of a DER log message
(``codec.assemble``). So an engine step can run with a stand-in of the right length
(``DeferredSigner``), decide counters, times and content exactly as it would with
the key, and leave the signatures to ``PendingLogs.resolve``: the store calls it
before the logs are written, for every request of a group commit at once, and
``cryptography`` releases the GIL while it signs. Nothing about the logs changes but
the moment the signature is computed; no signature is returned before its log is
durably stored (the store resolves before COMMIT, the caller hears after it).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from opentse.engine.ports import StoredLog
from opentse.engine.results import SignResult
from opentse.errors import StateError
from opentse.tr03151.signer import Signer


class DeferredSigner:
    """A ``Signer`` that records what it is asked to sign and answers with zeros of
    the plain-signature length (twice the curve size: the point 04||X||Y minus 1)."""

    __slots__ = ("_placeholder", "_signer", "data")

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._placeholder = bytes(len(signer.public_key_point) - 1)
        self.data: list[bytes] = []

    @property
    def algorithm_oid(self) -> str:
        return self._signer.algorithm_oid

    @property
    def public_key_point(self) -> bytes:
        return self._signer.public_key_point

    @property
    def real(self) -> Signer:
        return self._signer

    def sign(self, data: bytes) -> bytes:
        self.data.append(data)
        return self._placeholder


class PendingLogs:
    """The logs of one engine step (in counter order) with their data to sign.

    ``resolve`` signs (once; later calls return the same signatures) and may run on
    any thread, but only one thread at a time per object (the store's writer hands
    each object to one thread)."""

    __slots__ = ("_claim", "_final", "_signer", "data", "error", "logs", "signatures")

    def __init__(
        self, signer: Signer | None, logs: Sequence[StoredLog], data: Sequence[bytes]
    ) -> None:
        if len(logs) != len(data):
            raise StateError(
                f"{len(data)} signatures deferred for {len(logs)} logs", code="E_DEFERRED_SIGNING"
            )
        self._signer = signer
        self._final = signer is None
        self.logs = tuple(logs)
        self.data = tuple(data)
        self.signatures: tuple[bytes, ...] | None = () if signer is None else None
        self.error: BaseException | None = None
        self._claim = threading.Lock()  # taken by the one thread that signs

    @classmethod
    def signed(cls, logs: Sequence[StoredLog]) -> PendingLogs:
        """Logs whose messages are final already (a plain ``append``)."""
        return cls(None, logs, [b""] * len(logs))

    def resolve(self) -> tuple[bytes, ...]:
        if self.signatures is None:
            assert self._signer is not None
            sign = self._signer.sign
            self.signatures = tuple(sign(d) for d in self.data)
        return self.signatures

    def try_resolve(self) -> None:
        """``resolve`` for one of several signing threads: only the first caller signs
        (ECDSA signatures are randomised: two threads must never both sign one log);
        a failure is kept in ``error``. Whoever reads ``signatures`` afterwards waits
        for every thread it handed this object to."""
        if not self._claim.acquire(blocking=False):
            return
        try:
            self.resolve()
        except Exception as exc:
            self.error = exc

    def message(self, index: int) -> bytes:
        """The final DER message of ``logs[index]`` (after ``resolve``)."""
        if self._final:
            return self.logs[index].message
        signature = self.resolve()[index]
        placeholder = self.logs[index].message
        return placeholder[: len(placeholder) - len(signature)] + signature

    def final_logs(self) -> tuple[StoredLog, ...]:
        if self._final:
            return self.logs
        return tuple(
            dataclasses.replace(log, message=self.message(i)) for i, log in enumerate(self.logs)
        )

    def signature_of(self, counter: int) -> bytes | None:
        if self._final:
            return None
        for index, log in enumerate(self.logs):
            if log.signature_counter == counter:
                return self.resolve()[index]
        return None

    def patch(self, result: object) -> object:
        """``result`` with the real signature if it is a ``SignResult`` of these logs."""
        if isinstance(result, SignResult):
            signature = self.signature_of(result.signature_counter)
            if signature is not None:
                return result.with_signature(signature)
        return result
