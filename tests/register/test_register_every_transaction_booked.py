"""Every transaction the TSE signed for this register is in the DSFinV-K export, once.

Recovery finishes two kinds of transaction the sale itself never booked as signed:
the ones it aborts (a Start left open by a crash or by a Finish that never reached
the TSE) and a sale whose Finish the TSE did sign although the till's call timed
out (the receipt was printed "TSE ausgefallen"). Real embedded TSE (an
installation's, with a certificate for tse.csv) or ``opentse serve`` over HTTP, real
books; the export is checked with the DSFinV-K checker (it verifies every
signature from the CSVs) and its TSE_TANR set is compared with the transactions in
the TSE's own TAR export for the client, read with stdlib tarfile and the codec.
"""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cafe_muster import ABORT, CLIENT, MASTER, SELLER, TSE
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.engine.export import ExportFilter
from opentse.engine.service import TSEService
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.installation import Installation
from opentse.register import (
    EmbeddedBackend,
    Light,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    SaleResult,
    Signed,
)
from opentse.register.books import Books
from opentse.register.books_json import sale_to_json
from opentse.register.recovery_books import abort_bon_id, abort_note, late_signature_note
from opentse.register.remote import RemoteBackend
from opentse.register.render_text import render_text
from opentse.register.zreport import ZReport, build_zreport, close_day
from opentse.testing import ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData

TIMEOUT = 2.0  # the register's deadline for a TSE call (a loaded CI host stays within)


class Crash(BaseException):
    """The till's process dies here (not an Exception: the register cannot note it)."""


class SlowFinish:
    """Makes a backend's Finish answer after the register's deadline: ``signed`` --
    the TSE signs it, the answer comes too late; ``lost`` -- it never reaches the
    TSE; ``crash`` -- the till's files are copied as the disk holds them and the
    process dies before the Finish is sent. The late threads end when ``release``."""

    def __init__(self, files: list[Path], crashed: Path) -> None:
        self.mode: str | None = None
        self.release = threading.Event()
        self.files, self.crashed = files, crashed

    def around(self, finish: Callable[[], Signed]) -> Signed:
        mode, self.mode = self.mode, None
        if mode == "crash":
            self.crashed.mkdir()
            for file in self.files:
                for suffix in ("", "-wal"):
                    if Path(f"{file}{suffix}").exists():
                        shutil.copyfile(f"{file}{suffix}", self.crashed / f"{file.name}{suffix}")
            raise Crash("before the Finish")
        if mode == "lost":
            self.release.wait(10)
            raise ConnectionError("the Finish never reached the TSE")
        signed = finish()
        if mode == "signed":
            self.release.wait(10)
        return signed


class SlowEmbedded(EmbeddedBackend):
    def __init__(self, service: TSEService, slow: SlowFinish) -> None:
        super().__init__(service, TSE)
        self.slow = slow

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        parent = super().finish
        return self.slow.around(
            lambda: parent(client_id, number, process_type, process_data, ref=ref)
        )


class SlowRemote(RemoteBackend):
    def __init__(self, served: dict[str, str], slow: SlowFinish) -> None:
        args = ("origin", "api_key", "api_secret", "tss", "client")
        super().__init__(*(served[a] for a in args), retries=0)
        self.slow = slow

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        parent = super().finish
        return self.slow.around(
            lambda: parent(client_id, number, process_type, process_data, ref=ref)
        )


def _register(
    backend: EmbeddedBackend | RemoteBackend, journal: OutageLog, books: Books
) -> Register:
    config = RegisterConfig(SELLER, CLIENT, timeout=TIMEOUT)
    return Register(backend, config, journal, clock=lambda: datetime.now(UTC), books=books)


def _sale(amount: str = "2.50") -> Sale:
    sale = Sale()
    sale.add_line("Kaffee", 2, amount, 1)
    sale.add_line("Brezel", 1, "0.90", 2)
    sale.add_payment("card", str(2 * Decimal(amount) + Decimal("0.90")))
    return sale


