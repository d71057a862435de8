"""What fuzz/fuzz_dsfinvk.py found in the DSFinV-K checker, each input kept as it
crashed ``check_export`` (now a Finding), and the seeds' own promises: the exports made
from real books pass the checker, the hostile ZIPs are refused with E_EXPORT_ZIP."""

from __future__ import annotations

import base64
import resource
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.dsfinvk_seeds import (  # noqa: E402
    _patch_flag,
    _patch_method,
    _patch_sizes,
    hostile_zips,
    own_exports,
    zip_bytes,
)

from opentse.formats.dsfinvk.check import Finding, check_export  # noqa: E402


def folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    out = tmp_path / "export"
    out.mkdir(parents=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def edit_field(files: dict[str, bytes], name: str, column: str, value: str) -> dict[str, bytes]:
    """``files`` with ``column`` of the first data row of ``name`` set to ``value``."""
    header, first, *rest = files[name].decode().split("\r\n")
    cells = first.split(";")
    cells[header.split(";").index(column)] = value
    return {**files, name: "\r\n".join([header, ";".join(cells), *rest]).encode()}


def test_seed_exports_from_real_books_pass(tmp_path: Path) -> None:
    for i, files in enumerate(own_exports()):
        assert "lines.csv" in files and "index.xml" in files
        path = tmp_path / f"e{i}.zip"
        path.write_bytes(zip_bytes(files))
        assert check_export(path) == []
        assert b"Bestellung-V1" in files["transactions_tse.csv"]


def test_encrypted_member_is_a_finding(tmp_path: Path) -> None:
    """Found: zipfile's RuntimeError ('password required') escaped check_export."""
    path = tmp_path / "x.zip"
    path.write_bytes(_patch_flag(zip_bytes(own_exports()[0]), "index.xml", flag=0x1))
    findings = check_export(path)
    assert codes(findings) == {"E_EXPORT_ZIP"}
    assert "encrypted" in findings[0].message


@pytest.mark.parametrize("method", [99, 14, 12])
def test_unknown_compression_method_is_a_finding(tmp_path: Path, method: int) -> None:
    """Found: NotImplementedError for compression method 99 escaped check_export."""
    path = tmp_path / "x.zip"
    path.write_bytes(_patch_method(zip_bytes(own_exports()[0]), "vat.csv", method=method))
    assert "E_EXPORT_ZIP" in codes(check_export(path))


def test_every_hostile_zip_is_refused_or_checked(tmp_path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i, blob in enumerate(hostile_zips(own_exports()[0])):
        path = tmp_path / f"h{i}.zip"
        path.write_bytes(blob)
        findings = check_export(path)
        assert all(f.code.startswith(("E_", "W_")) for f in findings)
        if i in (0, 1, 5, 6):  # bomb, absurd size, encrypted, unknown method
            assert "E_EXPORT_ZIP" in codes(findings), i
    # the bomb inflates to 16 MiB; zipfile stops at its claimed 100 bytes
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 12 * 1024


def test_member_claiming_more_than_the_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(_patch_sizes(zip_bytes(own_exports()[0]), "lines.csv", 0xFFFFFFFF))
    findings = check_export(path)
    assert [f.code for f in findings] == ["E_EXPORT_ZIP"]
    assert "larger than" in findings[0].message


def test_bomb_with_an_honest_size_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in own_exports()[0].items():
            archive.writestr(name, data)
        archive.writestr("x/../lines.csv", b"")  # a traversal name is only a name
    blob = path.read_bytes()
    # lines.csv of 80 MiB of zeros: 80 KiB compressed, over 200:1 and over 64 MiB
    files = {**own_exports()[0], "lines.csv": bytes(80 << 20)}
    path.write_bytes(zip_bytes(files))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    findings = check_export(path)
    assert "E_EXPORT_ZIP" in codes(findings)
    assert "ZIP bomb" in " ".join(f.message for f in findings)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 40 * 1024
    path.write_bytes(blob)
    # read as nothing but a member index.xml does not declare
    assert [(f.code, f.file) for f in check_export(path)] == [
        ("W_FILE_UNDECLARED", "x/../lines.csv")
    ]


def test_unknown_key_type_in_certificate_and_key_is_a_finding(tmp_path: Path) -> None:
    """Found: cryptography's UnsupportedAlgorithm for the key OID 1.2.1672.10045.2.1
    (a bit flip of id-ecPublicKey) escaped _read_tse."""
    files = own_exports()[0]
    header, row, *_ = files["tse.csv"].decode().split("\r\n")
    cells = dict(zip(header.split(";"), row.split(";"), strict=True))
    cert = base64.b64decode(cells["TSE_ZERTIFIKAT_I"] + cells["TSE_ZERTIFIKAT_II"])
    ec_oid, odd_oid = bytes.fromhex("2a8648ce3d0201"), bytes.fromhex("2a8d08ce3d0201")
    assert ec_oid in cert
    odd = base64.b64encode(cert.replace(ec_oid, odd_oid)).decode()
    bad_cert = edit_field(files, "tse.csv", "TSE_ZERTIFIKAT_I", odd)
    bad_cert = edit_field(bad_cert, "tse.csv", "TSE_ZERTIFIKAT_II", "")
    assert "E_TSE_CERTIFICATE" in codes(check_export(folder(tmp_path / "c", bad_cert)))
    spki = cert[cert.index(ec_oid) - 4 :]  # not a whole SPKI: any DER that starts 0x30
    bad_key = edit_field(files, "tse.csv", "TSE_PUBLIC_KEY", base64.b64encode(spki).decode())
    assert "E_TSE_KEY" in codes(check_export(folder(tmp_path / "k", bad_key)))


@pytest.mark.parametrize(
    ("key", "code"),
    [("\u00b2", "E_CSV_NUMBER"), ("\u0663", "E_CSV_NUMBER"), ("9" * 5000, "E_VAT_KEY")],
)
def test_vat_key_that_is_no_ascii_integer_is_a_finding(tmp_path: Path, key: str, code: str) -> None:
    """Found: UST_SCHLUESSEL '²' passed str.isdigit() and int('²') raised ValueError;
    5,000 digits are over what int() converts. Also: the Numeric check took the
    ARABIC-INDIC DIGIT THREE as a number (regex \\d), now only ASCII digits."""
    files = edit_field(own_exports()[0], "vat.csv", "UST_SCHLUESSEL", key)
    assert code in codes(check_export(folder(tmp_path, files)))


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "9" * 5000])
@pytest.mark.parametrize("element", ["From", "Accuracy", "MaxLength"])
def test_index_xml_numbers_that_int_cannot_read(tmp_path: Path, element: str, value: str) -> None:
    """Found (read_index_xml): Range/From '²' passed str.isdigit() and int() raised
    ValueError, as did Accuracy and MaxLength (and 5,000 digits). Now a bad
    Accuracy/MaxLength is E_INDEX_XML; a bad first row is read as none."""
    files = own_exports()[0]
    tag = f"<{element}>".encode()
    index = files["index.xml"]
    at = index.index(tag) + len(tag)
    end = index.index(b"<", at)
    files = {**files, "index.xml": index[:at] + value.encode() + index[end:]}
    findings = check_export(folder(tmp_path, files))
    if element == "From":
        assert all(f.code.startswith(("E_", "W_")) for f in findings)
    else:
        assert "E_INDEX_XML" in codes(findings)


