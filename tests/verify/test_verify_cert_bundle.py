"""A certificate member holding a PEM bundle (TSE certificate plus its CA chain, in
either order) contributes every certificate in it: the chain is followed through the
bundled CAs and the logs are verified with the bundled TSE key. The bundles and the
chain root -> intermediate -> TSE are built here with cryptography's x509 builder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.tar import TarWriter, info_csv
from opentse.tr03151.logmessage import FINISH, START, SystemLogData, TransactionLogData
from opentse.verify.report import verify_exports
from opentse.verify.synthetic import LogSpec, SyntheticTSE

T0 = 1_700_000_000


def _cert(
    subject: str,
    public: ec.EllipticCurvePublicKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA384())
    )


class Chain:
    """root (self-signed) -> intermediate -> the TSE's certificate."""

    def __init__(self) -> None:
        self.tse = SyntheticTSE("P-256")
        root_key = ec.generate_private_key(ec.SECP384R1())
        sub_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _cert("Test Root CA", root_key.public_key(), "Test Root CA", root_key, ca=True)
        self.sub = _cert("Test Sub CA", sub_key.public_key(), "Test Root CA", root_key, ca=True)
        self.leaf = _cert(
            self.tse.serial.hex(), self.tse.key.public_key(), "Test Sub CA", sub_key, ca=False
        )

    def export(self, path: Path, cert_name: str, cert_data: bytes) -> Path:
        specs = [
            LogSpec(SystemLogData("UpdateTime", b""), 1, T0),
            LogSpec(TransactionLogData(START, "K1", b"", "Kassenbeleg-V1", 1), 2, T0 + 1),
            LogSpec(TransactionLogData(FINISH, "K1", b"x", "Kassenbeleg-V1", 1), 3, T0 + 2),
        ]
        with path.open("wb") as out, TarWriter(out) as tar:
            tar.add("info.csv", info_csv("bundle", "opentse", "0.1.0"), 0)
            tar.add(cert_name, cert_data, 0)
            for spec in specs:
                tar.add(*self.tse.log(spec), spec.unix)
        return path


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def codes(report: dict[str, Any]) -> list[str]:
    return [f["code"] for f in report["findings"]]


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_bundle_tse_then_chain_is_read_whole(chain: Chain, tmp_path: Path) -> None:
    name = f"{chain.tse.serial.hex().upper()}_X509.pem"
    bundle = pem(chain.leaf, chain.sub, chain.root)
    assert len(x509.load_pem_x509_certificates(bundle)) == 3  # a real three-part bundle
    report = verify_exports([chain.export(tmp_path / "e.tar", name, bundle)]).to_json()
    assert report["certificates"] == {"count": 3, "name_mismatches": [], "chain": "ok"}
    assert report["ok"] is True and report["valid_signatures"] == 3
    assert codes(report) == []  # the CAs share the file name without a name finding


def test_bundle_with_the_ca_first_still_yields_the_tse_key(chain: Chain, tmp_path: Path) -> None:
    """The TSE certificate second in the file: before, only the CA was read and no
    log could be verified (E_NO_CERTIFICATE)."""
    name = f"{chain.tse.serial.hex()}_X509.pem"
    path = chain.export(tmp_path / "e.tar", name, pem(chain.sub, chain.leaf))
    report = verify_exports([path]).to_json()
    assert report["valid_signatures"] == 3 and "E_NO_CERTIFICATE" not in codes(report)
    assert report["certificates"]["count"] == 2 and report["certificates"]["chain"] == "untrusted"
    assert codes(report) == ["W_CHAIN_INCOMPLETE"]  # the root is in neither
    # the root from a --trust bundle (beside an unrelated root) completes the chain
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("Other Root", other_key.public_key(), "Other Root", other_key, ca=True)
    trust = tmp_path / "roots.pem"
    trust.write_bytes(pem(other, chain.root))
    result = CliRunner().invoke(build_app(), ["verify", str(path), "--json", "--trust", str(trust)])
    body = json.loads(result.stdout)
    assert result.exit_code == 0 and body["certificates"]["chain"] == "ok"
    assert body["valid_signatures"] == 3 and body["findings"] == []


def test_bundle_named_after_another_key_is_one_mismatch(chain: Chain, tmp_path: Path) -> None:
    """The file name is checked against the bundle's TSE certificate once; the CAs
    beside it claim no name of their own."""
    name = f"{'ab' * 32}_X509.pem"
    path = chain.export(tmp_path / "e.tar", name, pem(chain.leaf, chain.sub, chain.root))
    report = verify_exports([path]).to_json()
    assert report["certificates"]["name_mismatches"] == [name]
    assert codes(report).count("E_CERT_NAME_MISMATCH") == 1
    assert report["valid_signatures"] == 3 and report["certificates"]["chain"] == "ok"


def test_pem_with_text_before_the_block_and_a_broken_bundle(chain: Chain, tmp_path: Path) -> None:
    """OpenSSL's ``subject=...`` lines before a block are skipped; a bundle with a
    corrupt block is a format finding, never a crash."""
    name = f"{chain.tse.serial.hex()}_X509.crt"
    text = b"subject=CN = tse\nissuer=CN = Test Sub CA\n" + pem(chain.leaf, chain.sub)
    report = verify_exports([chain.export(tmp_path / "a.tar", name, text)]).to_json()
    assert report["certificates"]["count"] == 2 and report["valid_signatures"] == 3
    broken = pem(chain.leaf) + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    report = verify_exports([chain.export(tmp_path / "b.tar", name, broken)]).to_json()
    assert "E_CERT_FORMAT" in codes(report) and report["ok"] is False