def _row(books_file: Path, bon_id: str) -> dict[str, Any]:
    with sqlite3.connect(books_file) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM books_receipts WHERE bon_id = ?", (bon_id,)).fetchone()
        refs = db.execute(
            "SELECT ref_bon_id, ref_type FROM books_references WHERE bon_id = ?", (bon_id,)
        ).fetchall()
    assert row is not None, bon_id
    return {**dict(row), "references": [tuple(r) for r in refs]}


def _csv(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def _tar_transactions(tar_bytes: bytes, client: str) -> dict[int, list[str]]:
    """Transaction number -> operation types of its logs for ``client``, read with
    stdlib tarfile and the codec (not our TAR reader)."""
    found: dict[int, list[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            fileobj = tar.extractfile(member)
            if fileobj is None or not member.name.endswith(".log"):
                continue
            data = codec.decode_log_message(fileobj.read()).certified
            if isinstance(data, TransactionLogData) and data.client_id == client:
                found.setdefault(data.transaction_number, []).append(data.operation_type)
    return found


def _embedded_tar(service: TSEService) -> bytes:
    out = io.BytesIO()
    service.export(TSE, out, ExportFilter(client_id=CLIENT), log_export=False)
    return out.getvalue()


def _served_tar(served: dict[str, str]) -> bytes:
    with httpx.Client(base_url=served["origin"] + "/api/v2", timeout=30) as api:
        credentials = {"api_key": served["api_key"], "api_secret": served["api_secret"]}
        token = api.post("/auth", json=credentials).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        export, tss = str(uuid.uuid4()), served["tss"]
        assert api.put(f"/tss/{tss}/export/{export}").status_code == 200
        deadline = time.monotonic() + 60
        while api.get(f"/tss/{tss}/export/{export}").json()["state"] != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        return api.get(f"/tss/{tss}/export/{export}/file").content


def _export_accounts_for_the_tse(
    register: Register, books: Books, tar: Callable[[], bytes], path: Path
) -> tuple[dict[str, dict[str, str]], ZReport]:
    """Close the day, export it, check it (signatures included) and compare its
    TSE_TANR set with the TSE's own export: equal, each number in one row. Returns
    transactions_tse.csv by BON_ID and the day's Z report."""
    closed = close_day(register, books, MASTER, "0.00")
    export = write_export([closed.closing], path)
    assert [f for f in check_export(export) if f.severity == "error"] == []
    rows = _csv(export, "transactions_tse.csv")
    numbers = [int(r["TSE_TANR"]) for r in rows if r["TSE_TANR"]]
    in_tse = _tar_transactions(tar(), CLIENT)
    assert all("FinishTransaction" in ops for ops in in_tse.values())  # none left open
    assert sorted(numbers) == sorted(in_tse)
    return {r["BON_ID"]: r for r in rows}, build_zreport(closed)


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    with Installation.open(tmp_path / "data") as inst:
        ready_tse(inst.service, TSE, client_id=CLIENT, logout=True)
        yield inst


def _late(register: Register, slow: SlowFinish, mode: str, sale: Sale) -> SaleResult:
    slow.mode = mode
    result = register.sell(sale)
    slow.release.set()
    assert result.tse_failed and result.signed is None
    assert "TSE ausgefallen" in render_text(result.receipt)
    return result


def test_a_finish_signed_after_the_deadline_signs_the_printed_receipt(
    tmp_path: Path, installation: Installation
) -> None:
    till = tmp_path / "till.db"
    slow = SlowFinish([], tmp_path / "unused")
    journal, books = OutageLog(till), Books(till)
    register = _register(SlowEmbedded(installation.service, slow), journal, books)
    assert register.connect().light is Light.GREEN
    assert not register.sell(_sale()).tse_failed  # receipt 1
    late = _late(register, slow, "signed", _sale("3.10"))  # receipt 2, printed unsigned
    printed = _row(till, late.receipt_ref)
    assert printed["signed"] is None and printed["error"]
    assert register.status().light is Light.YELLOW

    back = register.sell(_sale())  # receipt 3: the outage ends, recovery runs
    assert not back.tse_failed and back.status.light is Light.GREEN
    signed_row = _row(till, late.receipt_ref)
    # the receipt as printed: number, sale, times unchanged; the TSE's Finish added
    for column in ("bon_nr", "sale", "started_at", "ended_at", "z_nr", "process_type"):
        assert signed_row[column] == printed[column]
    assert signed_row["signed"] is not None
    assert signed_row["error"].startswith("Beleg als TSE-Ausfall gedruckt (")
    assert printed["error"] in signed_row["error"] and len(signed_row["error"]) <= 200
    [dangling] = journal.dangling()
    assert dangling.resolution == (
        "had been signed by its own Finish (Kassenbeleg-V1); "
        "signature added to receipt 2, printed without it"
    )
    assert journal.pending_starts() == []
    [outage] = journal.outages()
    assert outage.receipt_refs == (late.receipt_ref,)  # the outage stays documented
    assert register.recover() == [] and _row(till, late.receipt_ref) == signed_row

    rows, report = _export_accounts_for_the_tse(
        register, books, lambda: _embedded_tar(installation.service), tmp_path / "day.zip"
    )
    assert report.tse_failures == 1  # printed "TSE ausgefallen", signed only later
    row = rows[late.receipt_ref]
    assert row["TSE_TANR"] == str(dangling.transaction_number) and row["TSE_TA_SIG"]
    assert row["TSE_TA_FEHLER"] == signed_row["error"]
    assert row["TSE_VORGANGSDATEN"] == "Beleg^6.20_0.90_0.00_0.00_0.00^7.10:Unbar"
    assert rows[back.receipt_ref]["TSE_TA_FEHLER"] == ""
    journal.close()
    books.close_file()


def test_a_finish_that_never_reached_the_tse_books_recovery_s_abort_beside_the_receipt(
    tmp_path: Path, installation: Installation
) -> None:
    till = tmp_path / "till.db"
    slow = SlowFinish([], tmp_path / "unused")
    journal, books = OutageLog(till), Books(till)
    register = _register(SlowEmbedded(installation.service, slow), journal, books)
    assert register.connect().light is Light.GREEN
    lost = _late(register, slow, "lost", _sale())  # receipt 1, printed unsigned
    printed = _row(till, lost.receipt_ref)
    assert register.sell(_sale()).status.light is Light.GREEN  # receipt 2; recovery
    [dangling] = journal.dangling()
    number = dangling.transaction_number
    assert dangling.resolution == (
        "finished as aborted (Kassenbeleg-V1); booked as receipt 3 (AVBelegabbruch)"
    )
    abort = _row(till, abort_bon_id(TSE, number))
    assert (abort["bon_nr"], abort["error"]) == (3, abort_note(1))
    assert abort["references"] == [(lost.receipt_ref, "Transaktion")]
    assert f'"process_data": "{ABORT}"' in abort["signed"]
    assert _row(till, lost.receipt_ref) == printed  # the printed receipt stays unsigned
    assert register.recover() == [] and books.open_count() == 3  # booked once

    rows, report = _export_accounts_for_the_tse(
        register, books, lambda: _embedded_tar(installation.service), tmp_path / "day.zip"
    )
    assert report.tse_failures == 1  # the printed receipt; the abort was never printed
    assert rows[lost.receipt_ref]["TSE_TANR"] == "" and rows[lost.receipt_ref]["TSE_TA_FEHLER"]
    aborted = rows[abort_bon_id(TSE, number)]
    assert aborted["TSE_TANR"] == str(number) and aborted["TSE_TA_FEHLER"] == abort_note(1)
    transactions = {r["BON_ID"]: r for r in _csv(tmp_path / "day.zip", "transactions.csv")}
    assert transactions[abort_bon_id(TSE, number)]["BON_TYP"] == "AVBelegabbruch"
    assert transactions[abort_bon_id(TSE, number)]["UMS_BRUTTO"] in ("0,00", "")
    journal.close()
    books.close_file()


def test_a_crash_before_the_finish_books_the_abort_as_the_receipt_never_printed(
    tmp_path: Path, installation: Installation
) -> None:
    till = tmp_path / "till.db"
    slow = SlowFinish([till], tmp_path / "crashed")
    journal, books = OutageLog(till), Books(till)
    register = _register(SlowEmbedded(installation.service, slow), journal, books)
    assert register.connect().light is Light.GREEN
    assert not register.sell(_sale()).tse_failed  # receipt 1
    slow.mode = "crash"
    with pytest.raises(Crash):
        register.sell(_sale())  # receipt 2: Start signed, the till dies
    journal.close()
    books.close_file()
    shutil.copytree(tmp_path / "crashed", tmp_path / "crashed-again")

    crashed = tmp_path / "crashed" / till.name
    journal, books = OutageLog(crashed), Books(crashed)
    [note] = journal.pending_starts()
    restarted = _register(EmbeddedBackend(installation.service, TSE), journal, books)
    assert restarted.connect().light is Light.GREEN
    [dangling] = journal.dangling()
    assert dangling.resolution == (
        "finished as aborted (Kassenbeleg-V1); booked as receipt 2 (AVBelegabbruch)"
    )
    abort = _row(crashed, note.receipt_ref)  # the receipt's own id and number
    assert (abort["bon_nr"], abort["error"], abort["references"]) == (2, "", [])
    assert f'"number": {dangling.transaction_number}' in abort["signed"]
    journal.close()
    # the journal as the disk had it, note and all: recovery again books nothing
    again = OutageLog(tmp_path / "crashed-again" / till.name)
    second = _register(EmbeddedBackend(installation.service, TSE), again, books)
    assert second.connect().light is Light.GREEN
    assert books.open_count() == 2 and _row(crashed, note.receipt_ref) == abort
    assert again.dangling()[0].resolution == "finished as aborted (Kassenbeleg-V1)"
    assert not second.sell(_sale()).tse_failed  # receipt 3
    assert books.find_bon_id("3")

    rows, _ = _export_accounts_for_the_tse(
        second, books, lambda: _embedded_tar(installation.service), tmp_path / "day.zip"
    )
    assert rows[note.receipt_ref]["TSE_TANR"] == str(dangling.transaction_number)
    again.close()
    books.close_file()


def test_over_http_a_finish_signed_after_the_deadline_signs_the_printed_receipt(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """Against ``opentse serve`` (fiskaly SIGN DE v2): recovery's Finish with the
    receipt's own ref is answered with the stored revision, which the unsigned
    receipt gets; the served TSE's TAR and the export hold the same numbers."""
    served = fiskaly_tss(CLIENT)
    till = tmp_path / "till.db"
    slow = SlowFinish([], tmp_path / "unused")
    backend = SlowRemote(served, slow)
    journal, books = OutageLog(till), Books(till)
    try:
        register = _register(backend, journal, books)
        assert register.connect().light is Light.GREEN
        late = _late(register, slow, "signed", _sale())
        assert not register.sell(_sale()).tse_failed
        [dangling] = journal.dangling()
        assert dangling.resolution == (
            "had been signed by its own Finish (Kassenbeleg-V1); "
            "signature added to receipt 1, printed without it"
        )
        rows, _ = _export_accounts_for_the_tse(
            register, books, lambda: _served_tar(served), tmp_path / "day.zip"
        )
        assert rows[late.receipt_ref]["TSE_TANR"] == str(dangling.transaction_number)
        assert rows[late.receipt_ref]["TSE_TA_FEHLER"].startswith("Beleg als TSE-Ausfall")
    finally:
        slow.release.set()
        journal.close()
        books.close_file()
        backend.close()


@pytest.mark.parametrize("process_type", ["Kassenbeleg-V1", "Bestellung-V1"])
def test_an_abandoned_open_transaction_is_booked_as_recovery_s_abort(
    tmp_path: Path, installation: Installation, process_type: str
) -> None:
    """An open transaction of the client no receipt of this till claims (a till that
    died with its journal) is aborted once old enough, and the abort booked with the
    next receipt number. An order is aborted as a receipt too (Kassenbeleg-V1
    AVBelegabbruch), so the checker can rebuild what the TSE signed from the rows."""
    service = installation.service
    number = service.start_transaction(TSE, CLIENT, b"", process_type).transaction_number
    till = tmp_path / "till.db"
    journal, books = OutageLog(till), Books(till)
    config = RegisterConfig(SELLER, CLIENT, timeout=TIMEOUT, abandoned_after=timedelta(0, 1e-6))
    backend = EmbeddedBackend(service, TSE)
    register = Register(backend, config, journal, clock=lambda: datetime.now(UTC), books=books)
    assert register.connect().light is Light.GREEN
    [dangling] = journal.dangling()
    assert (dangling.transaction_number, dangling.receipt_ref) == (number, "")
    assert dangling.resolution == (
        f"finished as aborted ({process_type}); booked as receipt 1 (AVBelegabbruch)"
    )
    abort = _row(till, abort_bon_id(TSE, number))
    assert (abort["bon_nr"], abort["error"], abort["process_type"]) == (1, "", "Kassenbeleg-V1")
    assert not register.sell(_sale()).tse_failed  # receipt 2
    assert register.recover() == [] and books.open_count() == 2
    _export_accounts_for_the_tse(
        register, books, lambda: _embedded_tar(service), tmp_path / "day.zip"
    )
    journal.close()
    books.close_file()


@pytest.mark.parametrize("closed_first", [False, True], ids=["open-day", "closed-day"])
def test_without_its_start_note_a_late_finish_is_matched_against_the_booked_sale(
    tmp_path: Path, installation: Installation, closed_first: bool
) -> None:
    """A journal of an older version forgot the note after a failed Finish: the
    receipt's books row says what the sale meant to sign. A day closed before
    recovery ran is never changed (the journal says so)."""
    till = tmp_path / "till.db"
    slow = SlowFinish([], tmp_path / "unused")
    journal, books = OutageLog(till), Books(till)
    register = _register(SlowEmbedded(installation.service, slow), journal, books)
    assert register.connect().light is Light.GREEN
    late = _late(register, slow, "signed", _sale())  # receipt 1
    journal.forget_start(late.receipt_ref)  # as the older version did
    if closed_first:
        books.close(
            z_kasse_id=CLIENT,
            company=MASTER.company,
            location=MASTER.location,
            register=MASTER.register,
        )
    printed = _row(till, late.receipt_ref)
    assert register.recover() != []
    [dangling] = journal.dangling()
    if closed_first:
        assert dangling.resolution == (
            "had been signed by its own Finish (Kassenbeleg-V1); "
            "not booked: receipt 1 is closed unsigned"
        )
        assert _row(till, late.receipt_ref) == printed
    else:
        assert dangling.resolution == (
            "had been signed by its own Finish (Kassenbeleg-V1); "
            "signature added to receipt 1, printed without it"
        )
        rows, _ = _export_accounts_for_the_tse(
            register, books, lambda: _embedded_tar(installation.service), tmp_path / "day.zip"
        )
        assert rows[late.receipt_ref]["TSE_TANR"] == str(dangling.transaction_number)
    journal.close()
    books.close_file()


def test_a_note_whose_sale_differs_from_the_signed_finish_books_nothing(
    tmp_path: Path, installation: Installation
) -> None:
    """Only the sale's own Finish is taken over: a row whose booked sale would sign
    other processData (here: its books entry changed behind the till's back) keeps
    its TSE failure, and the journal says why."""
    till = tmp_path / "till.db"
    slow = SlowFinish([], tmp_path / "unused")
    journal, books = OutageLog(till), Books(till)
    register = _register(SlowEmbedded(installation.service, slow), journal, books)
    assert register.connect().light is Light.GREEN
    late = _late(register, slow, "signed", _sale())
    journal.forget_start(late.receipt_ref)
    other = _sale("9.90")
    with sqlite3.connect(till) as db:
        db.execute(
            "UPDATE books_receipts SET sale = ? WHERE bon_id = ?",
            (sale_to_json(other), late.receipt_ref),
        )
    printed = _row(till, late.receipt_ref)
    register.recover()
    [dangling] = journal.dangling()
    assert dangling.resolution == (
        "had been signed by its own Finish (Kassenbeleg-V1); "
        "not booked: its processData differs from the booked sale's"
    )
    assert _row(till, late.receipt_ref) == printed
    journal.close()
    books.close_file()


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_the_late_signature_note_fits_tse_ta_fehler(reason: str) -> None:
    note = late_signature_note(reason)
    assert len(note) <= 200
    assert note.startswith("Beleg als TSE-Ausfall gedruckt (")
    assert note.endswith("Signatur nachträglich übernommen")
    if 0 < len(reason) <= 60:
        assert reason in note
