"""Tampered copies of a vendor export (built in tmp with stdlib tarfile): every
alteration is reported, naming the file."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from verify_data import vendor_export

from opentse.verify.report import verify_exports

ARCHIVE = "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar"
START_2 = (
    "Unixt_1632729230_Sig-28_Log-Tra_No-2_Start_Client-db7b4694-4be9-471e-9373-de4ce44f43e7.log"
)
FINISH_2 = (
    "Unixt_1632729231_Sig-29_Log-Tra_No-2_Finish_Client-db7b4694-4be9-471e-9373-de4ce44f43e7.log"
)
TSE_CERT = "a62431499ff4bd736f330e69ebdb9f251947bf260a1ea8ad6a8c3ccb588997a0_X509.der"
SERIAL = TSE_CERT.split("_")[0]
CLIENT = "db7b4694-4be9-471e-9373-de4ce44f43e7"
Members = dict[str, bytes]


def _members() -> Members:
    with tarfile.open(vendor_export(ARCHIVE)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _write(path: Path, members: Members) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _tampered(tmp_path: Path, change: Callable[[Members], object]) -> dict[str, Any]:
    members = _members()
    change(members)
    return verify_exports([_write(tmp_path / "tampered.tar", members)]).to_json()


def test_untouched_copy_is_clean(tmp_path: Path) -> None:
    report = _tampered(tmp_path, lambda m: None)
    assert report["ok"] is True and report["valid_signatures"] == 10


def test_every_single_byte_flip_of_a_log_is_caught(tmp_path: Path) -> None:
    original = _members()
    data = original[FINISH_2]
    for position in range(len(data)):
        members = dict(original)
        changed = bytearray(data)
        changed[position] ^= 0xFF
        members[FINISH_2] = bytes(changed)
        report = verify_exports([_write(tmp_path / f"f{position}.tar", members)]).to_json()
        named = [
            f for f in report["findings"] if f["severity"] == "error" and f["file"] == FINISH_2
        ]
        assert report["ok"] is False, position
        assert named, position
        assert report["valid_signatures"] == 9, position


def test_flipped_signature_byte_is_an_invalid_signature(tmp_path: Path) -> None:
    def flip(m: Members) -> None:
        m[FINISH_2] = m[FINISH_2][:-1] + bytes([m[FINISH_2][-1] ^ 0x01])

    report = _tampered(tmp_path, flip)
    assert report["invalid_signatures"] == [FINISH_2]
    assert report["parse_errors"] == []
    (finding,) = [f for f in report["findings"] if f["code"] == "E_SIGNATURE_INVALID"]
    assert finding["file"] == FINISH_2
    # which TSE, register and transaction, from the log itself (a name can be changed)
    message = finding["message"]
    assert "Finish log of transaction 2" in message and "signature counter 29" in message
    assert f"client '{CLIENT}'" in message and f"TSE {SERIAL[:16]}" in message


def test_edited_process_data_names_the_transaction(tmp_path: Path) -> None:
    """A cheat lowers the amount in a Finish log (same length, so it still decodes)."""

    def edit(m: Members) -> None:
        data = m[FINISH_2]
        digit = data.index(b"Beleg^") + len(b"Beleg^")
        lowered = bytes([data[digit] - 1 if data[digit] > 0x30 else data[digit] + 1])
        m[FINISH_2] = data[:digit] + lowered + data[digit + 1 :]

    report = _tampered(tmp_path, edit)
    assert report["invalid_signatures"] == [FINISH_2] and report["ok"] is False
    (finding,) = [f for f in report["findings"] if f["code"] == "E_SIGNATURE_INVALID"]
    assert "transaction 2" in finding["message"] and CLIENT in finding["message"]


def test_dropped_log_is_a_missing_counter(tmp_path: Path) -> None:
    report = _tampered(tmp_path, lambda m: m.pop(FINISH_2))
    (serial,) = report["serial_numbers"].values()
    assert serial["missing_ranges"] == [[29, 29]]
    (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
    assert "29" in gap["message"] and "Sig-30_" in gap["file"]
    assert report["transactions"]["open"] == [2]
    assert report["ok"] is False
    (still_open,) = [f for f in report["findings"] if f["code"] == "W_TX_OPEN"]
    assert still_open["message"].startswith(f"transaction 2 (client '{CLIENT}', TSE {SERIAL[:16]}")


def test_swapped_names_are_reported_for_both_files(tmp_path: Path) -> None:
    def swap(m: Members) -> None:
        m[START_2], m[FINISH_2] = m[FINISH_2], m[START_2]

    report = _tampered(tmp_path, swap)
    assert report["valid_signatures"] == 10  # the logs themselves are intact
    mismatches = {
        f["file"]: f["message"] for f in report["findings"] if f["code"] == "E_NAME_MISMATCH"
    }
    assert set(mismatches) == {START_2, FINISH_2}
    assert "signature counter 28 in the name, 29 in the log" in mismatches[START_2]
    assert "StartTransaction in the name, FinishTransaction in the log" in mismatches[START_2]


def _key_cert(
    subject: str, issuer: str, public: ec.EllipticCurvePublicKey, signer: ec.EllipticCurvePrivateKey
) -> bytes:
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public)
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_certificate_replaced_by_another_key(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())

    def replace(m: Members) -> None:
        m[TSE_CERT] = _key_cert("impostor", "impostor", other.public_key(), other)

    report = _tampered(tmp_path, replace)
    assert report["certificates"]["name_mismatches"] == [TSE_CERT]
    assert report["valid_signatures"] == 0
    codes = {f["code"] for f in report["findings"]}
    assert {"E_CERT_NAME_MISMATCH", "E_NO_CERTIFICATE"} <= codes
    (missing,) = [f for f in report["findings"] if f["code"] == "E_NO_CERTIFICATE"]
    assert "a62431499ff4bd73" in missing["message"] and "10 log(s)" in missing["message"]


def test_certificate_reissued_by_a_forger_breaks_the_chain(tmp_path: Path) -> None:
    """Same TSE key and issuer name, but signed by someone else's key."""
    forger = ec.generate_private_key(ec.SECP384R1())
    original = x509.load_der_x509_certificate(_members()[TSE_CERT])
    public = original.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    issuer = original.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    forged = x509.load_der_x509_certificate(_key_cert("forged", str(issuer), public, forger))
    forged_der = (
        x509.CertificateBuilder()
        .subject_name(forged.subject)
        .issuer_name(original.issuer)
        .public_key(public)
        .serial_number(2)
        .not_valid_before(forged.not_valid_before_utc)
        .not_valid_after(forged.not_valid_after_utc)
        .sign(forger, hashes.SHA384())
        .public_bytes(serialization.Encoding.DER)
    )

    report = _tampered(tmp_path, lambda m: m.__setitem__(TSE_CERT, forged_der))
    assert report["valid_signatures"] == 10  # the key is still the TSE's
    assert report["certificates"]["chain"] == "broken"
    (broken,) = [f for f in report["findings"] if f["code"] == "E_CHAIN_BROKEN"]
    assert broken["file"] == TSE_CERT
    assert hashlib.sha256(b"").hexdigest() not in broken["message"]


