"""The register's books and its closings: sales signed by the embedded TSE are kept,
closed into numbered Kassenabschluesse and exported; the DSFinV-K checker rebuilds and
verifies every signature from the export."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from opentse.errors import ProtocolError
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location, closing_totals
from opentse.installation import Installation
from opentse.register import (
    CashBookEntry,
    EmbeddedBackend,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    Seller,
)
from opentse.register.books import Books
from opentse.register.books_json import sale_from_json, sale_to_json
from opentse.testing import ADMIN_PIN, ready_tse

CLIENT = "KASSE-BOOKS"
COMPANY = Company("Kiosk GmbH", "Weg 1", "12345", "Ort", tax_number="123/456/78901")
LOCATION = Location("Kiosk", "Weg 1", "12345", "Ort")


def sales() -> list[Sale]:
    card = Sale()
    card.add_line("Brot", 1, "3.20", 2)
    card.add_line("Wein", 1, "8.99", 1)
    card.add_payment("card", "12.19", name="Girocard")
    cash = Sale()
    cash.add_line("Kaffee", 2, "2.45", 1)
    cash.add_discount("Treue", "0.40", 1)
    cash.add_payment("cash", "10.00")
    usd = Sale()
    usd.add_line("Karte", 1, "1.50", 1)
    usd.add_payment("cash", "2.00", currency="USD", amount_eur="1.85")
    return [card, cash, usd, cash.storno(), card.aborted()]


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    with Installation.open(tmp_path / "data") as inst:
        ready_tse(inst.service, "tse-b", client_id=CLIENT, logout=True)
        yield inst


def close(books: Books, out: Path) -> tuple[int, int, list[str]]:
    closing = books.close(
        z_kasse_id=CLIENT, company=COMPANY, location=LOCATION, register=CashRegister(CLIENT)
    )
    path = write_export([closing], out)
    errors = [str(f) for f in check_export(path) if f.severity == "error"]
    return closing.z_nr, len(closing.receipts), errors


def test_books_close_and_export(installation: Installation, tmp_path: Path) -> None:
    books = Books(tmp_path / "register.db")
    journal = OutageLog(tmp_path / "register.db")  # the register's one own file
    register = Register(
        EmbeddedBackend(installation.service, "tse-b"),
        RegisterConfig(Seller("Kiosk", ("Weg 1", "12345 Ort")), CLIENT),
        journal,
        books=books,
    )
    register.connect()
    for sale in sales():
        assert not register.sell(sale).tse_failed
    installation.service.authenticate("tse-b", ADMIN_PIN)
    installation.service.deregister_client("tse-b", CLIENT)
    assert register.sell(sales()[0]).tse_failed  # exported with TSE_TA_FEHLER
    assert books.open_count() == 6
    z_nr, count, errors = close(books, tmp_path / "z1")
    assert (z_nr, count, errors) == (1, 6, [])
    with pytest.raises(ProtocolError) as info:
        close(books, tmp_path / "z-empty")
    assert info.value.code == "E_NOTHING_TO_CLOSE"
    installation.service.register_client("tse-b", CLIENT)
    assert not register.sell(sales()[1]).tse_failed
    books.close_file()
    journal.close()
    reopened = Books(tmp_path / "register.db")  # the books survive a restart
    z_nr, count, errors = close(reopened, tmp_path / "z2")
    assert (z_nr, count, errors) == (2, 1, [])
    reopened.close_file()


def test_closing_totals_match_the_sales(installation: Installation, tmp_path: Path) -> None:
    books = Books(":memory:")
    journal = OutageLog(":memory:")
    register = Register(
        EmbeddedBackend(installation.service, "tse-b"),
        RegisterConfig(Seller("Kiosk", ("Weg 1", "12345 Ort")), CLIENT),
        journal,
        books=books,
    )
    register.connect()
    booked = sales()
    for sale in booked:
        register.sell(sale)
    closing = books.close(
        z_kasse_id=CLIENT, company=COMPANY, location=LOCATION, register=CashRegister(CLIENT)
    )
    totals = closing_totals(closing)
    counted = [s for s in booked if s.bon_typ in ("Beleg", "AVBelegstorno")]
    assert totals.all_payments == sum(s.total for s in counted)
    assert totals.cash_payments == sum(s.cash_paid - s.change for s in counted)
    by_key: dict[int, object] = {}
    for case in totals.business_cases:
        by_key.setdefault(case.key, case)
    assert set(by_key) == {1, 2}


def test_sale_json_round_trip() -> None:
    for sale in sales():
        again = sale_from_json(sale_to_json(sale))
        assert again == sale
        assert again.process_data() == sale.process_data()


def test_cash_book_entries_are_in_the_closing(installation: Installation, tmp_path: Path) -> None:
    books = Books(tmp_path / "register.db")
    journal = OutageLog(tmp_path / "register.db")
    register = Register(
        EmbeddedBackend(installation.service, "tse-b"),
        RegisterConfig(Seller("Kiosk", ("Weg 1", "12345 Ort")), CLIENT),
        journal,
        books=books,
    )
    register.connect()
    signed, _ = register.book(CashBookEntry("Einzahlung", Decimal("50.00"), "Wechselgeld"))
    assert signed is not None and signed.process_type == "SonstigerVorgang"
    register.book(CashBookEntry("Privatentnahme", Decimal("-20.00"), "Inhaber"))
    register.sell(sales()[1])  # cash sale: 4.50 kept
    closing = books.close(
        z_kasse_id=CLIENT, company=COMPANY, location=LOCATION, register=CashRegister(CLIENT)
    )
    path = write_export([closing], tmp_path / "z")
    assert [str(f) for f in check_export(path) if f.severity == "error"] == []
    totals = closing_totals(closing)
    assert totals.cash_payments == Decimal("34.50")
    cases = {(c.gv_typ, c.key): c.gross for c in totals.business_cases}
    assert cases[("Privatentnahme", 5)] == Decimal("-20.00")
    assert cases[("Einzahlung", 5)] == Decimal("50.00")
    books.close_file()
    journal.close()