def test_vat_key_superscript_in_both_vat_files(tmp_path: Path) -> None:
    """The VAT-rate rule looks a transactions_vat.csv key up in vat.csv: with '²' in
    both, it took the isdigit() branch to int('²')."""
    files = edit_field(own_exports()[0], "vat.csv", "UST_SCHLUESSEL", "\u00b2")
    files = edit_field(files, "transactions_vat.csv", "UST_SCHLUESSEL", "\u00b2")
    assert "E_CSV_NUMBER" in codes(check_export(folder(tmp_path, files)))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_entity_declaration_in_utf16_index_xml_is_refused(tmp_path: Path, encoding: str) -> None:
    """Found while reading the index.xml parser for the fuzzer: entity declarations
    were refused by a byte search for '<!ENTITY', which UTF-16 or UTF-32 text passes;
    expat then expanded them. Now refused in any encoding."""
    text = (
        f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
        '<!DOCTYPE DataSet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<DataSet><Version>&b;</Version><Media><Name>x</Name></Media></DataSet>"
    )
    files = {**own_exports()[0], "index.xml": text.encode(encoding)}
    findings = check_export(folder(tmp_path, files))
    mine = [f for f in findings if f.file == "index.xml"]
    assert [f.code for f in mine] == ["E_INDEX_XML"]
    if encoding == "utf-16":  # with a byte order mark: expat reads it
        assert mine[0].message == "index.xml: entity declarations are not allowed"


def test_bomb_split_into_members_under_the_limit_is_refused(tmp_path: Path) -> None:
    """Found in review: the bomb rule looked at one member at a time, so three
    tables of 30 MiB of zeros (30 KiB compressed each, each under 64 MiB) were all
    inflated and parsed. What the checker has inflated so far counts as one: over
    64 MiB at more than 200:1 is refused before the next member is read."""
    table = bytes(30 << 20)
    files = {**own_exports()[0]}
    for name in ("lines.csv", "transactions.csv", "transactions_vat.csv", "lines_vat.csv"):
        assert name in files
        files[name] = table
    path = tmp_path / "split.zip"
    path.write_bytes(zip_bytes(files))
    del files, table
    findings = check_export(path)
    assert "E_EXPORT_ZIP" in codes(findings)
    assert "ZIP bomb" in " ".join(f.message for f in findings)


def test_a_legit_export_is_not_a_bomb_by_the_members_together(tmp_path: Path) -> None:
    """Many members read add up: an export whose members compress like CSV does is
    never refused (the running ratio is never above the largest member's)."""
    files = own_exports()[0]
    path = tmp_path / "ok.zip"
    path.write_bytes(zip_bytes(files))
    with zipfile.ZipFile(path) as archive:
        assert all(i.file_size < 200 * i.compress_size + 1024 for i in archive.infolist())
    assert check_export(path) == []