def test_two_overlapping_exports_of_one_tse_are_no_duplicate_transactions(
    tmp_path: Path,
) -> None:
    """An auditor gets the same logs twice (a monthly export and the full one): the
    identical copies are W_LOG_REPEATED, not transactions 'started twice'."""
    members = _members()
    first = _write(tmp_path / "first.tar", members)
    second = _write(tmp_path / "second.tar", {n: d for n, d in members.items() if n != START_2})
    report = verify_exports([first, second]).to_json()
    codes = {f["code"] for f in report["findings"]}
    assert "W_LOG_REPEATED" in codes and "E_TX_DUPLICATE" not in codes, report["findings"]
    # one warning per run of repeated counters (26..27 and 29..35: 28 is in one only)
    repeated = [f["message"] for f in report["findings"] if f["code"] == "W_LOG_REPEATED"]
    assert len(repeated) == 2, repeated
    assert "counter(s) 26..27 occur up to 2 times" in repeated[0]
    assert "counter(s) 29..35 occur" in repeated[1]
    assert report["ok"] is True
    assert report["transactions"] == {"started": 5, "finished": 5, "open": []}
    # a copy that differs (another signature for the same Finish) is still an error
    changed = dict(members)
    changed[FINISH_2] = changed[FINISH_2][:-1] + bytes([changed[FINISH_2][-1] ^ 0x01])
    report = verify_exports([first, _write(tmp_path / "changed.tar", changed)]).to_json()
    codes = {f["code"] for f in report["findings"]}
    assert {"E_COUNTER_DUPLICATE", "E_TX_DUPLICATE", "E_SIGNATURE_INVALID"} <= codes


def test_one_missing_counter_reads_as_one_number(tmp_path: Path) -> None:
    """The text table and the HTML timeline say 'missing: 29', not '29..29'."""
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    members = _members()
    members.pop(FINISH_2)
    tar, page = _write(tmp_path / "t.tar", members), tmp_path / "r.html"
    result = CliRunner().invoke(build_app(), ["verify", str(tar), "--html", str(page)])
    assert result.exit_code == 1 and "missing: 29" in result.stdout
    assert "29..29" not in result.stdout
    html = page.read_text(encoding="utf-8")
    assert "missing 29<" in html and "Missing: 29<" in html and "29..29" not in html
    # the present stretches too: 26..28 and 30..35 around the gap
    assert ">26..28<" in html and ">30..35<" in html
    single = _members()
    single.pop(START_2)  # 27 to 29 missing, then 26 stands alone before the gap
    single.pop(FINISH_2)
    _write(tar, {n: d for n, d in single.items() if "Sig-27_" not in n})
    CliRunner().invoke(build_app(), ["verify", str(tar), "--html", str(page)])
    html = page.read_text(encoding="utf-8")
    assert ">26<" in html and "26..26" not in html


