"""The auditor's cross-check of a TSE TAR export with a DSFinV-K export
(verify.crosscheck, ``opentse dsfinvk check --tse-export``), on a real register
session: sales through ``opentse pos`` on the embedded TSE, ``pos close``, both
exports written by their commands; then each side tampered with (CSV rows edited as
text, the TAR rewritten with stdlib tarfile) and the exact finding code asserted.
A vendor archive is checked against a DSFinV-K export without matching Bons."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import tarfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from dsfinvk_support import DayBuilder, FakeTSE, line
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Payment, TseInfo
from opentse.installation import Installation
from opentse.testing import ready_tse
from opentse.verify import crosscheck as xc
from opentse.verify import crosscheck_read as xr
from opentse.verify.synthetic import build_export

APP = build_app()
TSS, CLIENT = "tse-x", "KASSE-X"
VENDOR = Path(__file__).resolve().parents[2] / "../shared/testdata/tse-exports"
# README of the vendor data: 97 logs, 12 transactions started and finished, one client
FISKALY = VENDOR / "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar"
FISKALY_TRANSACTIONS = 12
FISKALY_LOGS = 97
_LOG_NAME = re.compile(r"_No-(\d+)_(Start|Update|Finish)_")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def _session(folder: Path, *, extra: bool = False) -> tuple[Path, Path]:
    """Three sales, (``extra``: a TSE transaction of the same client without a Bon),
    closed; the DSFinV-K export (a folder) and the TSE's TAR export."""
    data = folder / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, TSS, client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    for number, sale in enumerate(
        (["Kaffee:2:2.50:1", "bar:5.00"], ["Brot:1:3.20:2", "karte:3.20"], ["Tee:1:1.80:1"])
    ):
        args = ["--line", sale[0], "--pay", sale[1] if len(sale) > 1 else "bar:1.80"]
        code, out = run("pos", "sell", *base, *args, "--json")
        assert code == 0 and json.loads(out)["tse_failed"] is False, out
        if extra and number == 0:
            with Installation.open(data) as inst:
                started = inst.service.start_transaction(TSS, CLIENT, b"", "SonstigerVorgang")
                inst.service.finish_transaction(
                    TSS, CLIENT, started.transaction_number, b"Schublade", "SonstigerVorgang"
                )
    company = ["--company", "Café X GmbH", "--street", "Weg 1", "--postal-code", "12345"]
    company += ["--city", "Ort", "--tax-number", "123/456/78901"]
    code, out = run("pos", "close", *base, "--counted-cash", "6.80", *company)
    assert code == 0, out
    export = folder / "dsfinvk"
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))
    assert code == 0, out
    tar = folder / "tse.tar"
    code, out = run("export", str(tar), "--tss", TSS, "--data", str(data), "--json")
    assert code == 0, out
    return export, tar


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _session(tmp_path_factory.mktemp("xc"))


