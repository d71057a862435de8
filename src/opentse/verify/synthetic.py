"""Build valid TR-03151 exports without a TSE, for the verifier's tests and benchmark.

The logs are real (encoded by the core codec, signed with a fresh key) but the TSE
is not: a self-signed certificate stands in for the vendor chain. Pattern: an
updateTime system log, then transactions of Start, Update, Finish, so every check
of the verifier has something to look at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opentse.crypto.keys import (
    PlainSigner,
    default_algorithm,
    generate_private_key,
    public_key_point,
    serial_number,
)
from opentse.formats.tar import TarWriter, certificate_filename, info_csv, log_filename
from opentse.tr03151.codec import assemble, encode_signed_part
from opentse.tr03151.logmessage import (
    FINISH,
    START,
    UPDATE,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import LogTime, TimeFormat

CLIENT = "opentse-bench-register-1"
PROCESS_TYPE = "Kassenbeleg-V1"
PROCESS_DATA = b"Beleg^10.00_2.55_0.00_0.00_0.00^12.55:Bar"


@dataclass(frozen=True, slots=True)
class SyntheticExport:
    path: Path
    logs: int
    transactions: int
    serial_hex: str
    public_key_point: bytes


def self_signed_certificate(key: ec.EllipticCurvePrivateKey, serial_hex: str) -> bytes:
    """A self-signed TSE certificate (DER) valid 2000..2099, subject CN = serial."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial_hex)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2099, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA384() if key.curve.key_size > 256 else hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _operations(count: int) -> list[tuple[str, int]]:
    """(operation, transaction number) for ``count`` logs: updateTime then S/U/F."""
    ops: list[tuple[str, int]] = [("UpdateTime", 0)]
    txn = 0
    while len(ops) < count:
        txn += 1
        ops.extend([(START, txn), (UPDATE, txn), (FINISH, txn)])
    return ops[:count]


@dataclass(frozen=True, slots=True)
class LogSpec:
    """One log to sign: its certifiedData, counter and time (unix seconds)."""

    certified: TransactionLogData | SystemLogData
    counter: int
    unix: int
    time_format: TimeFormat = TimeFormat.UNIX


class SyntheticTSE:
    """A key, its self-signed certificate and a signer: enough to write exports."""

    def __init__(self, curve: str = "P-256") -> None:
        key = generate_private_key(curve)
        self.key = key  # kept: a test may issue its own certificate for it
        self.signer = PlainSigner(key, default_algorithm(curve))
        self.point = public_key_point(key)
        self.serial = serial_number(self.point)
        self.certificate = self_signed_certificate(key, self.serial.hex())

    def log(self, spec: LogSpec) -> tuple[str, bytes]:
        """(TAR member name, signed DER log message) for one spec."""
        log_time = LogTime(spec.time_format, spec.unix)
        msg = LogMessage(
            spec.certified, self.serial, self.signer.algorithm_oid, spec.counter, log_time
        )
        signed = encode_signed_part(msg)
        data = assemble(signed, self.signer.sign(signed))
        tx = spec.certified if isinstance(spec.certified, TransactionLogData) else None
        name = log_filename(
            msg.log_type,
            log_time,
            spec.counter,
            operation=spec.certified.operation_type,
            transaction_number=tx.transaction_number if tx else None,
            client_id=tx.client_id if tx else None,
        )
        return name, data

    def write(self, path: Path, specs: Iterable[LogSpec], *, info: bool = True) -> None:
        """A TAR with info.csv (unless ``info`` is False), the certificate and the logs."""
        with path.open("wb") as out, TarWriter(out) as tar:
            if info:
                tar.add("info.csv", info_csv("synthetic", "opentse", "0.1.0"), 0)
            tar.add(certificate_filename(self.certificate), self.certificate, 0)
            for spec in specs:
                name, data = self.log(spec)
                tar.add(name, data, spec.unix)


def build_export(
    path: Path,
    count: int,
    *,
    curve: str = "P-256",
    time_format: TimeFormat = TimeFormat.UNIX,
    start: datetime = datetime(2024, 1, 1, 8, 0, tzinfo=UTC),
) -> SyntheticExport:
    """Write a valid export of ``count`` logs (counters 1..count) to ``path``."""
    tse = SyntheticTSE(curve)
    specs: list[LogSpec] = []
    transactions = 0
    for counter, (operation, txn) in enumerate(_operations(count), start=1):
        unix = int((start + timedelta(seconds=counter)).timestamp())
        certified: TransactionLogData | SystemLogData
        if txn:
            data = PROCESS_DATA if operation != START else b""
            certified = TransactionLogData(operation, CLIENT, data, PROCESS_TYPE, txn)
            transactions = txn
        else:
            certified = SystemLogData(operation, b"")
        specs.append(LogSpec(certified, counter, unix, time_format))
    tse.write(path, specs)
    return SyntheticExport(path, count, transactions, tse.serial.hex(), tse.point)
