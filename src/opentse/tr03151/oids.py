"""Object identifiers of TR-03151 (log types) and TR-03116-5 (signature algorithms)."""

from __future__ import annotations

from enum import Enum

# TR-03151 v1.0.1, 5.1: certifiedDataType of the three log message types.
TRANSACTION_LOG_OID = "0.4.0.127.0.7.3.7.1.1"
SYSTEM_LOG_OID = "0.4.0.127.0.7.3.7.1.2"
AUDIT_LOG_OID = "0.4.0.127.0.7.3.7.1.3"


class LogType(str, Enum):
    """The three kinds of log message; the value is the TAR file-name tag (Log-Tra ...)."""

    TRANSACTION = "Tra"
    SYSTEM = "Sys"
    AUDIT = "Aud"

    @property
    def oid(self) -> str:
        return _LOG_TYPE_OIDS[self]

    @classmethod
    def from_oid(cls, oid: str) -> LogType:
        for log_type, value in _LOG_TYPE_OIDS.items():
            if value == oid:
                return log_type
        raise ValueError(f"unknown certifiedDataType {oid}")


_LOG_TYPE_OIDS = {
    LogType.TRANSACTION: TRANSACTION_LOG_OID,
    LogType.SYSTEM: SYSTEM_LOG_OID,
    LogType.AUDIT: AUDIT_LOG_OID,
}

# TR-03116-5 / BSI TR-03111: ecdsa-plain-signatures 0.4.0.127.0.7.1.1.4.1.x
_ECDSA_PLAIN = "0.4.0.127.0.7.1.1.4.1"
# ECSDSA plain (TR-03111 5.2.3, ecsdsa-plain-signatures) 0.4.0.127.0.7.1.1.4.4.x
_ECSDSA_PLAIN = "0.4.0.127.0.7.1.1.4.4"

# name -> (oid, hash name as hashlib knows it)
SIGNATURE_ALGORITHMS: dict[str, tuple[str, str]] = {
    "ecdsa-plain-SHA224": (f"{_ECDSA_PLAIN}.2", "sha224"),
    "ecdsa-plain-SHA256": (f"{_ECDSA_PLAIN}.3", "sha256"),
    "ecdsa-plain-SHA384": (f"{_ECDSA_PLAIN}.4", "sha384"),
    "ecdsa-plain-SHA512": (f"{_ECDSA_PLAIN}.5", "sha512"),
    "ecdsa-plain-SHA3-224": (f"{_ECDSA_PLAIN}.8", "sha3_224"),
    "ecdsa-plain-SHA3-256": (f"{_ECDSA_PLAIN}.9", "sha3_256"),
    "ecdsa-plain-SHA3-384": (f"{_ECDSA_PLAIN}.10", "sha3_384"),
    "ecdsa-plain-SHA3-512": (f"{_ECDSA_PLAIN}.11", "sha3_512"),
    # TR-03111 v2.10 5.2.1.3 numbers the ECSDSA OIDs 1..8 (unlike ECDSA's 2..5, 8..11)
    "ecsdsa-plain-SHA224": (f"{_ECSDSA_PLAIN}.1", "sha224"),
    "ecsdsa-plain-SHA256": (f"{_ECSDSA_PLAIN}.2", "sha256"),
    "ecsdsa-plain-SHA384": (f"{_ECSDSA_PLAIN}.3", "sha384"),
    "ecsdsa-plain-SHA512": (f"{_ECSDSA_PLAIN}.4", "sha512"),
    "ecsdsa-plain-SHA3-224": (f"{_ECSDSA_PLAIN}.5", "sha3_224"),
    "ecsdsa-plain-SHA3-256": (f"{_ECSDSA_PLAIN}.6", "sha3_256"),
    "ecsdsa-plain-SHA3-384": (f"{_ECSDSA_PLAIN}.7", "sha3_384"),
    "ecsdsa-plain-SHA3-512": (f"{_ECSDSA_PLAIN}.8", "sha3_512"),
}
ALGORITHM_BY_OID: dict[str, str] = {oid: name for name, (oid, _) in SIGNATURE_ALGORITHMS.items()}


def algorithm_oid(name: str) -> str:
    """OID of a signature algorithm name such as ``ecdsa-plain-SHA256``."""
    try:
        return SIGNATURE_ALGORITHMS[name][0]
    except KeyError:
        raise ValueError(f"unknown signature algorithm {name!r}") from None


def algorithm_name(oid: str) -> str:
    """Name of a signature algorithm OID; raises ValueError for unknown OIDs."""
    try:
        return ALGORITHM_BY_OID[oid]
    except KeyError:
        raise ValueError(f"unknown signature algorithm OID {oid}") from None


def hash_name(algorithm: str) -> str:
    """hashlib name of the hash inside a signature algorithm (name or OID)."""
    name = ALGORITHM_BY_OID.get(algorithm, algorithm)
    try:
        return SIGNATURE_ALGORITHMS[name][1]
    except KeyError:
        raise ValueError(f"unknown signature algorithm {algorithm!r}") from None
