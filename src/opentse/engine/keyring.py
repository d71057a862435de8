"""Signers for TSEs: private keys are decrypted with the installation secret once per
TSE and process, then kept in memory (crypto.keys encrypts them at rest)."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric import ec

from opentse.crypto import keys
from opentse.engine.ports import TSERecord
from opentse.tr03151.signer import Signer


class Keyring:
    """Maps TSE ids to signers. ``add`` installs a ready signer (tests: a
    ``testing.DeterministicSigner``), otherwise the record's key is decrypted."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._signers: dict[str, Signer] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"Keyring({len(self._signers)} signers)"

    def encrypt(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return keys.encrypt_private_key(key, self._secret)

    def add(self, tse_id: str, signer: Signer) -> None:
        with self._lock:
            self._signers[tse_id] = signer

    def forget(self, tse_id: str) -> None:
        with self._lock:
            self._signers.pop(tse_id, None)

    def signer(self, record: TSERecord) -> Signer:
        with self._lock:
            found = self._signers.get(record.tse_id)
        if found is not None:
            return found
        key = keys.decrypt_private_key(record.encrypted_private_key, self._secret)
        signer = keys.PlainSigner(key, record.signature_algorithm)
        with self._lock:
            return self._signers.setdefault(record.tse_id, signer)
