"""ECSDSA (EC-Schnorr, TR-03111 4.2.3) log signatures through the whole verifier.

OpenSSL cannot make EC-Schnorr signatures, so this test makes them itself, sharing no
code with the verifier: [k]G by OpenSSL (``derive_private_key``), then TR-03111
4.2.3.1 on plain integers, r = OS2I(H(FE2OS(x_Q) || FE2OS(y_Q) || M)),
s = (k + r * d) mod n, in plain format r || s (5.2.1). Only hashes as long as the
group order are used, so no truncation of H is involved. Group orders and OIDs are
written here from FIPS 186-4 / RFC 5639 and TR-03111 5.2.1.3, not taken from
``opentse``; the orders are checked against OpenSSL's curves.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner
from verify_data import collect_members

from opentse.cli.main import build_app
from opentse.formats.qr import build_qr_payload
from opentse.formats.tar import TarWriter, certificate_filename, info_csv, log_filename
from opentse.tr03151.codec import assemble, encode_signed_part
from opentse.tr03151.logmessage import FINISH, START, LogMessage, SystemLogData, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.verify import forked
from opentse.verify.archive import LoadedExport, _sort_members
from opentse.verify.logcheck import LogPipeline, Points
from opentse.verify.receipt import verify_receipt
from opentse.verify.report import verify_exports

# group order n of each curve (FIPS 186-4 D.1.2, RFC 5639 3.4 and 3.6)
ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "brainpoolP256r1": 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
    "brainpoolP384r1": int(
        "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7"
        "CF3AB6AF6B7FC3103B883202E9046565",
        16,
    ),
}
CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
}
# TR-03111 5.2.1.3: ecsdsa-plain-signatures 0.4.0.127.0.7.1.1.4.4, SHA-256 = 2, SHA-384 = 3
ECSDSA_OID = {"sha256": "0.4.0.127.0.7.1.1.4.4.2", "sha384": "0.4.0.127.0.7.1.1.4.4.3"}
ECDSA_PLAIN_SHA256 = "0.4.0.127.0.7.1.1.4.1.3"
CASES = [("secp256r1", "sha256"), ("brainpoolP256r1", "sha256"), ("brainpoolP384r1", "sha384")]
T0 = 1_700_000_000


class SchnorrKey:
    """A key that signs ECSDSA in plain format (TR-03111 4.2.3.1, 5.2.1)."""

    def __init__(self, curve: str, hash_name: str) -> None:
        self.curve = CURVES[curve]()
        self.n = ORDERS[curve]
        self.hash_name = hash_name
        assert hashlib.new(hash_name).digest_size * 8 == self.n.bit_length()  # no truncation
        self.key = ec.generate_private_key(self.curve)
        self.field = (self.curve.key_size + 7) // 8
        self.point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def sign(self, message: bytes) -> bytes:
        n, d = self.n, self.key.private_numbers().private_value
        size = (n.bit_length() + 7) // 8
        while True:
            k = secrets.randbelow(n - 1) + 1
            q = ec.derive_private_key(k, self.curve).public_key().public_numbers()
            h = hashlib.new(
                self.hash_name,
                q.x.to_bytes(self.field, "big") + q.y.to_bytes(self.field, "big") + message,
            )
            r = int.from_bytes(h.digest(), "big")
            s = (k + r * d) % n
            if r % n and s:
                return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def sign_ecdsa(self, message: bytes) -> bytes:
        """An ECDSA plain signature (OpenSSL) of the same message, for contrast."""
        der = self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        size = (self.n.bit_length() + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def certificate(self) -> bytes:
        """Self-signed (the certificate's own signature is ECDSA: X.509 as usual)."""
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, hashlib.sha256(self.point).hexdigest())]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.DER)


Logs = dict[str, bytes]


