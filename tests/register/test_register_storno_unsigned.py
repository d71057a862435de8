"""A sale printed "TSE ausgefallen" whose Start the TSE had signed: recovery aborts
that TSE transaction and books the abort as a Vorgang pointing at the printed receipt
(REF_TYP Transaktion). The sale itself stands (paid, printed); when the customer
brings the goods back it must be cancellable. `pos storno` took the abort's
reference for a cancellation: "receipt 1 was cancelled already (by 0f21...)", a
BON_ID the shop owner had never seen.

The TSE is an installation's; its Finish fails on the way (an OSError in the real
embedded backend, as a network would), the till carries on."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from cafe_muster import CLIENT, MASTER, SELLER, TSE
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Signed
from opentse.register.books import Books
from opentse.testing import ready_tse


class FinishLost(EmbeddedBackend):
    """The real embedded backend whose Finish does not get through while ``lost``."""

    lost = False

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        if self.lost:
            raise OSError("network gone")
        return super().finish(client_id, number, process_type, process_data, ref=ref)


def _pos(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_a_receipt_printed_unsigned_can_be_cancelled_after_recovery(tmp_path: Path) -> None:
    data = tmp_path / "data"
    till_file = data / "pos" / f"{CLIENT}.db"
    with Installation.open(data) as inst:
        ready_tse(inst.service, TSE, client_id=CLIENT, logout=True)
        till_file.parent.mkdir()
        journal, books = OutageLog(till_file), Books(till_file)
        backend = FinishLost(inst.service, TSE)
        register = Register(backend, RegisterConfig(SELLER, CLIENT), journal, books=books)
        register.connect()
        sale = Sale()
        sale.add_line("Kaffee", 1, "2.50", 1)
        sale.add_payment("cash", "2.50")
        backend.lost = True
        assert register.sell(sale).tse_failed  # receipt 1, printed "TSE ausgefallen"
        backend.lost = False
        register.connect()  # recovery: the abort, booked as receipt 2, points at 1
        assert "booked as receipt 2 (AVBelegabbruch)" in str(journal.dangling()[0].resolution)
        books.close_file()
        journal.close()
    till = ("--data", str(data), "--tss", TSE, "--client", CLIENT)
    code, out = _pos("pos", "storno", "1", *till, "--json")
    assert code == 0, out  # before: E_POS_STORNO 'cancelled already (by <abort's id>)'
    assert '"tse_failed": false' in out and "AVBelegstorno^-2.50" in out
    code, out = _pos("pos", "storno", "1", *till)
    assert code == 1 and "receipt 1 was cancelled already (by receipt 3)" in out, out
    code, out = _pos(
        "pos", "close", *till, "--counted-cash", "0.00", "--company", MASTER.company.name,
        "--street", "Musterstraße 1", "--postal-code", "12345", "--city", "Musterstadt",
        "--vat-id", "DE123456789", "--out", str(tmp_path / "day.zip"), "--json",
    )  # fmt: skip
    assert code == 0 and '"check_errors": []' in out, out
    with zipfile.ZipFile(tmp_path / "day.zip") as export:
        text = export.read("references.csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
    # the abort and the cancellation, two Vorgänge, both point at receipt 1
    pointing = [row for row in rows if row.get("REF_BON_ID")]
    assert len(pointing) == 2 and len({row["BON_ID"] for row in pointing}) == 2
    assert len({row["REF_BON_ID"] for row in pointing}) == 1


def test_a_cancellation_receipt_names_the_receipt_it_cancels(tmp_path: Path) -> None:
    """The STORNO receipt printed its own number only: the customer, the cashier and
    an auditor holding it could not tell which receipt it took back. It prints
    'Storno zu Beleg-Nr.: N' now (the books and references.csv had it already)."""
    from opentse.register import render_text

    with Installation.open(tmp_path / "data") as inst:
        ready_tse(inst.service, TSE, client_id=CLIENT, logout=True)
        journal, books = OutageLog(tmp_path / "till.db"), Books(tmp_path / "till.db")
        register = Register(
            EmbeddedBackend(inst.service, TSE), RegisterConfig(SELLER, CLIENT), journal,
            books=books,
        )  # fmt: skip
        sale = Sale()
        sale.add_line("Kaffee", 1, "2.50", 1)
        sale.add_payment("cash", "2.50")
        sold = register.sell(sale)
        assert "Storno zu" not in render_text(sold.receipt)
        cancelled = register.sell(sale.storno(), references=[sold.receipt_ref])
        text = render_text(cancelled.receipt, width=32)
        assert "STORNO" in text and "Beleg-Nr.: 2\nStorno zu Beleg-Nr.: 1\n" in text
        books.close_file()
        journal.close()