def test_a_truncated_log_file_is_named_once(tmp_path: Path) -> None:
    """A log cut in half (the TAR itself intact): E_LOG_FORMAT says what it means for
    the audit, without repeating its own code inside the message."""
    report = _tampered(tmp_path, lambda m: m.__setitem__(FINISH_2, m[FINISH_2][:60]))
    (bad,) = [f for f in report["findings"] if f["code"] == "E_LOG_FORMAT"]
    assert bad["file"] == FINISH_2 and report["parse_errors"] == [FINISH_2]
    assert "E_LOG_FORMAT" not in bad["message"]
    assert bad["message"].startswith("the log cannot be decoded (cut short or altered)")
    # its counter is a gap; the gap says the log is there but unreadable
    (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
    assert "counter(s) 29 missing" in gap["message"]
    assert "1 log file(s) named with these counters cannot be decoded" in gap["message"]


def test_certificate_swapped_for_another_tses_under_its_own_name(tmp_path: Path) -> None:
    """The TSE's certificate taken out and another TSE's put in, correctly named: the
    logs have no certificate (error) and the stranger is named as unused."""
    other = ec.generate_private_key(ec.SECP256R1())
    point = other.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    name = f"{hashlib.sha256(point).hexdigest()}_X509.der"

    def swap(m: Members) -> None:
        del m[TSE_CERT]
        m[name] = _key_cert("other TSE", "other TSE", other.public_key(), other)

    report = _tampered(tmp_path, swap)
    assert report["ok"] is False and report["valid_signatures"] == 0
    (unused,) = [f for f in report["findings"] if f["code"] == "I_CERT_UNUSED"]
    assert unused["file"] == name and "CN=other TSE" in unused["message"]
    assert any(f["code"] == "E_NO_CERTIFICATE" for f in report["findings"])


def test_an_export_of_one_clients_transactions_only_is_named_as_filtered(
    tmp_path: Path,
) -> None:
    """Only one client's transaction logs, no system log (exportData with a clientId):
    the gaps stay errors, and a note says what the export looks like."""
    members = {n: d for n, d in _members().items() if "_Log-Sys_" not in n and n != FINISH_2}
    report = verify_exports([_write(tmp_path / "client.tar", members)]).to_json()
    assert any(f["code"] == "E_COUNTER_GAP" for f in report["findings"])
    (note,) = [f for f in report["findings"] if f["code"] == "I_EXPORT_LOOKS_FILTERED"]
    assert CLIENT in note["message"] and "complete export" in note["message"]
    # an export with system logs and gaps (the vendor's faulty one): no such note
    report = verify_exports([vendor_export("faulty/ThreeMissingAreasOfSignatureCounter.tar")])
    codes = [f.code for f in report.findings]
    assert "E_COUNTER_GAP" in codes and "I_EXPORT_LOOKS_FILTERED" not in codes


def test_an_unreadable_log_explains_a_gap_of_its_own_archive_only(tmp_path: Path) -> None:
    """Two TSEs' exports verified together each count from their own counter 1: a log
    of one archive that cannot be decoded says nothing about a gap of the other TSE
    (its gap read '1 log file(s) named with these counters cannot be decoded', as if
    the missing log were there)."""
    with tarfile.open(vendor_export("fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar")) as tar:
        other = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and "_Sig-4_" not in m.name  # a log deleted: gap at 4
        }
    junk = f"Unixt_1632729300_Sig-4_Log-Tra_No-9_Finish_Client-{CLIENT}.log"

    def gap_message(with_junk: str) -> str:
        first = {**_members(), junk: b"\x30\x03"} if with_junk == "wb" else _members()
        second = {**other, junk: b"\x30\x03"} if with_junk == "gf" else other
        report = verify_exports(
            [_write(tmp_path / "wb.tar", first), _write(tmp_path / "gf.tar", second)]
        ).to_json()
        assert [f["file"] for f in report["findings"] if f["code"] == "E_LOG_FORMAT"] == [
            f"{with_junk}.tar:{junk}"
        ]
        (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
        assert gap["file"].startswith("gf.tar:") and "counter(s) 4 missing" in gap["message"]
        return str(gap["message"])

    assert "cannot be decoded" not in gap_message("wb")  # another TSE's archive
    assert "1 log file(s) named with these counters cannot be decoded" in gap_message("gf")