@pytest.fixture
def copy(session: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the session's two exports, to tamper with."""
    export, tar = session
    shutil.copytree(export, tmp_path / "dsfinvk")
    shutil.copy(tar, tmp_path / "tse.tar")
    return tmp_path / "dsfinvk", tmp_path / "tse.tar"


def _rows(export: Path, name: str) -> list[dict[str, str]]:
    text = (export / name).read_bytes().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def _codes(export: Path, tar: Path) -> list[str]:
    return sorted(f.code for f in xr.cross_check_files(export, tar).findings)


def _bon_with_tse(export: Path, index: int) -> dict[str, str]:
    return [r for r in _rows(export, "transactions_tse.csv") if r["TSE_TANR"]][index]


def _rewrite_tar(tar: Path, keep: Callable[[str], bool]) -> list[str]:
    """Copy the archive member by member with stdlib tarfile, leaving out those
    ``keep`` refuses; returns the names left out."""
    dropped: list[str] = []
    out = io.BytesIO()
    with (
        tarfile.open(tar) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst,
    ):
        for member in src.getmembers():
            if not keep(member.name):
                dropped.append(member.name)
                continue
            dst.addfile(member, src.extractfile(member))
    tar.write_bytes(out.getvalue())
    return dropped


def test_an_untouched_session_has_no_findings(session: tuple[Path, Path]) -> None:
    export, tar = session
    result = xr.cross_check_files(export, tar)
    assert result.findings == [], result.findings
    summary = result.summary
    assert summary["clients"] == [CLIENT]
    assert summary["bons_with_tse_data"] == 3 == summary["bons_matched"]
    assert summary["tar_transactions_in_scope"] == 3
    assert result.ok


def test_a_zipped_export_reads_the_same(session: tuple[Path, Path], tmp_path: Path) -> None:
    export, tar = session
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(export.iterdir()):
            archive.write(file, file.name)
    result = xr.cross_check_files(zipped, tar)
    assert result.findings == []
    assert result.summary == xr.cross_check_files(export, tar).summary


def test_a_bon_removed_from_every_csv_leaves_its_transaction_unmatched(
    copy: tuple[Path, Path],
) -> None:
    export, tar = copy
    bon_id = _bon_with_tse(export, 1)["BON_ID"]  # the middle one: the window stays
    for file in export.glob("*.csv"):
        text = file.read_bytes().decode("utf-8")
        header, *rows = text.split("\r\n")
        if "BON_ID" not in header.split(";"):
            continue
        column = header.split(";").index("BON_ID")
        kept = [r for r in rows if not r or r.split(";")[column] != bon_id]
        file.write_bytes("\r\n".join([header, *kept]).encode("utf-8"))
    assert _codes(export, tar) == [xc.NOT_IN_DSFINVK]


def test_a_changed_signature_in_the_csv(copy: tuple[Path, Path]) -> None:
    export, tar = copy
    signature = _bon_with_tse(export, 0)["TSE_TA_SIG"]
    raw = bytearray(base64.b64decode(signature))
    raw[5] ^= 1
    file = export / "transactions_tse.csv"
    text = file.read_bytes().decode("utf-8")
    assert text.count(signature) == 1
    file.write_bytes(
        (text.replace(signature, base64.b64encode(bytes(raw)).decode())).encode("utf-8")
    )
    assert _codes(export, tar) == [xc.SIGNATURE]


def _later(text: str) -> str:
    return (datetime.fromisoformat(text) + timedelta(seconds=1)).isoformat()


@pytest.mark.parametrize(
    ("column", "change", "code"),
    [
        ("TSE_TA_SIGZ", lambda v: str(int(v) + 1), xc.COUNTER),
        ("TSE_TA_START", _later, xc.START),
        ("TSE_TA_ENDE", _later, xc.END),
        ("TSE_TA_VORGANGSART", lambda v: "SonstigerVorgang", xc.PROCESS_TYPE),
        ("TSE_VORGANGSDATEN", lambda v: v.replace("1.80", "1.70"), xc.PROCESS_DATA),
    ],
)
def test_one_changed_tse_field_in_the_csv(
    copy: tuple[Path, Path], column: str, change: Callable[[str], str], code: str
) -> None:
    export, tar = copy
    row = _bon_with_tse(export, 2)
    file = export / "transactions_tse.csv"
    header, *lines = file.read_bytes().decode("utf-8").split("\r\n")
    names = header.split(";")
    for i, text in enumerate(lines):
        fields = text.split(";")
        if row["TSE_TA_SIG"] in fields:
            assert len(fields) == len(names)
            old = fields[names.index(column)]
            fields[names.index(column)] = change(old)
            assert fields[names.index(column)] != old
            lines[i] = ";".join(fields)
    file.write_bytes("\r\n".join([header, *lines]).encode("utf-8"))
    assert _codes(export, tar) == [code]


def test_a_dropped_finish_log(copy: tuple[Path, Path]) -> None:
    export, tar = copy
    number = _bon_with_tse(export, 1)["TSE_TANR"]

    def keep(name: str) -> bool:
        match = _LOG_NAME.search(name)
        return not (match and match.group(1) == number and match.group(2) == "Finish")

    assert len(_rewrite_tar(tar, keep)) == 1
    assert _codes(export, tar) == [xc.NOT_FINISHED]


def test_every_log_of_a_transaction_dropped(copy: tuple[Path, Path]) -> None:
    export, tar = copy
    number = _bon_with_tse(export, 1)["TSE_TANR"]

    def keep(name: str) -> bool:
        match = _LOG_NAME.search(name)
        return not (match and match.group(1) == number)

    assert len(_rewrite_tar(tar, keep)) >= 2  # start and finish (updates if any)
    assert _codes(export, tar) == [xc.NOT_IN_TAR]


def test_a_tse_transaction_of_the_register_without_a_bon(tmp_path: Path) -> None:
    export, tar = _session(tmp_path, extra=True)
    result = xr.cross_check_files(export, tar)
    assert [f.code for f in result.findings] == [xc.NOT_IN_DSFINVK]
    assert "SonstigerVorgang" in result.findings[0].message
    assert result.summary["tar_transactions_in_scope"] == 4


def test_a_transaction_referenced_by_two_bons(copy: tuple[Path, Path]) -> None:
    export, tar = copy
    first, second = _bon_with_tse(export, 0), _bon_with_tse(export, 1)
    file = export / "transactions_tse.csv"
    text = file.read_bytes().decode("utf-8")
    # the second Bon claims the first one's TSE data, field for field
    fields = ("TSE_TANR", "TSE_TA_START", "TSE_TA_ENDE", "TSE_TA_VORGANGSART")
    fields += ("TSE_TA_SIGZ", "TSE_TA_SIG")
    old = ";".join(second[f] for f in fields)
    assert text.count(old) == 1
    file.write_bytes((text.replace(old, ";".join(first[f] for f in fields))).encode("utf-8"))
    codes = _codes(export, tar)
    # the second Bon's processData is not the first transaction's; its own transaction
    # is now without a Bon
    assert codes == sorted([xc.TWICE, xc.PROCESS_DATA, xc.NOT_IN_DSFINVK])


def test_transactions_after_the_last_closing_are_not_findings(
    session: tuple[Path, Path], tmp_path: Path
) -> None:
    export, _ = session
    data = tmp_path / "data"
    shutil.copytree(export.parent / "data", data)
    # times have whole seconds: one in the closing's second is still in its window
    # (the test was flaky when it ran in the second of the module's closing)
    last = xr.read_dsfinvk(export).last
    assert last is not None
    while time.time() < last + 1:
        time.sleep(0.05)
    with Installation.open(data) as inst:
        started = inst.service.start_transaction(TSS, CLIENT, b"", "SonstigerVorgang")
        inst.service.finish_transaction(
            TSS, CLIENT, started.transaction_number, b"", "SonstigerVorgang"
        )
    tar = tmp_path / "later.tar"
    code, out = run("export", str(tar), "--tss", TSS, "--data", str(data), "--json")
    assert code == 0, out
    result = xr.cross_check_files(export, tar)
    assert result.findings == []
    assert result.summary["tar_transactions"] == 4
    assert result.summary["tar_transactions_out_of_scope"] == 1


def test_cli_clean_and_tampered(copy: tuple[Path, Path]) -> None:
    export, tar = copy
    code, out = run("dsfinvk", "check", str(export), "--tse-export", str(tar), "--json")
    assert code == 0, out
    body = json.loads(out)
    assert body["ok"] is True and body["crosscheck"]["findings"] == []
    assert body["crosscheck"]["summary"]["bons_matched"] == 3
    code, out = run("dsfinvk", "check", str(export), "--tse-export", str(tar))
    assert code == 0, out
    assert "cross-check: ok" in out and "in scope" in out
    number = _bon_with_tse(export, 1)["TSE_TANR"]
    _rewrite_tar(tar, lambda name: not ((m := _LOG_NAME.search(name)) and m.group(1) == number))
    code, out = run("dsfinvk", "check", str(export), "--tse-export", str(tar), "--json")
    assert code == 1, out
    body = json.loads(out)
    assert body["errors"] == 0  # the DSFinV-K export alone is still fine
    assert [f["code"] for f in body["crosscheck"]["findings"]] == [xc.NOT_IN_TAR]


def test_cli_unreadable_tar(copy: tuple[Path, Path]) -> None:
    export, tar = copy
    tar.write_bytes(tar.read_bytes()[:700])  # cut inside the first member
    code, out = run("dsfinvk", "check", str(export), "--tse-export", str(tar))
    assert code == 2
    assert "E_EXPORT_UNREADABLE: " in out and "not a readable TAR archive" in out
    assert "dsfinvk: ok" in out  # the DSFinV-K check's verdict is printed before


def _vendor_tse(tar: Path) -> tuple[bytes, bytes, str]:
    """(public key point, certificate DER, client id) read with stdlib
    tarfile and cryptography; the client id from the log file names (TR-03151)."""
    point = certificate = b""
    clients: set[str] = set()
    with tarfile.open(tar) as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            data = archive.extractfile(member)
            if data is None:
                continue
            if name.lower().endswith(("_x509.cer", "_x509.der", "_x509.crt", "_x509.pem")):
                raw = data.read()
                cert = (
                    x509.load_der_x509_certificate(raw)
                    if raw[:1] == b"\x30"
                    else x509.load_pem_x509_certificates(raw)[0]
                )
                try:
                    ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
                except x509.ExtensionNotFound:
                    ca = False
                if not ca:
                    certificate = cert.public_bytes(serialization.Encoding.DER)
                    point = cert.public_key().public_bytes(
                        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                    )
            match = re.search(r"_Client-(.+?)(?:_Fc-\d+)?\.log$", name)
            if match and _LOG_NAME.search(name):
                clients.add(match.group(1))
    assert point and len(clients) == 1, clients
    return point, certificate, clients.pop()


def test_a_vendor_archive_against_an_export_without_its_bons(tmp_path: Path) -> None:
    if not FISKALY.is_file():
        pytest.skip(f"vendor test data not found at {FISKALY} (shared/testdata beside the repo)")
    point, certificate, client = _vendor_tse(FISKALY)
    # a day with one receipt made while the TSE was down (no TSE data), before the
    # vendor's transactions, and closed after them (2021-ish times read from the TAR)
    logs: list[int] = []
    txs = xr.read_tar_transactions(FISKALY, logs.append)
    assert sum(logs) == FISKALY_LOGS  # every log read once
    assert len(txs) == FISKALY_TRANSACTIONS
    first = min(t.first_time for t in txs if t.first_time is not None)
    last = max(t.end for t in txs if t.end is not None)
    begin = datetime.fromtimestamp(first, UTC) - timedelta(hours=1)
    day = DayBuilder(FakeTSE(), begin.date())
    day.clock = begin
    day.add([line(1, "Eis", 2, "3.57")], [Payment("Bar", Decimal("3.57"))], outage=True)
    closing = day.closing()
    closing = replace(
        closing,
        z_kasse_id=client,
        created=datetime.fromtimestamp(last, UTC) + timedelta(minutes=5),
        register=CashRegister(client, "vendor", "demo", software_version="0.1"),
        tses=(TseInfo(1, point, certificate),),
    )
    export = write_export([closing], tmp_path / "dsfinvk")
    result = xr.cross_check_files(export, FISKALY)
    missing = [f for f in result.findings if f.code == xc.NOT_IN_DSFINVK]
    assert len(missing) == FISKALY_TRANSACTIONS
    assert [f for f in result.findings if f.severity == "error"] == missing
    assert result.summary["tar_transactions_in_scope"] == FISKALY_TRANSACTIONS


def test_the_tar_is_streamed_one_small_record_per_transaction(tmp_path: Path) -> None:
    """12,000 logs (~12 MB): what the reader holds at the end is its records (a few
    hundred octets per transaction), and its peak is that plus one window and one
    batch, not the archive."""
    tar = tmp_path / "big.tar"
    built = build_export(tar, 12_000)
    tracemalloc.start()
    try:
        txs = xr.read_tar_transactions(tar)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(txs) == built.transactions == 4000
    assert held < 600 * len(txs) + (64 << 10)
    assert peak - held < 4 << 20
    assert peak < tar.stat().st_size / 2


def test_a_compressed_tar_is_read_too(session: tuple[Path, Path], tmp_path: Path) -> None:
    """The scan refuses a gzip archive; ``tarfile`` reads it as a stream instead."""
    export, tar = session
    gz = tmp_path / "tse.tar.gz"
    with tarfile.open(tar) as src, tarfile.open(gz, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
    result = xr.cross_check_files(export, gz)
    assert result.findings == []
    assert result.summary["bons_matched"] == 3


def test_the_reader_gives_each_register_its_own_window(tmp_path: Path) -> None:
    """Two registers closed at 18:00 and 23:00 in one export: each client id's window
    ends at its own closing (and starts at its own first Bon)."""
    closings = []
    for hour, serial in ((18, "KASSE-A"), (23, "KASSE-B")):
        day = DayBuilder(FakeTSE())
        day.clock = day.clock.replace(hour=hour - 8)
        day.add([line(1, "Eis", 1, "2.00")], [Payment("Bar", Decimal("2.00"))])
        closing = day.closing()
        closings.append(
            replace(
                closing,
                z_kasse_id=serial,
                created=closing.created.replace(hour=hour),
                register=CashRegister(serial, "vendor", "demo", software_version="0.1"),
            )
        )
    export = write_export(closings, tmp_path / "dsfinvk")
    side = xr.read_dsfinvk(export)
    a, b = (side.windows[c] for c in ("KASSE-A", "KASSE-B"))
    assert a[1] == int(closings[0].created.timestamp())
    assert b[1] == side.last == int(closings[1].created.timestamp())
    assert a[0] is not None and b[0] is not None and a[0] + 5 * 3600 == b[0]
    assert side.first == a[0]


def test_findings_name_the_bon_and_the_tse_as_an_auditor_reads_them(
    copy: tuple[Path, Path],
) -> None:
    """A Bon by its number, register and closing (not only its BON_ID); a TSE
    transaction without a Bon by its TSE serial too (an export may hold several)."""
    export, tar = copy
    changed = _bon_with_tse(export, 0)
    file = export / "transactions_tse.csv"
    text = file.read_bytes().decode("utf-8")
    row = ";".join(changed.values())
    counter = changed["TSE_TA_SIGZ"]
    moved = row.replace(f";{counter};", f";{int(counter) + 1};")
    file.write_bytes(text.replace(row, moved).encode("utf-8"))
    (finding,) = xr.cross_check_files(export, tar).findings
    assert finding.code == xc.COUNTER
    assert finding.message.startswith(f"Bon 1 (BON_ID {changed['BON_ID']}, register {CLIENT}")
    assert ", Z_NR 1)" in finding.message

    dropped = _bon_with_tse(export, 1)
    text = file.read_bytes().decode("utf-8")
    file.write_bytes(text.replace(";".join(dropped.values()) + "\r\n", "").encode("utf-8"))
    result = xr.cross_check_files(export, tar)
    (missing,) = [f for f in result.findings if f.code == xc.NOT_IN_DSFINVK]
    serial = next(iter(result.summary["tse_serials"]))  # type: ignore[call-overload]
    assert f"of TSE {serial[:16]}" in missing.message


def test_an_unreadable_tse_field_is_named_in_the_auditors_words(copy: tuple[Path, Path]) -> None:
    """A TSE_TA_SIGZ that is no number: the finding names the Bon, the column and the
    value, not Python's int() message."""
    export, tar = copy
    bon = _bon_with_tse(export, 0)
    path = export / "transactions_tse.csv"
    was = f";{bon['TSE_TA_SIGZ']};{bon['TSE_TA_SIG']};".encode()
    assert path.read_bytes().count(was) == 1
    path.write_bytes(
        path.read_bytes().replace(was, f";x{bon['TSE_TA_SIGZ']};{bon['TSE_TA_SIG']};".encode())
    )
    (finding,) = [
        f for f in xr.cross_check_files(export, tar).findings if f.code == xc.BON_UNREADABLE
    ]
    assert (finding.file, finding.column) == ("transactions_tse.csv", "TSE_TA_SIGZ")
    (receipt,) = [r for r in _rows(export, "transactions.csv") if r["BON_ID"] == bon["BON_ID"]]
    label = f"Bon {receipt['BON_NR']} (BON_ID {bon['BON_ID']}, register {bon['Z_KASSE_ID']}, "
    assert finding.message.startswith(label), finding.message
    assert f"TSE_TA_SIGZ 'x{bon['TSE_TA_SIGZ']}' is not a whole number" in finding.message
    assert "int()" not in finding.message and "base 10" not in finding.message
