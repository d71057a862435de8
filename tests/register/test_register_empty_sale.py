"""A receipt or order without lines is the cashier's error ``E_SALE_EMPTY``, before
the TSE is called. It was signed and booked ("Beleg^0.00_..._0.00^"), and the day's
closing could then never be exported: DSFinV-K needs a Bonpos on every Bon
(``write_export`` failed with E_DSFINVK_MODEL for that closing, for good)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentse.errors import ProtocolError
from opentse.formats.dsfinvk import check_export, write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.books import Books, MasterData
from opentse.register.zreport import close_day
from opentse.testing import ready_tse

MASTER = MasterData(
    Company("Café Muster GmbH", "Musterstraße 1", "12345", "Musterstadt", tax_number="1/2/3"),
    Location("Café Muster", "Musterstraße 1", "12345", "Musterstadt"),
    CashRegister("KASSE-1"),
)


def _payment_only() -> Sale:
    sale = Sale()
    sale.add_payment("cash", "5.00")
    return sale


@pytest.mark.parametrize(
    "make", [Sale, _payment_only, lambda: Sale("AVTraining"), lambda: Sale("AVBestellung")]
)
def test_an_empty_sale_or_order_is_refused_and_the_day_exports(
    make: object, tmp_path: Path
) -> None:
    inst = Installation.open(tmp_path / "data")  # a TSE with its certificate (tse.csv)
    service = inst.service
    ready_tse(service, "t", client_id="KASSE-1", seed="empty", logout=True)
    books = Books(tmp_path / "books.db")
    register = Register(
        EmbeddedBackend(service, "t"),
        RegisterConfig(Seller("Café Muster", ("Musterstraße 1", "12345 Musterstadt")), "KASSE-1"),
        OutageLog(":memory:"),
        books=books,
    )
    register.connect()
    before = service.get("t").state.signature_counter
    assert callable(make)
    for book in (register.sell, register.order):
        with pytest.raises(ProtocolError) as refused:
            book(make())
        assert refused.value.code in ("E_SALE_EMPTY", "E_ORDER_PAYMENT", "E_ORDER_BON_TYP")
    assert service.get("t").state.signature_counter == before
    sale = Sale()
    sale.add_line("Kaffee", 1, "2.50", 1)
    sale.add_payment("cash", "2.50")
    register.sell(sale)
    day = close_day(register, books, MASTER, "2.50")
    export = write_export([day.closing], tmp_path / "day.zip")
    assert [f for f in check_export(export) if f.severity == "error"] == []
    assert day.closing.z_nr == 1
    books.close_file()
    inst.close()
