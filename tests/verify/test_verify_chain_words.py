"""The report's certificate row says what is wrong with the chain in words an auditor
can act on: a missing TSE certificate, a missing issuer, a root not among --trust;
"chain untrusted" alone said none of these (the JSON keeps its word)."""

from __future__ import annotations

from pathlib import Path

from test_verify_tampering import TSE_CERT, Members, _members, _write
from typer.testing import CliRunner

from opentse.cli.main import build_app


def _table(tmp_path: Path, members: Members, *extra: str) -> str:
    tar = _write(tmp_path / "e.tar", members)
    result = CliRunner().invoke(build_app(), ["verify", str(tar), *extra], env={"COLUMNS": "200"})
    return result.output


def _certificates_row(text: str) -> str:
    (row,) = [line for line in text.splitlines() if "Certificates" in line]
    return " ".join(row.split())


def test_a_removed_tse_certificate_is_said_in_the_table(tmp_path: Path) -> None:
    members = _members()
    members.pop(TSE_CERT)
    row = _certificates_row(_table(tmp_path, members))
    assert "1 (no TSE certificate: none holds the key of a log's serial" in row
    assert "untrusted" not in row


def test_a_missing_root_is_an_incomplete_chain(tmp_path: Path) -> None:
    members = _members()
    (root,) = [name for name in members if name.endswith(".der") and name != TSE_CERT]
    members.pop(root)
    row = _certificates_row(_table(tmp_path, members))
    assert "1 (chain incomplete: an issuer is neither in the export nor a --trust root" in row


def test_an_intact_export_still_says_the_root_was_not_checked(tmp_path: Path) -> None:
    row = _certificates_row(_table(tmp_path, _members()))
    assert "2 (chain complete to a root from the export itself, root not checked" in row


def test_a_root_not_among_trust_says_so(tmp_path: Path) -> None:
    members = _members()
    other = tmp_path / "other.pem"
    other.write_bytes(_other_root_pem())
    row = _certificates_row(_table(tmp_path, members, "--trust", str(other)))
    assert "chain untrusted: it does not end at a --trust root (E_CHAIN_UNTRUSTED)" in row


def _other_root_pem() -> bytes:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_an_unreadable_trust_file_says_why_with_a_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    tar = _write(tmp_path / "e.tar", _members())
    for trust, words in ((bad, "neither PEM certificates"), (tmp_path / "no.pem", "no such file")):
        result = CliRunner().invoke(
            build_app(), ["verify", str(tar), "--trust", str(trust)], env={"COLUMNS": "200"}
        )
        text = " ".join(result.output.split())
        assert result.exit_code == 2
        assert f"E_TRUST_UNREADABLE: cannot read --trust {trust}: {words}" in text
        assert "ParseError" not in text and "Errno" not in text