def ecsdsa_logs(key: SchnorrKey, *, oid: str | None = None, ecdsa: bool = False) -> Logs:
    """updateTime, then two transactions (Start, Finish): member name -> DER log."""
    certified: list[TransactionLogData | SystemLogData] = [SystemLogData("UpdateTime", b"")]
    for txn in (1, 2):
        certified.append(TransactionLogData(START, "K1", b"", "Kassenbeleg-V1", txn))
        certified.append(
            TransactionLogData(FINISH, "K1", b"Beleg^1.00_0_0_0_0^1.00:Bar", "Kassenbeleg-V1", txn)
        )
    logs: Logs = {}
    serial = hashlib.sha256(key.point).digest()
    for counter, data in enumerate(certified, start=1):
        log_time = LogTime(TimeFormat.UNIX, T0 + counter)
        msg = LogMessage(data, serial, oid or ECSDSA_OID[key.hash_name], counter, log_time)
        signed = encode_signed_part(msg)
        tx = data if isinstance(data, TransactionLogData) else None
        name = log_filename(
            msg.log_type,
            log_time,
            counter,
            operation=data.operation_type,
            transaction_number=tx.transaction_number if tx else None,
            client_id=tx.client_id if tx else None,
        )
        logs[name] = assemble(signed, key.sign_ecdsa(signed) if ecdsa else key.sign(signed))
    return logs


def write(path: Path, key: SchnorrKey, logs: Logs) -> Path:
    with path.open("wb") as out, TarWriter(out) as tar:
        tar.add("info.csv", info_csv("ecsdsa", "opentse-test", "1"), 0)
        certificate = key.certificate()
        tar.add(certificate_filename(certificate), certificate, 0)
        for name, data in logs.items():
            tar.add(name, data, T0)
    return path


def flip(logs: Logs, index: int, position: int) -> tuple[Logs, str]:
    """A copy with one bit of the signature (the last ``size * 2`` octets) changed."""
    name = list(logs)[index]
    data = bytearray(logs[name])
    data[position] ^= 0x01
    return {**logs, name: bytes(data)}, name


def errors(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["code"], f["file"]) for f in report["findings"] if f["severity"] == "error"]


@pytest.mark.parametrize("curve", sorted(ORDERS))
def test_group_orders_are_those_of_openssls_curves(curve: str) -> None:
    """[n - 1]G = -G: same x, other y (so the signer's n is right)."""
    n = ORDERS[curve]
    g = ec.derive_private_key(1, CURVES[curve]()).public_key().public_numbers()
    minus_g = ec.derive_private_key(n - 1, CURVES[curve]()).public_key().public_numbers()
    assert (minus_g.x, minus_g.y != g.y) == (g.x, True)


@pytest.mark.parametrize(("curve", "hash_name"), CASES)
def test_ecsdsa_export_verifies_and_altered_signatures_do_not(
    curve: str, hash_name: str, tmp_path: Path
) -> None:
    key = SchnorrKey(curve, hash_name)
    logs = ecsdsa_logs(key)
    report = verify_exports([write(tmp_path / "good.tar", key, logs)]).to_json()
    assert report["ok"] is True, report["findings"]
    assert report["valid_signatures"] == 5 and report["invalid_signatures"] == []
    assert report["findings"] == []
    size = (ORDERS[curve].bit_length() + 7) // 8
    for index, position in ((2, -1), (4, -2 * size)):  # a bit of s; a bit of r
        altered, name = flip(logs, index, position)
        report = verify_exports([write(tmp_path / f"bad{index}.tar", key, altered)]).to_json()
        assert report["ok"] is False
        assert report["valid_signatures"] == 4 and report["invalid_signatures"] == [name]
        assert errors(report) == [("E_SIGNATURE_INVALID", name)]


