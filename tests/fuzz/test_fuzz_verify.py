"""What fuzz/fuzz_verify.py found in the whole verifier (``opentse verify`` path).

Each input below crashed the verifier once (formats/tar.py, verify/transactions.py,
verify/certificates.py, verify/archive.py) and is kept as a regression test of the
finding it gets now. The other tests hold the harness to its invariants.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import fuzz_verify  # noqa: E402
from opentse.formats.tar import certificate_filename, info_csv  # noqa: E402
from opentse.tr03151.logmessage import FINISH, START, TransactionLogData  # noqa: E402
from opentse.verify.archive import load_exports  # noqa: E402
from opentse.verify.html import render_html  # noqa: E402
from opentse.verify.report import VerifyReport, verify_loaded  # noqa: E402
from opentse.verify.synthetic import LogSpec, SyntheticTSE  # noqa: E402


def tar(members: Sequence[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as out:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            out.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def export(tse: SyntheticTSE, certificate: bytes | None = None) -> list[tuple[str, bytes]]:
    """info.csv, the certificate, a started and a finished transaction."""
    cert = tse.certificate if certificate is None else certificate
    logs = [
        tse.log(LogSpec(TransactionLogData(op, "K-1", data, "Kassenbeleg-V1", 1), n, unix))
        for n, (op, data, unix) in enumerate(
            ((START, b"", 1_700_000_000), (FINISH, b"Beleg^", 1_700_000_005)), start=1
        )
    ]
    name = certificate_filename(tse.certificate)  # the name of the good certificate
    return [("info.csv", info_csv("x", "y", "1")), (name, cert), *logs]


def verify(tmp_path: Path, blob: bytes) -> VerifyReport:
    path = tmp_path / "export.tar"
    path.write_bytes(blob)
    report = verify_loaded(load_exports([path], workers=1))
    render_html(report)
    json.dumps(report.to_json(), allow_nan=False)
    return report


def test_clean_export_verifies_and_harness_accepts_it(tmp_path: Path) -> None:
    blob = tar(export(SyntheticTSE()))
    assert verify(tmp_path, blob).ok
    fuzz_verify.TestOneInput(blob)


def test_markup_seed_is_escaped_in_the_html(tmp_path: Path) -> None:
    seed = fuzz_verify.seeds()[-2]
    report = verify(tmp_path, seed)
    html = render_html(report)
    assert fuzz_verify.MARK not in html
    assert "&lt;x-fuzz&gt;" in html  # the markup is there, as text
    fuzz_verify.TestOneInput(seed)


def test_rich_markup_in_the_archive_reaches_the_terminal_report_as_text(
    tmp_path: Path,
) -> None:
    """'[/bold]' in info.csv and in a member name ended the terminal report (rich's
    MarkupError) in the harness's last step; its markup seed is HTML only. Found by
    the auditor walkthrough, not the fuzzer."""
    members = export(SyntheticTSE())
    members[0] = ("info.csv", info_csv("shop [/bold] [red]", "y", "1"))
    name, data = members[-1]
    members[-1] = (name.removesuffix(".log") + "[/i].log", data)
    fuzz_verify.TestOneInput(tar(members))


def test_info_csv_with_a_bare_cr(tmp_path: Path) -> None:
    """Found: csv.Error ('new-line character seen in unquoted field') from
    parse_info_csv escapes load_exports; verify.archive catches OpenTSEError and
    ValueError only. Expected: an E_INFO_FORMAT finding."""
    members = export(SyntheticTSE())
    members[0] = ("info.csv", b"manufacturer:,x\ry\nversion:,1\n")
    report = verify(tmp_path, tar(members))
    assert "E_INFO_FORMAT" in {f.code for f in report.findings}


def test_transaction_log_with_an_unknown_operation(tmp_path: Path) -> None:
    """Found: a transaction log whose operationType is no known one (here a changed
    letter) makes a row with no start, update or finish, and check_transactions
    takes ``.file`` of None. Expected: E_TX_OPERATION only."""
    tse = SyntheticTSE()
    spec = LogSpec(TransactionLogData(FINISH, "K-1", b"", "Kassenbeleg-V1", 2), 3, 1_700_000_009)
    name, data = tse.log(spec)  # the only log of transaction 2
    odd = (name, data.replace(b"FinishTransaction", b"FinishTransactioX"))
    members = [*export(tse), odd]
    report = verify(tmp_path, tar(members))
    codes = [f.code for f in report.findings]
    assert codes.count("E_TX_OPERATION") == 1
    assert not [f for f in report.findings if f.code.startswith("E_TX_NO") and "2" in f.message]


def test_certificate_whose_names_are_not_utf8(tmp_path: Path) -> None:
    """Found: a certificate whose subject/issuer UTF8String is no UTF-8 loads
    (cryptography parses names lazily), then ``cert.issuer`` raises ValueError in
    _chain_status. Expected: an E_CERT_* finding."""
    tse = SyntheticTSE()
    cn = tse.serial.hex().encode()
    assert cn in tse.certificate
    bad = tse.certificate.replace(cn, b"\xff" + cn[1:])
    report = verify(tmp_path, tar(export(tse, bad)))
    assert any(f.code.startswith("E_CERT") for f in report.findings)


def test_certificate_whose_key_is_not_on_the_curve(tmp_path: Path) -> None:
    """Found: ``cert.public_key()`` raises ValueError ('Invalid key') in
    archive._cert_entry for a point that is not on the curve. Expected: a finding."""
    tse = SyntheticTSE()
    assert tse.point in tse.certificate
    off_curve = tse.point[:-1] + bytes([tse.point[-1] ^ 1])
    bad = tse.certificate.replace(tse.point, off_curve)
    report = verify(tmp_path, tar(export(tse, bad)))
    assert not report.ok and "E_CERT_FORMAT" in {f.code for f in report.findings}


def test_certificate_with_an_extension_that_does_not_parse(tmp_path: Path) -> None:
    """Found (after I_CERT_UNUSED asked every certificate whether it is a CA): a
    certificate whose IssuerAlternativeName claims more octets than it has loads
    (cryptography parses extensions lazily), then raised ValueError from is_ca. It is
    no CA now; the export's own certificate still verifies its logs."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")])
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=30))
        .add_extension(x509.IssuerAlternativeName([x509.DNSName("example.org")]), False)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    broken = cert.replace(b"\x82\x0bexample.org", b"\x82\x20example.org")
    assert broken != cert
    tse = SyntheticTSE()
    report = verify(tmp_path, tar([*export(tse), (certificate_filename(broken), broken)]))
    assert report.to_json()["valid_signatures"] == 2
    assert "I_CERT_UNUSED" in {f.code for f in report.findings}