def test_ecdsa_and_ecsdsa_are_not_taken_for_each_other(tmp_path: Path) -> None:
    """An ECDSA signature labelled ECSDSA, and an ECSDSA one labelled ECDSA, both
    fail: the verifier checks the scheme the log names."""
    key = SchnorrKey("secp256r1", "sha256")
    for label, logs in (
        ("ecdsa-as-ecsdsa", ecsdsa_logs(key, ecdsa=True)),
        ("ecsdsa-as-ecdsa", ecsdsa_logs(key, oid=ECDSA_PLAIN_SHA256)),
    ):
        report = verify_exports([write(tmp_path / f"{label}.tar", key, logs)]).to_json()
        assert report["valid_signatures"] == 0, label
        assert sorted(report["invalid_signatures"]) == sorted(logs), label


def test_cli_verify_ecsdsa_export(tmp_path: Path) -> None:
    key = SchnorrKey("brainpoolP256r1", "sha256")
    logs = ecsdsa_logs(key)
    good = write(tmp_path / "good.tar", key, logs)
    result = CliRunner().invoke(build_app(), ["verify", str(good), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["valid_signatures"] == 5
    bad = write(tmp_path / "bad.tar", key, flip(logs, 1, -1)[0])
    result = CliRunner().invoke(build_app(), ["verify", str(bad), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["valid_signatures"] == 4


@pytest.mark.parametrize(
    "processes",
    [
        pytest.param(
            True, marks=pytest.mark.skipif(not forked.available(), reason="forks only on Linux")
        ),
        False,
    ],
)
def test_ecsdsa_on_worker_processes_and_threads(tmp_path: Path, processes: bool) -> None:
    """The parallel verifier (one log per chunk, so the workers get some) gives the
    one-process answers, the altered log included."""
    key = SchnorrKey("secp256r1", "sha256")
    altered, name = flip(ecsdsa_logs(key), 3, -1)
    _, members = collect_members([write(tmp_path / "e.tar", key, altered)])

    def run(workers: int) -> list[tuple[str, bool | None]]:
        points: Points = {}
        logs = _sort_members(LoadedExport([]), members, points)
        with LogPipeline(points, workers, None, processes=processes) as pipeline:
            for member in logs:
                pipeline.submit([member])
            return [(e.file, e.signature_ok) for e in pipeline.settle()]

    expected = run(1)
    assert [ok for file, ok in expected if file == name] == [False]
    assert sum(1 for _, ok in expected if ok) == 4
    assert run(2) == expected


@pytest.mark.parametrize(("curve", "hash_name", "name"), [
    ("brainpoolP256r1", "sha256", "ecsdsa-plain-SHA256"),
    ("brainpoolP384r1", "sha384", "ecsdsa-plain-SHA384"),
])  # fmt: skip
def test_ecsdsa_receipt_qr_code(curve: str, hash_name: str, name: str) -> None:
    """A receipt whose Finish log is ECSDSA-signed verifies from its QR code alone;
    one bit more in the signature does not."""
    key = SchnorrKey(curve, hash_name)
    log_time = LogTime(TimeFormat.UNIX, T0 + 60)
    process_data = "Beleg^12.50_0.00_0.00_0.00_0.00^12.50:Bar"
    msg = LogMessage(
        TransactionLogData(FINISH, "Kasse 7", process_data.encode(), "Kassenbeleg-V1", 42),
        hashlib.sha256(key.point).digest(),
        ECSDSA_OID[hash_name],
        1234,
        log_time,
    )
    signature = key.sign(encode_signed_part(msg))

    def qr(sig: bytes) -> str:
        return build_qr_payload(
            client_id="Kasse 7",
            process_type="Kassenbeleg-V1",
            process_data=process_data,
            transaction_number=42,
            signature_counter=1234,
            start_time=datetime.fromtimestamp(T0, UTC),
            log_time=log_time.as_datetime(),
            signature_algorithm=name,
            time_format=TimeFormat.UNIX,
            signature=sig,
            public_key=key.point,
        )

    assert verify_receipt(qr(signature)).ok
    altered = signature[:-1] + bytes([signature[-1] ^ 1])
    result = verify_receipt(qr(altered))
    assert not result.ok and result.findings
